//! Graph engine throughput: pairing, edge and operation statistics, calls per trace and chain
//! buffering over pre-converted spans, in spans per second on one core.
//!
//! A steady stream of 14-span traces over 20 services of 3 instances each (their
//! `service.instance.id`s counted per operation and minute): a root server span, five
//! client/server pairs over HTTP and gRPC (71 % of spans), a PostgreSQL query, a Kafka producer
//! and its consumer. Within a batch the spans are shuffled, so about half the servers arrive before
//! their client. The engine is long-lived (pending halves, trace buffers and call counters at
//! their steady-state sizes); each batch gets fresh trace ids and the clock advances as if
//! 1M spans/s arrived. Only `ingest` + `tick` are timed; building the batches is not.
//!
//! `cargo bench --bench graph -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use cartograph::graph::{GraphEngine, GraphSettings, GraphSpan};
use cartograph::model::split_mix as mix;
use cartograph::model::{
    AttrValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const NUM_SERVICES: u64 = 20;
/// Instances (`service.instance.id`) of each service; a trace is served by one of each.
const INSTANCES_PER_SERVICE: u64 = 3;
const TRACES_PER_BATCH: u64 = 512;
const SPANS_PER_TRACE: u64 = 14;
const NOW_UNIX_NANO: u64 = 1_700_000_000_000_000_000;
/// Simulated arrival rate of 1M spans/s: how far the clock moves per batch.
const NANOS_PER_BATCH: u64 = TRACES_PER_BATCH * SPANS_PER_TRACE * 1_000;

fn trace_id(trace_no: u64) -> TraceId {
    let bytes = [mix(trace_no).to_be_bytes(), mix(!trace_no).to_be_bytes()].concat();
    TraceId::from_bytes(&bytes).expect("random ids are not zero")
}

fn span_id(trace_no: u64, span_no: u64) -> SpanId {
    SpanId::from_bytes(&(mix(trace_no ^ (span_no << 48)) | 1).to_be_bytes())
        .expect("odd ids are not zero")
}

fn text(key: &str, value: &str) -> (String, AttrValue) {
    (key.to_owned(), AttrValue::Str(value.to_owned()))
}

struct TraceBuilder {
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
}

impl TraceBuilder {
    fn new() -> Self {
        let resources = (0..NUM_SERVICES * INSTANCES_PER_SERVICE)
            .map(|resource_no| {
                let service_no = resource_no / INSTANCES_PER_SERVICE;
                let instance_no = resource_no % INSTANCES_PER_SERVICE;
                let attributes = vec![
                    text("service.name", &format!("service-{service_no}")),
                    text("service.namespace", "shop"),
                    text("deployment.environment.name", "prod"),
                    text(
                        "service.instance.id",
                        &format!("service-{service_no}-{instance_no}"),
                    ),
                ];
                Arc::new(Resource::from_attributes(attributes, 0))
            })
            .collect();
        Self {
            resources,
            scope: Arc::new(Scope::default()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        trace_no: u64,
        service_no: u64,
        span_no: u64,
        parent_no: Option<u64>,
        kind: SpanKind,
        name: &str,
        attributes: Vec<(String, AttrValue)>,
    ) -> Span {
        let start = NOW_UNIX_NANO + span_no * 1_000_000;
        Span {
            resource: Arc::clone(
                &self.resources[(service_no * INSTANCES_PER_SERVICE
                    + trace_no % INSTANCES_PER_SERVICE) as usize],
            ),
            scope: Arc::clone(&self.scope),
            trace_id: trace_id(trace_no),
            span_id: span_id(trace_no, span_no),
            parent_span_id: parent_no.map(|parent| span_id(trace_no, parent)),
            trace_state: String::new(),
            flags: 1,
            name: name.to_owned(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 1_000_000 + mix(trace_no ^ span_no) % 50_000_000,
            attributes,
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: if mix(trace_no + span_no).is_multiple_of(100) {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            status_message: String::new(),
        }
    }

    /// One trace: gateway root, five calls down a chain of services, a query, a publish.
    fn trace(&self, trace_no: u64) -> Vec<Span> {
        let first = trace_no % NUM_SERVICES;
        let service = |hop: u64| (first + hop) % NUM_SERVICES;
        let http = || vec![text("http.request.method", "GET")];
        let grpc = || vec![text("rpc.system", "grpc")];
        let mut spans = vec![self.span(
            trace_no,
            service(0),
            1,
            None,
            SpanKind::Server,
            "GET /",
            http(),
        )];
        for hop in 0..5u64 {
            let (client_no, server_no) = (10 + 2 * hop, 11 + 2 * hop);
            let caller_span = if hop == 0 { 1 } else { client_no - 1 };
            let attributes = if hop % 2 == 0 { http() } else { grpc() };
            spans.push(self.span(
                trace_no,
                service(hop),
                client_no,
                Some(caller_span),
                SpanKind::Client,
                "call",
                attributes.clone(),
            ));
            spans.push(self.span(
                trace_no,
                service(hop + 1),
                server_no,
                Some(client_no),
                SpanKind::Server,
                "handle /items/{id}",
                attributes,
            ));
        }
        let query = vec![
            text("db.system.name", "postgresql"),
            text("server.address", &format!("db-{}", trace_no % 3)),
            ("server.port".to_owned(), AttrValue::Int(5432)),
            text("db.namespace", "shop"),
        ];
        spans.push(self.span(
            trace_no,
            service(5),
            30,
            Some(19),
            SpanKind::Client,
            "SELECT",
            query,
        ));
        spans.extend(self.publish_and_consume(trace_no, service(1), service(7)));
        debug_assert_eq!(spans.len() as u64, SPANS_PER_TRACE);
        spans
    }

    /// `producer` publishes to the `orders` topic under the server span of the first hop;
    /// `consumer` (group `billing`) processes it in a span linked to the publish.
    fn publish_and_consume(&self, trace_no: u64, producer: u64, consumer: u64) -> [Span; 2] {
        let kafka = || {
            vec![
                text("messaging.system", "kafka"),
                text("messaging.destination.name", "orders"),
            ]
        };
        let publish = self.span(
            trace_no,
            producer,
            40,
            Some(11),
            SpanKind::Producer,
            "orders publish",
            kafka(),
        );
        let mut consumer_attributes = kafka();
        consumer_attributes.push(text("messaging.consumer.group.name", "billing"));
        let mut process = self.span(
            trace_no,
            consumer,
            41,
            None,
            SpanKind::Consumer,
            "orders process",
            consumer_attributes,
        );
        process.links.push(Link {
            trace_id: trace_id(trace_no),
            span_id: span_id(trace_no, 40),
            trace_state: String::new(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
        });
        [publish, process]
    }
}

/// A template batch, shuffled; batches for the run differ from it only in trace ids.
fn template_batch() -> Vec<GraphSpan> {
    let builder = TraceBuilder::new();
    let spans: Vec<Span> = (0..TRACES_PER_BATCH)
        .flat_map(|trace_no| builder.trace(trace_no))
        .collect();
    let mut converted = GraphSpan::from_spans(&spans, &Default::default());
    for index in (1..converted.len()).rev() {
        let other = (mix(index as u64) % (index as u64 + 1)) as usize;
        converted.swap(index, other);
    }
    converted
}

/// A duration spread like real latencies: log-uniform over 0.5 ms .. 60 ms.
fn duration_nanos(seed: u64) -> u64 {
    let unit = (mix(seed) >> 11) as f64 / (1u64 << 53) as f64;
    (500_000.0 * (unit * 120f64.ln()).exp()) as u64
}

/// The template with every trace id (and link) moved into batch `batch_no`'s own traces,
/// and fresh durations.
fn batch(template: &[GraphSpan], batch_no: u64) -> Vec<GraphSpan> {
    let salt = mix(batch_no).to_be_bytes();
    let renumber = |trace_id: TraceId| {
        let mut bytes = *trace_id.as_bytes();
        for (byte, salt) in bytes.iter_mut().zip(salt) {
            *byte ^= salt;
        }
        TraceId::from_bytes(&bytes).unwrap_or(trace_id)
    };
    template
        .iter()
        .enumerate()
        .map(|(index, span)| {
            let mut span = span.clone();
            span.end_time_unix_nano = span.start_time_unix_nano
                + duration_nanos(batch_no.wrapping_mul(1 << 20) ^ index as u64);
            span.trace_id = renumber(span.trace_id);
            for link in &mut span.links {
                link.trace_id = renumber(link.trace_id);
            }
            span
        })
        .collect()
}

fn bench_engine(c: &mut Criterion) {
    let template = template_batch();
    let mut group = c.benchmark_group("graph");
    group.throughput(Throughput::Elements(template.len() as u64));
    let mut engine = GraphEngine::new(GraphSettings::default());
    let mut batch_no = 0u64;
    let mut now_unix_nano = NOW_UNIX_NANO;
    group.bench_function("ingest_and_tick", |b| {
        b.iter_batched(
            || {
                batch_no += 1;
                batch(&template, batch_no)
            },
            |spans| {
                now_unix_nano += NANOS_PER_BATCH;
                engine.ingest(spans, now_unix_nano);
                black_box(engine.tick(now_unix_nano))
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
    let counters = engine.counters();
    eprintln!("after the run: {counters:#?}");
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
