//! The delta between the kiosk's clock and OVH's: signatures carry OVH's time, which is the
//! local clock (read through [`crate::clock`]) plus this delta, fetched from
//! `GET /auth/time` and kept until it is forgotten or proves wrong.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::clock::Clock;

/// "Not fetched yet"; a real delta never takes this value (see [`TimeDelta::set`]).
const UNKNOWN: i64 = i64::MIN;

#[derive(Debug)]
pub(super) struct TimeDelta(AtomicI64);

impl TimeDelta {
    pub fn unknown() -> TimeDelta {
        TimeDelta(AtomicI64::new(UNKNOWN))
    }

    /// OVH − local, in seconds, if fetched.
    pub fn get(&self) -> Option<i64> {
        match self.0.load(Ordering::Relaxed) {
            UNKNOWN => None,
            d => Some(d),
        }
    }

    pub fn forget(&self) {
        self.0.store(UNKNOWN, Ordering::Relaxed);
    }

    /// Stores the delta from OVH's answer `server_s` and the local time `local_s`.
    pub fn set(&self, server_s: i64, local_s: i64) -> i64 {
        let delta = server_s.saturating_sub(local_s);
        let delta = if delta == UNKNOWN { delta + 1 } else { delta };
        self.0.store(delta, Ordering::Relaxed);
        delta
    }
}

/// The local clock in unix seconds, as OVH counts them.
pub(super) fn local_seconds(clock: &dyn Clock) -> i64 {
    clock.now_ms().div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_is_kept_until_forgotten() {
        let d = TimeDelta::unknown();
        assert_eq!(d.get(), None);
        assert_eq!(d.set(1_000, 400), 600);
        assert_eq!(d.get(), Some(600));
        d.forget();
        assert_eq!(d.get(), None);
        // The sentinel is never stored as a real delta.
        assert_eq!(d.set(i64::MIN, 0), i64::MIN + 1);
        assert_eq!(d.get(), Some(i64::MIN + 1));
    }

    #[test]
    fn local_seconds_floor_the_milliseconds() {
        let clock = crate::clock::ManualClock::new(1_793_491_200_999);
        assert_eq!(local_seconds(clock.as_ref()), 1_793_491_200);
    }
}
