//! Trace search: find the traces with a span matching every filter, newest matching span first,
//! then summarise each trace from all of its spans.
//!
//! Partitions are visited newest first and each query stops as soon as it has produced enough
//! new traces. An attribute filter on a key the partition indexes goes through its attribute
//! table; any other key is checked on the encoded attributes while scanning. Resource
//! attributes are matched once against the (small) resources table. Every value is a bound
//! parameter; SQL text holds only column names, generated table names and constants.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::model::{StatusCode, TraceId};
use crate::store::summary::{SpanBrief, TraceAcc, summaries_newest_first};
use crate::store::{StoreError, TraceQuery, TraceSummary};

use super::codec;
use super::reader::{blob, opt_blob, partitions_of, span_id_from_sql, trace_id_from_sql};
use super::schema::{PartitionInfo, PartitionKind, nanos_from_sql, nanos_to_sql};
use super::spans::row_id_range;

/// Trace ids per `IN (...)` list when summarising.
const SUMMARY_CHUNK: usize = 256;

pub(super) fn search(
    conn: &Connection,
    query: &TraceQuery,
) -> Result<Vec<TraceSummary>, StoreError> {
    let last_nanos = query.to_unix_nano.saturating_sub(1);
    let partitions = partitions_of(conn, PartitionKind::Spans, query.from_unix_nano, last_nanos)?;
    let matching_resources = match &query.attribute {
        Some((key, text)) => resources_matching(conn, key, text)?,
        None => HashSet::new(),
    };
    let mut found = Found::new(query.limit);
    for info in partitions.iter().rev() {
        if found.is_full() {
            break;
        }
        let mut candidates = Vec::new();
        match &query.attribute {
            None => scan(conn, info, query, &Check::Nothing, &found, &mut candidates)?,
            Some((key, text)) => {
                let key_no = info.indexed_keys.iter().position(|indexed| indexed == key);
                if let Some(key_no) = key_no {
                    lookup_indexed(conn, info, query, key_no, text, &found, &mut candidates)?;
                    if !matching_resources.is_empty() {
                        let check = Check::Resources(&matching_resources);
                        scan(conn, info, query, &check, &found, &mut candidates)?;
                    }
                } else {
                    let check = Check::Attribute {
                        key,
                        text,
                        resources: &matching_resources,
                    };
                    scan(conn, info, query, &check, &found, &mut candidates)?;
                }
            }
        }
        found.merge(candidates);
    }
    summarise(conn, &found.trace_ids)
}

/// Trace ids in the order found, never more than `limit`.
struct Found {
    limit: usize,
    trace_ids: Vec<TraceId>,
    seen: HashSet<TraceId>,
}

impl Found {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            trace_ids: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn is_full(&self) -> bool {
        self.trace_ids.len() >= self.limit
    }

    fn num_needed(&self) -> usize {
        self.limit.saturating_sub(self.trace_ids.len())
    }

    /// Adds one partition's candidates `(row id, trace id)` from one or two queries, newest
    /// matching span (highest row id) first.
    fn merge(&mut self, mut candidates: Vec<(i64, TraceId)>) {
        candidates.sort_by_key(|(row_id, _)| std::cmp::Reverse(*row_id));
        for (_, trace_id) in candidates {
            if self.is_full() {
                return;
            }
            if self.seen.insert(trace_id) {
                self.trace_ids.push(trace_id);
            }
        }
    }
}

/// What the scan checks on each row beyond the SQL filters.
enum Check<'a> {
    Nothing,
    /// The span's resource is one of these.
    Resources(&'a HashSet<i64>),
    /// The span has attribute `key` with search text `text`, or its resource is one of these.
    Attribute {
        key: &'a str,
        text: &'a str,
        resources: &'a HashSet<i64>,
    },
}

/// Conditions on the spans table (aliased `s`) of one partition for every filter of `query`
/// but the attribute.
/// The row id range narrows to the microsecond, `start_ns` makes it exact.
fn span_conditions(info: &PartitionInfo, query: &TraceQuery) -> (String, Vec<Value>) {
    let (first_row_id, end_row_id) = row_id_range(
        info.partition.hour,
        query.from_unix_nano,
        query.to_unix_nano,
    );
    let mut sql =
        String::from("s.row_id >= ? AND s.row_id < ? AND s.start_ns >= ? AND s.start_ns < ?");
    let mut params = vec![
        Value::Integer(first_row_id),
        Value::Integer(end_row_id),
        Value::Integer(nanos_to_sql(query.from_unix_nano)),
        Value::Integer(nanos_to_sql(query.to_unix_nano)),
    ];
    if let Some(service) = &query.service {
        sql.push_str(" AND s.service = ?");
        params.push(Value::Text(service.clone()));
    }
    if let Some(operation) = &query.operation {
        sql.push_str(" AND s.name = ?");
        params.push(Value::Text(operation.clone()));
    }
    if let Some(min_nanos) = query.min_duration_nanos {
        sql.push_str(" AND s.duration_ns >= ?");
        params.push(Value::Integer(nanos_to_sql(min_nanos)));
    }
    if let Some(max_nanos) = query.max_duration_nanos {
        sql.push_str(" AND s.duration_ns <= ?");
        params.push(Value::Integer(nanos_to_sql(max_nanos)));
    }
    // A literal (not a parameter) so the planner can use the partial index on error spans.
    match query.error {
        Some(true) => sql.push_str(" AND s.status_code = 2"),
        Some(false) => sql.push_str(" AND s.status_code <> 2"),
        None => {}
    }
    debug_assert_eq!(StatusCode::Error.to_otlp(), 2);
    (sql, params)
}

/// Walks matching spans of one partition newest first until enough new traces are found.
fn scan(
    conn: &Connection,
    info: &PartitionInfo,
    query: &TraceQuery,
    check: &Check<'_>,
    found: &Found,
    candidates: &mut Vec<(i64, TraceId)>,
) -> Result<(), StoreError> {
    let (conditions, params) = span_conditions(info, query);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT s.trace_id, s.row_id, s.resource_id, s.attributes FROM {} AS s \
         WHERE {conditions} ORDER BY s.row_id DESC",
        info.partition.table()
    ))?;
    let mut rows = statement.query(params_from_iter(params))?;
    let num_needed = found.num_needed();
    let mut new_ids = HashSet::new();
    while let Some(row) = rows.next()? {
        let matches = match check {
            Check::Nothing => true,
            Check::Resources(resources) => resources.contains(&row.get(2)?),
            Check::Attribute {
                key,
                text,
                resources,
            } => {
                resources.contains(&row.get(2)?)
                    || codec::attributes_match(blob(row, 3)?, key, text)?
            }
        };
        if !matches {
            continue;
        }
        let trace_id = trace_id_from_sql(blob(row, 0)?)?;
        if !found.seen.contains(&trace_id) && new_ids.insert(trace_id) {
            candidates.push((row.get(1)?, trace_id));
            if new_ids.len() >= num_needed {
                break;
            }
        }
    }
    Ok(())
}

/// Matching spans of one partition through its attribute table, newest first.
fn lookup_indexed(
    conn: &Connection,
    info: &PartitionInfo,
    query: &TraceQuery,
    key_no: usize,
    text: &str,
    found: &Found,
    candidates: &mut Vec<(i64, TraceId)>,
) -> Result<(), StoreError> {
    let (conditions, span_params) = span_conditions(info, query);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT s.trace_id, s.row_id FROM {} AS a JOIN {} AS s ON s.row_id = a.span_row_id \
         WHERE a.key_no = ? AND a.value = ? AND {conditions} ORDER BY a.span_row_id DESC",
        info.partition.attr_table(),
        info.partition.table()
    ))?;
    let mut params = vec![
        Value::Integer(i64::try_from(key_no).unwrap_or(i64::MAX)),
        Value::Text(text.to_owned()),
    ];
    params.extend(span_params);
    let mut rows = statement.query(params_from_iter(params))?;
    let num_needed = found.num_needed();
    let mut new_ids = HashSet::new();
    while let Some(row) = rows.next()? {
        let trace_id = trace_id_from_sql(blob(row, 0)?)?;
        if !found.seen.contains(&trace_id) && new_ids.insert(trace_id) {
            candidates.push((row.get(1)?, trace_id));
            if new_ids.len() >= num_needed {
                break;
            }
        }
    }
    Ok(())
}

fn resources_matching(
    conn: &Connection,
    key: &str,
    text: &str,
) -> Result<HashSet<i64>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT id, body FROM resources")?;
    let mut rows = statement.query(())?;
    let mut ids = HashSet::new();
    while let Some(row) = rows.next()? {
        if codec::resource_attributes_match(blob(row, 1)?, key, text)? {
            ids.insert(row.get(0)?);
        }
    }
    Ok(ids)
}

const BRIEF_COLUMNS: &str =
    "trace_id, span_id, parent_span_id, start_ns, end_ns, service, name, status_code";

/// Reads a row of [`BRIEF_COLUMNS`], returning the trace id with the span.
fn brief_from_row(row: &rusqlite::Row<'_>) -> Result<(TraceId, SpanBrief), StoreError> {
    let brief = SpanBrief {
        span_id: span_id_from_sql(blob(row, 1)?)?,
        is_root: opt_blob(row, 2)?.is_none(),
        start_nanos: nanos_from_sql(row.get(3)?),
        end_nanos: nanos_from_sql(row.get(4)?),
        service: row.get(5)?,
        name: row.get(6)?,
        is_error: row.get::<_, i32>(7)? == StatusCode::Error.to_otlp(),
    };
    Ok((trace_id_from_sql(blob(row, 0)?)?, brief))
}

/// Summaries of `trace_ids` from all their spans in every partition, newest trace first.
fn summarise(conn: &Connection, trace_ids: &[TraceId]) -> Result<Vec<TraceSummary>, StoreError> {
    if trace_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut accs: HashMap<TraceId, TraceAcc> = HashMap::new();
    for info in partitions_of(conn, PartitionKind::Spans, 0, u64::MAX)? {
        for chunk in trace_ids.chunks(SUMMARY_CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {} FROM {} WHERE trace_id IN ({placeholders})",
                BRIEF_COLUMNS,
                info.partition.table()
            ))?;
            let ids = chunk.iter().map(|id| id.as_bytes().as_slice());
            let mut rows = statement.query(params_from_iter(ids))?;
            while let Some(row) = rows.next()? {
                let (trace_id, span) = brief_from_row(row)?;
                accs.entry(trace_id).or_default().add(span);
            }
        }
    }
    Ok(summaries_newest_first(trace_ids, accs))
}
