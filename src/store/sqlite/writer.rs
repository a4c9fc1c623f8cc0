//! The write side: one connection, one immediate transaction per batch, rows routed to the
//! hourly partition of their timestamp (created on first use).
//!
//! Owns [`SqliteWriter`] and the partition bookkeeping of the write side; retention lives in
//! [`super::retention`]. Never called from more than one thread at a time.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::model::{Batch, MetricPoint, Resource, Scope, Span};
use crate::store::{RetentionPolicy, RetentionReport, StoreError, StoreWriter};

use super::checkpoint::Checkpointer;
use super::codec::{self, put_varint};
use super::codec_metric::encode_point_value;
use super::intern::{InternTable, Interner};
use super::schema::{self, Partition, PartitionKind, hour_of, nanos_to_sql};

/// Writes batches into the store. Created by [`super::open`]; move it onto the writer thread.
pub struct SqliteWriter {
    conn: Connection,
    state: WriterState,
    /// Stopped when the writer is dropped (declared last: dropped after the connection).
    _checkpointer: Option<Checkpointer>,
}

/// Everything of the writer except its connection, so a transaction on the connection and
/// mutable state can be borrowed at once.
pub(super) struct WriterState {
    /// Keys that new span partitions index.
    indexed_keys: Arc<KeyNumbers>,
    /// Existing partitions with the keys each one indexes.
    pub(super) partitions: HashMap<Partition, Arc<KeyNumbers>>,
    pub(super) resources: Interner,
    pub(super) scopes: Interner,
    buffers: Buffers,
}

/// The attribute keys one span partition indexes, by key number.
#[derive(Debug, Default)]
pub(super) struct KeyNumbers {
    keys: Vec<String>,
    numbers: HashMap<String, i64>,
}

impl KeyNumbers {
    pub(super) fn new(keys: &[String]) -> Self {
        let mut unique: Vec<String> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(key) {
                unique.push(key.clone());
            }
        }
        let numbers = (0_i64..)
            .zip(&unique)
            .map(|(no, key)| (key.clone(), no))
            .collect();
        Self {
            keys: unique,
            numbers,
        }
    }

    fn number(&self, key: &str) -> Option<i64> {
        self.numbers.get(key).copied()
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[derive(Default)]
struct Buffers {
    attributes: Vec<u8>,
    events: Vec<u8>,
    links: Vec<u8>,
    dropped: Vec<u8>,
    value: Vec<u8>,
    body: Vec<u8>,
}

impl SqliteWriter {
    pub(super) fn new(
        conn: Connection,
        indexed_keys: &[String],
        checkpointer: Option<Checkpointer>,
    ) -> Result<Self, StoreError> {
        let partitions = load_partition_keys(&conn)?;
        Ok(Self {
            conn,
            state: WriterState {
                indexed_keys: Arc::new(KeyNumbers::new(indexed_keys)),
                partitions,
                resources: Interner::new(InternTable::Resources),
                scopes: Interner::new(InternTable::Scopes),
                buffers: Buffers::default(),
            },
            _checkpointer: checkpointer,
        })
    }

    fn write_in_transaction(
        &mut self,
        batch: &Batch,
        created: &mut Vec<(Partition, Arc<KeyNumbers>)>,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_spans(&tx, &mut self.state, &batch.spans, created)?;
        write_points(&tx, &mut self.state, &batch.metric_points, created)?;
        tx.commit()?;
        Ok(())
    }
}

impl StoreWriter for SqliteWriter {
    fn write_batch(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut created = Vec::new();
        match self.write_in_transaction(batch, &mut created) {
            Ok(()) => {
                self.state.partitions.extend(created);
                Ok(())
            }
            Err(err) => {
                // The rollback undid any rows the caches now believe are stored.
                self.state.resources.forget_all();
                self.state.scopes.forget_all();
                Err(err)
            }
        }
    }

    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_unix_nano: u64,
    ) -> Result<RetentionReport, StoreError> {
        super::retention::apply(&mut self.conn, &mut self.state, policy, now_unix_nano)
    }
}

/// The catalogue as the writer keeps it: every partition with the keys it indexes.
pub(super) fn load_partition_keys(
    conn: &Connection,
) -> Result<HashMap<Partition, Arc<KeyNumbers>>, StoreError> {
    Ok(schema::load_partitions(conn)?
        .into_iter()
        .map(|info| {
            (
                info.partition,
                Arc::new(KeyNumbers::new(&info.indexed_keys)),
            )
        })
        .collect())
}

impl WriterState {
    /// The key numbers of `partition`, creating its tables inside `conn`'s transaction when new.
    fn ensure_partition(
        &self,
        conn: &Connection,
        partition: Partition,
        created: &mut Vec<(Partition, Arc<KeyNumbers>)>,
    ) -> Result<Arc<KeyNumbers>, StoreError> {
        let existing = self.partitions.get(&partition).or_else(|| {
            created
                .iter()
                .find(|(p, _)| *p == partition)
                .map(|(_, k)| k)
        });
        if let Some(keys) = existing {
            return Ok(Arc::clone(keys));
        }
        let keys = match partition.kind {
            PartitionKind::Spans => Arc::clone(&self.indexed_keys),
            PartitionKind::Points => Arc::new(KeyNumbers::default()),
        };
        schema::create_partition(conn, partition, &keys.keys)?;
        created.push((partition, Arc::clone(&keys)));
        Ok(keys)
    }

    /// Interns the resource and scope shared by many rows, once per distinct `Arc` per batch.
    fn refs(
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
struct RefCache {
    resources: HashMap<*const Resource, i64>,
    scopes: HashMap<*const Scope, i64>,
}

/// Indexes of `items` grouped by partition hour, hours ascending, input order kept inside.
fn by_hour<T>(items: &[T], time_nanos: impl Fn(&T) -> u64) -> Vec<(i64, Vec<usize>)> {
    let mut order: Vec<(i64, usize)> = items
        .iter()
        .enumerate()
        .map(|(index, item)| (hour_of(time_nanos(item)), index))
        .collect();
    order.sort_unstable();
    order
        .chunk_by(|left, right| left.0 == right.0)
        .map(|group| (group[0].0, group.iter().map(|(_, index)| *index).collect()))
        .collect()
}

fn add_rows(conn: &Connection, partition: Partition, num_rows: u64) -> Result<(), StoreError> {
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

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, start_ns, end_ns, duration_ns, \
    service, name, kind, status_code, status_message, trace_state, flags, resource_id, scope_id, \
    attributes, events, links, dropped_counts";

fn write_spans(
    conn: &Connection,
    state: &mut WriterState,
    spans: &[Span],
    created: &mut Vec<(Partition, Arc<KeyNumbers>)>,
) -> Result<(), StoreError> {
    let mut refs = RefCache::default();
    for (hour, indexes) in by_hour(spans, |span| span.start_time_unix_nano) {
        let partition = Partition::spans(hour);
        let keys = state.ensure_partition(conn, partition, created)?;
        let mut insert = conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {} ({SPAN_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            partition.table()
        ))?;
        let mut insert_attr = conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {} (key_no, value, span_row_id) VALUES (?1, ?2, ?3)",
            partition.attr_table()
        ))?;
        let mut num_inserted = 0;
        for index in indexes {
            let span = &spans[index];
            let (resource_id, scope_id) =
                state.refs(conn, &mut refs, &span.resource, &span.scope, hour)?;
            encode_span_parts(&mut state.buffers, span);
            let buffers = &state.buffers;
            let num_changed = insert.execute(params![
                span.trace_id.as_bytes(),
                span.span_id.as_bytes(),
                span.parent_span_id.as_ref().map(|id| id.as_bytes()),
                nanos_to_sql(span.start_time_unix_nano),
                nanos_to_sql(span.end_time_unix_nano),
                nanos_to_sql(span.duration_nanos()),
                span.service_name(),
                span.name,
                span.kind.to_otlp(),
                span.status_code.to_otlp(),
                span.status_message,
                span.trace_state,
                span.flags,
                resource_id,
                scope_id,
                buffers.attributes,
                non_empty(&buffers.events),
                non_empty(&buffers.links),
                non_empty(&buffers.dropped),
            ])?;
            if num_changed == 0 {
                continue;
            }
            num_inserted += 1;
            if !keys.is_empty() {
                let row_id = conn.last_insert_rowid();
                for (key, value) in &span.attributes {
                    if let (Some(key_no), Some(text)) = (keys.number(key), value.to_search_text()) {
                        insert_attr.execute((key_no, text, row_id))?;
                    }
                }
            }
        }
        add_rows(conn, partition, num_inserted)?;
    }
    Ok(())
}

fn non_empty(bytes: &[u8]) -> Option<&[u8]> {
    (!bytes.is_empty()).then_some(bytes)
}

/// Fills the buffers with the span's encoded parts; an empty buffer stands for NULL.
fn encode_span_parts(buffers: &mut Buffers, span: &Span) {
    buffers.attributes.clear();
    codec::put_attributes(&mut buffers.attributes, &span.attributes);
    buffers.events.clear();
    if !span.events.is_empty() {
        codec::encode_events(&mut buffers.events, &span.events);
    }
    buffers.links.clear();
    if !span.links.is_empty() {
        codec::encode_links(&mut buffers.links, &span.links);
    }
    buffers.dropped.clear();
    let dropped = [
        span.dropped_attributes_count,
        span.dropped_events_count,
        span.dropped_links_count,
    ];
    if dropped.iter().any(|count| *count != 0) {
        for count in dropped {
            put_varint(&mut buffers.dropped, u64::from(count));
        }
    }
}

const POINT_COLUMNS: &str = "name, service, time_ns, start_ns, description, unit, resource_id, \
    scope_id, attributes, flags, value";

fn write_points(
    conn: &Connection,
    state: &mut WriterState,
    points: &[MetricPoint],
    created: &mut Vec<(Partition, Arc<KeyNumbers>)>,
) -> Result<(), StoreError> {
    let mut refs = RefCache::default();
    for (hour, indexes) in by_hour(points, |point| point.time_unix_nano) {
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
