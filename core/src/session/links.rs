//! The link container: the lanes that carry the topics (one, or two with `redundancy: 2`),
//! and at most one standby that is being brought up to replace one of them
//! (make-before-break). It owns which link sits where; the links' own state changes in the
//! session, through [`Links::get_mut`].

use super::link::{Link, Which, SLOTS};
use super::loss::Ending;

#[derive(Debug)]
pub(super) struct Links {
    active: Option<Link>,
    standby: Option<Link>,
    twin: Option<Link>,
    /// The lane the standby replaces (`Active` or `Twin`).
    standby_for: Which,
    /// Two lanes carry every topic.
    two: bool,
}

impl Links {
    /// One lane, or two when `twin` is given.
    pub(super) fn new(active: Link, twin: Option<Link>) -> Links {
        Links {
            active: Some(active),
            standby: None,
            two: twin.is_some(),
            twin,
            standby_for: Which::Active,
        }
    }

    /// Two lanes carry every topic (`redundancy: 2`, while the service allows it).
    pub(super) fn two(&self) -> bool {
        self.two
    }

    pub(super) fn get(&self, w: Which) -> Option<&Link> {
        match w {
            Which::Active => self.active.as_ref(),
            Which::Standby => self.standby.as_ref(),
            Which::Twin => self.twin.as_ref(),
        }
    }

    pub(super) fn get_mut(&mut self, w: Which) -> Option<&mut Link> {
        self.slot(w).as_mut()
    }

    fn slot(&mut self, w: Which) -> &mut Option<Link> {
        match w {
            Which::Active => &mut self.active,
            Which::Standby => &mut self.standby,
            Which::Twin => &mut self.twin,
        }
    }

    /// Takes the link out of its place (to retire it or move it).
    pub(super) fn take(&mut self, w: Which) -> Option<Link> {
        self.slot(w).take()
    }

    /// Puts a link in place `w`.
    pub(super) fn put(&mut self, w: Which, link: Link) {
        *self.slot(w) = Some(link);
    }

    /// Every link, in the order the session visits them.
    pub(super) fn all(&self) -> impl Iterator<Item = (Which, &Link)> + Clone {
        SLOTS
            .into_iter()
            .filter_map(|w| self.get(w).map(|l| (w, l)))
    }

    /// The places that carry coverage: `Active`, and `Twin` with two lanes.
    pub(super) fn lane_slots(&self) -> &'static [Which] {
        if self.two {
            &[Which::Active, Which::Twin]
        } else {
            &[Which::Active]
        }
    }

    /// The links that carry coverage (a standby does once it takes over).
    pub(super) fn lanes(&self) -> impl Iterator<Item = &Link> {
        self.lane_slots().iter().filter_map(|&w| self.get(w))
    }

    /// The other lane, with two lanes.
    pub(super) fn other_lane(&self, w: Which) -> Option<Which> {
        match w {
            Which::Active if self.two => Some(Which::Twin),
            Which::Twin => Some(Which::Active),
            Which::Active | Which::Standby => None,
        }
    }

    /// The first link that satisfies `pred`.
    pub(super) fn find(&self, pred: impl Fn(&Link) -> bool) -> Option<Which> {
        self.all().find(|(_, l)| pred(l)).map(|(w, _)| w)
    }

    /// True when a link other than `w` satisfies `pred`.
    pub(super) fn any_other(&self, w: Which, pred: impl Fn(&Link) -> bool) -> bool {
        self.all().any(|(o, l)| o != w && pred(l))
    }

    /// The lane the standby replaces (`Active` when there is none).
    pub(super) fn standby_for(&self) -> Which {
        self.standby_for
    }

    pub(super) fn has_standby(&self) -> bool {
        self.standby.is_some()
    }

    /// A standby for lane `of` starts.
    pub(super) fn add_standby(&mut self, link: Link, of: Which) {
        self.standby = Some(link);
        self.standby_for = of;
    }

    /// The service keeps each topic on one channel: two lanes would take the topics from each
    /// other forever, so one goes on. The link that was told goes, with whatever replaces it;
    /// with the standby told, the twin goes too. Returns the links that go, each with how
    /// it ends (told: everything it sent arrived; the twin of a told standby: given up on),
    /// and leaves `Active` empty if nothing is left to carry on.
    pub(super) fn fall_back_to_one(&mut self, told: Which) -> Vec<(Link, Ending)> {
        self.two = false;
        let told_one = |l: Link| (l, Ending::Superseded);
        let mut gone: Vec<(Link, Ending)> = Vec::new();
        match told {
            Which::Active => {
                gone.extend(self.active.take().map(told_one));
                self.active = self.twin.take();
                if self.standby_for == Which::Active {
                    gone.extend(self.standby.take().map(told_one));
                }
            }
            Which::Twin => {
                gone.extend(self.twin.take().map(told_one));
                if self.standby_for == Which::Twin {
                    gone.extend(self.standby.take().map(told_one));
                }
            }
            Which::Standby => {
                gone.extend(self.standby.take().map(told_one));
                gone.extend(self.twin.take().map(|l| (l, Ending::GivenUp)));
            }
        }
        self.standby_for = Which::Active;
        gone
    }
}
