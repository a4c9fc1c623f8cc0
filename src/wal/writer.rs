//! The log handle: opening, appending, waiting for durability, checkpointing (with segment
//! deletion), accounting, and closing. Frames, files, recovery and group commit live in
//! their own modules.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use tracing::{error, info, warn};

use super::appender::Appender;
use super::checkpoint::CheckpointFile;
use super::frame::{self, MAX_PAYLOAD_BYTES};
use super::replay::{self, Replay};
use super::segment::{self, SealedSegment};
use super::stats::{self, AppendCounters, WalStats};
use super::sync::{SyncSnapshot, Syncer, lock};
use super::{Lsn, SyncMode, WalError, WalOptions};

/// A durable, group-committed write-ahead log. Cheap to clone (all clones share one log);
/// dropping the last clone closes it.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

/// Owns the sync thread; dropping it closes the log.
struct Inner {
    core: Arc<Core>,
    /// Also serializes `close`.
    sync_thread: Mutex<Option<JoinHandle<()>>>,
}

/// The state shared with the sync thread.
pub(super) struct Core {
    options: WalOptions,
    appender: Mutex<Appender>,
    /// Mirrors the appender's end, for readers that must not take the append lock.
    written_end: AtomicU64,
    /// Exact in memory; the file lags behind (see `CheckpointFile`).
    checkpointed: AtomicU64,
    disk_bytes: AtomicU64,
    /// Segments before the current one, oldest first. Lock order: appender, then sealed.
    sealed: Mutex<VecDeque<SealedSegment>>,
    checkpoint_file: Mutex<CheckpointFile>,
    pub(super) syncer: Syncer,
    counters: AppendCounters,
}

impl Wal {
    /// Opens (creating) the log in `options.dir`: reads the checkpoint, cuts a torn tail off
    /// the last segment, deletes segments the checkpoint has passed, and returns the frames
    /// after the checkpoint. Appends continue at [`Replay::end`].
    pub fn open(options: WalOptions) -> Result<(Wal, Replay), WalError> {
        let recovered = replay::recover(&options.dir, options.sync)?;
        let (current, segment_start, segment_len_bytes) = match &recovered.active {
            Some(active) => (
                segment::open_for_append(&active.path)?,
                active.start,
                active.len_bytes,
            ),
            None => (
                segment::create_segment(&options.dir, recovered.end, options.sync)?,
                recovered.end,
                0,
            ),
        };
        let appender = Appender::new(current, segment_start, segment_len_bytes);
        debug_assert_eq!(appender.end(), recovered.end);
        let sealed_bytes: u64 = recovered.sealed.iter().map(|s| s.len_bytes).sum();
        let core = Arc::new(Core {
            checkpoint_file: Mutex::new(CheckpointFile::new(&options.dir, recovered.checkpoint)),
            appender: Mutex::new(appender),
            written_end: AtomicU64::new(recovered.end.0),
            checkpointed: AtomicU64::new(recovered.checkpoint.0),
            disk_bytes: AtomicU64::new(sealed_bytes + segment_len_bytes),
            sealed: Mutex::new(recovered.sealed.into()),
            syncer: Syncer::new(recovered.end),
            counters: AppendCounters::default(),
            options,
        });
        let sync_thread = match core.options.sync {
            SyncMode::Sync => Some(spawn_sync_thread(&core)?),
            SyncMode::Os => None,
        };
        let wal = Wal {
            inner: Arc::new(Inner {
                core,
                sync_thread: Mutex::new(sync_thread),
            }),
        };
        info!(
            dir = %wal.inner.core.options.dir.display(),
            checkpoint = %recovered.checkpoint,
            end = %recovered.end,
            num_segments = wal.num_segments(),
            used_bytes = wal.used_bytes(),
            num_torn_bytes = recovered.replay.num_torn_bytes(),
            "opened write-ahead log"
        );
        Ok((wal, recovered.replay))
    }

    /// Appends one frame holding `payload` and, still holding the append lock, calls
    /// `on_written` with its Lsn, so whatever it does happens in log order.
    ///
    /// When this returns the frame is written (it survives the process being killed once the
    /// kernel has it) but not durable: call [`Wal::wait_durable`]. Refuses with `Full` —
    /// writing nothing and not calling `on_written` — when `used_bytes()` plus the frame would
    /// exceed `max_bytes`; with `FrameTooLarge` when the payload exceeds 256 MiB or the frame
    /// alone exceeds `max_bytes`; with `Closed` after [`Wal::close`].
    pub fn append<R>(
        &self,
        payload: &[u8],
        on_written: impl FnOnce(Lsn) -> R,
    ) -> Result<(Lsn, R), WalError> {
        let core = &self.inner.core;
        let max_bytes = core.options.max_bytes;
        let frame_bytes = frame::frame_bytes(payload.len() as u64);
        let limit_bytes = frame::frame_bytes(MAX_PAYLOAD_BYTES).min(max_bytes);
        if frame_bytes > limit_bytes {
            return Err(WalError::FrameTooLarge {
                frame_bytes,
                limit_bytes,
            });
        }
        let frame = frame::encode(payload);

        let mut appender = lock(&core.appender);
        if appender.closed {
            return Err(WalError::Closed);
        }
        let used_bytes = appender.end().bytes_since(core.checkpointed());
        if used_bytes + frame_bytes > max_bytes {
            core.counters.record_refused_full();
            return Err(WalError::Full {
                used_bytes,
                max_bytes,
            });
        }
        if appender.needs_roll(frame_bytes, core.options.segment_bytes) {
            let sealed = appender.roll(&core.options.dir, core.options.sync)?;
            if core.options.sync == SyncMode::Sync {
                core.syncer.request(sealed.end);
            }
            lock(&core.sealed).push_back(sealed);
        }
        let lsn = appender.write_frame(&frame)?;
        core.written_end.store(lsn.0, Ordering::Release);
        core.disk_bytes.fetch_add(frame_bytes, Ordering::Relaxed);
        core.counters.record_append(frame_bytes);
        let output = on_written(lsn);
        Ok((lsn, output))
    }

    /// Blocks until every frame up to `lsn` is durable per the sync mode: in Sync mode, until
    /// an `fdatasync` covering it has succeeded (concurrent waiters share one); in Os mode it
    /// returns at once.
    ///
    /// Fails with `Io` when the sync covering `lsn` failed — for good: those frames are never
    /// reported durable — and with `Closed` when the log closed before covering it.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), WalError> {
        let core = &self.inner.core;
        if core.options.sync == SyncMode::Os {
            return Ok(());
        }
        core.check_written(lsn)?;
        core.syncer.wait(lsn)
    }

    /// Records that every frame up to and including `lsn` is stored elsewhere: it stops
    /// counting against `max_bytes` at once, and segments lying entirely at or below it are
    /// deleted. The checkpoint file is rewritten (temp file + rename, not synced) when a
    /// segment is deleted and otherwise at most every 100 ms; a checkpoint lost in a crash
    /// only means replaying more. An `lsn` below the current checkpoint is ignored.
    pub fn checkpoint(&self, lsn: Lsn) -> Result<(), WalError> {
        let core = &self.inner.core;
        core.check_written(lsn)?;
        let previous = core.checkpointed.fetch_max(lsn.0, Ordering::AcqRel);
        if lsn.0 <= previous {
            return Ok(());
        }
        core.persist_checkpoint(false)
    }

    /// Bytes written but not checkpointed (what counts against `max_bytes`), including frames
    /// replayed at open until they are checkpointed.
    pub fn used_bytes(&self) -> u64 {
        self.inner.core.used_bytes()
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.core.options.max_bytes
    }

    /// Whether `used_bytes() >= max_bytes()`: ingest asks before decoding a request, to refuse
    /// it cheaply.
    pub fn is_full(&self) -> bool {
        self.used_bytes() >= self.max_bytes()
    }

    /// Total bytes of segment files on disk: `used_bytes()` plus checkpointed frames in
    /// segments not yet deleted (at most about one segment more).
    pub fn disk_bytes(&self) -> u64 {
        self.inner.core.disk_bytes.load(Ordering::Relaxed)
    }

    /// Segment files on disk, the one being written included.
    pub fn num_segments(&self) -> u64 {
        lock(&self.inner.core.sealed).len() as u64 + 1
    }

    pub fn stats(&self) -> WalStats {
        let core = &self.inner.core;
        stats::snapshot(&core.counters, &core.syncer.stats())
    }

    /// Syncs everything written (whatever the sync mode), persists the checkpoint, and stops
    /// the sync thread; later appends fail with `Closed`. Idempotent.
    pub fn close(&self) -> Result<(), WalError> {
        self.inner.close()
    }

    #[cfg(test)]
    pub(super) fn core(&self) -> &Core {
        &self.inner.core
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &self.inner.core;
        f.debug_struct("Wal")
            .field("dir", &core.options.dir)
            .field("sync", &core.options.sync)
            .field("end", &core.written_end.load(Ordering::Relaxed))
            .field("checkpoint", &core.checkpointed())
            .field("max_bytes", &core.options.max_bytes)
            .finish_non_exhaustive()
    }
}

fn spawn_sync_thread(core: &Arc<Core>) -> Result<JoinHandle<()>, WalError> {
    let thread_core = Arc::clone(core);
    thread::Builder::new()
        .name("wal-sync".to_owned())
        .spawn(move || {
            thread_core
                .syncer
                .run(|| lock(&thread_core.appender).take_sync_snapshot());
        })
        .map_err(|err| WalError::io(&core.options.dir, err))
}

impl Inner {
    fn close(&self) -> Result<(), WalError> {
        let core = &self.core;
        let mut sync_thread = lock(&self.sync_thread);
        {
            let mut appender = lock(&core.appender);
            if appender.closed {
                return Ok(());
            }
            appender.closed = true;
        }
        core.syncer.stop();
        if let Some(handle) = sync_thread.take()
            && handle.join().is_err()
        {
            error!("write-ahead log sync thread panicked");
        }
        let synced = core.syncer.sync_round(|| core.final_sync_snapshot());
        let persisted = core.persist_checkpoint(true);
        core.syncer.mark_closed();
        info!(
            end = core.written_end.load(Ordering::Acquire),
            checkpoint = %core.checkpointed(),
            "closed write-ahead log"
        );
        synced.and(persisted)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            warn!(error = %err, "failed to close the write-ahead log");
        }
    }
}

impl Core {
    fn checkpointed(&self) -> Lsn {
        Lsn(self.checkpointed.load(Ordering::Acquire))
    }

    fn used_bytes(&self) -> u64 {
        // Checkpoint first: it never passes the end, so the difference is never negative.
        let checkpointed = self.checkpointed();
        Lsn(self.written_end.load(Ordering::Acquire)).bytes_since(checkpointed)
    }

    fn check_written(&self, lsn: Lsn) -> Result<(), WalError> {
        let end_lsn = self.written_end.load(Ordering::Acquire);
        if lsn.0 > end_lsn {
            return Err(WalError::LsnBeyondEnd {
                lsn: lsn.0,
                end_lsn,
            });
        }
        Ok(())
    }

    /// Rewrites the checkpoint file when due (always when `urgent` or segments can go), then
    /// deletes the segments lying entirely at or below the checkpoint.
    fn persist_checkpoint(&self, urgent: bool) -> Result<(), WalError> {
        let mut file = lock(&self.checkpoint_file);
        let checkpoint = self.checkpointed();
        let num_obsolete = lock(&self.sealed)
            .iter()
            .take_while(|sealed| sealed.end <= checkpoint)
            .count();
        if !file.is_due(checkpoint, urgent || num_obsolete > 0) {
            return Ok(());
        }
        // The file before the deletion: after a crash in between, an old checkpoint with its
        // segments gone would replay the oldest survivor's stored frames again.
        file.write(checkpoint)?;
        if num_obsolete == 0 {
            return Ok(());
        }
        let obsolete: Vec<SealedSegment> = lock(&self.sealed).drain(..num_obsolete).collect();
        let obsolete_bytes: u64 = obsolete.iter().map(|sealed| sealed.len_bytes).sum();
        self.disk_bytes.fetch_sub(obsolete_bytes, Ordering::Relaxed);
        segment::delete_segments(&self.options.dir, &obsolete, self.options.sync)
    }

    /// The last round covers everything written. In Os mode no round ever ran, so every
    /// sealed segment may hold unsynced frames too.
    fn final_sync_snapshot(&self) -> SyncSnapshot {
        let mut snapshot = lock(&self.appender).take_sync_snapshot();
        if self.options.sync == SyncMode::Os {
            let sealed_paths: Vec<_> = lock(&self.sealed).iter().map(|s| s.path.clone()).collect();
            let mut files = Vec::with_capacity(sealed_paths.len() + snapshot.files.len());
            for path in sealed_paths {
                match segment::open_for_append(&path) {
                    Ok(handle) => files.push(Arc::new(handle)),
                    Err(err) => warn!(error = %err, "failed to open a segment to sync at close"),
                }
            }
            files.append(&mut snapshot.files);
            snapshot.files = files;
        }
        snapshot
    }
}
