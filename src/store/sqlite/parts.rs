//! Span parts: the unit in which the embedded store keeps, indexes and drops spans.
//!
//! A part holds compressed span blocks whose spans all start in one hour, up to a target size
//! (a fraction of the size budget), so retention by size drops data in small steps even when
//! one hour holds many times the budget, and retention by age drops whole parts.
//!
//! While a part is written, lookups check each block's membership filter (see
//! [`super::filter`]): appending a block costs one row. Once full (or its hour is over) the
//! part is *sealed*: its exact indexes are written in key order in one go, so index writes
//! never scatter over a large b-tree. Each part is three tables (names built from integers):
//! - `blocks_p{n} (block_id, min_start, max_start, num_spans, num_errors, max_duration,
//!   services, filter, offset, length)`: one row per block, where its zstd-compressed span
//!   section (see [`crate::store::batch_codec`]) lies in the part's file (see
//!   [`super::block_files`]), and what search prunes blocks by;
//! - `block_traces_p{n} (trace, block_id)`: which blocks hold a trace (`trace` = first 8 bytes
//!   of its id), filled at sealing;
//! - `block_attrs_p{n} (key_no, value, block_id)`: blocks holding a configured attribute value
//!   (`value` = a stable hash of the value's search text), filled at sealing.
//!
//! The catalogue `span_parts` lists them with their hour, span count and compressed size.

use rusqlite::Connection;

use crate::model::TraceId;
use crate::store::StoreError;

use super::sql_values::nanos_from_sql;

/// A catalogue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartInfo {
    pub part: i64,
    pub hour: i64,
    pub num_spans: u64,
    /// Compressed block bytes (what the part's size target counts).
    pub num_bytes: u64,
    pub min_start_nanos: u64,
    pub max_start_nanos: u64,
    pub indexed_keys: Vec<String>,
    /// Whether its exact indexes are written (else lookups use the blocks' filters).
    pub sealed: bool,
}

impl PartInfo {
    pub(super) fn blocks_table(&self) -> String {
        blocks_table(self.part)
    }

    pub(super) fn traces_table(&self) -> String {
        format!("block_traces_p{}", self.part)
    }

    pub(super) fn attrs_table(&self) -> String {
        format!("block_attrs_p{}", self.part)
    }

    pub(super) fn overlaps(&self, from_nanos: u64, to_nanos: u64) -> bool {
        self.num_spans > 0 && self.max_start_nanos >= from_nanos && self.min_start_nanos < to_nanos
    }
}

fn blocks_table(part: i64) -> String {
    format!("blocks_p{part}")
}

/// Index keys are 31-bit hashes: SQLite stores them in four bytes, and the rare collision only
/// makes a lookup read a block it then finds nothing in (every span found is checked).
fn index_key(bytes: &[u8]) -> i64 {
    (super::codec::stable_hash(bytes) >> 33) as i64
}

/// The key of a trace in `block_traces_p{n}` and in block filters: a hash of the whole id
/// (some tracers put a timestamp in an id's first bytes).
pub(super) fn trace_key(trace_id: TraceId) -> i64 {
    index_key(trace_id.as_bytes())
}

/// The key of an indexed attribute value in `block_attrs_p{n}` and in block filters.
pub(super) fn attr_key(key_no: i64, text: &str) -> i64 {
    let mut bytes = key_no.to_le_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    index_key(&bytes)
}

pub(super) const CATALOGUE_DDL: &str = "
    CREATE TABLE IF NOT EXISTS span_parts (
        part INTEGER PRIMARY KEY,
        hour INTEGER NOT NULL,
        num_spans INTEGER NOT NULL,
        num_bytes INTEGER NOT NULL,
        min_start INTEGER NOT NULL,
        max_start INTEGER NOT NULL,
        indexed_keys TEXT NOT NULL,
        sealed INTEGER NOT NULL DEFAULT 0
    );";

/// Creates part `part` of `hour` (tables and catalogue row) in the caller's transaction.
pub(super) fn create(
    conn: &Connection,
    part: i64,
    hour: i64,
    indexed_keys: &[String],
) -> Result<PartInfo, StoreError> {
    conn.execute_batch(&format!(
        "CREATE TABLE blocks_p{part} (
            block_id INTEGER PRIMARY KEY,
            min_start INTEGER NOT NULL,
            max_start INTEGER NOT NULL,
            num_spans INTEGER NOT NULL,
            num_errors INTEGER NOT NULL,
            max_duration INTEGER NOT NULL,
            services BLOB NOT NULL,
            filter BLOB NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL
         );
         CREATE TABLE block_traces_p{part} (
            trace INTEGER NOT NULL,
            block_id INTEGER NOT NULL,
            PRIMARY KEY (trace, block_id)
         ) WITHOUT ROWID;
         CREATE TABLE block_attrs_p{part} (
            key_no INTEGER NOT NULL,
            value INTEGER NOT NULL,
            block_id INTEGER NOT NULL,
            PRIMARY KEY (key_no, value, block_id)
         ) WITHOUT ROWID;"
    ))?;
    let keys_json = serde_json::to_string(indexed_keys)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode indexed keys: {err}")))?;
    conn.execute(
        "INSERT INTO span_parts (part, hour, num_spans, num_bytes, min_start, max_start, \
         indexed_keys) VALUES (?1, ?2, 0, 0, ?3, ?4, ?5)",
        (part, hour, i64::MAX, i64::MIN, keys_json),
    )?;
    Ok(PartInfo {
        part,
        hour,
        num_spans: 0,
        num_bytes: 0,
        min_start_nanos: u64::MAX,
        max_start_nanos: 0,
        indexed_keys: indexed_keys.to_vec(),
        sealed: false,
    })
}

/// Records in the catalogue that `part`'s exact indexes are written.
pub(super) fn mark_sealed(conn: &Connection, part: i64) -> Result<(), StoreError> {
    conn.execute("UPDATE span_parts SET sealed = 1 WHERE part = ?1", [part])?;
    Ok(())
}

/// Drops a part's tables and catalogue row in the caller's transaction.
pub(super) fn drop(conn: &Connection, part: i64) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS blocks_p{part};
         DROP TABLE IF EXISTS block_traces_p{part};
         DROP TABLE IF EXISTS block_attrs_p{part};"
    ))?;
    conn.execute("DELETE FROM span_parts WHERE part = ?1", [part])?;
    Ok(())
}

/// Writes the catalogue row of `info` (counts and time range) in the caller's transaction.
pub(super) fn save(conn: &Connection, info: &PartInfo) -> Result<(), StoreError> {
    use super::sql_values::nanos_to_sql;
    conn.prepare_cached(
        "UPDATE span_parts SET num_spans = ?1, num_bytes = ?2, min_start = ?3, max_start = ?4 \
         WHERE part = ?5",
    )?
    .execute((
        i64::try_from(info.num_spans).unwrap_or(i64::MAX),
        i64::try_from(info.num_bytes).unwrap_or(i64::MAX),
        nanos_to_sql(info.min_start_nanos),
        nanos_to_sql(info.max_start_nanos),
        info.part,
    ))?;
    Ok(())
}

/// Every part, oldest first (by hour, then by creation).
pub(super) fn load(conn: &Connection) -> Result<Vec<PartInfo>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT part, hour, num_spans, num_bytes, min_start, max_start, indexed_keys, sealed \
         FROM span_parts ORDER BY hour, part",
    )?;
    let mut rows = statement.query(())?;
    let mut parts = Vec::new();
    while let Some(row) = rows.next()? {
        let keys_json: String = row.get(6)?;
        let indexed_keys = serde_json::from_str(&keys_json)
            .map_err(|err| StoreError::Corrupt(format!("bad indexed keys: {err}")))?;
        parts.push(PartInfo {
            part: row.get(0)?,
            hour: row.get(1)?,
            num_spans: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            num_bytes: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
            min_start_nanos: nanos_from_sql(row.get(4)?),
            max_start_nanos: nanos_from_sql(row.get(5)?),
            indexed_keys,
            sealed: row.get::<_, i64>(7)? != 0,
        });
    }
    Ok(parts)
}
