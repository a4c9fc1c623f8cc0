//! The compact binary form of accepted telemetry: the payload of a write-ahead log frame (a
//! whole [`Batch`]) and, compressed, the body of a span block in the embedded store (a span
//! section alone).
//!
//! A span section holds its resources and scopes once each, then a directory of its traces
//! (trace id, number of spans, byte length), then the spans of each trace together, so one
//! trace can be decoded without decoding the others:
//!
//! ```text
//! u8 version · varint base start · varint n, n × bytes(resource) · varint n, n × bytes(scope)
//! varint n_traces, n_traces × (16 B trace id, varint num_spans, varint body_len) · bodies
//! span: 8 B span id, u8 parts, [8 B parent], varint resource, varint scope,
//!       varint start − base, zigzag end − start, name, kind, status, status message,
//!       trace state, flags, attributes, [events], [links], [3 × varint dropped counts]
//! ```
//!
//! A batch adds a metric point section (its own resources and scopes, then the points).
//! Exact by construction (every field round-trips); decoding trusts no length. Owns the byte
//! layout only: no I/O, no compression.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Batch, MetricPoint, Resource, Scope, Span, TraceId};
use crate::store::StoreError;
use crate::store::block_meta::BlockMeta;
use crate::store::sqlite::codec::{
    self, Decoder, put_attributes, put_bytes, put_i64, put_str, put_varint,
};
use crate::store::sqlite::codec_metric::{decode_point_value, encode_point_value};

mod section;

use section::Refs;
pub(crate) use section::{SpanHead, SpanSection, parse_sections};

const VERSION: u8 = 1;
const HAS_PARENT: u8 = 1;
const HAS_EVENTS: u8 = 2;
const HAS_LINKS: u8 = 4;
const HAS_DROPPED: u8 = 8;

/// Encodes `batch`: its spans grouped by trace, then its metric points.
pub fn encode_batch(buf: &mut Vec<u8>, batch: &Batch) {
    let mut spans: Vec<&Span> = batch.spans.iter().collect();
    spans.sort_by_key(|span| span.trace_id);
    encode_spans(buf, &spans);
    encode_points(buf, &batch.metric_points);
}

/// A batch encoded once, on the thread that accepted it: the write-ahead log frame, whose
/// first `section_len` bytes are the span section a store can keep as it is, and that
/// section's metadata.
#[derive(Debug)]
pub struct EncodedFrame {
    pub bytes: Vec<u8>,
    pub section_len: usize,
    pub meta: BlockMeta,
    /// The attribute keys whose values `meta` lists.
    pub indexed_keys: Arc<[String]>,
}

impl EncodedFrame {
    pub fn section(&self) -> &[u8] {
        &self.bytes[..self.section_len]
    }
}

/// Encodes `batch` as [`encode_batch`] does, with the metadata of its spans for the
/// attribute keys `indexed_keys`.
pub(crate) fn encode_frame(batch: &Batch, indexed_keys: &Arc<[String]>) -> EncodedFrame {
    let mut spans: Vec<&Span> = batch.spans.iter().collect();
    spans.sort_by_key(|span| span.trace_id);
    let mut bytes = Vec::with_capacity(batch.num_items() * 256);
    encode_spans(&mut bytes, &spans);
    let section_len = bytes.len();
    encode_points(&mut bytes, &batch.metric_points);
    EncodedFrame {
        bytes,
        section_len,
        meta: BlockMeta::of(&spans, indexed_keys),
        indexed_keys: Arc::clone(indexed_keys),
    }
}

/// Every span of the span sections `bytes` holds back to back, section after section.
pub(crate) fn all_spans_of_sections(bytes: &[u8]) -> Result<Vec<Span>, StoreError> {
    let mut spans = Vec::new();
    for section in parse_sections(bytes)? {
        spans.extend(section.all_spans()?);
    }
    Ok(spans)
}

/// Decodes what [`encode_batch`] wrote (spans grouped by trace, points in their order).
pub(crate) fn decode_batch(bytes: &[u8]) -> Result<Batch, StoreError> {
    let mut decoder = Decoder::new(bytes);
    let section = SpanSection::parse(&mut decoder)?;
    let spans = section.all_spans()?;
    let metric_points = decode_points(&mut decoder)?;
    Ok(Batch {
        spans,
        metric_points,
    })
}

/// Resources and scopes of a section, each encoded once, referenced by index.
#[derive(Default)]
struct RefTable {
    resources: Vec<Vec<u8>>,
    scopes: Vec<Vec<u8>>,
    resource_by_ptr: HashMap<*const Resource, u64>,
    scope_by_ptr: HashMap<*const Scope, u64>,
    resource_by_body: HashMap<Vec<u8>, u64>,
    scope_by_body: HashMap<Vec<u8>, u64>,
}

impl RefTable {
    fn resource(&mut self, resource: &Arc<Resource>) -> u64 {
        let ptr = Arc::as_ptr(resource);
        if let Some(index) = self.resource_by_ptr.get(&ptr) {
            return *index;
        }
        let mut body = Vec::new();
        codec::encode_resource(&mut body, resource);
        let index = intern(&mut self.resources, &mut self.resource_by_body, body);
        self.resource_by_ptr.insert(ptr, index);
        index
    }

    fn scope(&mut self, scope: &Arc<Scope>) -> u64 {
        let ptr = Arc::as_ptr(scope);
        if let Some(index) = self.scope_by_ptr.get(&ptr) {
            return *index;
        }
        let mut body = Vec::new();
        codec::encode_scope(&mut body, scope);
        let index = intern(&mut self.scopes, &mut self.scope_by_body, body);
        self.scope_by_ptr.insert(ptr, index);
        index
    }

    fn write(&self, buf: &mut Vec<u8>) {
        for list in [&self.resources, &self.scopes] {
            put_varint(buf, list.len() as u64);
            for body in list {
                put_bytes(buf, body);
            }
        }
    }
}

fn intern(list: &mut Vec<Vec<u8>>, by_body: &mut HashMap<Vec<u8>, u64>, body: Vec<u8>) -> u64 {
    if let Some(index) = by_body.get(&body) {
        return *index;
    }
    let index = list.len() as u64;
    list.push(body.clone());
    by_body.insert(body, index);
    index
}

/// Encodes `spans`, which must be grouped by trace id (all spans of a trace adjacent).
pub(crate) fn encode_spans(buf: &mut Vec<u8>, spans: &[&Span]) {
    let base = spans
        .iter()
        .map(|span| span.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let mut refs = RefTable::default();
    let mut directory: Vec<(TraceId, u64, usize)> = Vec::new();
    let mut bodies = Vec::with_capacity(spans.len() * 128);
    for group in spans.chunk_by(|left, right| left.trace_id == right.trace_id) {
        let body_start = bodies.len();
        for span in group {
            let resource = refs.resource(&span.resource);
            let scope = refs.scope(&span.scope);
            put_span(&mut bodies, span, base, resource, scope);
        }
        directory.push((
            group[0].trace_id,
            group.len() as u64,
            bodies.len() - body_start,
        ));
    }
    debug_assert!(
        directory.windows(2).all(|pair| pair[0].0 != pair[1].0),
        "spans must be grouped by trace"
    );
    buf.push(VERSION);
    put_varint(buf, base);
    refs.write(buf);
    put_varint(buf, directory.len() as u64);
    for (trace_id, num_spans, body_len) in &directory {
        buf.extend_from_slice(trace_id.as_bytes());
        put_varint(buf, *num_spans);
        put_varint(buf, *body_len as u64);
    }
    buf.extend_from_slice(&bodies);
}

fn put_span(buf: &mut Vec<u8>, span: &Span, base: u64, resource: u64, scope: u64) {
    buf.extend_from_slice(span.span_id.as_bytes());
    let dropped = [
        span.dropped_attributes_count,
        span.dropped_events_count,
        span.dropped_links_count,
    ];
    let mut parts = 0;
    if span.parent_span_id.is_some() {
        parts |= HAS_PARENT;
    }
    if !span.events.is_empty() {
        parts |= HAS_EVENTS;
    }
    if !span.links.is_empty() {
        parts |= HAS_LINKS;
    }
    if dropped.iter().any(|count| *count != 0) {
        parts |= HAS_DROPPED;
    }
    buf.push(parts);
    if let Some(parent) = &span.parent_span_id {
        buf.extend_from_slice(parent.as_bytes());
    }
    put_varint(buf, resource);
    put_varint(buf, scope);
    put_varint(buf, span.start_time_unix_nano - base);
    // Bit reinterpretation: an end before the start round-trips as a negative delta.
    put_i64(
        buf,
        span.end_time_unix_nano
            .wrapping_sub(span.start_time_unix_nano) as i64,
    );
    put_str(buf, &span.name);
    put_i64(buf, i64::from(span.kind.to_otlp()));
    put_i64(buf, i64::from(span.status_code.to_otlp()));
    put_str(buf, &span.status_message);
    put_str(buf, &span.trace_state);
    put_varint(buf, u64::from(span.flags));
    put_attributes(buf, &span.attributes);
    if parts & HAS_EVENTS != 0 {
        codec::encode_events(buf, &span.events);
    }
    if parts & HAS_LINKS != 0 {
        codec::encode_links(buf, &span.links);
    }
    if parts & HAS_DROPPED != 0 {
        for count in dropped {
            put_varint(buf, u64::from(count));
        }
    }
}

fn encode_points(buf: &mut Vec<u8>, points: &[MetricPoint]) {
    let mut refs = RefTable::default();
    let mut body = Vec::with_capacity(points.len() * 96);
    for point in points {
        put_varint(&mut body, refs.resource(&point.resource));
        put_varint(&mut body, refs.scope(&point.scope));
        put_str(&mut body, &point.name);
        put_str(&mut body, &point.description);
        put_str(&mut body, &point.unit);
        put_varint(&mut body, point.start_time_unix_nano);
        put_varint(&mut body, point.time_unix_nano);
        put_attributes(&mut body, &point.attributes);
        put_varint(&mut body, u64::from(point.flags));
        let mut value = Vec::new();
        encode_point_value(&mut value, &point.value);
        put_bytes(&mut body, &value);
    }
    refs.write(buf);
    put_varint(buf, points.len() as u64);
    buf.extend_from_slice(&body);
}

fn decode_points(decoder: &mut Decoder<'_>) -> Result<Vec<MetricPoint>, StoreError> {
    let refs = Refs::read(decoder)?;
    let count = decoder.count()?;
    let mut points = Vec::with_capacity(count);
    for _ in 0..count {
        let (resource, scope) = refs.get(decoder.varint()?, decoder.varint()?)?;
        points.push(MetricPoint {
            resource,
            scope,
            name: decoder.string()?,
            description: decoder.string()?,
            unit: decoder.string()?,
            start_time_unix_nano: decoder.varint()?,
            time_unix_nano: decoder.varint()?,
            attributes: decoder.attributes()?,
            flags: decoder.u32()?,
            value: decode_point_value(decoder.bytes()?)?,
        });
    }
    if !decoder.is_empty() {
        return Err(codec::corrupt("bytes after the metric points"));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::fixtures::{
        BASE_NANOS, points_of_every_type, resource, rich_span, typical_batch,
    };

    #[test]
    fn batches_round_trip_exactly() {
        let frontend = resource("frontend");
        let mut batch = typical_batch(&frontend, 0, 64, BASE_NANOS);
        batch
            .spans
            .extend(typical_batch(&resource("orders"), 8, 16, BASE_NANOS - 5).spans);
        batch.spans[3].end_time_unix_nano = batch.spans[3].start_time_unix_nano - 7;
        batch.metric_points = points_of_every_type(&frontend, "m", BASE_NANOS);
        let mut buf = Vec::new();
        encode_batch(&mut buf, &batch);
        let decoded = decode_batch(&buf).expect("decode");
        let key = |span: &Span| (span.trace_id, span.span_id, span.name.clone());
        let mut expected = batch.spans.clone();
        expected.sort_by_key(key);
        let mut spans = decoded.spans;
        spans.sort_by_key(key);
        assert_eq!(spans, expected);
        assert_eq!(decoded.metric_points, batch.metric_points);
    }

    #[test]
    fn one_trace_decodes_alone_and_damage_is_reported() {
        let batch = typical_batch(&resource("frontend"), 0, 32, BASE_NANOS);
        let mut spans: Vec<&Span> = batch.spans.iter().collect();
        spans.sort_by_key(|span| span.trace_id);
        let mut buf = Vec::new();
        encode_spans(&mut buf, &spans);
        let sections = parse_sections(&buf).expect("parse");
        assert_eq!(sections.len(), 1);
        let section = &sections[0];
        let wanted = batch.spans[9].trace_id;
        let found = section.spans_of(wanted).expect("spans_of");
        assert!(!found.is_empty());
        assert!(found.iter().all(|span| span.trace_id == wanted));
        for cut in [1, buf.len() / 2, buf.len() - 1] {
            let damaged = parse_sections(&buf[..cut]).and_then(|sections| {
                sections
                    .iter()
                    .map(SpanSection::all_spans)
                    .collect::<Result<Vec<_>, _>>()
            });
            assert!(damaged.is_err(), "cut at {cut}");
            let damaged_heads = parse_sections(&buf[..cut]).and_then(|sections| {
                for section in &sections {
                    for entry in section.directory() {
                        section.heads(entry, |_| Ok(()))?;
                    }
                }
                Ok(())
            });
            assert!(damaged_heads.is_err(), "cut at {cut}");
        }
    }

    /// A span's head reads what the whole span holds, whatever follows its attributes
    /// (events, links, dropped counts), and its resource (decoded once) is the span's.
    #[test]
    fn heads_read_what_the_spans_hold() {
        let (frontend, orders) = (resource("frontend"), resource("orders"));
        let mut batch = typical_batch(&frontend, 0, 24, BASE_NANOS);
        batch.spans.push(rich_span(&orders, 2, 100, BASE_NANOS + 5));
        batch
            .spans
            .push(rich_span(&frontend, 2, 101, BASE_NANOS - 5));
        let mut spans: Vec<&Span> = batch.spans.iter().collect();
        spans.sort_by_key(|span| span.trace_id);
        let mut buf = Vec::new();
        encode_spans(&mut buf, &spans);
        let mut num_heads = 0;
        for section in parse_sections(&buf).expect("parse") {
            for entry in section.directory() {
                let mut whole = Vec::new();
                section.decode_entry(entry, &mut whole).expect("decode");
                let mut heads = Vec::new();
                section
                    .heads(entry, |head| {
                        heads.push(*head);
                        Ok(())
                    })
                    .expect("heads");
                assert_eq!(heads.len(), whole.len());
                for (head, span) in heads.iter().zip(&whole) {
                    assert_eq!(head.span_id, span.span_id);
                    assert_eq!(head.parent_span_id, span.parent_span_id);
                    assert_eq!(head.start_time_unix_nano, span.start_time_unix_nano);
                    assert_eq!(head.end_time_unix_nano, span.end_time_unix_nano);
                    assert_eq!(head.name().expect("name"), span.name);
                    assert!(head.is_named(&span.name));
                    assert_eq!((head.kind, head.status_code), (span.kind, span.status_code));
                    assert_eq!(head.attributes().expect("attributes"), span.attributes);
                    let service = section.service_name(head.resource).expect("service");
                    assert_eq!(service, span.service_name());
                    assert_eq!(
                        section.resource(head.resource).expect("resource"),
                        span.resource
                    );
                }
                num_heads += heads.len();
            }
            assert_eq!(
                section
                    .resources_of("orders")
                    .expect("resources")
                    .map(|wanted| { wanted.iter().filter(|is_wanted| **is_wanted).count() }),
                Some(1)
            );
            assert_eq!(section.resources_of("nobody").expect("resources"), None);
        }
        assert_eq!(num_heads, batch.spans.len());
    }
}
