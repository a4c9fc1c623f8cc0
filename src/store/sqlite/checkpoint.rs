//! Background WAL checkpoints for file-backed stores.
//!
//! Copying the WAL back into the database file (and syncing it) cost the writer more than its
//! inserts when SQLite did it inside commits, so the writer connection only appends to the
//! WAL and this thread, with its own connection, checkpoints it every [`INTERVAL`] without
//! blocking anyone. Should the WAL still outgrow [`MAX_WAL_FRAMES`] (the writer outpacing the
//! disk), a blocking checkpoint makes the writer wait until the WAL starts over: backpressure
//! instead of an unbounded file. Owns nothing but its thread and connection.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::StoreError;

const INTERVAL: Duration = Duration::from_millis(100);
/// About 256 MiB of WAL at the default 4 KiB page size.
const MAX_WAL_FRAMES: i64 = 65_536;

/// Runs checkpoints until dropped; dropping stops and joins the thread.
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(conn: Connection) -> Result<Self, StoreError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(&conn, &thread_stop))
            .map_err(|err| StoreError::Open {
                path: "checkpoint thread".to_owned(),
                reason: err.to_string(),
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
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

fn run(conn: &Connection, stop: &(Mutex<bool>, Condvar)) {
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
        if let Err(err) = checkpoint(conn) {
            tracing::warn!(error = %err, "sqlite wal checkpoint failed");
        }
        is_stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    let num_wal_frames: i64 =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |row| row.get(1))?;
    if num_wal_frames > MAX_WAL_FRAMES {
        tracing::info!(
            num_wal_frames,
            "sqlite wal too large, checkpointing with writers paused"
        );
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |_| Ok(()))?;
    }
    Ok(())
}
