//! The Rust `opentelemetry-otlp` exporter sends a trace and metrics over gRPC (plain and gzip),
//! HTTP/protobuf and HTTP/JSON; everything the SDK handed to the exporter must come back through
//! the API field by field.
//!
//! The exporters run on a thread of their own with their own Tokio runtime, as in an instrumented
//! service: the tonic channel needs a runtime, and the blocking HTTP client must be built and
//! dropped outside the test's async context.

mod sdk_json;

use std::time::{Duration, SystemTime};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{
    Compression, MetricExporter, Protocol, SpanExporter, WithExportConfig as _,
    WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{
    IdGenerator as _, InMemorySpanExporter, RandomIdGenerator, SdkTracer, SdkTracerProvider,
};
use serde_json::Value as Json;
use tokio::runtime::Runtime;

use crate::compare;
use crate::helpers::{TestApp, spawn_app};

const SERVICE_NAME: &str = "rust-checkout";
/// Bound on one export, and (with margin) on the whole exporter thread.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
const LATENCY_BOUNDS_MS: [f64; 4] = [5.0, 25.0, 100.0, 500.0];
const METRIC_NAMES: [&str; 5] = [
    "orders.placed",
    "checkout.in_flight",
    "pool.usage",
    "queue.depth",
    "checkout.latency",
];

#[derive(Debug, Clone, Copy)]
enum Transport {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
    HttpJson,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_trace_arrives_intact() {
    trace_arrives_intact(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_trace_arrives_intact() {
    trace_arrives_intact(Transport::GrpcGzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_trace_arrives_intact() {
    trace_arrives_intact(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_trace_arrives_intact() {
    trace_arrives_intact(Transport::HttpJson).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_metrics_arrive_intact() {
    metrics_arrive_intact(Transport::Grpc, Temporality::Cumulative).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_metrics_arrive_intact() {
    metrics_arrive_intact(Transport::GrpcGzip, Temporality::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_metrics_arrive_intact() {
    metrics_arrive_intact(Transport::HttpProtobuf, Temporality::Cumulative).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_metrics_arrive_intact() {
    metrics_arrive_intact(Transport::HttpJson, Temporality::Delta).await;
}

async fn trace_arrives_intact(transport: Transport) {
    let app = spawn_app().await;
    let endpoints = Endpoints::of(&app);
    let (correlation_id, sent) =
        on_exporter_thread(move || send_trace(transport, &endpoints)).await;
    app.wait_until_stored().await;

    let trace_id = sent[0]["trace_id"].as_str().expect("trace id");
    let (status, trace) = app.trace(trace_id).await;
    assert_eq!(status, 200, "trace {trace_id} over {transport:?}: {trace}");
    compare::assert_trace_matches(&sent, &trace);

    let query = format!("service={SERVICE_NAME}&attr=x-correlation-id={correlation_id}");
    let (status, search) = app.search_traces(&query).await;
    assert_eq!(status, 200, "{search}");
    compare::assert_search_finds(&sent, &search);
}

async fn metrics_arrive_intact(transport: Transport, temporality: Temporality) {
    let app = spawn_app().await;
    let endpoints = Endpoints::of(&app);
    let sent = on_exporter_thread(move || send_metrics(transport, temporality, &endpoints)).await;
    app.wait_until_stored().await;

    compare::assert_sent_metrics(&sent, &METRIC_NAMES);
    for name in METRIC_NAMES {
        let (status, points) = app
            .metric_points(&format!("name={name}&service={SERVICE_NAME}&limit=1000"))
            .await;
        assert_eq!(status, 200, "{points}");
        compare::assert_points_match(name, &sent, &points);
    }
}

/// Runs `send` on a thread of its own, bounded in time, without blocking the app's runtime.
async fn on_exporter_thread<T: Send + 'static>(send: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // A send error means the test already gave up waiting.
        let _ = done.send(send());
    });
    tokio::time::timeout(EXPORT_TIMEOUT * 3, result)
        .await
        .expect("exporter thread finished in time")
        .expect("exporter thread did not panic")
}

/// The app's OTLP addresses, owned so they can move to the exporter thread.
struct Endpoints {
    grpc: String,
    http: String,
}

impl Endpoints {
    fn of(app: &TestApp) -> Self {
        Self {
            grpc: app.otlp_grpc.clone(),
            http: app.otlp_http.clone(),
        }
    }
}

fn exporter_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("exporter runtime")
}

fn span_exporter(transport: Transport, endpoints: &Endpoints, runtime: &Runtime) -> SpanExporter {
    let builder = SpanExporter::builder();
    let exporter = match transport {
        Transport::Grpc | Transport::GrpcGzip => {
            let _entered = runtime.enter();
            let builder = builder
                .with_tonic()
                .with_endpoint(&endpoints.grpc)
                .with_timeout(EXPORT_TIMEOUT);
            match transport {
                Transport::GrpcGzip => builder.with_compression(Compression::Gzip).build(),
                _ => builder.build(),
            }
        }
        Transport::HttpProtobuf | Transport::HttpJson => builder
            .with_http()
            .with_protocol(http_protocol(transport))
            .with_endpoint(format!("{}/v1/traces", endpoints.http))
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
    };
    exporter.expect("span exporter")
}

fn metric_exporter(
    transport: Transport,
    temporality: Temporality,
    endpoints: &Endpoints,
    runtime: &Runtime,
) -> MetricExporter {
    let builder = MetricExporter::builder().with_temporality(temporality);
    let exporter = match transport {
        Transport::Grpc | Transport::GrpcGzip => {
            let _entered = runtime.enter();
            let builder = builder
                .with_tonic()
                .with_endpoint(&endpoints.grpc)
                .with_timeout(EXPORT_TIMEOUT);
            match transport {
                Transport::GrpcGzip => builder.with_compression(Compression::Gzip).build(),
                _ => builder.build(),
            }
        }
        Transport::HttpProtobuf | Transport::HttpJson => builder
            .with_http()
            .with_protocol(http_protocol(transport))
            .with_endpoint(format!("{}/v1/metrics", endpoints.http))
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
    };
    exporter.expect("metric exporter")
}

fn http_protocol(transport: Transport) -> Protocol {
    match transport {
        Transport::HttpJson => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    }
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attributes([
            KeyValue::new("service.namespace", "shop"),
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("deployment.environment.name", "test"),
            KeyValue::new("team.owner", "payments"),
            KeyValue::new("build.number", 42_i64),
        ])
        .build()
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("cartograph-tests.rust")
        .with_version("0.1.0")
        .with_attributes([KeyValue::new("scope.purpose", "exporter-test")])
        .build()
}

/// Sends one trace; returns its `x-correlation-id` and the spans as sent, in the API's shape.
fn send_trace(transport: Transport, endpoints: &Endpoints) -> (String, Vec<Json>) {
    let runtime = exporter_runtime();
    let memory = InMemorySpanExporter::default();
    let resource = resource();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_simple_exporter(memory.clone())
        .with_batch_exporter(span_exporter(transport, endpoints, &runtime))
        .build();
    let correlation_id = RandomIdGenerator::default().new_span_id().to_string();
    record_trace(&provider, &correlation_id);
    provider.force_flush().expect("spans exported");
    // Read before shutting down: shutdown empties the in-memory exporter.
    let spans = memory.get_finished_spans().expect("recorded spans");
    provider.shutdown().expect("tracer provider shut down");

    let sent = spans
        .iter()
        .map(|span| sdk_json::span_json(span, &resource))
        .collect();
    (correlation_id, sent)
}

/// A request that arrived with a remote parent and trace state: a server root with a failing
/// client call, an internal step and a producer whose consumer links back to it. Times are
/// explicit, with odd nanoseconds, so any rounding shows.
fn record_trace(provider: &SdkTracerProvider, correlation_id: &str) {
    let tracer = provider.tracer_with_scope(scope());
    let base = SystemTime::now() - Duration::from_secs(5) + Duration::from_nanos(123_457);
    let at = move |nanos: u64| base + Duration::from_nanos(nanos);
    let parent_cx = Context::new().with_remote_span_context(remote_context("vendor", "upstream"));

    let root = tracer
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", "/checkout"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("x-correlation-id", correlation_id.to_owned()),
        ])
        .start_with_context(&tracer, &parent_cx);
    let root_cx = parent_cx.with_span(root);
    record_failed_payment(&tracer, &root_cx, at);

    let mut internal = tracer
        .span_builder("render receipt")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(41_000_011))
        .start_with_context(&tracer, &root_cx);
    internal.set_status(Status::Ok);
    internal.end_with_timestamp(at(42_000_013));

    record_messaging(&tracer, &root_cx, at);
    root_cx.span().end_with_timestamp(at(50_000_031));
}

/// A sampled span context of another (remote) process, with trace state.
fn remote_context(state_key: &str, state_value: &str) -> SpanContext {
    let ids = RandomIdGenerator::default();
    SpanContext::new(
        ids.new_trace_id(),
        ids.new_span_id(),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([(state_key, state_value)]).expect("trace state"),
    )
}

/// A client call with every attribute type, an event, a link and an error status.
fn record_failed_payment(tracer: &SdkTracer, cx: &Context, at: impl Fn(u64) -> SystemTime) {
    let retried = Link::new(
        remote_context("congo", "t61rcWkgMzE"),
        vec![
            KeyValue::new("link.reason", "retry-of"),
            KeyValue::new("link.attempt", 1_i64),
        ],
        0,
    );
    let mut client = tracer
        .span_builder("POST /payments")
        .with_kind(SpanKind::Client)
        .with_start_time(at(1_000_001))
        .with_attributes(every_attribute_type())
        .with_links(vec![retried])
        .start_with_context(tracer, cx);
    client.add_event_with_timestamp(
        "payment.retry",
        at(2_000_003),
        vec![
            KeyValue::new("attempt", 2_i64),
            KeyValue::new("backoff.ms", 12.5),
            KeyValue::new("idempotent", true),
        ],
    );
    client.set_status(Status::error("payment declined"));
    client.end_with_timestamp(at(40_000_007));
}

/// A producer and its consumer, which links back to the producer as well.
fn record_messaging(tracer: &SdkTracer, cx: &Context, at: impl Fn(u64) -> SystemTime) {
    let producer = tracer
        .span_builder("orders publish")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(43_000_017))
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", "orders"),
        ])
        .start_with_context(tracer, cx);
    let producer_context = producer.span_context().clone();
    let producer_cx = cx.with_span(producer);
    let mut consumer = tracer
        .span_builder("orders process")
        .with_kind(SpanKind::Consumer)
        .with_start_time(at(45_000_023))
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.consumer.group.name", "billing"),
        ])
        .with_links(vec![Link::with_context(producer_context)])
        .start_with_context(tracer, &producer_cx);
    producer_cx.span().end_with_timestamp(at(44_000_019));
    consumer.end_with_timestamp(at(46_000_029));
}

fn every_attribute_type() -> Vec<KeyValue> {
    let strings = |values: &[&'static str]| {
        Value::Array(Array::String(
            values
                .iter()
                .map(|value| StringValue::from(*value))
                .collect(),
        ))
    };
    vec![
        KeyValue::new("peer.service", "payments"),
        KeyValue::new("text", "héllo \"quoted\""),
        KeyValue::new("flag", true),
        // Beyond 2^53: exact only if 64-bit integers never pass through a double.
        KeyValue::new("count", -9_007_199_254_740_993_i64),
        KeyValue::new("ratio", 0.1),
        KeyValue::new("strings", strings(&["a", "b", ""])),
        KeyValue::new("bools", Value::Array(vec![true, false].into())),
        KeyValue::new("ints", Value::Array(vec![1_i64, -2, i64::MAX].into())),
        KeyValue::new("floats", Value::Array(vec![1.5, -0.25].into())),
    ]
}

/// Records metrics of every instrument type; returns the points as exported, in the API's shape.
fn send_metrics(
    transport: Transport,
    temporality: Temporality,
    endpoints: &Endpoints,
) -> Vec<Json> {
    let runtime = exporter_runtime();
    let memory = InMemoryMetricExporter::default();
    let recording = Recording {
        otlp: metric_exporter(transport, temporality, endpoints, &runtime),
        memory: memory.clone(),
    };
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(
            PeriodicReader::builder(recording)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build();
    record_metrics(&provider);
    provider.force_flush().expect("metrics exported");
    // Shutting down exports once more: a second set of points with the same streams.
    provider.shutdown().expect("meter provider shut down");

    let exported = memory.get_finished_metrics().expect("recorded metrics");
    exported.iter().flat_map(sdk_json::points_json).collect()
}

fn record_metrics(provider: &SdkMeterProvider) {
    let meter = provider.meter_with_scope(scope());
    let orders = meter
        .u64_counter("orders.placed")
        .with_description("Orders placed")
        .with_unit("{order}")
        .build();
    orders.add(3, &[KeyValue::new("payment.method", "card")]);
    orders.add(2, &[KeyValue::new("payment.method", "card")]);
    orders.add(
        1,
        &[
            KeyValue::new("payment.method", "invoice"),
            KeyValue::new("first.order", true),
        ],
    );

    let in_flight = meter
        .i64_up_down_counter("checkout.in_flight")
        .with_unit("{request}")
        .build();
    in_flight.add(5, &[KeyValue::new("route", "/checkout")]);
    in_flight.add(-7, &[KeyValue::new("route", "/checkout")]);

    let usage = meter
        .f64_gauge("pool.usage")
        .with_description("Share of the pool in use")
        .with_unit("1")
        .build();
    usage.record(0.5, &[KeyValue::new("pool", "db")]);
    usage.record(0.75, &[KeyValue::new("pool", "db")]);
    usage.record(0.125, &[KeyValue::new("pool", "http")]);

    let depth = meter.i64_gauge("queue.depth").build();
    depth.record(-3, &[KeyValue::new("queue", "orders")]);

    let latency = meter
        .f64_histogram("checkout.latency")
        .with_description("Checkout latency")
        .with_unit("ms")
        .with_boundaries(LATENCY_BOUNDS_MS.to_vec())
        .build();
    for value in [1.5, 7.0, 30.0, 30.0, 720.25] {
        latency.record(value, &[KeyValue::new("route", "/checkout")]);
    }
}

/// Hands every export to the OTLP exporter and keeps a copy, so the test knows exactly what was
/// sent, collection times included.
struct Recording {
    otlp: MetricExporter,
    memory: InMemoryMetricExporter,
}

impl PushMetricExporter for Recording {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.memory.export(metrics).await?;
        self.otlp.export(metrics).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.otlp.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.otlp.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.otlp.temporality()
    }
}
