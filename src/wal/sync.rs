//! Group commit: waiters register the position they need, and one sync round — one
//! `fdatasync` per segment file written since the last round — settles all of them at once.
//!
//! The round runs on the `wal-sync` thread (and once more at close) and never holds the append
//! lock while syncing, so appends go on meanwhile and the next round covers all of them. A
//! failed round's range is remembered: its frames are never reported durable.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tracing::error;

use super::segment::SegmentHandle;
use super::stats::SyncStats;
use super::{Lsn, WalError};

/// A panic elsewhere must not take the log down with it: the guarded data is kept consistent
/// by every critical section before it can panic.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a sync round must make durable, taken under the append lock.
#[derive(Debug)]
pub(super) struct SyncSnapshot {
    /// End of the last frame written.
    pub end: Lsn,
    /// Frames written since open, for the group size.
    pub num_frames: u64,
    /// Segment files written since the last round, oldest first (usually just the current one).
    pub files: Vec<Arc<SegmentHandle>>,
}

/// Frames whose sync failed: never durable, whatever later rounds do.
#[derive(Debug)]
struct FailedRange {
    after: Lsn,
    through: Lsn,
    path: String,
    kind: io::ErrorKind,
    message: String,
}

impl FailedRange {
    fn covers(&self, lsn: Lsn) -> bool {
        self.after < lsn && lsn <= self.through
    }

    fn to_error(&self) -> WalError {
        WalError::Io {
            path: self.path.clone(),
            source: io::Error::new(self.kind, self.message.clone()),
        }
    }
}

#[derive(Debug)]
struct SyncState {
    /// Every frame up to here went through a sync round (successful unless in `failed`).
    settled: Lsn,
    settled_frames: u64,
    /// The furthest position a waiter needs.
    requested: Lsn,
    /// Failed ranges merged into one: conservative, it may cover frames a later round synced.
    failed: Option<FailedRange>,
    stopping: bool,
    closed: bool,
}

#[derive(Debug)]
pub(super) struct Syncer {
    state: Mutex<SyncState>,
    requested_changed: Condvar,
    settled_changed: Condvar,
    /// Held for a whole round, so rounds never overlap or reorder.
    round: Mutex<()>,
    stats: Mutex<SyncStats>,
    #[cfg(test)]
    pub fail_syncs: std::sync::atomic::AtomicBool,
}

impl Syncer {
    /// A syncer for a log whose frames up to `end` are already on disk.
    pub fn new(end: Lsn) -> Syncer {
        Syncer {
            state: Mutex::new(SyncState {
                settled: end,
                settled_frames: 0,
                requested: end,
                failed: None,
                stopping: false,
                closed: false,
            }),
            requested_changed: Condvar::new(),
            settled_changed: Condvar::new(),
            round: Mutex::new(()),
            stats: Mutex::new(SyncStats::default()),
            #[cfg(test)]
            fail_syncs: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Blocks until a sync round has covered `lsn` (which the caller checked was written).
    pub fn wait(&self, lsn: Lsn) -> Result<(), WalError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(failed) = state.failed.as_ref().filter(|failed| failed.covers(lsn)) {
                return Err(failed.to_error());
            }
            if lsn <= state.settled {
                return Ok(());
            }
            if state.closed {
                return Err(WalError::Closed);
            }
            if state.requested < lsn {
                state.requested = lsn;
                self.requested_changed.notify_one();
            }
            state = self
                .settled_changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The sync thread's body: runs a round whenever a waiter needs one, until [`Syncer::stop`].
    /// Should it panic, waiters get `Closed` rather than hang.
    pub fn run(&self, snapshot: impl Fn() -> SyncSnapshot) {
        let _close_on_panic = CloseOnPanic(self);
        loop {
            {
                let mut state = lock(&self.state);
                while !state.stopping && state.requested <= state.settled {
                    state = self
                        .requested_changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if state.stopping {
                    return;
                }
            }
            // A failure is recorded for the waiters and logged inside. Waiters that arrived
            // during the round left `requested` ahead of it: the loop serves them next.
            let _ = self.sync_round(&snapshot);
        }
    }

    /// Makes [`Syncer::run`] return after its current round.
    pub fn stop(&self) {
        lock(&self.state).stopping = true;
        self.requested_changed.notify_all();
    }

    /// Asks for a round covering `lsn` without waiting for it: a rolled-out segment gets
    /// synced (and its handle released) even if nobody waits for its frames.
    pub fn request(&self, lsn: Lsn) {
        let mut state = lock(&self.state);
        if state.requested < lsn {
            state.requested = lsn;
            self.requested_changed.notify_one();
        }
    }

    /// After the final round: waiters for anything still unsettled get `Closed`.
    pub fn mark_closed(&self) {
        lock(&self.state).closed = true;
        self.settled_changed.notify_all();
    }

    /// Syncs everything written so far and settles the waiters it covers.
    pub fn sync_round(&self, snapshot: impl FnOnce() -> SyncSnapshot) -> Result<(), WalError> {
        let _round = lock(&self.round);
        let snapshot = snapshot();
        let (after, after_frames) = {
            let state = lock(&self.state);
            (state.settled, state.settled_frames)
        };
        if snapshot.end <= after {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.sync_files(&snapshot.files);
        let num_frames = snapshot.num_frames - after_frames;
        lock(&self.stats).record(started.elapsed(), num_frames, result.is_ok());

        let mut state = lock(&self.state);
        if let Err(WalError::Io { path, source }) = &result {
            error!(path = %path, num_frames, error = %source, "write-ahead log sync failed");
            let failed_after = state.failed.as_ref().map_or(after, |failed| failed.after);
            state.failed = Some(FailedRange {
                after: failed_after,
                through: snapshot.end,
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            });
        }
        state.settled = snapshot.end;
        state.settled_frames = snapshot.num_frames;
        drop(state);
        self.settled_changed.notify_all();
        result
    }

    fn sync_files(&self, files: &[Arc<SegmentHandle>]) -> Result<(), WalError> {
        #[cfg(test)]
        if self.fail_syncs.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(WalError::Io {
                path: "injected".to_owned(),
                source: io::Error::other("injected sync failure"),
            });
        }
        files.iter().try_for_each(|handle| handle.sync_data())
    }

    pub fn stats(&self) -> MutexGuard<'_, SyncStats> {
        lock(&self.stats)
    }
}

struct CloseOnPanic<'a>(&'a Syncer);

impl Drop for CloseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            error!("write-ahead log sync thread panicked, failing its waiters");
            self.0.mark_closed();
        }
    }
}
