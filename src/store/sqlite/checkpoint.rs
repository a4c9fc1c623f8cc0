//! Background WAL checkpoints for file-backed stores.
//!
//! Copying the WAL back into the database file (and syncing it) cost the writer more than its
//! inserts when SQLite did it inside commits, so the writer connection only appends to the
//! WAL and this thread, with its own connection, checkpoints it every [`INTERVAL`] without
//! blocking anyone. A passive checkpoint can never start the WAL over while the writer keeps
//! appending, so should the WAL outgrow [`MAX_WAL_FRAMES`] this thread raises a flag and the
//! writer itself truncates the WAL between two transactions — the one moment it holds no
//! lock (a blocking checkpoint from this thread was seen to lose that race for minutes, the
//! WAL growing to 7 GiB and every read slowing down). Backpressure instead of an unbounded
//! file. Owns nothing but its thread, its connection and the flag.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::StoreError;

const INTERVAL: Duration = Duration::from_millis(100);
/// About 256 MiB of WAL at the default 4 KiB page size, unless the size budget wants less.
const MAX_WAL_FRAMES: i64 = 65_536;
const MIN_WAL_FRAMES: i64 = 256;
/// Share of the size budget SQLite's WAL may take before the writer truncates it.
const WAL_SHARE_OF_BUDGET: u64 = 16;
const PAGE_BYTES: u64 = 4_096;
/// Largest size SQLite's WAL file is cut back to when it starts over.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 16 * 1024 * 1024;

/// Runs checkpoints until dropped; dropping stops and joins the thread.
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    wal_too_large: Arc<AtomicBool>,
    max_wal_frames: Arc<AtomicI64>,
}

impl Checkpointer {
    pub(super) fn start(conn: Connection) -> Result<Self, StoreError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let wal_too_large = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&wal_too_large);
        let max_wal_frames = Arc::new(AtomicI64::new(MAX_WAL_FRAMES));
        let limit = Arc::clone(&max_wal_frames);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(&conn, &thread_stop, &flag, &limit))
            .map_err(|err| StoreError::Open {
                path: "checkpoint thread".to_owned(),
                reason: err.to_string(),
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            wal_too_large,
            max_wal_frames,
        })
    }

    /// Keeps SQLite's WAL a small share of the store's size budget: truncated once it passes
    /// 1/16 of it, and cut back to that size whenever it starts over.
    pub(super) fn fit_budget(
        &self,
        writer: &Connection,
        max_size_bytes: u64,
    ) -> Result<(), StoreError> {
        let max_wal_bytes = max_size_bytes / WAL_SHARE_OF_BUDGET;
        let frames = i64::try_from(max_wal_bytes / PAGE_BYTES)
            .unwrap_or(i64::MAX)
            .clamp(MIN_WAL_FRAMES, MAX_WAL_FRAMES);
        self.max_wal_frames.store(frames, Ordering::Relaxed);
        // Cut back small after each restart: a part's seal writes its whole index at once.
        let limit_bytes = frames
            .saturating_mul(PAGE_BYTES as i64)
            .min(JOURNAL_SIZE_LIMIT_BYTES);
        writer.execute_batch(&format!("PRAGMA journal_size_limit = {limit_bytes};"))?;
        Ok(())
    }

    /// Truncates the WAL on the writer's connection if it grew too large; call between
    /// transactions. A reader still on an old snapshot can make it wait (busy timeout) or
    /// leave the WAL for the next call.
    pub(super) fn truncate_if_needed(&self, writer: &Connection) -> Result<(), StoreError> {
        if !self.wal_too_large.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (is_busy, num_wal_frames): (i64, i64) =
            writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        if is_busy == 0 {
            self.wal_too_large.store(false, Ordering::Relaxed);
            tracing::info!(num_wal_frames, "sqlite wal truncated by the writer");
        }
        Ok(())
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite checkpoint thread panicked");
        }
    }
}

fn run(
    conn: &Connection,
    stop: &(Mutex<bool>, Condvar),
    wal_too_large: &AtomicBool,
    max_wal_frames: &AtomicI64,
) {
    let (stopped, wake) = stop;
    let mut is_stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    while !*is_stopped {
        is_stopped = wake
            .wait_timeout(is_stopped, INTERVAL)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *is_stopped {
            break;
        }
        // Checkpoint without holding the lock, so dropping the writer never waits on I/O twice.
        drop(is_stopped);
        if let Err(err) = checkpoint(conn, wal_too_large, max_wal_frames.load(Ordering::Relaxed)) {
            tracing::warn!(error = %err, "sqlite wal checkpoint failed");
        }
        is_stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

fn checkpoint(
    conn: &Connection,
    wal_too_large: &AtomicBool,
    max_wal_frames: i64,
) -> Result<(), StoreError> {
    let num_wal_frames: i64 =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |row| row.get(1))?;
    if num_wal_frames > max_wal_frames && !wal_too_large.swap(true, Ordering::Relaxed) {
        tracing::info!(
            num_wal_frames,
            "sqlite wal too large, the writer will truncate it"
        );
    }
    Ok(())
}
