//! The store writer thread: first replays what the write-ahead log holds past its checkpoint,
//! then takes accepted batches off the queue, merges them into transactions of bounded size,
//! commits them, checkpoints the log, and only then releases their queue capacity. It also
//! runs retention, since it owns the only write connection.
//!
//! At shutdown with a log, the writer stops after the transaction in hand: batches still
//! queued are durable in the log and are stored by the replay of the next start, so exit does
//! not wait for the store to catch up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use tracing::{error, info, warn};

use super::{Accepted, WriterMessage};
use crate::graph::ClosedMinutes;
use crate::model::{Batch, now_unix_nano};
use crate::store::batch_codec::{self, EncodedFrame};
use crate::store::{RetentionPolicy, RollupWriter, StoreError, StoreWriter, merged_with_stored};
use crate::telemetry::Telemetry;
use crate::wal::{Lsn, Replay, Wal};

/// Most time to wait between failed attempts to commit the same transaction.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);
/// How long shutdown waits for the last closed minutes once the queue is closed.
const SHUTDOWN_ROLLUP_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub max_batch_items: usize,
    /// This process's id in the rollups it writes (see [`crate::store::RollupWriter`]).
    pub instance: u32,
    pub retention: RetentionPolicy,
    pub retention_interval: Duration,
}

/// Holds the writer back while closed: used by tests and maintenance to simulate a slow store.
#[derive(Debug, Default)]
pub struct WriterGate {
    paused: Mutex<bool>,
    changed: Condvar,
}

impl WriterGate {
    pub fn pause(&self) {
        *self.paused.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    pub fn resume(&self) {
        *self.paused.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.changed.notify_all();
    }

    fn wait_while_paused(&self) {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        while *paused {
            paused = self
                .changed
                .wait(paused)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Everything the writer thread writes: telemetry batches and graph rollups.
pub trait WriteStore: StoreWriter + RollupWriter {}

impl<T: StoreWriter + RollupWriter> WriteStore for T {}

/// The running writer thread; join it after closing the pipeline to flush everything.
pub struct StoreWriterHandle {
    thread: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

/// The write-ahead log in front of the store: appended to by ingest, replayed and
/// checkpointed by the writer.
pub struct WriterLog {
    pub wal: Wal,
    pub replay: Replay,
}

impl StoreWriterHandle {
    /// Waits until every accepted batch is committed — or, with a log, until the transaction
    /// in hand is (the rest is durable in the log) — and the thread has stopped.
    pub fn join(self) {
        self.stopping.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            error!("store writer thread panicked");
        }
    }
}

pub fn spawn_store_writer(
    mut store: Box<dyn WriteStore>,
    receiver: Receiver<WriterMessage>,
    settings: WriterSettings,
    log_opt: Option<WriterLog>,
    gate: Arc<WriterGate>,
    telemetry: Arc<Telemetry>,
    on_commit: impl Fn() + Send + 'static,
) -> std::io::Result<StoreWriterHandle> {
    let stopping = Arc::new(AtomicBool::new(false));
    let thread_stopping = Arc::clone(&stopping);
    if log_opt.is_some() {
        telemetry.set_replaying(true);
    }
    let thread = std::thread::Builder::new()
        .name("store-writer".to_owned())
        .spawn(move || {
            let wal_opt = match log_opt {
                Some(WriterLog { wal, replay }) => {
                    let max_batch_items = settings.max_batch_items;
                    replay_log(store.as_mut(), &wal, replay, max_batch_items, &telemetry);
                    Some(wal)
                }
                None => None,
            };
            let mut next_retention = Instant::now();
            loop {
                if wal_opt.is_some() && thread_stopping.load(Ordering::Relaxed) {
                    write_rollups_only(store.as_mut(), &receiver, &settings, &telemetry);
                    break;
                }
                if Instant::now() >= next_retention {
                    run_retention(store.as_mut(), &settings.retention, &telemetry);
                    next_retention = Instant::now() + settings.retention_interval;
                }
                let wait = next_retention.saturating_duration_since(Instant::now());
                let first = match receiver.recv_timeout(wait) {
                    Ok(WriterMessage::Batch(accepted)) => accepted,
                    Ok(WriterMessage::Rollups(closed)) => {
                        write_rollups(store.as_mut(), settings.instance, &closed, &telemetry);
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let (accepted, rollups_opt) =
                    collect_more(first, &receiver, settings.max_batch_items);
                gate.wait_while_paused();
                let lsn_opt = accepted.iter().filter_map(|item| item.lsn_opt).max();
                commit(store.as_mut(), accepted, &telemetry);
                if let (Some(wal), Some(lsn)) = (&wal_opt, lsn_opt) {
                    checkpoint(wal, lsn);
                }
                on_commit();
                if let Some(closed) = rollups_opt {
                    write_rollups(store.as_mut(), settings.instance, &closed, &telemetry);
                }
            }
            if let Some(wal) = &wal_opt
                && let Err(err) = wal.close()
            {
                error!(error = %err, "cannot sync the write-ahead log at shutdown");
            }
            info!("store writer stopped");
        })?;
    Ok(StoreWriterHandle { thread, stopping })
}

/// Stores every frame the log holds past its checkpoint, in log order, in transactions of at
/// most `max_batch_items`, checkpointing after each. Frames that do not decode are skipped
/// (and logged); a store write that fails is retried until it succeeds.
pub fn replay_log(
    store: &mut dyn WriteStore,
    wal: &Wal,
    mut replay: Replay,
    max_batch_items: usize,
    telemetry: &Telemetry,
) {
    let started = Instant::now();
    let mut pending = Batch::default();
    let mut pending_lsn = Lsn::default();
    let mut num_frames = 0_u64;
    let mut num_items = 0_u64;
    loop {
        let frame = match replay.next_frame() {
            Ok(frame) => frame,
            Err(err) => {
                error!(error = %err, "cannot read the write-ahead log; the rest is not replayed");
                None
            }
        };
        let done = frame.is_none();
        if let Some((lsn, payload)) = frame {
            match batch_codec::decode_batch(&payload) {
                Ok(batch) => {
                    num_frames += 1;
                    num_items += batch.num_items() as u64;
                    pending.spans.extend(batch.spans);
                    pending.metric_points.extend(batch.metric_points);
                }
                Err(err) => warn!(lsn = lsn.0, error = %err, "skipping an undecodable log frame"),
            }
            pending_lsn = lsn;
        }
        if pending_lsn > Lsn::default() && (done || pending.num_items() >= max_batch_items) {
            let batch = std::mem::take(&mut pending);
            retry_until_stored(telemetry, "replayed batch", batch.num_items(), || {
                store.write_batch(&batch)
            });
            checkpoint(wal, pending_lsn);
            pending_lsn = Lsn::default();
        }
        if done {
            break;
        }
    }
    telemetry.record_replay(num_frames, num_items, started.elapsed());
    if num_frames > 0 {
        info!(
            num_frames,
            num_items,
            num_torn_bytes = replay.num_torn_bytes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "replayed the write-ahead log"
        );
    }
}

fn checkpoint(wal: &Wal, lsn: Lsn) {
    if let Err(err) = wal.checkpoint(lsn) {
        // The data is stored; a stale checkpoint only means replaying more at the next start.
        warn!(error = %err, "cannot checkpoint the write-ahead log");
    }
}

/// At shutdown with a log: queued batches are durable there and left for the next start's
/// replay; closed minutes are written, since nothing else holds them.
fn write_rollups_only(
    store: &mut dyn WriteStore,
    receiver: &Receiver<WriterMessage>,
    settings: &WriterSettings,
    telemetry: &Telemetry,
) {
    let mut num_left = 0_usize;
    let deadline = Instant::now() + SHUTDOWN_ROLLUP_WAIT;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(WriterMessage::Batch(accepted)) => num_left += accepted.num_items(),
            Ok(WriterMessage::Rollups(closed)) => {
                write_rollups(store, settings.instance, &closed, telemetry);
            }
            Err(_) => break,
        }
    }
    if num_left > 0 {
        info!(
            num_items = num_left,
            "queued items left in the write-ahead log for the next start"
        );
    }
}

/// Takes whatever else is already queued, up to `max_items` in all, stopping at rollups
/// (returned to be written after the batches that came before them).
fn collect_more(
    first: Accepted,
    receiver: &Receiver<WriterMessage>,
    max_items: usize,
) -> (Vec<Accepted>, Option<ClosedMinutes>) {
    let mut num_items = first.num_items();
    let mut accepted = vec![first];
    while num_items < max_items {
        match receiver.try_recv() {
            Ok(WriterMessage::Batch(next)) => {
                num_items += next.num_items();
                accepted.push(next);
            }
            Ok(WriterMessage::Rollups(closed)) => return (accepted, Some(closed)),
            Err(_) => break,
        }
    }
    (accepted, None)
}

/// Commits the batches as one transaction, retrying until it succeeds: accepted data is never
/// dropped. The queue capacity the batches hold is released when `accepted` is dropped.
fn commit(store: &mut dyn WriteStore, accepted: Vec<Accepted>, telemetry: &Telemetry) {
    let (merged, frames, _permits) = merge(accepted);
    let frames: Vec<&EncodedFrame> = frames.iter().map(AsRef::as_ref).collect();
    let num_spans = merged.spans.len() + frames.iter().map(|f| f.meta.num_spans).sum::<usize>();
    let num_items = num_spans + merged.metric_points.len();
    retry_until_stored(telemetry, "batch", num_items, || {
        let started = Instant::now();
        store.write_with_frames(&merged, &frames)?;
        telemetry.record_stored(
            num_spans as u64,
            merged.metric_points.len() as u64,
            started.elapsed(),
        );
        Ok(())
    });
}

fn write_rollups(
    store: &mut dyn WriteStore,
    instance: u32,
    closed: &ClosedMinutes,
    telemetry: &Telemetry,
) {
    let num_items = closed.edges.len() + closed.operations.len();
    retry_until_stored(telemetry, "rollups", num_items, || {
        store.write_rollups(instance, &closed.edges, &closed.operations)
    });
    if closed.late_edges.is_empty() && closed.late_operations.is_empty() {
        return;
    }
    let num_late = closed.late_edges.len() + closed.late_operations.len();
    let mut merged = (Vec::new(), Vec::new());
    retry_until_stored(telemetry, "late rollups (read)", num_late, || {
        merged = merged_with_stored(store, instance, &closed.late_edges, &closed.late_operations)?;
        Ok(())
    });
    retry_until_stored(telemetry, "late rollups", num_late, || {
        store.write_rollups(instance, &merged.0, &merged.1)
    });
}

/// Retries `write` with backoff until it succeeds: what was acknowledged is never dropped.
fn retry_until_stored(
    telemetry: &Telemetry,
    what: &'static str,
    num_items: usize,
    mut write: impl FnMut() -> Result<(), StoreError>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match write() {
            Ok(()) => return,
            Err(err) => {
                telemetry.record_store_error();
                warn!(what, num_items, error = %err, "failed to store, retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
            }
        }
    }
}

/// Moves the batches into one, keeping their queue permits alive until the caller drops them.
/// The batches' model items merged into one, their encoded frames, and their queue permits
/// (kept alive until the caller drops them).
fn merge(accepted: Vec<Accepted>) -> (Batch, Vec<Arc<EncodedFrame>>, Vec<OwnedSemaphorePermit>) {
    let mut merged = Batch::default();
    let mut frames = Vec::new();
    let mut permits = Vec::with_capacity(accepted.len());
    for item in accepted {
        merged.spans.extend(item.batch.spans);
        merged.metric_points.extend(item.batch.metric_points);
        frames.extend(item.frame_opt);
        permits.push(item.permit);
    }
    (merged, frames, permits)
}

fn run_retention(store: &mut dyn WriteStore, policy: &RetentionPolicy, telemetry: &Telemetry) {
    let now_unix_nano = now_unix_nano();
    match store.apply_retention(policy, now_unix_nano) {
        Ok(report) => {
            telemetry.record_spans_kept(report.num_spans_kept);
            telemetry.record_retention(
                report.num_spans_deleted,
                report.num_metric_points_deleted,
                report.size_bytes,
            );
            if report.num_spans_deleted + report.num_metric_points_deleted > 0 {
                info!(
                    num_spans_deleted = report.num_spans_deleted,
                    num_metric_points_deleted = report.num_metric_points_deleted,
                    size_bytes = report.size_bytes,
                    "retention deleted old data"
                );
            }
        }
        Err(err) => warn!(error = %err, "retention failed"),
    }
}
