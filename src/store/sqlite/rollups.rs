//! Per-minute rollups: [`RollupWriter`] for [`SqliteWriter`] and [`RollupReader`] for
//! [`SqliteReader`], over the hourly rollup partitions laid out in [`super::schema`].
//!
//! Writes replace per (minute, key): an insert that finds the key taken becomes an update, so
//! catalogue row counts stay exact; rows go in sorted by key, keeping the table in index order.
//! Reads walk the partitions of the window in hour order, each one range scan of its unique
//! key index, which is already the result order. Owns the rollup SQL only; the stats blobs are
//! [`super::codec_rollup`]'s.

use std::collections::BTreeSet;

use rusqlite::{Connection, Row, params};

use crate::model::MinuteRange;
use crate::model::graph::{
    EdgeKey, EdgeRollup, EdgeTotal, NodeKey, NodePlacement, OperationRollup,
};
use crate::store::{Instances, MAX_ROLLUP_MINUTE, RollupReader, RollupWriter, Splits, StoreError};

use super::codec_rollup::{
    decode_edge_stats, decode_operation_stats, edge_kind_code, edge_kind_from_code,
    encode_edge_stats, encode_operation_stats, node_kind_code, node_kind_from_code,
};
use super::reader::{SqliteReader, partitions_in_hours};
use super::rollup_sums::sum_edges;
use super::schema::{Partition, PartitionKind, add_rows, by_hour, hour_of_minute};
use super::sql_values::blob;
use super::writer::SqliteWriter;
use super::writer_state::{CreatedPartitions, WriterState};

impl RollupWriter for SqliteWriter {
    fn write_rollups(
        &mut self,
        instance: u32,
        edges: &[EdgeRollup],
        operations: &[OperationRollup],
    ) -> Result<(), StoreError> {
        let minutes = edges.iter().map(|rollup| rollup.minute);
        check_minutes(minutes.chain(operations.iter().map(|rollup| rollup.minute)))?;
        if edges.is_empty() && operations.is_empty() {
            return Ok(());
        }
        self.write_atomically(|conn, state, created| {
            write_edges(conn, state, instance, edges, created)?;
            write_operations(conn, state, instance, operations, created)
        })
    }

    fn instance_rollups(
        &mut self,
        instance: u32,
        range: MinuteRange,
    ) -> Result<(Vec<EdgeRollup>, Vec<OperationRollup>), StoreError> {
        let conn = self.connection();
        let edges = read_edges(conn, range, Instances::Only(instance), None)?;
        let operations = read_operations(conn, range, None, Instances::Only(instance))?;
        Ok((edges, operations))
    }
}

/// Rejects the whole write before anything is stored when a minute is out of range (a
/// negative hour would not even make a table name).
fn check_minutes(mut minutes: impl Iterator<Item = i64>) -> Result<(), StoreError> {
    match minutes.find(|minute| !(0..=MAX_ROLLUP_MINUTE).contains(minute)) {
        Some(minute) => Err(StoreError::InvalidData(format!(
            "rollup minute {minute} is outside 0..={MAX_ROLLUP_MINUTE}"
        ))),
        None => Ok(()),
    }
}

/// Columns in the order of the statements' parameters and of [`edge_from_row`].
const EDGE_COLUMNS: &str = "minute, source_kind, source_name, target_kind, target_name, \
    edge_kind, source_namespace, source_environment, target_namespace, target_environment, stats, \
    instance";

fn write_edges(
    conn: &Connection,
    state: &WriterState,
    instance: u32,
    edges: &[EdgeRollup],
    created: &mut CreatedPartitions,
) -> Result<(), StoreError> {
    let mut stats = Vec::new();
    for (hour, mut indexes) in by_hour(edges, |rollup| hour_of_minute(rollup.minute)) {
        // Stable, so the later of two rollups of one key is still written last.
        indexes.sort_by_key(|index| (edges[*index].minute, &edges[*index].key));
        let partition = Partition::edge_rollups(hour);
        state.ensure_partition(conn, partition, created)?;
        let table = partition.table();
        let mut insert = conn.prepare_cached(&format!(
            "INSERT INTO {table} ({EDGE_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING"
        ))?;
        let mut replace = conn.prepare_cached(&format!(
            "UPDATE {table} SET source_namespace = ?7, source_environment = ?8, \
             target_namespace = ?9, target_environment = ?10, stats = ?11 \
             WHERE minute = ?1 AND source_kind = ?2 AND source_name = ?3 \
             AND target_kind = ?4 AND target_name = ?5 AND edge_kind = ?6 AND instance = ?12"
        ))?;
        let mut num_inserted = 0;
        for index in indexes {
            let rollup = &edges[index];
            let EdgeKey {
                source,
                target,
                kind,
            } = &rollup.key;
            stats.clear();
            encode_edge_stats(&mut stats, &rollup.stats)?;
            let row = params![
                rollup.minute,
                node_kind_code(source.kind),
                source.name,
                node_kind_code(target.kind),
                target.name,
                edge_kind_code(*kind),
                rollup.source_placement.namespace,
                rollup.source_placement.environment,
                rollup.target_placement.namespace,
                rollup.target_placement.environment,
                stats,
                instance,
            ];
            if insert.execute(row)? == 1 {
                num_inserted += 1;
            } else {
                replace.execute(row)?;
            }
        }
        add_rows(conn, partition, num_inserted)?;
    }
    Ok(())
}

/// Columns in the order of the statements' parameters and of [`operation_from_row`].
const OPERATION_COLUMNS: &str =
    "minute, service, operation, namespace, environment, stats, instance";

fn write_operations(
    conn: &Connection,
    state: &WriterState,
    instance: u32,
    operations: &[OperationRollup],
    created: &mut CreatedPartitions,
) -> Result<(), StoreError> {
    let mut stats = Vec::new();
    for (hour, mut indexes) in by_hour(operations, |rollup| hour_of_minute(rollup.minute)) {
        indexes.sort_by_key(|index| {
            let rollup = &operations[*index];
            (rollup.minute, &rollup.service, &rollup.operation)
        });
        let partition = Partition::operation_rollups(hour);
        state.ensure_partition(conn, partition, created)?;
        let table = partition.table();
        let mut insert = conn.prepare_cached(&format!(
            "INSERT INTO {table} ({OPERATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT DO NOTHING"
        ))?;
        let mut replace = conn.prepare_cached(&format!(
            "UPDATE {table} SET namespace = ?4, environment = ?5, stats = ?6 \
             WHERE minute = ?1 AND service = ?2 AND operation = ?3 AND instance = ?7"
        ))?;
        let mut num_inserted = 0;
        for index in indexes {
            let rollup = &operations[index];
            stats.clear();
            encode_operation_stats(&mut stats, &rollup.stats)?;
            let row = params![
                rollup.minute,
                rollup.service,
                rollup.operation,
                rollup.placement.namespace,
                rollup.placement.environment,
                stats,
                instance,
            ];
            if insert.execute(row)? == 1 {
                num_inserted += 1;
            } else {
                replace.execute(row)?;
            }
        }
        add_rows(conn, partition, num_inserted)?;
    }
    Ok(())
}

impl RollupReader for SqliteReader {
    fn edge_rollups(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
    ) -> Result<Vec<EdgeRollup>, StoreError> {
        let instances = Instances::AllBut(exclude_instance);
        self.read(|tx| read_edges(tx, range, instances, None))
    }

    fn edge_rollups_between(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
        source: &NodeKey,
        target: &NodeKey,
    ) -> Result<Vec<EdgeRollup>, StoreError> {
        let instances = Instances::AllBut(exclude_instance);
        self.read(|tx| read_edges(tx, range, instances, Some((source, target))))
    }

    fn edge_totals(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
        splits: Splits,
    ) -> Result<Vec<EdgeTotal>, StoreError> {
        let instances = Instances::AllBut(exclude_instance);
        self.read(|tx| sum_edges(tx, range, instances, splits))
    }

    fn operation_rollups(
        &self,
        range: MinuteRange,
        service: Option<&str>,
        exclude_instance: Option<u32>,
    ) -> Result<Vec<OperationRollup>, StoreError> {
        let instances = Instances::AllBut(exclude_instance);
        self.read(|tx| read_operations(tx, range, service, instances))
    }

    fn rollup_minutes(&self, range: MinuteRange) -> Result<Vec<i64>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let (from_minute, to_minute) = (range.from().get(), range.to().get());
        self.read(|tx| {
            let mut minutes = BTreeSet::new();
            for kind in [PartitionKind::EdgeRollups, PartitionKind::OperationRollups] {
                for partition in partitions_of(tx, kind, range)? {
                    add_minutes(tx, partition, from_minute, to_minute, &mut minutes)?;
                }
            }
            Ok(minutes.into_iter().collect())
        })
    }
}

/// The `(excluded, only)` parameters of the select statements.
pub(super) fn instance_params(instances: Instances) -> (Option<u32>, Option<u32>) {
    match instances {
        Instances::AllBut(excluded) => (excluded, None),
        Instances::Only(instance) => (None, Some(instance)),
    }
}

/// The edge rollups of `range` written by `instances`, of the edges between `pair` only
/// when given.
fn read_edges(
    conn: &Connection,
    range: MinuteRange,
    instances: Instances,
    pair: Option<(&NodeKey, &NodeKey)>,
) -> Result<Vec<EdgeRollup>, StoreError> {
    let mut rollups = Vec::new();
    if range.is_empty() {
        return Ok(rollups);
    }
    let (excluded, only) = instance_params(instances);
    let source_kind = pair.map(|(source, _)| node_kind_code(source.kind));
    let target_kind = pair.map(|(_, target)| node_kind_code(target.kind));
    let source_name = pair.map(|(source, _)| source.name.as_str());
    let target_name = pair.map(|(_, target)| target.name.as_str());
    for partition in partitions_of(conn, PartitionKind::EdgeRollups, range)? {
        let mut statement = conn.prepare_cached(&select_edges_sql(partition))?;
        let bounds = (range.from().get(), range.to().get());
        let mut rows = statement.query(params![
            bounds.0,
            bounds.1,
            excluded,
            only,
            source_kind,
            source_name,
            target_kind,
            target_name
        ])?;
        while let Some(row) = rows.next()? {
            rollups.push(edge_from_row(row)?);
        }
    }
    Ok(rollups)
}

fn read_operations(
    conn: &Connection,
    range: MinuteRange,
    service: Option<&str>,
    instances: Instances,
) -> Result<Vec<OperationRollup>, StoreError> {
    let mut rollups = Vec::new();
    if range.is_empty() {
        return Ok(rollups);
    }
    let (excluded, only) = instance_params(instances);
    for partition in partitions_of(conn, PartitionKind::OperationRollups, range)? {
        let mut statement = conn.prepare_cached(&select_operations_sql(partition))?;
        let bounds = (range.from().get(), range.to().get());
        let mut rows = statement.query((bounds.0, bounds.1, service, excluded, only))?;
        while let Some(row) = rows.next()? {
            rollups.push(operation_from_row(row)?);
        }
    }
    Ok(rollups)
}

/// Edge rollups of minutes `?1..?2` of every instance but `?3` (or of `?4` only), from node
/// `?5`/`?6` (kind, name) to `?7`/`?8` when given; the order is the key index's, so no sorting
/// is done.
pub(super) fn select_edges_sql(partition: Partition) -> String {
    format!(
        "SELECT {EDGE_COLUMNS} FROM {} WHERE minute >= ?1 AND minute < ?2 \
         AND (?3 IS NULL OR instance != ?3) AND (?4 IS NULL OR instance = ?4) \
         AND (?5 IS NULL OR (source_kind = ?5 AND source_name = ?6 \
              AND target_kind = ?7 AND target_name = ?8)) \
         ORDER BY minute, source_kind, source_name, target_kind, target_name, edge_kind, instance",
        partition.table()
    )
}

/// Operation rollups of minutes `?1..?2` of service `?3` (every service when NULL), of every
/// instance but `?4` (or of `?5` only).
fn select_operations_sql(partition: Partition) -> String {
    format!(
        "SELECT {OPERATION_COLUMNS} FROM {} WHERE minute >= ?1 AND minute < ?2 \
         AND (?3 IS NULL OR service = ?3) AND (?4 IS NULL OR instance != ?4) \
         AND (?5 IS NULL OR instance = ?5) \
         ORDER BY minute, service, operation, instance",
        partition.table()
    )
}

/// The first minute in `?1..?2` holding a rollup: one seek of the key index.
fn next_minute_sql(partition: Partition) -> String {
    format!(
        "SELECT minute FROM {} WHERE minute >= ?1 AND minute < ?2 ORDER BY minute LIMIT 1",
        partition.table()
    )
}

/// Rollup partitions of `kind` overlapping `range` (not empty), oldest first.
pub(super) fn partitions_of(
    conn: &Connection,
    kind: PartitionKind,
    range: MinuteRange,
) -> Result<Vec<Partition>, StoreError> {
    let first_hour = hour_of_minute(range.from().get());
    let last_hour = hour_of_minute(range.to().get() - 1);
    Ok(partitions_in_hours(conn, kind, first_hour, last_hour)?
        .into_iter()
        .map(|info| info.partition)
        .collect())
}

/// Adds the distinct minutes of `partition` in the range, one index seek per minute found
/// instead of a scan of every row.
fn add_minutes(
    conn: &Connection,
    partition: Partition,
    from_minute: i64,
    to_minute: i64,
    minutes: &mut BTreeSet<i64>,
) -> Result<(), StoreError> {
    let mut next_minute = conn.prepare_cached(&next_minute_sql(partition))?;
    let mut after = from_minute;
    while let Some(minute) = next_minute
        .query((after, to_minute))?
        .next()?
        .map(|row| row.get::<_, i64>(0))
        .transpose()?
    {
        minutes.insert(minute);
        after = minute + 1;
    }
    Ok(())
}

fn edge_from_row(row: &Row<'_>) -> Result<EdgeRollup, StoreError> {
    Ok(EdgeRollup {
        minute: row.get(0)?,
        key: EdgeKey {
            source: NodeKey::new(node_kind_from_code(row.get(1)?)?, row.get::<_, String>(2)?),
            target: NodeKey::new(node_kind_from_code(row.get(3)?)?, row.get::<_, String>(4)?),
            kind: edge_kind_from_code(row.get(5)?)?,
        },
        source_placement: NodePlacement {
            namespace: row.get(6)?,
            environment: row.get(7)?,
        },
        target_placement: NodePlacement {
            namespace: row.get(8)?,
            environment: row.get(9)?,
        },
        stats: decode_edge_stats(blob(row, 10)?)?,
    })
}

fn operation_from_row(row: &Row<'_>) -> Result<OperationRollup, StoreError> {
    Ok(OperationRollup {
        minute: row.get(0)?,
        service: row.get(1)?,
        operation: row.get(2)?,
        placement: NodePlacement {
            namespace: row.get(3)?,
            environment: row.get(4)?,
        },
        stats: decode_operation_stats(blob(row, 5)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema;

    /// The query plan of `sql`, one step a line.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut statement = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        let nulls = std::iter::repeat_n(rusqlite::types::Null, statement.parameter_count());
        let steps: Vec<String> = statement
            .query_map(rusqlite::params_from_iter(nulls), |row| row.get(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        steps.join("\n")
    }

    #[test]
    fn reads_seek_the_key_index_and_never_sort() {
        let conn = Connection::open_in_memory().expect("open");
        schema::migrate(&conn).expect("migrate");
        let edges = Partition::edge_rollups(7);
        let operations = Partition::operation_rollups(7);
        for partition in [edges, operations] {
            schema::create_partition(&conn, partition, &[]).expect("create partition");
        }
        for sql in [
            select_edges_sql(edges),
            select_operations_sql(operations),
            next_minute_sql(edges),
            next_minute_sql(operations),
        ] {
            let plan = plan(&conn, &sql);
            assert!(
                plan.contains("SEARCH")
                    && plan.contains("INDEX")
                    && plan.contains("(minute>? AND minute<?)"),
                "{sql}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }
}
