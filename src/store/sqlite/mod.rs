//! The embedded backend: spans in zstd-compressed blocks, one append-only file per part
//! (see [`parts`] and [`block_files`]), described and indexed in one SQLite database beside
//! metric points and per-minute rollups in hourly partition tables (so age retention is mostly
//! `DROP TABLE` and indexes stay small); resources and scopes of points deduplicated, nested
//! parts of rows in a compact exact binary encoding.
//!
//! [`open`] returns the two halves: a [`SqliteWriter`] for the one writer thread (one
//! connection, one transaction per batch) and a cloneable [`SqliteReader`] whose pool of
//! connections reads concurrently with the writer (WAL for files; in memory, reads and commits
//! take turns); both also implement the rollup traits (see [`rollups`]). See [`schema`] for the
//! table layout, [`blocks`] for how spans are written and [`block_read`] for how they are
//! found.
//!
//! File-backed stores also run one background thread (see [`checkpoint`]) that copies the WAL
//! back into the database file, so commits on the writer thread only append to the WAL.

mod block_files;
mod block_read;
mod block_scan;
mod block_search;
mod blocks;
mod checkpoint;
pub(crate) mod codec;
pub(crate) mod codec_kinds;
pub(crate) mod codec_metric;
pub(crate) mod codec_rollup;
pub(crate) mod codec_sketch;
mod codec_sketch_dense;
pub(crate) mod codec_splits;
mod filter;
mod intern;
mod legacy;
mod parts;
mod pool;
mod reader;
mod retention;
mod rollup_sums;
mod rollups;
mod schema;
mod sql_values;
mod writer;
mod writer_state;

use std::path::PathBuf;
use std::sync::Arc;

pub use block_files::BlockCounters;
pub use reader::SqliteReader;
pub use writer::SqliteWriter;

use crate::store::StoreError;

use block_files::BlockFiles;
use checkpoint::Checkpointer;
use pool::{DB_FILE_NAME, ReadPool, Target};

/// Attribute keys worth an index by default: the ones people paste into a search box.
pub const DEFAULT_INDEXED_ATTRIBUTE_KEYS: &[&str] = &[
    "x-correlation-id",
    "correlation_id",
    "correlation.id",
    "http.request.header.x-correlation-id",
    "messaging.message.id",
    "enduser.id",
];

/// `keys` in their first order, each once (a key's number in a part is its position).
pub fn unique_keys(keys: &[String]) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(keys.len());
    for key in keys {
        if !unique.contains(key) {
            unique.push(key.clone());
        }
    }
    unique
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A directory holding the database file (created if missing).
    Dir(PathBuf),
    /// Held in this process's memory only, private to this store; gone when the writer and
    /// every reader are dropped. SQLite caps such a database at 1 GiB, so give it a size
    /// retention below that.
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub location: SqliteLocation,
    /// Span attribute keys whose values get an index table, making `key=value` search on them
    /// a lookup; search on any other key scans. Applies to partitions created from now on.
    pub indexed_attribute_keys: Vec<String>,
}

impl SqliteOptions {
    /// Options for `location` with the default indexed keys.
    pub fn new(location: SqliteLocation) -> Self {
        Self {
            location,
            indexed_attribute_keys: DEFAULT_INDEXED_ATTRIBUTE_KEYS
                .iter()
                .map(|key| (*key).to_owned())
                .collect(),
        }
    }
}

/// Opens (creating if needed) the store at `options.location`.
pub fn open(options: &SqliteOptions) -> Result<(SqliteWriter, SqliteReader), StoreError> {
    let (target, dir_opt) = match &options.location {
        SqliteLocation::Dir(dir) => {
            std::fs::create_dir_all(dir).map_err(|err| StoreError::Open {
                path: dir.display().to_string(),
                reason: err.to_string(),
            })?;
            (Target::File(dir.join(DB_FILE_NAME)), Some(dir.clone()))
        }
        SqliteLocation::Memory => (Target::unique_memory(), None),
    };
    let files = Arc::new(match &dir_opt {
        Some(dir) => BlockFiles::in_dir(dir)?,
        None => BlockFiles::in_memory(),
    });
    let writer_conn = target.connect_writer()?;
    let checkpointer = match target.connect_checkpointer()? {
        Some(conn) => Some(Checkpointer::start(conn)?),
        None => None,
    };
    let writer = SqliteWriter::new(
        writer_conn,
        &options.indexed_attribute_keys,
        Arc::clone(&files),
        dir_opt,
        checkpointer,
    )?;
    let reader = SqliteReader::new(ReadPool::new(target)?, files);
    Ok((writer, reader))
}

#[cfg(test)]
mod tests;
