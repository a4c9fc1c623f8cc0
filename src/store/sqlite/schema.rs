//! The SQLite schema: connection settings, the catalogue, and the DDL of hourly partitions.
//!
//! Layout (schema version 4):
//! - `span_parts` and the tables of each part: spans in compressed blocks, see [`super::parts`].
//! - `partitions (kind, hour, num_rows, indexed_keys)`: the catalogue of partition tables.
//!   `kind` 0 = spans (versions 1–3 only), 1 = metric points, 2 = edge rollups, 3 = operation
//!   rollups; `hour` =
//!   hours since the Unix epoch of the span start, point time or rollup minute; `indexed_keys`
//!   = JSON array of the attribute keys indexed in that span partition (position = `key_no` in
//!   its attribute table).
//! - `resources (id, body, max_hour)`, `scopes (id, body, max_hour)`: deduplicated by a stable
//!   hash of the encoded body (`id`, probing upwards on a collision); `max_hour` is the newest
//!   partition hour referencing the row, so retention can drop unreferenced ones.
//! - `spans_h{hour}`, `span_attrs_h{hour}` (versions 1–3): one row per span and an attribute
//!   index; converted to blocks at the first start of version 4 (see [`super::legacy`]).
//! - `points_h{hour}`: one row per metric point; indexes `(name, time_ns)`, `(time_ns, name)`.
//! - `edge_rollups_h{hour}`: one row per (minute, edge), unique on that key (node kinds as codes
//!   in the `Ord` order of the model, names as BINARY-collated text), so a window is one range
//!   scan of the index already in result order; placements in nullable text columns, the
//!   statistics in one `stats` blob (see [`super::codec_rollup`]). A rowid table, not `WITHOUT
//!   ROWID`: stats blobs of busy edges pass the ~1 KB an index b-tree keeps in a 4 KiB page, and
//!   spilling them to overflow pages nearly doubled the file; rows are inserted in key order,
//!   so following the index reads the table sequentially.
//!   `operation_rollups_h{hour}`: likewise, unique on `(minute, service, operation)`.
//!
//! Version 2 only added the rollup partition kinds, which are created on first use; version 3
//! clustered span partitions by start time; version 4 moved spans into blocks and turned on
//! incremental vacuum.
//!
//! Nanosecond columns hold `u64` values biased into `i64` (see
//! [`super::sql_values::nanos_to_sql`]) so every `u64` round-trips and SQL comparisons keep
//! the unsigned order. Table names are built from integers
//! only; nothing user-supplied is ever part of SQL text.

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

pub(super) const NANOS_PER_HOUR: u64 = 3_600_000_000_000;
pub(super) use crate::model::NANOS_PER_MINUTE;
const MINUTES_PER_HOUR: i64 = 60;
const SCHEMA_VERSION: i64 = 4;
const BUSY_TIMEOUT_MS: u64 = 10_000;
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 131_072;
/// Size the WAL file is cut back to when it starts over.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Hours since the epoch; `u64::MAX` nanoseconds is about five million hours, so it fits.
pub(super) fn hour_of(nanos: u64) -> i64 {
    (nanos / NANOS_PER_HOUR) as i64
}

/// The hour a rollup minute falls into (rounding down for negative minutes too).
pub(super) fn hour_of_minute(minute: i64) -> i64 {
    minute.div_euclid(MINUTES_PER_HOUR)
}

/// First nanosecond of `hour` (hours are never negative: they come from [`hour_of`]).
pub(super) fn hour_start_nanos(hour: i64) -> u64 {
    u64::try_from(hour)
        .unwrap_or(0)
        .saturating_mul(NANOS_PER_HOUR)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum PartitionKind {
    Spans,
    Points,
    EdgeRollups,
    OperationRollups,
}

impl PartitionKind {
    pub(super) fn code(self) -> i64 {
        match self {
            PartitionKind::Spans => 0,
            PartitionKind::Points => 1,
            PartitionKind::EdgeRollups => 2,
            PartitionKind::OperationRollups => 3,
        }
    }

    fn from_code(code: i64) -> Result<Self, StoreError> {
        match code {
            0 => Ok(PartitionKind::Spans),
            1 => Ok(PartitionKind::Points),
            2 => Ok(PartitionKind::EdgeRollups),
            3 => Ok(PartitionKind::OperationRollups),
            _ => Err(StoreError::Corrupt(format!(
                "unknown partition kind {code}"
            ))),
        }
    }
}

/// One hourly table (and, for spans, its attribute index table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Partition {
    pub hour: i64,
    pub kind: PartitionKind,
}

impl Partition {
    pub(super) fn points(hour: i64) -> Self {
        Self {
            hour,
            kind: PartitionKind::Points,
        }
    }

    pub(super) fn edge_rollups(hour: i64) -> Self {
        Self {
            hour,
            kind: PartitionKind::EdgeRollups,
        }
    }

    pub(super) fn operation_rollups(hour: i64) -> Self {
        Self {
            hour,
            kind: PartitionKind::OperationRollups,
        }
    }

    pub(super) fn table(&self) -> String {
        match self.kind {
            PartitionKind::Spans => format!("spans_h{}", self.hour),
            PartitionKind::Points => format!("points_h{}", self.hour),
            PartitionKind::EdgeRollups => format!("edge_rollups_h{}", self.hour),
            PartitionKind::OperationRollups => format!("operation_rollups_h{}", self.hour),
        }
    }

    fn create_sql(&self) -> String {
        let hour = self.hour;
        match self.kind {
            PartitionKind::Spans => spans_ddl(hour),
            PartitionKind::Points => points_ddl(hour),
            PartitionKind::EdgeRollups => edge_rollups_ddl(hour),
            PartitionKind::OperationRollups => operation_rollups_ddl(hour),
        }
    }

    fn drop_sql(&self) -> String {
        match self.kind {
            PartitionKind::Spans => format!(
                "DROP TABLE IF EXISTS spans_h{0}; DROP TABLE IF EXISTS span_attrs_h{0};",
                self.hour
            ),
            PartitionKind::Points
            | PartitionKind::EdgeRollups
            | PartitionKind::OperationRollups => {
                format!("DROP TABLE IF EXISTS {};", self.table())
            }
        }
    }
}

/// A span partition: its table and the index of its attribute values.
fn spans_ddl(hour: i64) -> String {
    format!(
        "CREATE TABLE spans_h{hour} (
                    row_id INTEGER PRIMARY KEY,
                    trace_id BLOB NOT NULL,
                    span_id BLOB NOT NULL,
                    parent_span_id BLOB,
                    start_ns INTEGER NOT NULL,
                    end_ns INTEGER NOT NULL,
                    duration_ns INTEGER NOT NULL,
                    service TEXT NOT NULL,
                    name TEXT NOT NULL,
                    kind INTEGER NOT NULL,
                    status_code INTEGER NOT NULL,
                    status_message TEXT NOT NULL,
                    trace_state TEXT NOT NULL,
                    flags INTEGER NOT NULL,
                    resource_id INTEGER NOT NULL,
                    scope_id INTEGER NOT NULL,
                    attributes BLOB NOT NULL,
                    events BLOB,
                    links BLOB,
                    dropped_counts BLOB
                 );
                 CREATE UNIQUE INDEX spans_h{hour}_trace ON spans_h{hour} (trace_id, span_id);
                 CREATE INDEX spans_h{hour}_service ON spans_h{hour} (service);
                 CREATE INDEX spans_h{hour}_error ON spans_h{hour} (status_code)
                    WHERE status_code = 2;
                 CREATE TABLE span_attrs_h{hour} (
                    key_no INTEGER NOT NULL,
                    value TEXT NOT NULL,
                    span_row_id INTEGER NOT NULL,
                    PRIMARY KEY (key_no, value, span_row_id)
                 ) WITHOUT ROWID;"
    )
}

/// A metric point partition.
fn points_ddl(hour: i64) -> String {
    format!(
        "CREATE TABLE points_h{hour} (
                    row_id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    service TEXT NOT NULL,
                    time_ns INTEGER NOT NULL,
                    start_ns INTEGER NOT NULL,
                    description TEXT NOT NULL,
                    unit TEXT NOT NULL,
                    resource_id INTEGER NOT NULL,
                    scope_id INTEGER NOT NULL,
                    attributes BLOB NOT NULL,
                    flags INTEGER NOT NULL,
                    value BLOB NOT NULL
                 );
                 CREATE INDEX points_h{hour}_name ON points_h{hour} (name, time_ns);
                 CREATE INDEX points_h{hour}_time ON points_h{hour} (time_ns, name);"
    )
}

/// An edge rollup partition.
fn edge_rollups_ddl(hour: i64) -> String {
    format!(
        "CREATE TABLE edge_rollups_h{hour} (
                    minute INTEGER NOT NULL,
                    source_kind INTEGER NOT NULL,
                    source_name TEXT NOT NULL,
                    target_kind INTEGER NOT NULL,
                    target_name TEXT NOT NULL,
                    edge_kind INTEGER NOT NULL,
                    source_namespace TEXT,
                    source_environment TEXT,
                    target_namespace TEXT,
                    target_environment TEXT,
                    stats BLOB NOT NULL,
                    instance INTEGER NOT NULL
                 );
                 CREATE UNIQUE INDEX edge_rollups_h{hour}_key ON edge_rollups_h{hour}
                    (minute, source_kind, source_name, target_kind, target_name, edge_kind,
                     instance);"
    )
}

/// An operation rollup partition.
fn operation_rollups_ddl(hour: i64) -> String {
    format!(
        "CREATE TABLE operation_rollups_h{hour} (
                    minute INTEGER NOT NULL,
                    service TEXT NOT NULL,
                    operation TEXT NOT NULL,
                    namespace TEXT,
                    environment TEXT,
                    stats BLOB NOT NULL,
                    instance INTEGER NOT NULL
                 );
                 CREATE UNIQUE INDEX operation_rollups_h{hour}_key ON operation_rollups_h{hour}
                    (minute, service, operation, instance);"
    )
}

/// A catalogue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartitionInfo {
    pub partition: Partition,
    pub num_rows: u64,
    pub indexed_keys: Vec<String>,
}

/// Creates a partition's tables and catalogue row inside the caller's transaction.
pub(super) fn create_partition(
    conn: &Connection,
    partition: Partition,
    indexed_keys: &[String],
) -> Result<(), StoreError> {
    conn.execute_batch(&partition.create_sql())?;
    let keys_json = serde_json::to_string(indexed_keys)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode indexed keys: {err}")))?;
    conn.execute(
        "INSERT INTO partitions (kind, hour, num_rows, indexed_keys) VALUES (?1, ?2, 0, ?3)",
        (partition.kind.code(), partition.hour, keys_json),
    )?;
    Ok(())
}

/// Drops a partition's tables and catalogue row inside the caller's transaction.
pub(super) fn drop_partition(conn: &Connection, partition: Partition) -> Result<(), StoreError> {
    conn.execute_batch(&partition.drop_sql())?;
    conn.execute(
        "DELETE FROM partitions WHERE kind = ?1 AND hour = ?2",
        (partition.kind.code(), partition.hour),
    )?;
    Ok(())
}

/// Every partition, oldest first (spans before points within an hour).
pub(super) fn load_partitions(conn: &Connection) -> Result<Vec<PartitionInfo>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT kind, hour, num_rows, indexed_keys FROM partitions ORDER BY hour, kind",
    )?;
    let mut rows = statement.query(())?;
    let mut partitions = Vec::new();
    while let Some(row) = rows.next()? {
        let keys_json: String = row.get(3)?;
        let indexed_keys = serde_json::from_str(&keys_json)
            .map_err(|err| StoreError::Corrupt(format!("bad indexed keys: {err}")))?;
        partitions.push(PartitionInfo {
            partition: Partition {
                kind: PartitionKind::from_code(row.get(0)?)?,
                hour: row.get(1)?,
            },
            num_rows: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            indexed_keys,
        });
    }
    Ok(partitions)
}

/// Settings of every connection. `wal` is false for the in-memory database, which has no WAL.
pub(super) fn configure(conn: &Connection, wal: bool, cache_kib: u32) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    if wal {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", (), |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: conn.path().unwrap_or_default().to_owned(),
                reason: format!("cannot enable WAL, journal mode is {mode}"),
            });
        }
        // The checkpoint thread keeps the WAL short; committing only checkpoints as a last
        // resort, should that thread fall far behind.
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};
             PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES};"
        ))?;
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib};"
    ))?;
    Ok(())
}

/// Creates the catalogue on a fresh database, upgrades an older one, or checks that an existing
/// one is not newer than this build.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", (), |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Open {
            path: conn.path().unwrap_or_default().to_owned(),
            reason: format!(
                "schema version {version} is newer than this build supports ({SCHEMA_VERSION})"
            ),
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > 0 && version < 3 {
        refuse_unclustered_spans(conn, version)?;
    }
    if version == 0 {
        // Before the first table: lets retention give freed pages back to the file system.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    }
    // Versions 1 and 2 lack only partition kinds that are created on first use; version 3
    // lacks the span parts. Span partitions of version 3 are converted by the writer at open,
    // which then marks the file current ([`mark_current`]): until then older builds can
    // still open it, and an interrupted conversion resumes.
    let create_catalogue = if version == 0 { CATALOGUE_DDL } else { "" };
    let parts_catalogue = super::parts::CATALOGUE_DDL;
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         {create_catalogue}
         {parts_catalogue}
         COMMIT;"
    ))?;
    if num_row_span_partitions(conn)? == 0 {
        mark_current(conn)?;
    }
    Ok(())
}

/// Span partitions of the row-per-span layouts (versions 1 to 3).
fn num_row_span_partitions(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM partitions WHERE kind = ?1",
        [PartitionKind::Spans.code()],
        |row| row.get(0),
    )?)
}

/// Records that the file holds this build's schema.
pub(super) fn mark_current(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    Ok(())
}

/// Span partitions before version 3 were not clustered by start time, which the conversion to
/// blocks relies on. Those were development builds only, so such data is refused
/// rather than converted.
fn refuse_unclustered_spans(conn: &Connection, version: i64) -> Result<(), StoreError> {
    if num_row_span_partitions(conn)? == 0 {
        return Ok(());
    }
    Err(StoreError::Open {
        path: conn.path().unwrap_or_default().to_owned(),
        reason: format!(
            "spans stored by a pre-release build (schema version {version}) cannot be read; \
             remove the data directory"
        ),
    })
}

/// The tables of a fresh database (all of schema version 1).
const CATALOGUE_DDL: &str = "
    CREATE TABLE partitions (
        kind INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        num_rows INTEGER NOT NULL,
        indexed_keys TEXT NOT NULL,
        PRIMARY KEY (kind, hour)
    ) WITHOUT ROWID;
    CREATE TABLE resources (
        id INTEGER PRIMARY KEY, body BLOB NOT NULL, max_hour INTEGER NOT NULL
    );
    CREATE TABLE scopes (
        id INTEGER PRIMARY KEY, body BLOB NOT NULL, max_hour INTEGER NOT NULL
    );";

/// Bytes in use: pages holding data, not free pages kept for reuse.
pub(super) fn used_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let pragma = |name: &str| -> Result<i64, StoreError> {
        let value = conn
            .query_row(&format!("PRAGMA {name}"), (), |row| row.get(0))
            .optional()?;
        Ok(value.unwrap_or(0))
    };
    let used_pages = pragma("page_count")?.saturating_sub(pragma("freelist_count")?);
    let page_size = pragma("page_size")?;
    Ok(u64::try_from(used_pages.saturating_mul(page_size)).unwrap_or(0))
}

/// Indexes of `items` grouped by partition hour, hours ascending, input order kept inside.
pub(super) fn by_hour<T>(items: &[T], hour: impl Fn(&T) -> i64) -> Vec<(i64, Vec<usize>)> {
    let mut order: Vec<(i64, usize)> = items
        .iter()
        .enumerate()
        .map(|(index, item)| (hour(item), index))
        .collect();
    order.sort_unstable();
    order
        .chunk_by(|left, right| left.0 == right.0)
        .map(|group| (group[0].0, group.iter().map(|(_, index)| *index).collect()))
        .collect()
}

pub(super) fn add_rows(
    conn: &Connection,
    partition: Partition,
    num_rows: u64,
) -> Result<(), StoreError> {
    if num_rows == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE partitions SET num_rows = num_rows + ?1 WHERE kind = ?2 AND hour = ?3",
    )?
    .execute((
        i64::try_from(num_rows).unwrap_or(i64::MAX),
        partition.kind.code(),
        partition.hour,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_cover_the_whole_range() {
        assert_eq!(hour_of(NANOS_PER_HOUR - 1), 0);
        assert_eq!(hour_of(NANOS_PER_HOUR), 1);
        assert_eq!(
            hour_start_nanos(hour_of(u64::MAX)),
            u64::MAX / NANOS_PER_HOUR * NANOS_PER_HOUR
        );
    }
}
