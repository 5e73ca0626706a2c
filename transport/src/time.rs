//! Time as a plain value, so that simulators own the clock.

use std::ops::{Add, Sub};

/// A point in time in microseconds since an arbitrary epoch chosen by the driver.
///
/// The cores never read a clock: every input carries `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(0);
    /// A time later than any real deadline.
    pub const NEVER: Time = Time(u64::MAX);

    /// Builds a time from milliseconds.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms * 1000)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + us`, saturating at [`Time::NEVER`].
    pub const fn plus_micros(self, us: u64) -> Time {
        Time(self.0.saturating_add(us))
    }

    /// Microseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn micros_since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for Time {
    type Output = Time;
    fn add(self, us: u64) -> Time {
        self.plus_micros(us)
    }
}

impl Sub<Time> for Time {
    type Output = u64;
    fn sub(self, rhs: Time) -> u64 {
        self.micros_since(rhs)
    }
}

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
