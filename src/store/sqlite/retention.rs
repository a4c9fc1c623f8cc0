//! Retention: by age (drop whole parts and hourly partitions older than the cutoff; in the
//! hour the cutoff falls into, rewrite the blocks that straddle it and delete precisely), then
//! by size (drop the oldest unit — a span part, or an hour of points or rollups — until the
//! store is 5 % under budget, room for what the count sees late), then forget resources and scopes no partition references and give
//! freed pages back to the file system.
//!
//! The size counts the database's pages in use plus every other file in the data directory
//! (block files, the ingest write-ahead log, alert state): what the directory holds once the
//! freed pages are vacuumed. SQLite's own WAL and shared-memory files are left out: they are
//! transient (copied into the database and cut back at checkpoints, kept under 1/16 of the
//! budget, see [`super::checkpoint`]) and would grow while retention drops data. Runs on the writer's connection and updates the writer's
//! bookkeeping; never touches data at or after the age cutoff unless the size limit requires it.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::store::{RetentionPolicy, RetentionReport, StoreError};

use super::block_files::BlockFiles;
use super::block_read::decompress;
use super::blocks::BlockWriter;
use super::parts::{self, PartInfo};
use super::schema::{
    self, NANOS_PER_HOUR, NANOS_PER_MINUTE, Partition, PartitionInfo, PartitionKind,
    hour_start_nanos,
};
use super::sql_values::{nanos_from_sql, nanos_to_sql};
use super::writer_state::{WriterState, load_partition_set};
use crate::store::batch_codec::all_spans_of_sections;

pub(super) fn apply(
    conn: &mut Connection,
    state: &mut WriterState,
    dir_opt: Option<&Path>,
    policy: &RetentionPolicy,
    now_unix_nano: u64,
) -> Result<RetentionReport, StoreError> {
    state.blocks.set_size_budget(policy.max_size_bytes);
    let result = apply_in_steps(conn, state, dir_opt, policy, now_unix_nano);
    // A failed step rolled back partitions this run already forgot; the catalogue is the truth.
    state.partitions = load_partition_set(conn)?;
    state.blocks.reload(conn)?;
    result
}

fn apply_in_steps(
    conn: &mut Connection,
    state: &mut WriterState,
    dir_opt: Option<&Path>,
    policy: &RetentionPolicy,
    now_unix_nano: u64,
) -> Result<RetentionReport, StoreError> {
    let max_age_nanos = u64::try_from(policy.max_age.as_nanos()).unwrap_or(u64::MAX);
    let cutoff_nanos = now_unix_nano.saturating_sub(max_age_nanos);
    let mut report = RetentionReport::default();
    // Whatever happens below, cached resource ids may be gone afterwards.
    state.resources.forget_all();
    state.scopes.forget_all();

    let mut dropped_parts = Vec::new();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for info in schema::load_partitions(&tx)? {
        let start_nanos = hour_start_nanos(info.partition.hour);
        let end_nanos = start_nanos.saturating_add(NANOS_PER_HOUR);
        if end_nanos <= cutoff_nanos {
            drop_whole(&tx, &info, &mut report)?;
        } else if start_nanos < cutoff_nanos {
            delete_before(&tx, info.partition, cutoff_nanos, &mut report)?;
        }
    }
    for part in parts::load(&tx)? {
        if part.max_start_nanos < cutoff_nanos {
            parts::drop(&tx, part.part)?;
            dropped_parts.push(part.part);
            report.num_spans_deleted += part.num_spans;
        } else if part.min_start_nanos < cutoff_nanos {
            let (num_deleted, emptied) =
                age_out_blocks(&tx, &mut state.blocks, &part, cutoff_nanos)?;
            report.num_spans_deleted += num_deleted;
            if emptied {
                dropped_parts.push(part.part);
            }
        }
    }
    let num_sealed = state
        .blocks
        .seal_finished(&tx, schema::hour_of(now_unix_nano))?;
    if num_sealed > 0 {
        tracing::debug!(num_sealed, "sealed finished span parts");
    }
    state.blocks.files.sync()?;
    tx.commit()?;
    remove_files(&state.blocks, &dropped_parts)?;

    report.size_bytes = shrink_to(
        conn,
        &state.blocks,
        dir_opt,
        policy.max_size_bytes,
        &mut report,
    )?;
    report.num_spans_kept = parts::load(conn)?.iter().map(|part| part.num_spans).sum();
    forget_unreferenced(conn)?;
    conn.execute_batch("PRAGMA incremental_vacuum;")?;
    Ok(report)
}

/// Deletes the spans of `part` that start before the cutoff: whole blocks where they can go
/// whole, the rest rewritten without them. Returns the number of spans deleted and whether
/// the part was left empty (and dropped).
fn age_out_blocks(
    conn: &Connection,
    blocks: &mut BlockWriter,
    part: &PartInfo,
    cutoff_nanos: u64,
) -> Result<(u64, bool), StoreError> {
    let mut straddling = Vec::new();
    {
        let mut statement = conn.prepare(&format!(
            "SELECT block_id, max_start, num_spans, offset, length FROM {} WHERE min_start < ?1",
            part.blocks_table()
        ))?;
        let mut rows = statement.query([nanos_to_sql(cutoff_nanos)])?;
        while let Some(row) = rows.next()? {
            let block_id: i64 = row.get(0)?;
            let max_start = nanos_from_sql(row.get(1)?);
            let num_spans = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
            let body = if max_start < cutoff_nanos {
                None
            } else {
                let offset = u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0);
                let length = usize::try_from(row.get::<_, i64>(4)?).unwrap_or(0);
                match blocks.files.read(part.part, offset, length)? {
                    Some(compressed) => Some(decompress(&compressed)?),
                    None => None,
                }
            };
            straddling.push((block_id, num_spans, body));
        }
    }
    let mut num_deleted = 0;
    for (block_id, num_spans, body_opt) in straddling {
        // Index entries of the block stay until the part goes: lookups skip missing blocks.
        conn.execute(
            &format!("DELETE FROM {} WHERE block_id = ?1", part.blocks_table()),
            [block_id],
        )?;
        let Some(body) = body_opt else {
            num_deleted += num_spans;
            continue;
        };
        let mut kept = all_spans_of_sections(&body)?;
        kept.retain(|span| span.start_time_unix_nano >= cutoff_nanos);
        // Sections of one block may share traces: the rewrite sorts them together.
        kept.sort_by_key(|span| span.trace_id);
        num_deleted += num_spans - kept.len() as u64;
        let refs: Vec<_> = kept.iter().collect();
        if !refs.is_empty() {
            blocks.write_block(conn, part.hour, &refs)?;
        }
    }
    let emptied = refresh(conn, part)?;
    Ok((num_deleted, emptied))
}

/// Recounts a part's catalogue row from its blocks; drops the part when none are left
/// (returning true).
fn refresh(conn: &Connection, part: &PartInfo) -> Result<bool, StoreError> {
    let (num_spans, num_bytes, min_start, max_start): (i64, i64, Option<i64>, Option<i64>) = conn
        .query_row(
        &format!(
            "SELECT coalesce(sum(num_spans), 0), coalesce(sum(length), 0), \
                 min(min_start), max(max_start) FROM {}",
            part.blocks_table()
        ),
        (),
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    if num_spans == 0 {
        parts::drop(conn, part.part)?;
        return Ok(true);
    }
    let mut info = part.clone();
    info.num_spans = u64::try_from(num_spans).unwrap_or(0);
    info.num_bytes = u64::try_from(num_bytes).unwrap_or(0);
    info.min_start_nanos = min_start.map_or(u64::MAX, nanos_from_sql);
    info.max_start_nanos = max_start.map_or(0, nanos_from_sql);
    parts::save(conn, &info)?;
    Ok(false)
}

/// Deletes the block files of parts whose drop has committed.
fn remove_files(blocks: &BlockWriter, dropped_parts: &[i64]) -> Result<(), StoreError> {
    for part in dropped_parts {
        blocks.files.remove(*part)?;
    }
    Ok(())
}

fn count_deleted(report: &mut RetentionReport, kind: PartitionKind, num_rows: u64) {
    match kind {
        PartitionKind::Spans => report.num_spans_deleted += num_rows,
        PartitionKind::Points => report.num_metric_points_deleted += num_rows,
        PartitionKind::EdgeRollups | PartitionKind::OperationRollups => {
            report.num_rollups_deleted += num_rows;
        }
    }
}

fn drop_whole(
    conn: &Connection,
    info: &PartitionInfo,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    schema::drop_partition(conn, info.partition)?;
    count_deleted(report, info.partition.kind, info.num_rows);
    Ok(())
}

/// Deletes the rows of `partition` older than `cutoff_nanos`, keeping the catalogue count true.
fn delete_before(
    conn: &Connection,
    partition: Partition,
    cutoff_nanos: u64,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    let table = partition.table();
    let cutoff = nanos_to_sql(cutoff_nanos);
    let num_deleted = match partition.kind {
        // Converted to blocks at open; none are left to age out row by row.
        PartitionKind::Spans => 0,
        PartitionKind::Points => {
            conn.execute(&format!("DELETE FROM {table} WHERE time_ns < ?1"), [cutoff])?
        }
        PartitionKind::EdgeRollups | PartitionKind::OperationRollups => {
            // Minutes ending at or before the cutoff; the one it falls into stays.
            let first_kept_minute = i64::try_from(cutoff_nanos / NANOS_PER_MINUTE).unwrap_or(0);
            conn.execute(
                &format!("DELETE FROM {table} WHERE minute < ?1"),
                [first_kept_minute],
            )?
        }
    };
    conn.execute(
        "UPDATE partitions SET num_rows = max(num_rows - ?1, 0) WHERE kind = ?2 AND hour = ?3",
        (
            i64::try_from(num_deleted).unwrap_or(i64::MAX),
            partition.kind.code(),
            partition.hour,
        ),
    )?;
    count_deleted(report, partition.kind, num_deleted as u64);
    Ok(())
}

/// Retention by size keeps the counted size 1/20 below the budget.
const HEADROOM_DIVISOR: u64 = 20;

/// The oldest unit retention by size can drop.
enum Oldest {
    Part(PartInfo),
    Partition(PartitionInfo),
}

/// Drops the oldest unit until the store fits; returns the size left.
fn shrink_to(
    conn: &mut Connection,
    blocks: &BlockWriter,
    dir_opt: Option<&Path>,
    max_size_bytes: u64,
    report: &mut RetentionReport,
) -> Result<u64, StoreError> {
    // Room for what the count leaves out or sees late: SQLite's WAL and shared memory, pages
    // freed since the last vacuum, a log segment being written.
    let target_bytes = max_size_bytes - max_size_bytes / HEADROOM_DIVISOR;
    loop {
        let size_bytes = store_size(conn, &blocks.files, dir_opt)?;
        if size_bytes <= target_bytes {
            return Ok(size_bytes);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let oldest_part = parts::load(&tx)?.into_iter().next();
        let oldest_partition = schema::load_partitions(&tx)?.into_iter().next();
        // Within an hour spans go first: they are most of the bytes.
        let oldest = match (oldest_part, oldest_partition) {
            (Some(part), Some(partition)) if partition.partition.hour < part.hour => {
                Oldest::Partition(partition)
            }
            (Some(part), _) => Oldest::Part(part),
            (None, Some(partition)) => Oldest::Partition(partition),
            (None, None) => return Ok(size_bytes),
        };
        match oldest {
            Oldest::Part(part) => {
                parts::drop(&tx, part.part)?;
                tx.commit()?;
                blocks.files.remove(part.part)?;
                report.num_spans_deleted += part.num_spans;
            }
            Oldest::Partition(info) => {
                drop_whole(&tx, &info, report)?;
                tx.commit()?;
            }
        }
    }
}

/// Pages in use in the database plus every other file of the data directory.
pub(super) fn store_size(
    conn: &Connection,
    files: &BlockFiles,
    dir_opt: Option<&Path>,
) -> Result<u64, StoreError> {
    let db_bytes = schema::used_bytes(conn)? + files.memory_bytes();
    let Some(dir) = dir_opt else {
        return Ok(db_bytes);
    };
    Ok(db_bytes + dir_bytes(dir, &|path| is_sqlite_file(path)))
}

/// The main database and SQLite's transient files beside it (`-wal`, `-shm`).
fn is_sqlite_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    name.starts_with(super::pool::DB_FILE_NAME)
        || name.ends_with(".sqlite3-wal")
        || name.ends_with(".sqlite3-shm")
}

/// Bytes of every file under `dir` (recursively) but those `skip` picks; unreadable entries
/// count 0.
fn dir_bytes(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => dir_bytes(&path, skip),
                Ok(meta) if !skip(&path) => meta.len(),
                _ => 0,
            }
        })
        .sum()
}

/// Deletes resources and scopes whose newest referencing partition is gone.
fn forget_unreferenced(conn: &Connection) -> Result<(), StoreError> {
    // Only point rows reference resources and scopes (span blocks carry their own).
    let oldest_hour: Option<i64> = conn.query_row(
        "SELECT min(hour) FROM partitions WHERE kind IN (?1, ?2)",
        (PartitionKind::Spans.code(), PartitionKind::Points.code()),
        |row| row.get(0),
    )?;
    let keep_from_hour = oldest_hour.unwrap_or(i64::MAX);
    conn.execute(
        "DELETE FROM resources WHERE max_hour < ?1",
        [keep_from_hour],
    )?;
    conn.execute("DELETE FROM scopes WHERE max_hour < ?1", [keep_from_hour])?;
    Ok(())
}
