//! Positions in the log.

use std::fmt;

/// A position in the log: the byte offset just past a frame, counted from the log's beginning
/// (monotonic across segments, survives restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The position `num_bytes` further on.
    pub(super) fn advance(self, num_bytes: u64) -> Lsn {
        Lsn(self.0 + num_bytes)
    }

    /// Bytes from `earlier` to `self`, zero when `earlier` is not earlier.
    pub(super) fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
