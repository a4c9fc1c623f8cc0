//! Pre-encoded OTLP trace export requests. A handful of templates are built and encoded once;
//! each send copies one and overwrites in place its trace ids with fresh ones and its span
//! times with times shifted to the moment of sending, so every request carries distinct traces
//! that happened just now, at the cost of a memcpy, not an encode.
//!
//! A trace is a root SERVER span and CLIENT → SERVER pairs down a call tree across the services
//! (so the map has real edges), with typical attributes: ~440 bytes and 9 attributes a span.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message as _;

use crate::model::{now_unix_nano, split_mix as mix};

const NUM_TEMPLATES: usize = 16;
/// Protobuf tag of `Span.trace_id` (field 1, length-delimited) and its length.
const TRACE_ID_TAG: [u8; 2] = [0x0a, 0x10];
/// Protobuf tags of `Span.start_time_unix_nano` and `Span.end_time_unix_nano` (fields 7 and 8,
/// fixed64).
const TIME_TAGS: [u8; 2] = [0x39, 0x41];

/// What the generated traffic looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub num_services: usize,
    pub spans_per_trace: usize,
    pub spans_per_request: usize,
    pub seed: u64,
}

/// One encoded request and where its trace ids sit.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    /// (byte offset of a trace id, which trace of the request it belongs to)
    trace_id_offsets: Vec<(usize, u32)>,
    /// Byte offsets of the span start and end times (little-endian u64s).
    time_offsets: Vec<usize>,
    /// When the template's times were made.
    made_unix_nano: u64,
}

/// A source of distinct, ready-to-send export requests.
#[derive(Debug, Clone)]
pub struct RequestSource {
    templates: Vec<Template>,
    spans_per_request: usize,
}

impl RequestSource {
    pub fn new(shape: Shape) -> Self {
        let now = now_unix_nano();
        let templates = (0..NUM_TEMPLATES)
            .map(|template_no| build_template(shape, template_no as u64, now))
            .collect();
        Self {
            templates,
            spans_per_request: shape.spans_per_request,
        }
    }

    pub fn spans_per_request(&self) -> usize {
        self.spans_per_request
    }

    /// Request number `request_no`, with trace ids no other request number has.
    pub fn request(&self, request_no: u64) -> Vec<u8> {
        let template = &self.templates[(request_no % self.templates.len() as u64) as usize];
        let mut bytes = template.bytes.clone();
        for &(offset, trace_no) in &template.trace_id_offsets {
            let id = trace_id(request_no, trace_no);
            bytes[offset..offset + 16].copy_from_slice(&id);
        }
        let shift = now_unix_nano().saturating_sub(template.made_unix_nano);
        for &offset in &template.time_offsets {
            let mut time = [0u8; 8];
            time.copy_from_slice(&bytes[offset..offset + 8]);
            let shifted = u64::from_le_bytes(time).saturating_add(shift);
            bytes[offset..offset + 8].copy_from_slice(&shifted.to_le_bytes());
        }
        bytes
    }
}

fn trace_id(request_no: u64, trace_no: u32) -> [u8; 16] {
    let key = (request_no << 20) | u64::from(trace_no);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&mix(key).to_be_bytes());
    // The low half is never zero, so neither is the id.
    id[8..].copy_from_slice(&(mix(!key) | 1).to_be_bytes());
    id
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn service_name(service_no: usize) -> String {
    format!("load-service-{service_no:03}")
}

fn build_template(shape: Shape, template_no: u64, now: u64) -> Template {
    let mut rng = shape.seed ^ mix(template_no);
    let mut next = move || {
        rng = mix(rng);
        rng
    };
    let num_services = shape.num_services.max(1);
    let spans_per_trace = shape.spans_per_trace.max(1);
    let num_traces = shape.spans_per_request.div_ceil(spans_per_trace).max(1);
    let mut by_service: HashMap<usize, Vec<Span>> = HashMap::new();
    let mut trace_ids: HashMap<[u8; 16], u32> = HashMap::new();
    let mut times: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for trace_no in 0..num_traces {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&next().to_be_bytes());
        trace_id[8..].copy_from_slice(&(next() | 1).to_be_bytes());
        trace_ids.insert(trace_id, trace_no as u32);
        let start = now - 1_000_000_000 - next() % 1_000_000_000;
        let spans = random_trace(&mut next, trace_id, start, num_services, spans_per_trace);
        for (service_no, span) in spans {
            times.insert(span.start_time_unix_nano);
            times.insert(span.end_time_unix_nano);
            by_service.entry(service_no).or_default().push(span);
        }
    }
    let bytes = request_of(by_service).encode_to_vec();
    let trace_id_offsets = find_trace_ids(&bytes, &trace_ids);
    debug_assert_eq!(
        trace_id_offsets.len(),
        num_traces * spans_per_trace,
        "every span's trace id found once"
    );
    let time_offsets = find_times(&bytes, &times);
    debug_assert_eq!(
        time_offsets.len(),
        2 * num_traces * spans_per_trace,
        "every span's start and end found once"
    );
    Template {
        bytes,
        trace_id_offsets,
        time_offsets,
        made_unix_nano: now,
    }
}

/// One trace of `spans_per_trace` spans starting at `start`: a root server span, then client
/// calls from a random server span so far to a random service, each answered by a server
/// span. Each span with the number of the service that reports it.
fn random_trace(
    next: &mut impl FnMut() -> u64,
    trace_id: [u8; 16],
    start: u64,
    num_services: usize,
    spans_per_trace: usize,
) -> Vec<(usize, Span)> {
    let root_service = (next() % num_services as u64) as usize;
    let root_id = next() | 1;
    // (span id, service) of the server spans that may call further.
    let mut servers = vec![(root_id, root_service)];
    let mut spans = vec![(
        root_service,
        span(
            next,
            trace_id,
            root_id,
            None,
            SpanKind::Server,
            start,
            "GET /api/orders/{id}",
            root_service,
        ),
    )];
    while spans.len() < spans_per_trace {
        let (parent_id, caller) = servers[(next() % servers.len() as u64) as usize];
        let callee = (next() % num_services as u64) as usize;
        let client_id = next() | 1;
        spans.push((
            caller,
            span(
                next,
                trace_id,
                client_id,
                Some(parent_id),
                SpanKind::Client,
                start,
                "GET",
                callee,
            ),
        ));
        if spans.len() == spans_per_trace {
            break;
        }
        let server_id = next() | 1;
        spans.push((
            callee,
            span(
                next,
                trace_id,
                server_id,
                Some(client_id),
                SpanKind::Server,
                start,
                "GET /api/items",
                callee,
            ),
        ));
        servers.push((server_id, callee));
    }
    spans
}

/// One resource per service, in service order, holding that service's spans.
fn request_of(by_service: HashMap<usize, Vec<Span>>) -> ExportTraceServiceRequest {
    let mut services: Vec<(usize, Vec<Span>)> = by_service.into_iter().collect();
    services.sort_by_key(|(service_no, _)| *service_no);
    ExportTraceServiceRequest {
        resource_spans: services
            .into_iter()
            .map(|(service_no, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        text("service.name", service_name(service_no)),
                        text("service.namespace", "load"),
                        text("deployment.environment.name", "bench"),
                    ],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "cartograph-loadgen".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// Offsets of the fixed64 span times in `bytes` (a tag, then one of `times`).
fn find_times(bytes: &[u8], times: &std::collections::HashSet<u64>) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut index = 0;
    while index + 9 <= bytes.len() {
        if TIME_TAGS.contains(&bytes[index]) {
            let mut candidate = [0u8; 8];
            candidate.copy_from_slice(&bytes[index + 1..index + 9]);
            if times.contains(&u64::from_le_bytes(candidate)) {
                offsets.push(index + 1);
                index += 9;
                continue;
            }
        }
        index += 1;
    }
    offsets
}

fn find_trace_ids(bytes: &[u8], trace_ids: &HashMap<[u8; 16], u32>) -> Vec<(usize, u32)> {
    let mut offsets = Vec::new();
    let mut index = 0;
    while index + 18 <= bytes.len() {
        if bytes[index..index + 2] == TRACE_ID_TAG {
            let mut candidate = [0u8; 16];
            candidate.copy_from_slice(&bytes[index + 2..index + 18]);
            if let Some(&trace_no) = trace_ids.get(&candidate) {
                offsets.push((index + 2, trace_no));
                index += 18;
                continue;
            }
        }
        index += 1;
    }
    offsets
}

#[allow(clippy::too_many_arguments)]
fn span(
    next: &mut impl FnMut() -> u64,
    trace_id: [u8; 16],
    span_id: u64,
    parent_opt: Option<u64>,
    kind: SpanKind,
    trace_start: u64,
    name: &str,
    peer_service_no: usize,
) -> Span {
    let offset = next() % 50_000_000;
    let duration = 200_000 + next() % 40_000_000;
    let is_error = next().is_multiple_of(100);
    let status_code: i64 = if is_error { 503 } else { 200 };
    let mut attributes = vec![
        text("http.request.method", "GET"),
        text("http.route", "/api/items/{id}"),
        int("http.response.status_code", status_code),
        text("url.path", format!("/api/items/{}", next() % 100_000)),
        text("server.address", service_name(peer_service_no)),
        int("server.port", 8080),
        text("network.protocol.version", "1.1"),
        text(
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) cartograph-loadgen",
        ),
        text("x-correlation-id", format!("{:016x}", next())),
    ];
    if kind == SpanKind::Client {
        attributes.push(text("peer.service", service_name(peer_service_no)));
    }
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: parent_opt
            .map(|id| id.to_be_bytes().to_vec())
            .unwrap_or_default(),
        name: name.to_owned(),
        kind: kind as i32,
        start_time_unix_nano: trace_start + offset,
        end_time_unix_nano: trace_start + offset + duration,
        attributes,
        status: Some(Status {
            code: if is_error {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Unset as i32
            },
            message: String::new(),
        }),
        ..Span::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> RequestSource {
        RequestSource::new(Shape {
            num_services: 20,
            spans_per_trace: 8,
            spans_per_request: 512,
            seed: 7,
        })
    }

    #[test]
    fn requests_decode_with_distinct_trace_ids_and_typical_spans() {
        let source = source();
        let mut seen = std::collections::HashSet::new();
        for request_no in 0..40 {
            let bytes = source.request(request_no);
            let request = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid");
            let spans: Vec<&Span> = request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .flat_map(|scope| &scope.spans)
                .collect();
            assert_eq!(spans.len(), 512);
            let per_span = bytes.len() / spans.len();
            assert!((380..=520).contains(&per_span), "{per_span} bytes a span");
            let traces: std::collections::HashSet<&Vec<u8>> =
                spans.iter().map(|span| &span.trace_id).collect();
            assert_eq!(traces.len(), 64, "8 spans a trace");
            for trace in traces {
                assert!(seen.insert(trace.clone()), "trace id reused");
            }
        }
    }

    #[test]
    fn span_times_follow_the_clock() {
        let source = source();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let sent_at = now_unix_nano();
        let request =
            ExportTraceServiceRequest::decode(source.request(7).as_slice()).expect("valid");
        for span in request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| &scope.spans)
        {
            let age = sent_at.saturating_sub(span.start_time_unix_nano);
            // Made 1–2 s before the template, shifted to the send (less a stall between the
            // two reads of the clock).
            assert!((500_000_000..2_200_000_000).contains(&age), "{age} ns old");
            assert!(span.end_time_unix_nano > span.start_time_unix_nano);
        }
    }
}
