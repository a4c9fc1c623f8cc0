//! Ingest throughput: decode (protobuf, OTLP/JSON) and decode + convert of a realistic batch of
//! 512 HTTP server spans, measured in spans per second.
//!
//! `cargo bench --bench ingest -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use cartograph::ingest::convert::{ConvertLimits, convert_traces};
use cartograph::ingest::decode::{Encoding, decode_traces};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// The allocator the `cartograph` binary uses, so figures match production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;

const NUM_SPANS: usize = 512;
/// The default `ingest.max_decoded_bytes`: decoding is measured with its cost check.
const MAX_DECODED_BYTES: usize = 256 << 20;
const NOW_UNIX_NANO: u64 = 1_700_000_000_000_000_000;

fn key_value(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    key_value(key, Value::StringValue(value.to_owned()))
}

/// An HTTP server span as an instrumented web framework records it.
fn typical_span(index: u64) -> Span {
    let trace_id = [index.to_be_bytes(), 0x5eed_u64.to_be_bytes()].concat();
    let start_time_unix_nano = NOW_UNIX_NANO - 10_000_000_000 + index * 1_000;
    let order_id = 10_000 + index;
    Span {
        trace_id,
        span_id: (index + 1).to_be_bytes().to_vec(),
        parent_span_id: (index + 0x1_0000).to_be_bytes().to_vec(),
        trace_state: String::new(),
        flags: 0x301,
        name: "GET /api/v1/orders/{order_id}".to_owned(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano,
        end_time_unix_nano: start_time_unix_nano + 3_250_000,
        attributes: vec![
            text("http.request.method", "GET"),
            text("url.path", &format!("/api/v1/orders/{order_id}")),
            text("url.scheme", "https"),
            text("http.route", "/api/v1/orders/{order_id}"),
            key_value("http.response.status_code", Value::IntValue(200)),
            text("server.address", "orders.shop.svc"),
            key_value("network.peer.port", Value::IntValue(52_814)),
            text("network.peer.address", "10.42.3.17"),
            text(
                "user_agent.original",
                "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
            ),
        ],
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(Status {
            message: String::new(),
            code: 0,
        }),
    }
}

fn typical_request() -> ExportTraceServiceRequest {
    let resource = Resource {
        attributes: vec![
            text("service.name", "orders"),
            text("service.namespace", "shop"),
            text("service.version", "2.14.1"),
            text("deployment.environment.name", "production"),
            text("host.name", "orders-7d9f8c6b5-x2k4q"),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    };
    let scope = InstrumentationScope {
        name: "opentelemetry.instrumentation.asgi".to_owned(),
        version: "0.48b0".to_owned(),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope),
                spans: (0..NUM_SPANS as u64).map(typical_span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn decode_and_convert(body: &[u8], encoding: Encoding, limits: &ConvertLimits) -> usize {
    let request = decode_traces(body, encoding, MAX_DECODED_BYTES).expect("fixture decodes");
    let converted = convert_traces(request, NOW_UNIX_NANO, limits);
    debug_assert_eq!(converted.num_rejected, 0);
    converted.items.len()
}

fn bench_ingest(c: &mut Criterion) {
    let request = typical_request();
    let protobuf = request.encode_to_vec();
    let json = serde_json::to_vec(&request).expect("serialisable");
    let limits = ConvertLimits::default();
    eprintln!(
        "batch of {NUM_SPANS} spans: protobuf {} bytes ({} bytes/span), OTLP/JSON {} bytes ({} bytes/span)",
        protobuf.len(),
        protobuf.len() / NUM_SPANS,
        json.len(),
        json.len() / NUM_SPANS
    );
    assert_eq!(
        decode_and_convert(&protobuf, Encoding::Protobuf, &limits),
        NUM_SPANS
    );

    let mut group = c.benchmark_group("traces");
    group.throughput(Throughput::Elements(NUM_SPANS as u64));
    for (label, body, encoding) in [
        ("protobuf", &protobuf, Encoding::Protobuf),
        ("json", &json, Encoding::Json),
    ] {
        group.bench_function(format!("decode+convert/{label}"), |b| {
            b.iter(|| decode_and_convert(black_box(body), encoding, &limits));
        });
        group.bench_function(format!("decode/{label}"), |b| {
            b.iter(|| {
                decode_traces(black_box(body), encoding, MAX_DECODED_BYTES)
                    .expect("fixture decodes")
            });
        });
    }
    group.bench_function("convert", |b| {
        b.iter_batched(
            || request.clone(),
            |request| convert_traces(request, NOW_UNIX_NANO, &limits),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_ingest);
criterion_main!(benches);
