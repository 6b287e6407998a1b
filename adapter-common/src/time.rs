//! Wall-clock instants in the two written forms the service uses: RFC 3339 (a channel's
//! `expires`) and the HTTP date (the `Date` and `Retry-After` headers).
//!
//! Only these two forms are read, so a small parser does it: a general date-time library
//! would be most of the browser build. Input is untrusted: anything that is not a valid
//! instant is `None`, never a panic.

use std::time::Duration;

/// An instant of UTC, in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(i128);

const NANOS: i128 = 1_000_000_000;

impl UnixTime {
    /// Now, from the system clock. On `wasm32-unknown-unknown` there is none: `None` (the
    /// browser adapter always hands over a `Date`, its own when the answer's is unreadable).
    pub fn now() -> Option<UnixTime> {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        {
            None
        }
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            Some(match since {
                Ok(d) => UnixTime(d.as_nanos() as i128),
                Err(e) => UnixTime(-(e.duration().as_nanos() as i128)),
            })
        }
    }

    /// Whole seconds since the epoch (negative before it), rounded down.
    pub fn as_secs(self) -> i64 {
        i64::try_from(self.0.div_euclid(NANOS)).unwrap_or(i64::MAX)
    }

    /// From seconds since the epoch.
    pub fn from_secs(secs: i64) -> UnixTime {
        UnixTime(i128::from(secs) * NANOS)
    }

    /// How long after `earlier` this is: zero if it is not after it, and at most
    /// `u64::MAX` nanoseconds (584 years).
    pub fn saturating_since(self, earlier: UnixTime) -> Duration {
        // Capped to u64 first: no 128-bit division, which the browser build carries as
        // software.
        let d = self.0.saturating_sub(earlier.0).max(0);
        Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX))
    }

    /// An RFC 3339 timestamp: `2026-12-01T10:00:00Z`, with an optional fraction of up to nine
    /// digits and a `Z` or `±HH:MM` offset (`T` and `Z` in either case).
    pub fn parse_rfc3339(s: &str) -> Option<UnixTime> {
        let mut c = Cursor::new(s.trim());
        let year = c.digits(4, 4)?;
        c.byte(b'-')?;
        let month = c.digits(2, 2)?;
        c.byte(b'-')?;
        let day = c.digits(2, 2)?;
        if !matches!(c.next()?, b'T' | b't' | b' ') {
            return None;
        }
        let (h, m, sec) = c.clock(true)?;
        let mut nanos = 0;
        if c.peek() == Some(b'.') {
            c.next();
            let start = c.at;
            let frac = c.digits(1, 9)?;
            let width = c.at - start;
            nanos = frac * 10_i64.pow(9 - width as u32);
        }
        let offset = match c.next()? {
            b'Z' | b'z' => 0,
            sign @ (b'+' | b'-') => {
                let oh = c.digits(2, 2)?;
                c.byte(b':')?;
                let om = c.digits(2, 2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if sign == b'+' {
                    o
                } else {
                    -o
                }
            }
            _ => return None,
        };
        c.end()?;
        let t = civil(year, month, day, h, m, sec)?;
        Some(UnixTime(
            (i128::from(t - offset)) * NANOS + i128::from(nanos),
        ))
    }

    /// An HTTP date (RFC 9110 §5.6.7): the preferred `Sun, 06 Nov 1994 08:49:37 GMT` and the
    /// forms recipients must still accept, RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and
    /// asctime (`Sun Nov  6 08:49:37 1994`); also RFC 2822's numeric zones (`+0000`) and
    /// missing weekday, which some servers send.
    pub fn parse_http_date(s: &str) -> Option<UnixTime> {
        let s = s.trim();
        let mut words = s.split_ascii_whitespace();
        let first = words.next()?;
        let rest: Vec<&str> = words.collect();
        if !first.ends_with(',') && rest.len() == 4 && weekday(first) {
            // asctime: `Sun Nov  6 08:49:37 1994`, always GMT.
            let month = month(rest[0])?;
            let day = number(rest[1], 1, 2)?;
            let (h, m, sec) = Cursor::new(rest[2]).whole_clock(true)?;
            let year = number(rest[3], 4, 4)?;
            return civil(year, month, day, h, m, sec).map(UnixTime::from_secs);
        }
        // With a weekday (`Sun,` or `Sunday,`) or without one (RFC 2822 allows that).
        let fields: Vec<&str> = if let Some(day_name) = first.strip_suffix(',') {
            if !weekday(day_name) {
                return None;
            }
            rest
        } else {
            std::iter::once(first).chain(rest).collect()
        };
        let (day, month, year, clock, zone) = match fields.as_slice() {
            // RFC 850: `06-Nov-94 08:49:37 GMT`.
            [date, clock, zone] => {
                let mut p = date.split('-');
                let (d, mo, y) = (p.next()?, p.next()?, p.next()?);
                if p.next().is_some() {
                    return None;
                }
                let y = number(y, 2, 2)?;
                // Two-digit years: RFC 9110 reads one more than 50 years ahead as the past.
                (
                    number(d, 1, 2)?,
                    month(mo)?,
                    1900 + y + if y < 70 { 100 } else { 0 },
                    *clock,
                    *zone,
                )
            }
            [d, mo, y, clock, zone] => (
                number(d, 1, 2)?,
                month(mo)?,
                number(y, 4, 4)?,
                *clock,
                *zone,
            ),
            _ => return None,
        };
        let (h, m, sec) = Cursor::new(clock).whole_clock(false)?;
        let offset = zone_offset(zone)?;
        civil(year, month, day, h, m, sec).map(|t| UnixTime::from_secs(t - offset))
    }
}

fn weekday(s: &str) -> bool {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let s = s.to_ascii_lowercase();
    DAYS.iter()
        .any(|d| s == *d || (s.len() == 3 && d.starts_with(s.as_str())))
}

fn month(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let s = s.to_ascii_lowercase();
    let i = MONTHS.iter().position(|m| *m == s)?;
    Some(i as i64 + 1)
}

/// `GMT`, `UT`, `UTC`, `Z` or `±HHMM`, as seconds east of UTC.
fn zone_offset(s: &str) -> Option<i64> {
    if ["GMT", "UT", "UTC", "Z"]
        .iter()
        .any(|z| s.eq_ignore_ascii_case(z))
    {
        return Some(0);
    }
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let hhmm = number(digits, 4, 4)?;
    let (h, m) = (hhmm / 100, hhmm % 100);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// A decimal of `min..=max` ASCII digits, and nothing else.
fn number(s: &str, min: usize, max: usize) -> Option<i64> {
    let mut c = Cursor::new(s);
    let n = c.digits(min, max)?;
    c.end()?;
    Some(n)
}

/// Seconds since the epoch of a UTC date and time, if it is one. A leap second (`:60`) reads
/// as the second before it, as the instant cannot be written otherwise.
fn civil(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the epoch of a proleptic Gregorian date (eras of 400 years, March first).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s.min(59))
}

/// Reads ASCII bytes off a string.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Cursor<'a> {
        Cursor {
            b: s.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn end(&self) -> Option<()> {
        (self.at == self.b.len()).then_some(())
    }

    /// `min..=max` digits (as many as there are, up to `max`).
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let mut n: i64 = 0;
        let mut read = 0;
        while read < max {
            match self.peek() {
                Some(d @ b'0'..=b'9') => {
                    n = n * 10 + i64::from(d - b'0');
                    self.at += 1;
                    read += 1;
                }
                _ => break,
            }
        }
        (read >= min).then_some(n)
    }

    /// `HH:MM:SS`, or `HH:MM` when seconds are optional.
    fn clock(&mut self, seconds_required: bool) -> Option<(i64, i64, i64)> {
        let h = self.digits(2, 2)?;
        self.byte(b':')?;
        let m = self.digits(2, 2)?;
        let s = if self.peek() == Some(b':') {
            self.next();
            self.digits(2, 2)?
        } else if seconds_required {
            return None;
        } else {
            0
        };
        Some((h, m, s))
    }

    /// A clock that is the whole string.
    fn whole_clock(mut self, seconds_required: bool) -> Option<(i64, i64, i64)> {
        let t = self.clock(seconds_required)?;
        self.end()?;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339(s: &str) -> Option<i64> {
        UnixTime::parse_rfc3339(s).map(UnixTime::as_secs)
    }

    fn http(s: &str) -> Option<i64> {
        UnixTime::parse_http_date(s).map(UnixTime::as_secs)
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("2026-12-01T10:00:00Z"), Some(1_796_119_200));
        assert_eq!(rfc3339(" 2026-12-01t10:00:00.999z "), Some(1_796_119_200));
        assert_eq!(rfc3339("2026-12-01T11:30:00+01:30"), Some(1_796_119_200));
        assert_eq!(rfc3339("2026-12-01T08:00:00-02:00"), Some(1_796_119_200));
        assert_eq!(rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        let t = UnixTime::parse_rfc3339("2026-12-01T10:00:00.25Z").unwrap();
        let base = UnixTime::from_secs(1_796_119_200);
        assert_eq!(t.saturating_since(base), Duration::from_millis(250));
        assert_eq!(base.saturating_since(t), Duration::ZERO);
    }

    #[test]
    fn rfc3339_refuses_what_is_not_an_instant() {
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:60:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00.1234567890Z",
            "2026-12-01T10:00:00+25:00",
            "2026-12-01T10:00:00Zjunk",
            "2026-12-01T10:00:00+0100",
            "２０２６-12-01T10:00:00Z",
            "-026-12-01T10:00:00Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_date_forms() {
        let want = Some(784_111_777);
        assert_eq!(http("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(http("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(http("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(http("06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(http("Sun, 06 Nov 1994 09:49:37 +0100"), want);
        assert_eq!(http("sun, 6 nov 1994 08:49:37 utc"), want);
        assert_eq!(http("Sun, 06 Nov 1994 08:49 GMT"), Some(784_111_740));
        assert_eq!(
            http("Thursday, 01-Jan-32 00:00:00 GMT"),
            http("Thu, 01 Jan 2032 00:00:00 GMT")
        );
    }

    #[test]
    fn http_date_refuses_what_is_not_one() {
        for bad in [
            "",
            "soon",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov  6 08:49 1994",
            "Sun, 06 Nov 1994 08:49:37 +9999",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sün, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(http(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Every instant from year 1 to 9999, written by a full date-time library in each form
        /// the service uses, reads back as the same instant.
        #[test]
        fn agrees_with_a_full_date_time_library(
            secs in -62_135_596_800_i64..253_402_300_799,
            nanos in 0_u32..1_000_000_000,
            offset_min in -(23 * 60 + 59)..(23 * 60 + 59_i32),
        ) {
            let ts = jiff::Timestamp::new(secs, nanos as i32).unwrap();
            let offset = jiff::tz::Offset::from_seconds(offset_min * 60).unwrap();
            let written = ts.display_with_offset(offset).to_string();
            let ours = UnixTime::parse_rfc3339(&written).unwrap();
            proptest::prop_assert_eq!(ours, UnixTime(i128::from(secs) * NANOS + i128::from(nanos)), "{}", written);
            let printer = jiff::fmt::rfc2822::DateTimePrinter::new();
            let http_date = printer.timestamp_to_rfc9110_string(&ts).unwrap();
            proptest::prop_assert_eq!(UnixTime::parse_http_date(&http_date).map(UnixTime::as_secs), Some(secs), "{}", http_date);
            let local = offset.to_datetime(ts);
            let sign = if offset_min < 0 { '-' } else { '+' };
            let (h, m) = (offset_min.abs() / 60, offset_min.abs() % 60);
            let rfc2822 = format!("{} {sign}{h:02}{m:02}", local.strftime("%a, %d %b %Y %H:%M:%S"));
            proptest::prop_assert_eq!(UnixTime::parse_http_date(&rfc2822).map(UnixTime::as_secs), Some(secs), "{}", rfc2822);
        }

        /// Whatever text comes in, the parsers answer without panicking, and what they accept
        /// a full library reads as the same instant.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            if let Some(t) = UnixTime::parse_rfc3339(&s) {
                if let Ok(j) = s.trim().parse::<jiff::Timestamp>() {
                    proptest::prop_assert_eq!(t.as_secs(), j.as_second());
                }
            }
            let _ = UnixTime::parse_http_date(&s);
        }
    }
}
