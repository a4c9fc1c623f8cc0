//! Counters and histograms of appends and syncs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the sync duration buckets, in seconds (+Inf is added).
const SYNC_SECONDS_BOUNDS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Upper bounds of the frames-per-sync buckets (+Inf is added).
const GROUP_SIZE_BOUNDS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone, Default)]
pub struct WalStats {
    pub num_frames_appended: u64,
    pub num_bytes_appended: u64,
    /// Sync rounds (each syncs one or two segment files), failed ones included.
    pub num_syncs: u64,
    pub num_sync_errors: u64,
    /// Cumulative Prometheus-style buckets `(le, count)` of sync durations: le 0.0005, 0.001,
    /// 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, +Inf (`f64::INFINITY`).
    pub sync_seconds_buckets: Vec<(f64, u64)>,
    pub sync_seconds_sum: f64,
    /// Cumulative buckets of frames covered per sync (the group size): le 1, 2, 4, 8, 16, 32,
    /// 64, 128, +Inf.
    pub group_size_buckets: Vec<(f64, u64)>,
    /// Sum of frames covered by each sync.
    pub group_size_sum: u64,
    pub num_frames_refused_full: u64,
}

/// Counters the appenders bump.
#[derive(Debug, Default)]
pub(super) struct AppendCounters {
    pub num_frames_appended: AtomicU64,
    pub num_bytes_appended: AtomicU64,
    pub num_frames_refused_full: AtomicU64,
}

impl AppendCounters {
    pub fn record_append(&self, frame_bytes: u64) {
        self.num_frames_appended.fetch_add(1, Ordering::Relaxed);
        self.num_bytes_appended
            .fetch_add(frame_bytes, Ordering::Relaxed);
    }

    pub fn record_refused_full(&self) {
        self.num_frames_refused_full.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the syncer records; guarded by its lock (one sync runs at a time).
#[derive(Debug)]
pub(super) struct SyncStats {
    num_syncs: u64,
    num_sync_errors: u64,
    sync_seconds: Histogram,
    sync_seconds_sum: f64,
    group_size: Histogram,
    group_size_sum: u64,
}

impl Default for SyncStats {
    fn default() -> SyncStats {
        SyncStats {
            num_syncs: 0,
            num_sync_errors: 0,
            sync_seconds: Histogram::new(&SYNC_SECONDS_BOUNDS),
            sync_seconds_sum: 0.0,
            group_size: Histogram::new(&GROUP_SIZE_BOUNDS),
            group_size_sum: 0,
        }
    }
}

impl SyncStats {
    pub fn record(&mut self, elapsed: Duration, num_frames: u64, succeeded: bool) {
        self.num_syncs += 1;
        if !succeeded {
            self.num_sync_errors += 1;
        }
        let seconds = elapsed.as_secs_f64();
        self.sync_seconds.observe(seconds);
        self.sync_seconds_sum += seconds;
        self.group_size.observe(num_frames as f64);
        self.group_size_sum += num_frames;
    }
}

/// Both halves together.
pub(super) fn snapshot(appends: &AppendCounters, syncs: &SyncStats) -> WalStats {
    WalStats {
        num_frames_appended: appends.num_frames_appended.load(Ordering::Relaxed),
        num_bytes_appended: appends.num_bytes_appended.load(Ordering::Relaxed),
        num_syncs: syncs.num_syncs,
        num_sync_errors: syncs.num_sync_errors,
        sync_seconds_buckets: syncs.sync_seconds.cumulative(),
        sync_seconds_sum: syncs.sync_seconds_sum,
        group_size_buckets: syncs.group_size.cumulative(),
        group_size_sum: syncs.group_size_sum,
        num_frames_refused_full: appends.num_frames_refused_full.load(Ordering::Relaxed),
    }
}

/// Counts per bucket (not cumulative); the last bucket is +Inf.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
        }
    }

    fn observe(&mut self, value: f64) {
        let index = self.bounds.partition_point(|&bound| bound < value);
        self.counts[index] += 1;
    }

    fn cumulative(&self) -> Vec<(f64, u64)> {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        let mut total = 0;
        bounds
            .zip(&self.counts)
            .map(|(bound, count)| {
                total += count;
                (bound, total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let mut stats = SyncStats::default();
        stats.record(Duration::from_micros(500), 1, true);
        stats.record(Duration::from_millis(3), 3, true);
        stats.record(Duration::from_secs(2), 200, false);
        let snapshot = snapshot(&AppendCounters::default(), &stats);
        assert_eq!(snapshot.num_syncs, 3);
        assert_eq!(snapshot.num_sync_errors, 1);
        assert_eq!(snapshot.sync_seconds_buckets.len(), 11);
        assert_eq!(snapshot.sync_seconds_buckets[0], (0.0005, 1));
        assert_eq!(snapshot.sync_seconds_buckets[3], (0.005, 2));
        assert_eq!(snapshot.sync_seconds_buckets[10], (f64::INFINITY, 3));
        assert_eq!(snapshot.group_size_buckets.len(), 9);
        assert_eq!(snapshot.group_size_buckets[0], (1.0, 1));
        assert_eq!(snapshot.group_size_buckets[2], (4.0, 2));
        assert_eq!(snapshot.group_size_buckets[8], (f64::INFINITY, 3));
        assert_eq!(snapshot.group_size_sum, 204);
    }
}
