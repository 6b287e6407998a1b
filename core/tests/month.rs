//! A month of one session in simulated time: 1-hour tokens, 24-hour channels, two
//! notifications a minute, and a random fault every few hours (resets, auth closes,
//! maintenance, half-open sockets, token outages, refused upgrades) on days 2 to 28, with
//! both redundancy settings. Checked: every internal collection stays within its bound
//! (sampled every minute), requests per day stay within what renewals and faults explain, the
//! renewals of day 30 land where those of day 1 did in the token's life, and nothing is lost
//! outside a reported gap. The seed is fixed and printed on failure.
#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

mod harness;

use std::collections::BTreeSet;

use genesys_notify_core::{
    Action, Config, Event, Footprint, Instant, RequestError, Status, MAX_DEDUP_KEYS,
};
use harness::{secs, Harness, SOCKET_CLOSING};

const T1: &str = "v2.users.u1.presence";
const T2: &str = "v2.users.u2.presence";
const DAYS: u64 = 30;
const HOUR: u64 = 3600;
const TOKEN_TTL: u64 = HOUR;

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// What one day asked of the service.
#[derive(Debug, Default, Clone, Copy)]
struct Day {
    tokens: usize,
    channels: usize,
    connects: usize,
    faults: usize,
}

struct Month {
    h: Harness,
    rng: u64,
    seed: u64,
    redundancy: u8,
    seq: u64,
    /// Published and not yet delivered: (topic, seq, when).
    outstanding: Vec<(&'static str, u64, Instant)>,
    /// Every gap reported: (topics, from, to).
    gaps: Vec<(BTreeSet<String>, Instant, Instant)>,
    delivered: BTreeSet<(String, u64)>,
    max: Footprint,
    days: Vec<Day>,
    /// Times of the token requests of day 1 and day 30.
    first_day_tokens: Vec<Instant>,
    last_day_tokens: Vec<Instant>,
}

impl Month {
    fn new(redundancy: u8, seed: u64) -> Month {
        let cfg = Config {
            redundancy,
            ..Config::default()
        };
        let mut h = Harness::new(cfg, seed);
        h.p.server.token_ttl = secs(TOKEN_TTL);
        h.p.server.channel_ttl = secs(24 * HOUR);
        h.subscribe(&[T1, T2]);
        h.serve();
        Month {
            h,
            rng: seed | 1,
            seed,
            redundancy,
            seq: 0,
            outstanding: Vec::new(),
            gaps: Vec::new(),
            delivered: BTreeSet::new(),
            max: Footprint::default(),
            days: Vec::new(),
            first_day_tokens: Vec::new(),
            last_day_tokens: Vec::new(),
        }
    }

    fn ctx(&self) -> String {
        format!("redundancy={} seed={}", self.redundancy, self.seed)
    }

    fn fault(&mut self) {
        let h = &mut self.h;
        if h.p.server.newest().is_none() {
            return;
        }
        match next(&mut self.rng) % 6 {
            0 => h.server_close(None),
            1 => h.server_close(Some(4001)),
            2 => h.frame(SOCKET_CLOSING),
            3 => {
                let conn = h.conn();
                h.p.server.silent.insert(conn);
            }
            4 => h
                .world
                .token_faults
                .extend((0..3).map(|_| RequestError::status(503))),
            _ => {
                h.world.fail_connects(1, RequestError::network("refused"));
                h.server_close(None);
            }
        }
    }

    fn publish(&mut self) {
        self.seq += 1;
        for t in [T1, T2] {
            self.outstanding.push((t, self.seq, self.h.p.now));
            self.h.publish(t, self.seq);
        }
    }

    /// Takes what the harness collected since the last call, keeping its logs short.
    fn collect(&mut self, day: &mut Day, tokens: Option<&mut Vec<Instant>>) {
        let h = &mut self.h;
        let mut times = Vec::new();
        for (a, at) in h.actions.drain(..).zip(h.action_at.drain(..)) {
            match a {
                Action::RequestToken { .. } => {
                    day.tokens += 1;
                    times.push(at);
                }
                Action::CreateChannel { .. } => day.channels += 1,
                Action::Connect { .. } => day.connects += 1,
                _ => {}
            }
        }
        if let Some(t) = tokens {
            t.extend(times);
        }
        for e in h.events.drain(..) {
            if let Event::Gap {
                topics, from, to, ..
            } = e
            {
                let names = topics.iter().map(|t| t.as_str().to_owned()).collect();
                self.gaps.push((names, from, to));
            }
        }
        self.delivered.extend(h.delivered.drain(..));
        h.log.clear();
        let delivered = &self.delivered;
        self.outstanding
            .retain(|(t, seq, _)| !delivered.contains(&((*t).to_owned(), *seq)));
    }

    fn check_footprint(&mut self) {
        let f = self.h.p.session.footprint();
        let ctx = self.ctx();
        let r = usize::from(self.redundancy);
        assert_eq!(f.topics, 2, "{ctx}: {f:?}");
        assert!(f.rejected <= 2 && f.uncovered <= 2, "{ctx}: {f:?}");
        assert_eq!((f.queued_actions, f.queued_events), (0, 0), "{ctx}: {f:?}");
        assert!(f.overlap_dedup <= 1_000, "{ctx}: {f:?}");
        assert!(f.window_dedup <= MAX_DEDUP_KEYS, "{ctx}: {f:?}");
        // Each budget remembers at most a minute of requests (and one more).
        let c = Config::default();
        let budgets = (c.max_channel_creations_per_minute as usize * r + 1)
            + (genesys_notify_core::CHANNEL_REQUESTS_PER_MINUTE as usize + 1)
            + (c.max_subscription_requests_per_minute as usize + 1)
            + (c.max_connects_per_minute as usize + 1)
            + (genesys_notify_core::URGENT_TOKEN_REQUESTS_PER_MINUTE as usize + 1);
        assert!(f.budget_entries <= budgets, "{ctx}: {f:?}");
        assert!(f.links <= 3, "{ctx}: {f:?}");
        assert!(f.pings_remembered <= 3 * 16, "{ctx}: {f:?}");
        let m = &mut self.max;
        m.topics = m.topics.max(f.topics);
        m.rejected = m.rejected.max(f.rejected);
        m.uncovered = m.uncovered.max(f.uncovered);
        m.overlap_dedup = m.overlap_dedup.max(f.overlap_dedup);
        m.window_dedup = m.window_dedup.max(f.window_dedup);
        m.budget_entries = m.budget_entries.max(f.budget_entries);
        m.links = m.links.max(f.links);
        m.pings_remembered = m.pings_remembered.max(f.pings_remembered);
    }

    fn run(&mut self) {
        for d in 1..=DAYS {
            let mut day = Day::default();
            let faulty = (2..=28).contains(&d);
            for _hour in 0..24 {
                let fault_at = if faulty && next(&mut self.rng).is_multiple_of(4) {
                    Some(next(&mut self.rng) % 60)
                } else {
                    None
                };
                for minute in 0..60 {
                    if fault_at == Some(minute) {
                        self.fault();
                        day.faults += 1;
                    }
                    self.publish();
                    self.h.run_for(secs(30));
                    self.publish();
                    self.h.run_for(secs(30));
                    self.check_footprint();
                }
                let tokens = match d {
                    1 => Some(&mut self.first_day_tokens),
                    DAYS => Some(&mut self.last_day_tokens),
                    _ => None,
                };
                let mut tokens = tokens.map(std::mem::take);
                self.collect(&mut day, tokens.as_mut());
                match d {
                    1 => self.first_day_tokens = tokens.unwrap_or_default(),
                    DAYS => self.last_day_tokens = tokens.unwrap_or_default(),
                    _ => {}
                }
            }
            self.days.push(day);
        }
    }

    fn check(&self) {
        let ctx = self.ctx();
        assert_eq!(
            self.h.p.session.status(),
            Status::Live,
            "{ctx}: live on day 30"
        );
        // Nothing lost outside a gap: every notification not delivered was published while
        // one of the gaps reported for its topic was open.
        let lost_outside: Vec<_> = self
            .outstanding
            .iter()
            .filter(|(t, _, at)| {
                !self
                    .gaps
                    .iter()
                    .any(|(topics, from, to)| topics.contains(*t) && from <= at && at <= to)
            })
            .collect();
        assert!(
            lost_outside.is_empty(),
            "{ctx}: {} lost outside a gap, first {:?}",
            lost_outside.len(),
            lost_outside.first()
        );
        // Requests per day: renewals (a token lives an hour, each link renews at most twice
        // in its life) and a few per fault.
        let r = usize::from(self.redundancy);
        for (i, d) in self.days.iter().enumerate() {
            let allowed = 48 * r + 8 * d.faults;
            assert!(
                d.tokens <= allowed
                    && d.channels <= allowed
                    && d.connects <= allowed + 8 * d.faults,
                "{ctx}: day {}: {d:?} (allowed {allowed})",
                i + 1
            );
        }
        // No drift: the spacing of token requests on day 30 (calm since day 28) is the
        // spacing of day 1 (after its first hour), within 2% of the token's life.
        let spacing = |times: &[Instant], skip_before: Instant| -> f64 {
            let t: Vec<Instant> = times
                .iter()
                .copied()
                .filter(|t| *t >= skip_before)
                .collect();
            let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
            assert!(gaps.len() >= 10, "{ctx}: too few renewals: {t:?}");
            gaps.iter().sum::<f64>() / gaps.len() as f64
        };
        let first = spacing(&self.first_day_tokens, Instant::from_secs(HOUR));
        let last = spacing(&self.last_day_tokens, Instant::ZERO);
        let tolerance = TOKEN_TTL as f64 * 0.02;
        assert!(
            (first - last).abs() <= tolerance,
            "{ctx}: renewals every {first:.0} s on day 1, every {last:.0} s on day 30"
        );
        let days = &self.days;
        let total = |f: fn(&Day) -> usize| days.iter().map(f).sum::<usize>();
        eprintln!(
            "month {ctx}: faults={} tokens={} channels={} connects={} renewal spacing day1={first:.0}s day30={last:.0}s lost_outside=0 gaps={} max={:?}",
            total(|d| d.faults),
            total(|d| d.tokens),
            total(|d| d.channels),
            total(|d| d.connects),
            self.gaps.len(),
            self.max
        );
    }
}

#[test]
fn a_month_with_one_link() {
    let mut m = Month::new(1, 0x5eed_0001);
    m.run();
    m.check();
}

#[test]
fn a_month_with_two_links() {
    let mut m = Month::new(2, 0x5eed_0002);
    m.run();
    m.check();
}
