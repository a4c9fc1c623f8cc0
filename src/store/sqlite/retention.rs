//! Retention: by age (drop whole hourly partitions older than the cutoff, a precise DELETE in
//! the one partition the cutoff falls into), then by size (drop the oldest hours while the
//! used pages exceed the limit), then forget resources and scopes no partition references.
//! Span, point and rollup partitions are treated alike; a rollup counts as old once its whole
//! minute is before the cutoff.
//!
//! Runs on the writer's connection and updates the writer's bookkeeping; never touches rows
//! at or after the age cutoff unless the size limit requires it.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::{RetentionPolicy, RetentionReport, StoreError};

use super::schema::{
    self, NANOS_PER_HOUR, NANOS_PER_MINUTE, Partition, PartitionInfo, PartitionKind,
    hour_start_nanos, nanos_to_sql,
};
use super::spans::row_id_range;
use super::writer::{WriterState, load_partition_keys};

pub(super) fn apply(
    conn: &mut Connection,
    state: &mut WriterState,
    policy: &RetentionPolicy,
    now_unix_nano: u64,
) -> Result<RetentionReport, StoreError> {
    let result = apply_in_steps(conn, state, policy, now_unix_nano);
    // A failed step rolled back partitions this run already forgot; the catalogue is the truth.
    state.partitions = load_partition_keys(conn)?;
    result
}

fn apply_in_steps(
    conn: &mut Connection,
    state: &mut WriterState,
    policy: &RetentionPolicy,
    now_unix_nano: u64,
) -> Result<RetentionReport, StoreError> {
    let max_age_nanos = u64::try_from(policy.max_age.as_nanos()).unwrap_or(u64::MAX);
    let cutoff_nanos = now_unix_nano.saturating_sub(max_age_nanos);
    let mut report = RetentionReport::default();
    // Whatever happens below, cached resource ids may be gone afterwards.
    state.resources.forget_all();
    state.scopes.forget_all();

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for info in schema::load_partitions(&tx)? {
        let start_nanos = hour_start_nanos(info.partition.hour);
        let end_nanos = start_nanos.saturating_add(NANOS_PER_HOUR);
        if end_nanos <= cutoff_nanos {
            drop_whole(&tx, state, &info, &mut report)?;
        } else if start_nanos < cutoff_nanos {
            delete_before(&tx, info.partition, cutoff_nanos, &mut report)?;
        }
    }
    tx.commit()?;

    report.size_bytes = shrink_to(conn, state, policy.max_size_bytes, &mut report)?;
    forget_unreferenced(conn)?;
    Ok(report)
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
    state: &mut WriterState,
    info: &PartitionInfo,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    schema::drop_partition(conn, info.partition)?;
    state.partitions.remove(&info.partition);
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
        PartitionKind::Spans => {
            // The row id bound turns both DELETEs into range scans of the clustered table.
            let (_, end_row_id) = row_id_range(partition.hour, 0, cutoff_nanos);
            conn.execute(
                &format!(
                    "DELETE FROM {} WHERE span_row_id IN \
                     (SELECT row_id FROM {table} WHERE row_id < ?1 AND start_ns < ?2)",
                    partition.attr_table()
                ),
                (end_row_id, cutoff),
            )?;
            conn.execute(
                &format!("DELETE FROM {table} WHERE row_id < ?1 AND start_ns < ?2"),
                (end_row_id, cutoff),
            )?
        }
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

/// Drops the oldest hour (spans and points alike) until the store fits; returns the size left.
fn shrink_to(
    conn: &mut Connection,
    state: &mut WriterState,
    max_size_bytes: u64,
    report: &mut RetentionReport,
) -> Result<u64, StoreError> {
    loop {
        let size_bytes = schema::used_bytes(conn)?;
        if size_bytes <= max_size_bytes {
            return Ok(size_bytes);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let partitions = schema::load_partitions(&tx)?;
        let Some(oldest_hour) = partitions.first().map(|info| info.partition.hour) else {
            return Ok(size_bytes);
        };
        for info in partitions
            .iter()
            .take_while(|info| info.partition.hour == oldest_hour)
        {
            drop_whole(&tx, state, info, report)?;
        }
        tx.commit()?;
    }
}

/// Deletes resources and scopes whose newest referencing partition is gone.
fn forget_unreferenced(conn: &Connection) -> Result<(), StoreError> {
    // Only span and point rows reference resources and scopes.
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
