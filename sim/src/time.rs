//! Virtual time.
//!
//! Time in a simulation is an integer count of microseconds since the run began. It is never a
//! float and never read from a wall clock, so the same seed gives the same times everywhere.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in virtual time, or a span of it, in whole microseconds.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(u64);

impl Time {
    /// The start of every run.
    pub const ZERO: Time = Time(0);
    /// The largest representable time; used as "never".
    pub const MAX: Time = Time(u64::MAX);
    /// The longest span a setting may name, in milliseconds: 30 days, the longest run simlab
    /// simulates. Every time in a run is at most a few such spans added, far below [`Time::MAX`].
    pub const LONGEST_MS: u64 = 30 * 24 * 3_600 * 1_000;

    /// A time of `us` microseconds.
    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }

    /// A time of `ms` milliseconds (saturating at [`Time::MAX`]).
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms.saturating_mul(1_000))
    }

    /// A time of `ms` milliseconds, or `None` if it is longer than [`Time::LONGEST_MS`]: the
    /// conversion settings go through, so that no later arithmetic on them can overflow.
    pub const fn checked_from_millis(ms: u64) -> Option<Time> {
        if ms > Time::LONGEST_MS {
            None
        } else {
            Some(Time(ms * 1_000))
        }
    }

    /// A time of `s` seconds (saturating at [`Time::MAX`]).
    pub const fn from_secs(s: u64) -> Time {
        Time(s.saturating_mul(1_000_000))
    }

    /// Whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }

    /// `self + other`, saturating at [`Time::MAX`].
    pub const fn saturating_add(self, other: Time) -> Time {
        Time(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating at zero.
    pub const fn saturating_sub(self, other: Time) -> Time {
        Time(self.0.saturating_sub(other.0))
    }
}

impl Add for Time {
    type Output = Time;
    fn add(self, rhs: Time) -> Time {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Time {
    fn add_assign(&mut self, rhs: Time) {
        *self = *self + rhs;
    }
}

impl Sub for Time {
    type Output = Time;
    fn sub(self, rhs: Time) -> Time {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for Time {
    /// Seconds with microsecond precision, e.g. `1.250000s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Time::MAX {
            return f.write_str("never");
        }
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_display() {
        assert_eq!(Time::from_millis(1_250).as_micros(), 1_250_000);
        assert_eq!(Time::from_secs(2).as_millis(), 2_000);
        assert_eq!(Time::from_millis(1_250).to_string(), "1.250000s");
        assert_eq!(Time::from_micros(7).to_string(), "0.000007s");
        assert_eq!(Time::MAX.to_string(), "never");
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Time::MAX + Time::from_micros(1), Time::MAX);
        assert_eq!(Time::from_micros(1) - Time::from_micros(5), Time::ZERO);
        assert_eq!(Time::from_millis(u64::MAX), Time::MAX);
    }

    #[test]
    fn checked_conversion_refuses_spans_longer_than_a_run() {
        assert_eq!(
            Time::checked_from_millis(Time::LONGEST_MS),
            Some(Time::from_secs(30 * 24 * 3_600))
        );
        assert_eq!(Time::checked_from_millis(Time::LONGEST_MS + 1), None);
        assert_eq!(Time::checked_from_millis(18_446_744_073_709_552), None);
    }
}
