//! Where the database lives and how connections to it are made: the writer's connection and a
//! small pool of read-only connections, each read running in its own snapshot transaction.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::store::StoreError;

use super::schema;

/// File name of the database inside the store directory.
pub(super) const DB_FILE_NAME: &str = "cartograph.sqlite3";
/// Page cache of the writer connection. Not larger: while a database is under 1 GiB, SQLite
/// scans the whole page cache at every commit that followed a B-tree rebalance (its temporary
/// page number for a moved page lies past the end of the file), which measurably cost more
/// than the page reads a larger cache saves.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
const READER_CACHE_KIB: u32 = 16 * 1024;
/// Idle read connections kept open; more are opened on demand and closed after use.
const MAX_IDLE_READERS: usize = 4;

/// A database every connection of this store opens.
#[derive(Debug, Clone)]
pub(super) enum Target {
    File(PathBuf),
    /// A `memdb` VFS database with a process-unique name, shared by this store's connections
    /// and gone when the last one closes.
    Memory(String),
}

impl Target {
    pub(super) fn unique_memory() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Target::Memory(format!(
            "file:/cartograph-{}-{id}?vfs=memdb",
            std::process::id()
        ))
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = match self {
            Target::File(path) => Connection::open_with_flags(path, flags),
            Target::Memory(uri) => Connection::open_with_flags(uri, flags),
        };
        opened.map_err(|err| StoreError::Open {
            path: self.describe(),
            reason: err.to_string(),
        })
    }

    fn describe(&self) -> String {
        match self {
            Target::File(path) => path.display().to_string(),
            Target::Memory(uri) => uri.clone(),
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Target::File(_))
    }

    /// The writer's connection, with the schema created or checked.
    pub(super) fn connect_writer(&self) -> Result<Connection, StoreError> {
        let conn = self.connect()?;
        schema::configure(&conn, self.is_file(), WRITER_CACHE_KIB)?;
        // Each commit synced: the ingest log is checkpointed after a commit, so a commit must
        // survive power loss too. Commits are few (thousands of spans each), so this is cheap.
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        conn.set_prepared_statement_cache_capacity(256);
        schema::migrate(&conn)?;
        Ok(conn)
    }

    /// The checkpoint thread's connection, for file-backed stores only (memory has no WAL).
    pub(super) fn connect_checkpointer(&self) -> Result<Option<Connection>, StoreError> {
        if !self.is_file() {
            return Ok(None);
        }
        let conn = self.connect()?;
        schema::configure(&conn, false, READER_CACHE_KIB)?;
        Ok(Some(conn))
    }

    fn connect_reader(&self) -> Result<Connection, StoreError> {
        let conn = self.connect()?;
        // WAL is a property of the database file, already set by the writer.
        schema::configure(&conn, false, READER_CACHE_KIB)?;
        conn.execute_batch("PRAGMA query_only = ON")?;
        // A trace lookup prepares one statement per partition: a week of hours must fit.
        conn.set_prepared_statement_cache_capacity(512);
        Ok(conn)
    }
}

/// Read connections shared by every clone of a reader.
#[derive(Debug)]
pub(super) struct ReadPool {
    target: Target,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    /// Opens one connection right away: it proves the database readable and, for a memory
    /// store, keeps the database alive as long as any reader exists.
    pub(super) fn new(target: Target) -> Result<Self, StoreError> {
        let first = target.connect_reader()?;
        Ok(Self {
            target,
            idle: Mutex::new(vec![first]),
        })
    }

    /// Runs `read` in one read transaction, so it sees a single consistent snapshot even while
    /// the writer commits or retention drops partitions.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take()?;
        let result = match conn.transaction_with_behavior(TransactionBehavior::Deferred) {
            // Dropping the transaction ends it; nothing was written.
            Ok(tx) => read(&tx),
            Err(err) => Err(err.into()),
        };
        self.give_back(conn);
        result
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.target.connect_reader(),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}
