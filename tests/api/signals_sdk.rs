//! The real Rust OpenTelemetry SDK, as instrumented services and a Collector would run it:
//! `orders` calls `payments` over HTTP behind a resilience4j breaker and publishes to Kafka
//! topic `orders.created`, `inventory` consumes it as group `inventory-group`; the breaker's
//! state gauges come from `orders`, the lag gauges (kafkametrics convention) from a Collector.
//! The map must show the lag on topic → inventory and the breaker on orders → payments, and
//! both must change when the metrics do.
//!
//! The SDK runs on a thread of its own (its blocking HTTP exporters must live outside the
//! test's runtime), driven step by step over a channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

use crate::graph_support::{find_edge, service, spawn_graph_app, topic};
use crate::helpers::TestApp;

const TOPIC: &str = "orders.created";
const GROUP: &str = "inventory-group";
const BREAKER_STATES: [&str; 6] = [
    "closed",
    "open",
    "half_open",
    "forced_open",
    "disabled",
    "metrics_only",
];
const WAIT: Duration = Duration::from_secs(20);

/// What the simulated world looks like at one step.
#[derive(Debug, Clone)]
struct Step {
    breaker_state: &'static str,
    /// Lag of partitions 0 and 1.
    lag: [u64; 2],
    /// Whether `orders` calls `payments` (closed) or is short-circuited (open).
    short_circuit: bool,
}

struct Sdk {
    steps: mpsc::Sender<Step>,
    done: mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

pub fn resource(name: &str) -> Resource {
    Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", name.to_owned()))
        .build()
}

/// A tracer provider for `name` exporting each span as it ends over OTLP/HTTP protobuf.
pub fn tracer_provider(endpoint: &str, name: &str) -> SdkTracerProvider {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .expect("span exporter");
    SdkTracerProvider::builder()
        .with_resource(resource(name))
        .with_simple_exporter(exporter)
        .build()
}

fn meter_provider(endpoint: &str, name: &str) -> SdkMeterProvider {
    let exporter = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/metrics"))
        .build()
        .expect("metric exporter");
    SdkMeterProvider::builder()
        .with_resource(resource(name))
        // Exported on demand only (force_flush at each step).
        .with_reader(
            PeriodicReader::builder(exporter)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build()
}

impl Sdk {
    fn start(endpoint: String) -> Self {
        let (steps, step_receiver) = mpsc::channel::<Step>();
        let (done_sender, done) = mpsc::channel();
        let thread =
            std::thread::spawn(move || run_services(&endpoint, &step_receiver, &done_sender));
        Self {
            steps,
            done,
            thread,
        }
    }

    /// Runs one step in the services and waits until it is exported.
    async fn step(&self, step: Step) {
        self.steps.send(step).expect("sdk thread alive");
        let done = &self.done;
        tokio::task::block_in_place(|| done.recv_timeout(WAIT)).expect("step exported");
    }

    async fn stop(self) {
        drop(self.steps);
        tokio::task::spawn_blocking(move || self.thread.join().expect("sdk thread"))
            .await
            .expect("join");
    }
}

fn run_services(endpoint: &str, steps: &mpsc::Receiver<Step>, done: &mpsc::Sender<()>) {
    let orders = tracer_provider(endpoint, "orders");
    let payments = tracer_provider(endpoint, "payments");
    let inventory = tracer_provider(endpoint, "inventory");
    let orders_meters = meter_provider(endpoint, "orders");
    let collector_meters = meter_provider(endpoint, "otel-collector");

    let state = Arc::new(Mutex::new("closed"));
    let gauge_state = Arc::clone(&state);
    let _breaker = orders_meters
        .meter("io.github.resilience4j")
        .u64_observable_gauge("resilience4j.circuitbreaker.state")
        .with_callback(move |observer| {
            let current = *gauge_state.lock().expect("state");
            for state in BREAKER_STATES {
                observer.observe(
                    u64::from(state == current),
                    &[
                        KeyValue::new("name", "payments"),
                        KeyValue::new("state", state),
                    ],
                );
            }
        })
        .build();
    let lags = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let gauge_lags = Arc::clone(&lags);
    let _lag = collector_meters
        .meter("otelcol/kafkametricsreceiver")
        .i64_observable_gauge("kafka.consumer_group.lag")
        .with_callback(move |observer| {
            for (partition, lag) in gauge_lags.iter().enumerate() {
                observer.observe(
                    lag.load(Ordering::Relaxed) as i64,
                    &[
                        KeyValue::new("group", GROUP),
                        KeyValue::new("topic", TOPIC),
                        KeyValue::new("partition", partition as i64),
                    ],
                );
            }
        })
        .build();

    while let Ok(step) = steps.recv() {
        *state.lock().expect("state") = step.breaker_state;
        for (slot, lag) in lags.iter().zip(step.lag) {
            slot.store(lag, Ordering::Relaxed);
        }
        place_order(&orders, &payments, &inventory, step.short_circuit);
        for provider in [&orders, &payments, &inventory] {
            provider.force_flush().expect("spans exported");
        }
        orders_meters.force_flush().expect("breaker exported");
        collector_meters.force_flush().expect("lag exported");
        if done.send(()).is_err() {
            break;
        }
    }
    for provider in [orders, payments, inventory] {
        let _ = provider.shutdown();
    }
    let _ = orders_meters.shutdown();
    let _ = collector_meters.shutdown();
}

/// One order: a server span in `orders`, its call to `payments` (or the breaker's refusal),
/// and the event `inventory` consumes.
fn place_order(
    orders: &SdkTracerProvider,
    payments: &SdkTracerProvider,
    inventory: &SdkTracerProvider,
    short_circuit: bool,
) {
    let orders_tracer = orders.tracer("orders");
    let root = orders_tracer
        .span_builder("POST /orders")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", "POST")])
        .start(&orders_tracer);
    let root_cx = Context::current_with_span(root);

    let mut call = orders_tracer
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("peer.service", "payments"),
            KeyValue::new("server.address", "payments"),
        ])
        .start_with_context(&orders_tracer, &root_cx);
    if short_circuit {
        call.set_status(Status::error(
            "io.github.resilience4j.circuitbreaker.CallNotPermittedException: \
             CircuitBreaker 'payments' is OPEN and does not permit further calls",
        ));
        call.end();
    } else {
        let call_cx = root_cx.with_span(call);
        let payments_tracer = payments.tracer("payments");
        let mut server = payments_tracer
            .span_builder("POST /pay")
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("http.request.method", "POST")])
            .start_with_context(&payments_tracer, &call_cx);
        server.end();
        call_cx.span().end();
    }

    let producer = orders_tracer
        .span_builder(format!("{TOPIC} publish"))
        .with_kind(SpanKind::Producer)
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", TOPIC),
            KeyValue::new("messaging.operation.type", "send"),
        ])
        .start_with_context(&orders_tracer, &root_cx);
    let producer_cx = root_cx.with_span(producer);
    let inventory_tracer = inventory.tracer("inventory");
    let mut consumer = inventory_tracer
        .span_builder(format!("{TOPIC} process"))
        .with_kind(SpanKind::Consumer)
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", TOPIC),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.consumer.group.name", GROUP),
        ])
        .start_with_context(&inventory_tracer, &producer_cx);
    consumer.end();
    producer_cx.span().end();
    root_cx.span().end();
}

/// Polls the graph until `check` holds for it, or fails with the last graph.
async fn graph_until(app: &TestApp, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, graph) = app.get_json("/api/v1/graph?window=15m").await;
        assert_eq!(status, 200, "{graph}");
        if check(&graph) {
            return graph;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} never showed; last graph: {graph:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn edge_field<'a>(graph: &'a Value, source: &str, target: &str, field: &str) -> Option<&'a Value> {
    graph["edges"]
        .as_array()?
        .iter()
        .find(|edge| edge["source"] == source && edge["target"] == target)
        .map(|edge| &edge[field])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_and_breaker_from_the_sdk_sit_on_the_right_edges_and_follow_the_metrics() {
    let app = spawn_graph_app(2).await;
    let sdk = Sdk::start(app.otlp_http.clone());
    let topic_node = topic("kafka", TOPIC);
    let inventory = service("inventory");
    let orders = service("orders");
    let payments = service("payments");

    sdk.step(Step {
        breaker_state: "closed",
        lag: [5, 3],
        short_circuit: false,
    })
    .await;
    let graph = graph_until(&app, "lag 8 and a closed breaker", |graph| {
        edge_field(graph, &topic_node, &inventory, "kafka_lag").is_some_and(|lag| lag["lag"] == 8.0)
            && edge_field(graph, &orders, &payments, "breaker")
                .is_some_and(|breaker| breaker["state"] == "closed")
    })
    .await;
    let lag = &find_edge(&graph, &topic_node, &inventory)["kafka_lag"];
    assert_eq!(lag["groups"], serde_json::json!([GROUP]));
    let breaker = &find_edge(&graph, &orders, &payments)["breaker"];
    assert_eq!(
        (breaker["name"].as_str(), breaker["open"].as_bool()),
        (Some("payments"), Some(false))
    );
    // Nowhere else.
    let with_lag = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| !e["kafka_lag"].is_null())
        .count();
    let with_breaker = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| !e["breaker"].is_null())
        .count();
    assert_eq!((with_lag, with_breaker), (1, 1), "{graph:#}");

    sdk.step(Step {
        breaker_state: "open",
        lag: [50, 30],
        short_circuit: true,
    })
    .await;
    let graph = graph_until(&app, "lag 80 and an open breaker", |graph| {
        edge_field(graph, &topic_node, &inventory, "kafka_lag")
            .is_some_and(|lag| lag["lag"] == 80.0)
            && edge_field(graph, &orders, &payments, "breaker")
                .is_some_and(|breaker| breaker["state"] == "open")
    })
    .await;
    assert_eq!(
        find_edge(&graph, &orders, &payments)["breaker"]["open"],
        true
    );

    let dot = app
        .client
        .get(format!("{}/api/v1/graph.dot?window=15m", app.ui))
        .send()
        .await
        .expect("dot")
        .text()
        .await
        .expect("dot text");
    assert!(
        dot.contains("breaker open") && dot.contains("lag 80"),
        "{dot}"
    );

    let (status, breakers) = app.get_json("/api/v1/breakers?window=15m").await;
    assert_eq!(status, 200);
    let breaker = &breakers["breakers"][0];
    assert_eq!(breaker["service"], "orders");
    assert_eq!(breaker["edge"]["target"], payments.as_str());
    let transitions: Vec<(Value, Value)> = breaker["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| (t["from"].clone(), t["to"].clone()))
        .collect();
    assert_eq!(
        transitions,
        [
            (Value::Null, "closed".into()),
            ("closed".into(), "open".into())
        ]
    );
    assert_eq!(breaker["short_circuited"], 1, "{breakers:#}");

    let (status, kafka) = app.get_json("/api/v1/kafka?window=15m").await;
    assert_eq!(status, 200);
    let group = &kafka["groups"][0];
    assert_eq!(
        (group["group"].as_str(), group["service"].as_str()),
        (Some(GROUP), Some(inventory.as_str()))
    );
    assert_eq!(group["trend"], "growing", "{kafka:#}");
    let partitions: Vec<f64> = group["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["lag"].as_f64().expect("lag"))
        .collect();
    assert_eq!(partitions, [50.0, 30.0]);

    sdk.stop().await;
    app.shutdown().await;
}
