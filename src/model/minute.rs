//! The one notion of a minute: [`UnixMinute`] (a whole minute since the Unix epoch) and
//! [`MinuteRange`] (half-open: `from` counted, `to` not). The engine, the query service, the
//! stores, the alert rules and the pages all speak these, so "the last minute" covers one
//! minute everywhere.

use std::fmt;

/// Nanoseconds in a minute; declared here only.
pub const NANOS_PER_MINUTE: u64 = 60_000_000_000;

/// A whole minute since the Unix epoch (minute 0 starts at 1970-01-01T00:00:00Z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMinute(pub i64);

impl UnixMinute {
    /// The minute a wall-clock time falls into.
    pub fn of_unix_nano(unix_nano: u64) -> Self {
        Self((unix_nano / NANOS_PER_MINUTE) as i64)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The first nanosecond of the minute (0 before the epoch, `u64::MAX` past what fits).
    pub fn start_unix_nano(self) -> u64 {
        u64::try_from(self.0.max(0))
            .unwrap_or(0)
            .saturating_mul(NANOS_PER_MINUTE)
    }

    /// The minute `minutes` later (earlier when negative), saturating.
    pub fn plus(self, minutes: i64) -> Self {
        Self(self.0.saturating_add(minutes))
    }

    pub fn next(self) -> Self {
        self.plus(1)
    }
}

impl fmt::Display for UnixMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The minutes `[from, to)`: `from` included, `to` excluded. Never inverted (an inverted pair
/// makes an empty range at `from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MinuteRange {
    from: UnixMinute,
    to: UnixMinute,
}

impl MinuteRange {
    pub fn new(from: UnixMinute, to: UnixMinute) -> Self {
        Self {
            from,
            to: to.max(from),
        }
    }

    /// One minute.
    pub fn single(minute: UnixMinute) -> Self {
        Self::new(minute, minute.next())
    }

    /// The `minutes` minutes ending with (and including) `last`.
    pub fn ending_with(last: UnixMinute, minutes: i64) -> Self {
        Self::new(last.plus(1 - minutes.max(0)), last.next())
    }

    /// The whole minutes touched by the nanosecond range `[from, to)`: a partial minute at
    /// either end counts as a whole one.
    pub fn covering_unix_nano(from_unix_nano: u64, to_unix_nano: u64) -> Self {
        let to = to_unix_nano.div_ceil(NANOS_PER_MINUTE) as i64;
        Self::new(UnixMinute::of_unix_nano(from_unix_nano), UnixMinute(to))
    }

    pub fn from(self) -> UnixMinute {
        self.from
    }

    /// The first minute after the range.
    pub fn to(self) -> UnixMinute {
        self.to
    }

    pub fn num_minutes(self) -> i64 {
        self.to.0 - self.from.0
    }

    pub fn is_empty(self) -> bool {
        self.from >= self.to
    }

    pub fn contains(self, minute: UnixMinute) -> bool {
        self.from <= minute && minute < self.to
    }

    /// The minutes of both ranges (empty when they do not meet).
    pub fn intersect(self, other: MinuteRange) -> Self {
        Self::new(self.from.max(other.from), self.to.min(other.to))
    }

    /// The part from `minute` on.
    pub fn starting_at_or_after(self, minute: UnixMinute) -> Self {
        Self::new(self.from.max(minute), self.to)
    }

    /// The part before `minute`.
    pub fn ending_before(self, minute: UnixMinute) -> Self {
        Self::new(self.from, self.to.min(minute))
    }

    /// The same number of minutes just before this range.
    pub fn before(self) -> Self {
        Self::new(self.from.plus(-self.num_minutes()), self.from)
    }

    /// Consecutive ranges of `step` minutes from `from` on, the last one cut at `to`.
    pub fn chunks(self, step: i64) -> impl Iterator<Item = MinuteRange> {
        let step = step.max(1);
        (self.from.0..self.to.0)
            .step_by(usize::try_from(step).unwrap_or(1))
            .map(move |start| {
                MinuteRange::new(UnixMinute(start), UnixMinute(start + step).min(self.to))
            })
    }

    /// Nanoseconds `[from, to)` the range stands for.
    pub fn unix_nano_bounds(self) -> (u64, u64) {
        (self.from.start_unix_nano(), self.to.start_unix_nano())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_is_half_open_at_its_end() {
        let minute = UnixMinute::of_unix_nano(5 * NANOS_PER_MINUTE);
        assert_eq!(minute, UnixMinute(5));
        assert_eq!(
            UnixMinute::of_unix_nano(6 * NANOS_PER_MINUTE - 1),
            UnixMinute(5)
        );
        let range = MinuteRange::single(minute);
        assert!(range.contains(UnixMinute(5)));
        assert!(!range.contains(UnixMinute(6)));
        assert_eq!(range.num_minutes(), 1);
    }

    #[test]
    fn ranges_never_invert_and_split_cleanly() {
        let range = MinuteRange::new(UnixMinute(10), UnixMinute(3));
        assert!(range.is_empty());
        assert_eq!(range.from(), UnixMinute(10));
        let range = MinuteRange::new(UnixMinute(10), UnixMinute(17));
        let chunks: Vec<_> = range.chunks(3).collect();
        assert_eq!(
            chunks,
            vec![
                MinuteRange::new(UnixMinute(10), UnixMinute(13)),
                MinuteRange::new(UnixMinute(13), UnixMinute(16)),
                MinuteRange::new(UnixMinute(16), UnixMinute(17)),
            ]
        );
        assert_eq!(
            range.before(),
            MinuteRange::new(UnixMinute(3), UnixMinute(10))
        );
        assert_eq!(
            range.starting_at_or_after(UnixMinute(12)),
            MinuteRange::new(UnixMinute(12), UnixMinute(17))
        );
        assert!(range.ending_before(UnixMinute(2)).is_empty());
    }

    #[test]
    fn covering_rounds_partial_minutes_out() {
        let range =
            MinuteRange::covering_unix_nano(5 * NANOS_PER_MINUTE + 1, 7 * NANOS_PER_MINUTE + 1);
        assert_eq!(range, MinuteRange::new(UnixMinute(5), UnixMinute(8)));
        let exact = MinuteRange::covering_unix_nano(5 * NANOS_PER_MINUTE, 7 * NANOS_PER_MINUTE);
        assert_eq!(exact.num_minutes(), 2);
        assert_eq!(
            MinuteRange::ending_with(UnixMinute(9), 3),
            MinuteRange::new(UnixMinute(7), UnixMinute(10))
        );
    }
}
