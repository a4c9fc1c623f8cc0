//! The write side: one connection, one immediate transaction per batch, rows routed to the
//! hourly partition of their timestamp (created on first use).
//!
//! Owns [`SqliteWriter`] and the partition bookkeeping of the write side; rollups are written
//! in [`super::rollups`], retention lives in [`super::retention`]. Never called from more than
//! one thread at a time.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::model::{Batch, MetricPoint, Resource, Scope};
use crate::store::{RetentionPolicy, RetentionReport, StoreError, StoreWriter};

use super::block_files::{BlockCounters, BlockFiles};
use super::blocks::BlockWriter;
use super::checkpoint::Checkpointer;
use super::codec;
use super::codec_metric::encode_point_value;
use super::intern::{InternTable, Interner};
use super::schema::{self, Partition, hour_of, nanos_to_sql};
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

/// Everything of the writer except its connection, so a transaction on the connection and
/// mutable state can be borrowed at once.
pub(super) struct WriterState {
    /// Existing point and rollup partitions.
    pub(super) partitions: HashSet<Partition>,
    pub(super) resources: Interner,
    pub(super) scopes: Interner,
    pub(super) buffers: Buffers,
    /// Span blocks and the parts they go to.
    pub(super) blocks: BlockWriter,
}

/// Encoding buffers reused from row to row.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) attributes: Vec<u8>,
    pub(super) value: Vec<u8>,
    pub(super) body: Vec<u8>,
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

/// Partitions created by a transaction not yet committed.
pub(super) type CreatedPartitions = Vec<Partition>;

/// The catalogue as the writer keeps it.
pub(super) fn load_partition_set(conn: &Connection) -> Result<HashSet<Partition>, StoreError> {
    Ok(schema::load_partitions(conn)?
        .into_iter()
        .map(|info| info.partition)
        .collect())
}

impl WriterState {
    /// Creates `partition`'s table inside `conn`'s transaction when new.
    pub(super) fn ensure_partition(
        &self,
        conn: &Connection,
        partition: Partition,
        created: &mut CreatedPartitions,
    ) -> Result<(), StoreError> {
        if self.partitions.contains(&partition) || created.contains(&partition) {
            return Ok(());
        }
        schema::create_partition(conn, partition, &[])?;
        created.push(partition);
        Ok(())
    }

    /// Interns the resource and scope shared by many rows, once per distinct `Arc` per batch.
    pub(super) fn refs(
        &mut self,
        conn: &Connection,
        cache: &mut RefCache,
        resource: &Arc<Resource>,
        scope: &Arc<Scope>,
        hour: i64,
    ) -> Result<(i64, i64), StoreError> {
        let resource_key = Arc::as_ptr(resource);
        let resource_id = match cache.resources.get(&resource_key) {
            Some(&id) => {
                self.resources.touch(conn, id, hour)?;
                id
            }
            None => {
                let body = &mut self.buffers.body;
                body.clear();
                codec::encode_resource(body, resource);
                let id = self.resources.intern(conn, body, hour)?;
                cache.resources.insert(resource_key, id);
                id
            }
        };
        let scope_key = Arc::as_ptr(scope);
        let scope_id = match cache.scopes.get(&scope_key) {
            Some(&id) => {
                self.scopes.touch(conn, id, hour)?;
                id
            }
            None => {
                let body = &mut self.buffers.body;
                body.clear();
                codec::encode_scope(body, scope);
                let id = self.scopes.intern(conn, body, hour)?;
                cache.scopes.insert(scope_key, id);
                id
            }
        };
        Ok((resource_id, scope_id))
    }
}

/// Ids of the resources and scopes already interned in this batch, keyed by `Arc` address
/// (the batch keeps every `Arc` alive, so addresses are not reused meanwhile).
#[derive(Default)]
pub(super) struct RefCache {
    resources: HashMap<*const Resource, i64>,
    scopes: HashMap<*const Scope, i64>,
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
