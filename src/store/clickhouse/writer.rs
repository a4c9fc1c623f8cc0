//! Writes: spans (with their trace-time index rows) and metric points of a batch, rollups,
//! and retention by age and size.

use std::sync::Arc;

use tracing::warn;

use super::Shared;
use super::buckets::{PendingBuckets, delete_sets_before, write_set};
use super::reader::ClickHouseReader;
use super::rows::{EdgeRollupRow, OperationRollupRow, PointRow, SpanRow, TraceTimeRow};
use crate::model::graph::{EdgeRollup, OperationRollup};
use crate::model::{Batch, MinuteRange, NANOS_PER_MINUTE};
use crate::store::{
    Instances, MAX_ROLLUP_MINUTE, RetentionPolicy, RetentionReport, RollupWriter, StoreError,
    StoreWriter,
};

const NANOS_PER_HOUR: u64 = 3_600_000_000_000;

/// The writer half. Contract deviations from SQLite, by nature of the engine: a batch is
/// several inserts, not one transaction — a failed batch may be partly stored, and its retry
/// stores the rest; rows are idempotent (re-sent spans, points and rollups collapse), so the
/// retried batch still reads as stored once.
#[derive(Debug)]
pub struct ClickHouseWriter {
    shared: Arc<Shared>,
    /// Buckets whose ten-minute set this writer owes (see [`super::buckets`]).
    pending: PendingBuckets,
}

/// Tables retention works on: name, time column, whether rows collapse (read with FINAL).
const TIMED_TABLES: [(&str, &str, bool); 3] = [
    ("spans", "start_time_unix_nano", true),
    ("trace_times", "start_time_unix_nano", false),
    ("metric_points", "time_unix_nano", true),
];
const ROLLUP_TABLES: [&str; 2] = ["edge_rollups", "operation_rollups"];

impl ClickHouseWriter {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            pending: PendingBuckets::default(),
        }
    }

    fn count(
        &self,
        table: &str,
        collapsing: bool,
        condition: &str,
        bound: u64,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT count() FROM {}{} WHERE {condition}",
            self.shared.table(table),
            if collapsing { " FINAL" } else { "" }
        );
        let client = self.shared.client.clone();
        self.shared
            .block(async move { client.query(&sql).bind(bound).fetch_one::<u64>().await })
    }

    fn delete(&self, table: &str, condition: &str, bound: u64) -> Result<(), StoreError> {
        let sql = format!(
            "ALTER TABLE {} DELETE WHERE {condition}",
            self.shared.local_table(table)
        );
        let client = self.shared.client.clone();
        self.shared.block(async move {
            client
                .query(&sql)
                .bind(bound)
                .with_setting("mutations_sync", "2")
                .execute()
                .await
        })
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        let client = self.shared.client.clone();
        let database = self.shared.database.clone();
        self.shared.block(async move {
            client
                .query(
                    "SELECT toUInt64(sum(bytes_on_disk)) FROM system.parts \
                     WHERE database = ? AND active",
                )
                .bind(database)
                .fetch_one::<u64>()
                .await
        })
    }

    /// Deletes everything older than `cutoff` (nanoseconds); returns (spans, points, rollups).
    fn delete_before(&self, cutoff: u64) -> Result<(u64, u64, u64), StoreError> {
        let mut deleted = [0u64; 3];
        for (index, (table, column, collapsing)) in TIMED_TABLES.iter().enumerate() {
            let condition = format!("{column} < ?");
            let num = self.count(table, *collapsing, &condition, cutoff)?;
            if num > 0 {
                self.delete(table, &condition, cutoff)?;
            }
            deleted[index] = num;
        }
        // A rollup is older than the cutoff when its whole minute is.
        let cutoff_minute = cutoff / NANOS_PER_MINUTE;
        let mut rollups = 0;
        for table in ROLLUP_TABLES {
            let num = self.count(table, true, "minute < ?", cutoff_minute)?;
            if num > 0 {
                self.delete(table, "minute < ?", cutoff_minute)?;
            }
            rollups += num;
        }
        // Sets are derived from the minutes: they are not counted.
        delete_sets_before(&self.shared, cutoff_minute)?;
        Ok((deleted[0], deleted[2], rollups))
    }

    /// The start of the oldest hour holding any data, if any.
    fn oldest_hour(&self) -> Result<Option<u64>, StoreError> {
        let sql = format!(
            "SELECT min(t) FROM (\
             SELECT min(start_time_unix_nano) AS t FROM {spans} \
             UNION ALL SELECT min(time_unix_nano) FROM {points} \
             UNION ALL SELECT toUInt64(min(minute)) * 60000000000 FROM {edges} \
             UNION ALL SELECT toUInt64(min(minute)) * 60000000000 FROM {operations}) WHERE t > 0",
            spans = self.shared.table("spans"),
            points = self.shared.table("metric_points"),
            edges = self.shared.table("edge_rollups"),
            operations = self.shared.table("operation_rollups"),
        );
        let client = self.shared.client.clone();
        let oldest = self
            .shared
            .block(async move { client.query(&sql).fetch_one::<u64>().await })?;
        Ok((oldest > 0).then(|| oldest - oldest % NANOS_PER_HOUR))
    }

    /// Writes the ten-minute sets now due after `edges` were stored. A set that cannot be
    /// written stays owed: reads take its minutes meanwhile, and the rollups are stored.
    fn write_due_sets(&mut self, instance: u32, edges: &[EdgeRollup]) {
        let due = self
            .pending
            .stored(instance, edges.iter().map(|rollup| rollup.minute));
        for bucket in due {
            match write_set(&self.shared, instance, bucket) {
                Ok(()) => self.pending.written(instance, bucket),
                Err(err) => warn!(bucket, error = %err, "cannot write a ten-minute set of rollups"),
            }
        }
    }
}

impl StoreWriter for ClickHouseWriter {
    fn write_batch(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let spans = batch
            .spans
            .iter()
            .map(SpanRow::from_span)
            .collect::<Result<Vec<_>, _>>()?;
        let times: Vec<TraceTimeRow> = spans
            .iter()
            .map(|row| TraceTimeRow {
                trace_id: row.trace_id,
                start_time_unix_nano: row.start_time_unix_nano,
            })
            .collect();
        let points = batch
            .metric_points
            .iter()
            .map(PointRow::from_point)
            .collect::<Result<Vec<_>, _>>()?;
        // Trace times first: a span is never visible without the row that finds it.
        self.shared.insert("trace_times", &times)?;
        self.shared.insert("spans", &spans)?;
        self.shared.insert("metric_points", &points)
    }

    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_unix_nano: u64,
    ) -> Result<RetentionReport, StoreError> {
        let max_age = u64::try_from(policy.max_age.as_nanos()).unwrap_or(u64::MAX);
        let cutoff = now_unix_nano.saturating_sub(max_age);
        let (mut spans, mut points, mut rollups) = self.delete_before(cutoff)?;
        let mut size = self.size_bytes()?;
        while size > policy.max_size_bytes {
            let Some(oldest) = self.oldest_hour()? else {
                break;
            };
            let (more_spans, more_points, more_rollups) =
                self.delete_before(oldest + NANOS_PER_HOUR)?;
            spans += more_spans;
            points += more_points;
            rollups += more_rollups;
            size = self.size_bytes()?;
            if more_spans + more_points + more_rollups == 0 {
                break;
            }
        }
        Ok(RetentionReport {
            num_spans_deleted: spans,
            num_metric_points_deleted: points,
            num_rollups_deleted: rollups,
            size_bytes: size,
            num_spans_kept: 0,
        })
    }
}

impl RollupWriter for ClickHouseWriter {
    fn write_rollups(
        &mut self,
        instance: u32,
        edges: &[EdgeRollup],
        operations: &[OperationRollup],
    ) -> Result<(), StoreError> {
        let out_of_range = edges
            .iter()
            .map(|rollup| rollup.minute)
            .chain(operations.iter().map(|rollup| rollup.minute))
            .find(|minute| !(0..=MAX_ROLLUP_MINUTE).contains(minute));
        if let Some(minute) = out_of_range {
            return Err(StoreError::InvalidData(format!(
                "rollup minute {minute} is outside 0..={MAX_ROLLUP_MINUTE}"
            )));
        }
        // Later rows of one call win: each gets a later version.
        let base = crate::model::now_unix_nano();
        let edge_rows = edges
            .iter()
            .enumerate()
            .map(|(index, rollup)| EdgeRollupRow::new(instance, rollup, base + index as u64))
            .collect::<Result<Vec<_>, _>>()?;
        let operation_rows = operations
            .iter()
            .enumerate()
            .map(|(index, rollup)| OperationRollupRow::new(instance, rollup, base + index as u64))
            .collect::<Result<Vec<_>, _>>()?;
        self.shared.insert("edge_rollups", &edge_rows)?;
        self.shared.insert("operation_rollups", &operation_rows)?;
        self.write_due_sets(instance, edges);
        Ok(())
    }

    fn instance_rollups(
        &mut self,
        instance: u32,
        range: MinuteRange,
    ) -> Result<(Vec<EdgeRollup>, Vec<OperationRollup>), StoreError> {
        let reader = ClickHouseReader::new(Arc::clone(&self.shared));
        let edges = reader.edges_of(range, Instances::Only(instance), None)?;
        let operations = reader.operations_of(range, None, Instances::Only(instance))?;
        Ok((edges, operations))
    }
}
