//! The write side: one connection, one immediate transaction per batch, rows routed to the
//! hourly partition of their timestamp (created on first use).
//!
//! Owns [`SqliteWriter`] and the partition bookkeeping of the write side; rollups are written
//! in [`super::rollups`], retention lives in [`super::retention`]. Never called from more than
//! one thread at a time.

use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::model::{Batch, MetricPoint};
use crate::store::{RetentionPolicy, RetentionReport, StoreError, StoreWriter};

use super::block_files::{BlockCounters, BlockFiles};
use super::blocks::BlockWriter;
use super::checkpoint::Checkpointer;
use super::codec;
use super::codec_metric::encode_point_value;
use super::intern::{InternTable, Interner};
use super::schema::{Partition, add_rows, by_hour, hour_of};
use super::sql_values::nanos_to_sql;
use super::writer_state::{Buffers, CreatedPartitions, RefCache, WriterState, load_partition_set};
use crate::store::batch_codec::EncodedFrame;

/// Writes batches into the store. Created by [`super::open`]; move it onto the writer thread.
pub struct SqliteWriter {
    conn: Connection,
    state: WriterState,
    /// The data directory, whose every file counts against the size budget (`None` in memory).
    dir_opt: Option<PathBuf>,
    counters: Arc<BlockCounters>,
    /// Stopped when the writer is dropped (declared last: dropped after the connection).
    checkpointer: Option<Checkpointer>,
}

impl SqliteWriter {
    pub(super) fn new(
        mut conn: Connection,
        indexed_keys: &[String],
        files: Arc<BlockFiles>,
        dir_opt: Option<PathBuf>,
        checkpointer: Option<Checkpointer>,
    ) -> Result<Self, StoreError> {
        let partitions = load_partition_set(&conn)?;
        let counters = Arc::new(BlockCounters::default());
        let mut blocks = BlockWriter::new(&conn, indexed_keys, files, Arc::clone(&counters))?;
        let num_converted = super::legacy::convert(&mut conn, &mut blocks)?;
        super::legacy::enable_incremental_vacuum(&conn)?;
        if num_converted > 0 {
            tracing::info!(
                num_spans = num_converted,
                "converted the spans of schema v3 to blocks"
            );
        }
        Ok(Self {
            conn,
            dir_opt,
            counters,
            state: WriterState {
                partitions,
                resources: Interner::new(InternTable::Resources),
                scopes: Interner::new(InternTable::Scopes),
                buffers: Buffers::default(),
                blocks,
            },
            checkpointer,
        })
    }

    /// Blocks written and parts sealed since the store was opened.
    pub fn block_counters(&self) -> Arc<BlockCounters> {
        Arc::clone(&self.counters)
    }

    /// Runs `write` in one immediate transaction and commits it, keeping the writer's
    /// bookkeeping true whether it commits or rolls back.
    /// The writer's connection, for reads of what it wrote.
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn write_atomically(
        &mut self,
        write: impl FnOnce(
            &Connection,
            &mut WriterState,
            &mut CreatedPartitions,
        ) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut created = Vec::new();
        let result = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)
            .and_then(|tx| {
                write(&tx, &mut self.state, &mut created)?;
                // Block bodies first: a committed row never points at bytes a crash lost.
                self.state.blocks.files.sync()?;
                tx.commit().map_err(StoreError::from)
            });
        match result {
            Ok(()) => {
                self.state.partitions.extend(created);
                // Committed: a failed truncation must not make the caller write it again.
                if let Some(checkpointer) = &self.checkpointer
                    && let Err(err) = checkpointer.truncate_if_needed(&self.conn)
                {
                    tracing::warn!(error = %err, "sqlite wal truncation failed");
                }
            }
            Err(_) => {
                // The rollback undid any rows the caches now believe are stored.
                self.state.resources.forget_all();
                self.state.scopes.forget_all();
                if let Err(err) = self.state.blocks.reload(&self.conn) {
                    tracing::warn!(error = %err, "cannot reread the span parts after a rollback");
                }
            }
        }
        result
    }
}

impl StoreWriter for SqliteWriter {
    fn write_batch(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write_atomically(|conn, state, created| {
            state.blocks.write_spans(conn, &batch.spans)?;
            write_points(conn, state, &batch.metric_points, created)
        })
    }

    fn write_with_frames(
        &mut self,
        batch: &Batch,
        frames: &[&EncodedFrame],
    ) -> Result<(), StoreError> {
        if batch.is_empty() && frames.is_empty() {
            return Ok(());
        }
        self.write_atomically(|conn, state, created| {
            state.blocks.write_spans(conn, &batch.spans)?;
            state.blocks.write_frames(conn, frames)?;
            write_points(conn, state, &batch.metric_points, created)
        })
    }

    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_unix_nano: u64,
    ) -> Result<RetentionReport, StoreError> {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.fit_budget(&self.conn, policy.max_size_bytes)?;
        }
        let dir_opt = self.dir_opt.as_deref();
        super::retention::apply(
            &mut self.conn,
            &mut self.state,
            dir_opt,
            policy,
            now_unix_nano,
        )
    }
}

const POINT_COLUMNS: &str = "name, service, time_ns, start_ns, description, unit, resource_id, \
    scope_id, attributes, flags, value";

fn write_points(
    conn: &Connection,
    state: &mut WriterState,
    points: &[MetricPoint],
    created: &mut CreatedPartitions,
) -> Result<(), StoreError> {
    let mut refs = RefCache::default();
    for (hour, indexes) in by_hour(points, |point| hour_of(point.time_unix_nano)) {
        let partition = Partition::points(hour);
        state.ensure_partition(conn, partition, created)?;
        let mut insert = conn.prepare_cached(&format!(
            "INSERT INTO {} ({POINT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            partition.table()
        ))?;
        for index in &indexes {
            let point = &points[*index];
            let (resource_id, scope_id) =
                state.refs(conn, &mut refs, &point.resource, &point.scope, hour)?;
            let buffers = &mut state.buffers;
            buffers.attributes.clear();
            codec::put_attributes(&mut buffers.attributes, &point.attributes);
            buffers.value.clear();
            encode_point_value(&mut buffers.value, &point.value);
            insert.execute(params![
                point.name,
                point.service_name(),
                nanos_to_sql(point.time_unix_nano),
                nanos_to_sql(point.start_time_unix_nano),
                point.description,
                point.unit,
                resource_id,
                scope_id,
                buffers.attributes,
                point.flags,
                buffers.value,
            ])?;
        }
        add_rows(conn, partition, indexes.len() as u64)?;
    }
    Ok(())
}
