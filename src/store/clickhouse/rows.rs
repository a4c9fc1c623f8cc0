//! The rows of each table as the `clickhouse` crate reads and writes them (RowBinary), and the
//! exact payloads (postcard) that make spans, points and rollups round-trip unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::model::graph::{EdgeKey, EdgeRollup, NodeKey, NodePlacement, OperationRollup};
use crate::model::{
    Attributes, Event, Link, MetricPoint, Resource, Scope, Span, SpanId, SpanKind, StatusCode,
    TraceId,
};
use crate::store::StoreError;
use crate::store::edge_sums::{EdgeKeyRef, PlacementRef};
use crate::store::sqlite::codec_metric::{decode_point_value, encode_point_value};
use crate::store::sqlite::codec_rollup::{
    decode_edge_stats, decode_operation_stats, encode_edge_stats_with, encode_operation_stats,
};
use crate::store::sqlite::codec_splits::{decode_splits, encode_splits};

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("clickhouse {what}: {err}"))
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|err| StoreError::InvalidData(err.to_string()))
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct SpanRow {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub service: String,
    pub name: String,
    pub start_time_unix_nano: u64,
    pub duration_nanos: u64,
    pub is_error: u8,
    pub attributes: BTreeMap<String, String>,
    pub resource_attributes: BTreeMap<String, String>,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// The version ReplacingMergeTree keeps the largest of: the first copy stored wins.
    pub keep_first: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct TraceTimeRow {
    pub trace_id: [u8; 16],
    pub start_time_unix_nano: u64,
}

/// What a span row's payload holds: everything the columns do not.
#[derive(Serialize)]
struct SpanBodyOut<'a> {
    resource: &'a Resource,
    scope: &'a Scope,
    parent_span_id: Option<[u8; 8]>,
    trace_state: &'a str,
    flags: u32,
    kind: SpanKind,
    end_time_unix_nano: u64,
    attributes: &'a Attributes,
    dropped_attributes_count: u32,
    events: &'a [Event],
    dropped_events_count: u32,
    links: Vec<LinkBody>,
    dropped_links_count: u32,
    status_code: StatusCode,
    status_message: &'a str,
}

#[derive(Deserialize)]
struct SpanBodyIn {
    resource: Resource,
    scope: Scope,
    parent_span_id: Option<[u8; 8]>,
    trace_state: String,
    flags: u32,
    kind: SpanKind,
    end_time_unix_nano: u64,
    attributes: Attributes,
    dropped_attributes_count: u32,
    events: Vec<Event>,
    dropped_events_count: u32,
    links: Vec<LinkBody>,
    dropped_links_count: u32,
    status_code: StatusCode,
    status_message: String,
}

#[derive(Serialize, Deserialize)]
struct LinkBody {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    trace_state: String,
    attributes: Attributes,
    dropped_attributes_count: u32,
    flags: u32,
}

/// `key → search text` of attributes (values without a search form are left out).
pub fn search_map(attributes: &Attributes) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), value.to_search_text()?)))
        .collect()
}

impl SpanRow {
    pub fn from_span(span: &Span) -> Result<Self, StoreError> {
        let body = SpanBodyOut {
            resource: &span.resource,
            scope: &span.scope,
            parent_span_id: span.parent_span_id.map(|id| *id.as_bytes()),
            trace_state: &span.trace_state,
            flags: span.flags,
            kind: span.kind,
            end_time_unix_nano: span.end_time_unix_nano,
            attributes: &span.attributes,
            dropped_attributes_count: span.dropped_attributes_count,
            events: &span.events,
            dropped_events_count: span.dropped_events_count,
            links: span
                .links
                .iter()
                .map(|link| LinkBody {
                    trace_id: *link.trace_id.as_bytes(),
                    span_id: *link.span_id.as_bytes(),
                    trace_state: link.trace_state.clone(),
                    attributes: link.attributes.clone(),
                    dropped_attributes_count: link.dropped_attributes_count,
                    flags: link.flags,
                })
                .collect(),
            dropped_links_count: span.dropped_links_count,
            status_code: span.status_code,
            status_message: &span.status_message,
        };
        Ok(SpanRow {
            trace_id: *span.trace_id.as_bytes(),
            span_id: *span.span_id.as_bytes(),
            service: span.service_name().to_owned(),
            name: span.name.clone(),
            start_time_unix_nano: span.start_time_unix_nano,
            duration_nanos: span.duration_nanos(),
            is_error: u8::from(span.is_error()),
            attributes: search_map(&span.attributes),
            resource_attributes: search_map(&span.resource.attributes),
            payload: encode(&body)?,
            keep_first: u64::MAX - crate::model::now_unix_nano(),
        })
    }

    pub fn into_span(self) -> Result<Span, StoreError> {
        let body: SpanBodyIn =
            postcard::from_bytes(&self.payload).map_err(|err| corrupt("span payload", err))?;
        let links = body
            .links
            .into_iter()
            .map(|link| {
                Ok(Link {
                    trace_id: TraceId::from_bytes(&link.trace_id)
                        .map_err(|err| corrupt("link trace id", err))?,
                    span_id: SpanId::from_bytes(&link.span_id)
                        .map_err(|err| corrupt("link span id", err))?,
                    trace_state: link.trace_state,
                    attributes: link.attributes,
                    dropped_attributes_count: link.dropped_attributes_count,
                    flags: link.flags,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Span {
            resource: Arc::new(body.resource),
            scope: Arc::new(body.scope),
            trace_id: TraceId::from_bytes(&self.trace_id)
                .map_err(|err| corrupt("trace id", err))?,
            span_id: SpanId::from_bytes(&self.span_id).map_err(|err| corrupt("span id", err))?,
            parent_span_id: body
                .parent_span_id
                .map(|bytes| SpanId::from_bytes(&bytes))
                .transpose()
                .map_err(|err| corrupt("parent span id", err))?,
            trace_state: body.trace_state,
            flags: body.flags,
            name: self.name,
            kind: body.kind,
            start_time_unix_nano: self.start_time_unix_nano,
            end_time_unix_nano: body.end_time_unix_nano,
            attributes: body.attributes,
            dropped_attributes_count: body.dropped_attributes_count,
            events: body.events,
            dropped_events_count: body.dropped_events_count,
            links,
            dropped_links_count: body.dropped_links_count,
            status_code: body.status_code,
            status_message: body.status_message,
        })
    }
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct PointRow {
    pub name: String,
    pub service: String,
    pub time_unix_nano: u64,
    pub point_id: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

#[derive(Serialize)]
struct PointBodyOut<'a> {
    resource: &'a Resource,
    scope: &'a Scope,
    description: &'a str,
    unit: &'a str,
    start_time_unix_nano: u64,
    attributes: &'a Attributes,
    flags: u32,
    /// The value in the SQLite backend's exact encoding.
    #[serde(with = "serde_bytes")]
    value: &'a [u8],
}

#[derive(Deserialize)]
struct PointBodyIn {
    resource: Resource,
    scope: Scope,
    description: String,
    unit: String,
    start_time_unix_nano: u64,
    attributes: Attributes,
    flags: u32,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

/// FNV-1a over the payload: the identity that makes a re-sent point collapse.
fn point_id(name: &str, time: u64, payload: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name
        .bytes()
        .chain(time.to_le_bytes())
        .chain(payload.iter().copied())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl PointRow {
    pub fn from_point(point: &MetricPoint) -> Result<Self, StoreError> {
        let mut value = Vec::new();
        encode_point_value(&mut value, &point.value);
        let payload = encode(&PointBodyOut {
            resource: &point.resource,
            scope: &point.scope,
            description: &point.description,
            unit: &point.unit,
            start_time_unix_nano: point.start_time_unix_nano,
            attributes: &point.attributes,
            flags: point.flags,
            value: &value,
        })?;
        Ok(PointRow {
            point_id: point_id(&point.name, point.time_unix_nano, &payload),
            name: point.name.clone(),
            service: point.service_name().to_owned(),
            time_unix_nano: point.time_unix_nano,
            payload,
        })
    }

    pub fn into_point(self) -> Result<MetricPoint, StoreError> {
        let body: PointBodyIn =
            postcard::from_bytes(&self.payload).map_err(|err| corrupt("point payload", err))?;
        Ok(MetricPoint {
            resource: Arc::new(body.resource),
            scope: Arc::new(body.scope),
            name: self.name,
            description: body.description,
            unit: body.unit,
            start_time_unix_nano: body.start_time_unix_nano,
            time_unix_nano: self.time_unix_nano,
            attributes: body.attributes,
            flags: body.flags,
            value: decode_point_value(&body.value)?,
        })
    }
}

#[derive(Serialize)]
struct EdgeRollupBody<'a> {
    key: &'a EdgeKey,
    source_placement: &'a NodePlacement,
    target_placement: &'a NodePlacement,
    #[serde(with = "serde_bytes")]
    stats: &'a [u8],
}

/// Read borrowing the stats from the row's payload (an hour of a mesh is 100k+ of them).
#[derive(Deserialize)]
struct EdgeRollupBodyIn<'a> {
    key: EdgeKey,
    source_placement: NodePlacement,
    target_placement: NodePlacement,
    #[serde(borrow)]
    stats: &'a [u8],
}

/// An edge rollup's payload read in place: nothing copied (the map's totals read an hour of
/// a mesh, 100k+ of them, to keep one key and one pair of placements per edge). Reads what
/// [`EdgeRollupBody`] writes, field for field.
#[derive(Deserialize)]
pub struct EdgeRollupBodyRef<'a> {
    #[serde(borrow)]
    pub key: EdgeKeyRef<'a>,
    #[serde(borrow)]
    pub source_placement: PlacementRef<'a>,
    #[serde(borrow)]
    pub target_placement: PlacementRef<'a>,
    pub stats: &'a [u8],
}

impl EdgeRollupBodyRef<'_> {
    pub fn parse(payload: &[u8]) -> Result<EdgeRollupBodyRef<'_>, StoreError> {
        postcard::from_bytes(payload).map_err(|err| corrupt("edge rollup payload", err))
    }
}

#[derive(Serialize)]
struct OperationRollupBody<'a> {
    placement: &'a NodePlacement,
    #[serde(with = "serde_bytes")]
    stats: &'a [u8],
}

#[derive(Deserialize)]
struct OperationRollupBodyIn<'a> {
    placement: NodePlacement,
    #[serde(borrow)]
    stats: &'a [u8],
}

/// How the `key` column of the edges from `source` to `target` starts (the edge kind
/// follows): `source id NUL target id NUL`, each id with its NULs (and the escape byte 0x01)
/// escaped, so that two edges never share a key: rows of one minute and instance with equal
/// keys collapse into one. Ids without either byte (every real one) are as they were before
/// the escape.
pub fn edge_key_prefix(source: &NodeKey, target: &NodeKey) -> String {
    let escaped = |id: String| {
        if id.contains(['\u{0}', '\u{1}']) {
            id.replace('\u{1}', "\u{1}\u{2}")
                .replace('\u{0}', "\u{1}\u{3}")
        } else {
            id
        }
    };
    format!("{}\u{0}{}\u{0}", escaped(source.id()), escaped(target.id()))
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct EdgeRollupRow {
    pub minute: i64,
    pub instance: u32,
    pub key: String,
    pub num_requests: u64,
    pub num_errors: u64,
    pub written_at: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// The operation splits ([`encode_splits`]), apart from the rest of the stats so that the
    /// map's totals need not read them; empty in rows written before the column (their
    /// splits are in `payload`).
    #[serde(with = "serde_bytes")]
    pub operations: Vec<u8>,
}

impl EdgeRollupRow {
    pub fn new(instance: u32, rollup: &EdgeRollup, written_at: u64) -> Result<Self, StoreError> {
        Ok(EdgeRollupRow {
            minute: rollup.minute,
            instance,
            // Order of keys as EdgeKey's Ord is not needed here: reads sort in Rust.
            key: format!(
                "{}{}",
                edge_key_prefix(&rollup.key.source, &rollup.key.target),
                rollup.key.kind.as_str()
            ),
            num_requests: rollup.stats.num_requests,
            num_errors: rollup.stats.num_errors,
            written_at,
            payload: {
                let mut stats = Vec::new();
                encode_edge_stats_with(&mut stats, &rollup.stats, &[])?;
                encode(&EdgeRollupBody {
                    key: &rollup.key,
                    source_placement: &rollup.source_placement,
                    target_placement: &rollup.target_placement,
                    stats: &stats,
                })?
            },
            operations: encode_splits(&rollup.stats.operations),
        })
    }
}

/// What a read of edge rollups selects: the key and the figures are in the payload, the
/// operation splits in their column.
#[derive(Debug, Row, Deserialize)]
pub struct EdgeRollupReadRow {
    pub minute: i64,
    pub instance: u32,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub operations: Vec<u8>,
}

impl EdgeRollupReadRow {
    pub fn into_rollup(self) -> Result<EdgeRollup, StoreError> {
        let body: EdgeRollupBodyIn = postcard::from_bytes(&self.payload)
            .map_err(|err| corrupt("edge rollup payload", err))?;
        let mut stats = decode_edge_stats(body.stats)?;
        let splits = decode_splits(&self.operations)?;
        if !splits.is_empty() {
            if !stats.operations.is_empty() {
                return Err(corrupt("edge rollup", "operation splits in two places"));
            }
            stats.operations = splits;
        }
        Ok(EdgeRollup {
            minute: self.minute,
            key: body.key,
            source_placement: body.source_placement,
            target_placement: body.target_placement,
            stats,
        })
    }
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct OperationRollupRow {
    pub minute: i64,
    pub instance: u32,
    pub service: String,
    pub operation: String,
    pub written_at: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl OperationRollupRow {
    pub fn new(
        instance: u32,
        rollup: &OperationRollup,
        written_at: u64,
    ) -> Result<Self, StoreError> {
        Ok(OperationRollupRow {
            minute: rollup.minute,
            instance,
            service: rollup.service.clone(),
            operation: rollup.operation.clone(),
            written_at,
            payload: {
                let mut stats = Vec::new();
                encode_operation_stats(&mut stats, &rollup.stats)?;
                encode(&OperationRollupBody {
                    placement: &rollup.placement,
                    stats: &stats,
                })?
            },
        })
    }

    pub fn into_rollup(self) -> Result<OperationRollup, StoreError> {
        let body: OperationRollupBodyIn = postcard::from_bytes(&self.payload)
            .map_err(|err| corrupt("operation rollup payload", err))?;
        Ok(OperationRollup {
            minute: self.minute,
            service: self.service,
            placement: body.placement,
            operation: self.operation,
            stats: decode_operation_stats(body.stats)?,
        })
    }
}
