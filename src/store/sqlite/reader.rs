//! The read side: trace lookup and search (over span blocks, see [`super::block_read`]) and
//! metric point queries over the hourly partitions, decoding rows back into model types;
//! rollup reads live in [`super::rollups`].
//!
//! Owns [`SqliteReader`]; reads only, through the pool's snapshot transactions.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params_from_iter};

use crate::model::{MetricPoint, Resource, Scope, Span, TraceId};
use crate::store::{MetricQuery, MetricReader, StoreError, TraceQuery, TraceReader, TraceSummary};

use super::block_files::BlockFiles;
use super::codec::{self, Decoder};
use super::codec_metric::decode_point_value;
use super::pool::ReadPool;
use super::schema::{self, Partition, PartitionInfo, PartitionKind, hour_of};
use super::sql_values::blob;
use super::sql_values::{nanos_from_sql, nanos_to_sql};

/// Reads the store. Cheap to clone; clones share one pool of read connections.
#[derive(Debug, Clone)]
pub struct SqliteReader {
    pool: Arc<ReadPool>,
    files: Arc<BlockFiles>,
}

impl SqliteReader {
    pub(super) fn new(pool: ReadPool, files: Arc<BlockFiles>) -> Self {
        Self {
            pool: Arc::new(pool),
            files,
        }
    }

    /// Runs `read` in one snapshot transaction of a pooled connection.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.read(read)
    }
}

impl TraceReader for SqliteReader {
    fn trace(&self, trace_id: TraceId) -> Result<Option<Vec<Span>>, StoreError> {
        self.pool.read(|tx| {
            let parts = super::parts::load(tx)?;
            let mut cache = super::block_read::BlockCache::new(&self.files);
            let spans = super::block_read::trace(tx, &parts, trace_id, &mut cache)?;
            Ok((!spans.is_empty()).then_some(spans))
        })
    }

    fn search_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        if query.finds_nothing() {
            return Ok(Vec::new());
        }
        self.pool
            .read(|tx| super::block_search::search(tx, &self.files, query))
    }

    fn search_trace_spans(
        &self,
        query: &TraceQuery,
        max_spans: usize,
    ) -> Result<Vec<Vec<Span>>, StoreError> {
        self.search_trace_spans_of_each(std::slice::from_ref(query), max_spans)
            .map(|mut each| each.pop().unwrap_or_default())
    }

    /// In one snapshot, walking the blocks once for all the searches: a block several of them
    /// reach is read, and its spans stepped through, once.
    fn search_trace_spans_of_each(
        &self,
        queries: &[TraceQuery],
        max_spans: usize,
    ) -> Result<Vec<Vec<Vec<Span>>>, StoreError> {
        let queries: Vec<&TraceQuery> = queries.iter().collect();
        self.pool
            .read(|tx| super::block_search::search_spans_each(tx, &self.files, &queries, max_spans))
    }
}

impl MetricReader for SqliteReader {
    fn metric_points(&self, query: &MetricQuery) -> Result<Vec<MetricPoint>, StoreError> {
        if query.finds_nothing() {
            return Ok(Vec::new());
        }
        self.pool.read(|tx| {
            let mut refs = RefLoader::default();
            let mut points = Vec::new();
            let last_nanos = query.to_unix_nano - 1;
            for info in partitions_of(tx, PartitionKind::Points, query.from_unix_nano, last_nanos)?
            {
                let remaining = query.limit - points.len();
                if remaining == 0 {
                    break;
                }
                read_points(tx, info.partition, query, remaining, &mut refs, &mut points)?;
            }
            Ok(points)
        })
    }
}

/// Partitions of `kind` whose hour overlaps `first_nanos..=last_nanos`, oldest first.
pub(super) fn partitions_of(
    conn: &Connection,
    kind: PartitionKind,
    first_nanos: u64,
    last_nanos: u64,
) -> Result<Vec<PartitionInfo>, StoreError> {
    partitions_in_hours(conn, kind, hour_of(first_nanos), hour_of(last_nanos))
}

/// Partitions of `kind` whose hour is in `first_hour..=last_hour`, oldest first.
pub(super) fn partitions_in_hours(
    conn: &Connection,
    kind: PartitionKind,
    first_hour: i64,
    last_hour: i64,
) -> Result<Vec<PartitionInfo>, StoreError> {
    Ok(schema::load_partitions(conn)?
        .into_iter()
        .filter(|info| {
            info.partition.kind == kind && (first_hour..=last_hour).contains(&info.partition.hour)
        })
        .collect())
}

const POINT_READ_COLUMNS: &str = "name, time_ns, start_ns, description, unit, resource_id, \
    scope_id, attributes, flags, value";

fn read_points(
    conn: &Connection,
    partition: Partition,
    query: &MetricQuery,
    limit: usize,
    refs: &mut RefLoader,
    points: &mut Vec<MetricPoint>,
) -> Result<(), StoreError> {
    let mut sql = format!(
        "SELECT {POINT_READ_COLUMNS} FROM {} WHERE time_ns >= ? AND time_ns < ?",
        partition.table()
    );
    let mut params = vec![
        Value::Integer(nanos_to_sql(query.from_unix_nano)),
        Value::Integer(nanos_to_sql(query.to_unix_nano)),
    ];
    if let Some(name) = &query.name {
        sql.push_str(" AND name = ?");
        params.push(Value::Text(name.clone()));
    }
    if let Some(service) = &query.service {
        sql.push_str(" AND service = ?");
        params.push(Value::Text(service.clone()));
    }
    sql.push_str(" ORDER BY time_ns, name, row_id LIMIT ?");
    params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        let (resource, scope) = refs.get(conn, row.get(5)?, row.get(6)?)?;
        points.push(MetricPoint {
            resource,
            scope,
            name: row.get(0)?,
            time_unix_nano: nanos_from_sql(row.get(1)?),
            start_time_unix_nano: nanos_from_sql(row.get(2)?),
            description: row.get(3)?,
            unit: row.get(4)?,
            attributes: Decoder::new(blob(row, 7)?).attributes()?,
            flags: row.get(8)?,
            value: decode_point_value(blob(row, 9)?)?,
        });
    }
    Ok(())
}

/// Resources and scopes loaded once per read, shared by the rows that reference them.
#[derive(Default)]
pub(super) struct RefLoader {
    resources: HashMap<i64, Arc<Resource>>,
    scopes: HashMap<i64, Arc<Scope>>,
}

impl RefLoader {
    pub(super) fn get(
        &mut self,
        conn: &Connection,
        resource_id: i64,
        scope_id: i64,
    ) -> Result<(Arc<Resource>, Arc<Scope>), StoreError> {
        if let Entry::Vacant(vacant) = self.resources.entry(resource_id) {
            let body = load_body(conn, "resources", resource_id)?;
            vacant.insert(codec::decode_resource(&body)?);
        }
        if let Entry::Vacant(vacant) = self.scopes.entry(scope_id) {
            let body = load_body(conn, "scopes", scope_id)?;
            vacant.insert(codec::decode_scope(&body)?);
        }
        match (self.resources.get(&resource_id), self.scopes.get(&scope_id)) {
            (Some(resource), Some(scope)) => Ok((Arc::clone(resource), Arc::clone(scope))),
            _ => Err(StoreError::Corrupt("resource or scope vanished".to_owned())),
        }
    }
}

fn load_body(conn: &Connection, table: &'static str, id: i64) -> Result<Vec<u8>, StoreError> {
    conn.prepare_cached(&format!("SELECT body FROM {table} WHERE id = ?1"))?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("row {id} missing from {table}")))
}
