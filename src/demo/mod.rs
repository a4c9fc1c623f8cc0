//! The demo shop: `cartograph demo --endpoint URL` and `cartograph serve --demo`. A simulated
//! shop whose six services, two databases, Kafka topic and payment provider report through
//! the real OpenTelemetry SDK and OTLP/gRPC exporter, on a schedule of trouble (see `world`):
//! payment failures that open and close the circuit breaker, Kafka bursts whose lag grows and
//! drains, latency spikes. `speed` compresses the schedule (not the request rate).
//!
//! It runs on a thread of its own with a small runtime for the exporters, so it neither blocks
//! nor depends on the caller's runtime.

mod shop;
mod world;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{MeterProvider as _, ObservableGauge};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::{info, warn};

use crate::model::now_unix_nano;

pub use shop::{AUDIT_TOPIC, SERVICES, TOPIC};
use shop::{Shop, Tracers};
use world::{Breaker, BreakerState, ConsumerGroup, NUM_PARTITIONS, Phase, Rng};

const TICK: Duration = Duration::from_millis(50);
const BREAKER_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];
/// During a Kafka burst, orders publishes this many times its usual events.
const BURST_FACTOR: f64 = 6.0;

#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// Orders per second.
    pub orders_per_sec: f64,
    /// Stop after this long (`None`: until stopped).
    pub duration_opt: Option<Duration>,
    pub seed: u64,
    /// Schedule seconds per real second (10 runs a minute's schedule in six seconds).
    pub speed: f64,
    /// Credentials and trust for a secured endpoint.
    pub access: ExporterAccess,
}

/// What the demo's exporters need for an endpoint with authentication or TLS.
#[derive(Debug, Clone, Default)]
pub struct ExporterAccess {
    /// Sent as `authorization: Bearer TOKEN`.
    pub token: Option<crate::auth::Secret>,
    /// PEM CA certificates to trust (the endpoint is then `https://`).
    pub ca_pem: Option<Vec<u8>>,
    /// Name the endpoint's certificate must carry (default: the endpoint's host).
    pub tls_domain: Option<String>,
}

impl ExporterAccess {
    fn apply<B: WithTonicConfig>(&self, builder: B) -> Result<B, String> {
        let mut builder = builder;
        if let Some(token) = &self.token {
            let mut metadata = tonic::metadata::MetadataMap::new();
            let value = format!("Bearer {}", token.0)
                .parse()
                .map_err(|_| "the token is not valid header text".to_owned())?;
            metadata.insert("authorization", value);
            builder = builder.with_metadata(metadata);
        }
        if let Some(ca_pem) = &self.ca_pem {
            let mut tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
            if let Some(domain) = &self.tls_domain {
                tls = tls.domain_name(domain.clone());
            }
            builder = builder.with_tls_config(tls);
        }
        Ok(builder)
    }
}

/// The running demo.
pub struct DemoHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64, String>>,
}

impl std::fmt::Debug for DemoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoHandle").finish_non_exhaustive()
    }
}

impl DemoHandle {
    /// Stops the shop, exports what is buffered, and returns the number of orders placed.
    pub fn stop(self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }

    /// Waits for the demo to end by itself (its duration).
    pub fn wait(self) -> Result<u64, String> {
        self.thread
            .join()
            .map_err(|_| "demo thread panicked".to_owned())?
    }
}

pub fn spawn(settings: DemoSettings) -> std::io::Result<DemoHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("demo".to_owned())
        .spawn(move || run(&settings, &thread_stop))?;
    Ok(DemoHandle { stop, thread })
}

fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", service.to_owned()),
            KeyValue::new("service.namespace", "shop"),
            KeyValue::new("service.version", "1.0.0"),
            KeyValue::new("deployment.environment.name", "demo"),
        ])
        .build()
}

fn tracer_provider(
    endpoint: &str,
    access: &ExporterAccess,
    service: &str,
) -> Result<SdkTracerProvider, String> {
    let exporter = access
        .apply(SpanExporter::builder().with_tonic())?
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|err| format!("span exporter for {endpoint}: {err}"))?;
    let batches = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(200))
        .with_max_queue_size(65_536)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource(service))
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batches)
                .build(),
        )
        .build())
}

fn meter_provider(
    endpoint: &str,
    access: &ExporterAccess,
    service: &str,
    interval: Duration,
) -> Result<SdkMeterProvider, String> {
    let exporter = access
        .apply(MetricExporter::builder().with_tonic())?
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|err| format!("metric exporter for {endpoint}: {err}"))?;
    Ok(SdkMeterProvider::builder()
        .with_resource(resource(service))
        .with_reader(
            PeriodicReader::builder(exporter)
                .with_interval(interval)
                .build(),
        )
        .build())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lag of each consumer group, per partition.
type GroupLags = Vec<(&'static str, [u64; NUM_PARTITIONS])>;

/// What the metric callbacks report, updated by the shop's loop.
struct Gauges {
    breaker_state: Arc<Mutex<BreakerState>>,
    lags: Arc<Mutex<GroupLags>>,
    _instruments: (ObservableGauge<u64>, ObservableGauge<i64>),
}

impl Gauges {
    /// resilience4j's state gauges from orders; lag as the Collector's kafkametrics receiver
    /// reports it.
    fn register(orders_meters: &SdkMeterProvider, kafka_meters: &SdkMeterProvider) -> Self {
        let breaker_state = Arc::new(Mutex::new(BreakerState::Closed));
        let gauge_state = Arc::clone(&breaker_state);
        let breaker_gauge = orders_meters
            .meter("io.github.resilience4j")
            .u64_observable_gauge("resilience4j.circuitbreaker.state")
            .with_description("The states of the circuit breaker")
            .with_callback(move |observer| {
                let current = *lock(&gauge_state);
                for state in BREAKER_STATES {
                    observer.observe(
                        u64::from(state == current),
                        &[
                            KeyValue::new("name", "payments"),
                            KeyValue::new("state", state.as_str()),
                        ],
                    );
                }
            })
            .build();
        let lags: Arc<Mutex<GroupLags>> = Arc::default();
        let gauge_lags = Arc::clone(&lags);
        let lag_gauge = kafka_meters
            .meter("otelcol/kafkametricsreceiver")
            .i64_observable_gauge("kafka.consumer_group.lag")
            .with_unit("{message}")
            .with_callback(move |observer| {
                let lags = lock(&gauge_lags).clone();
                for (group, partitions) in lags {
                    for (partition, lag) in partitions.iter().enumerate() {
                        observer.observe(
                            i64::try_from(*lag).unwrap_or(i64::MAX),
                            &[
                                KeyValue::new("group", group),
                                KeyValue::new("topic", TOPIC),
                                KeyValue::new("partition", partition as i64),
                            ],
                        );
                    }
                }
            })
            .build();
        Self {
            breaker_state,
            lags,
            _instruments: (breaker_gauge, lag_gauge),
        }
    }

    fn update(&self, shop: &Shop, schedule_secs: f64) {
        *lock(&self.breaker_state) = shop.breaker.state(schedule_secs);
        *lock(&self.lags) = [&shop.inventory, &shop.notifications]
            .iter()
            .map(|group| (group.name, group.lag()))
            .collect();
    }
}

fn run(settings: &DemoSettings, stop: &AtomicBool) -> Result<u64, String> {
    // The tonic exporters need a runtime to drive their connections.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("demo-export")
        .enable_all()
        .build()
        .map_err(|err| format!("demo runtime: {err}"))?;
    let _entered = runtime.enter();
    let speed = settings.speed.max(0.01);
    let metric_interval = Duration::from_secs_f64((5.0 / speed).clamp(0.25, 5.0));
    let providers = SERVICES
        .iter()
        .map(|service| tracer_provider(&settings.endpoint, &settings.access, service))
        .collect::<Result<Vec<_>, _>>()?;
    let (endpoint, access) = (&settings.endpoint, &settings.access);
    let orders_meters = meter_provider(endpoint, access, "orders", metric_interval)?;
    let kafka_meters = meter_provider(endpoint, access, "otel-collector", metric_interval)?;

    let gauges = Gauges::register(&orders_meters, &kafka_meters);

    let mut shop = Shop {
        tracers: Tracers::new(&providers),
        rng: Rng::new(settings.seed),
        breaker: Breaker::default(),
        inventory: ConsumerGroup::new("inventory", 3.0 * settings.orders_per_sec.max(1.0)),
        notifications: ConsumerGroup::new("notifications", 2.0 * settings.orders_per_sec.max(1.0)),
        num_orders: 0,
    };
    info!(endpoint = %settings.endpoint, orders_per_sec = settings.orders_per_sec, speed, "demo shop is open");
    let started = Instant::now();
    let mut last = started;
    let mut order_credit = 0.0;
    let mut backlog_credit = 0.0;
    while !stop.load(Ordering::Relaxed)
        && settings
            .duration_opt
            .is_none_or(|duration| started.elapsed() < duration)
    {
        std::thread::sleep(TICK);
        let elapsed_secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let schedule_secs = started.elapsed().as_secs_f64() * speed;
        let now = now_unix_nano();
        order_credit += settings.orders_per_sec * elapsed_secs;
        while order_credit >= 1.0 {
            shop.place_order(now, schedule_secs);
            order_credit -= 1.0;
        }
        if Phase::at(schedule_secs).kafka_burst {
            backlog_credit += settings.orders_per_sec * (BURST_FACTOR - 1.0) * elapsed_secs;
            let count = backlog_credit.floor();
            backlog_credit -= count;
            shop.publish_backlog(now, count as usize);
        }
        shop.consume(now, elapsed_secs);
        gauges.update(&shop, schedule_secs);
    }
    info!(num_orders = shop.num_orders, "demo shop is closing");
    for provider in &providers {
        if let Err(err) = provider.shutdown() {
            warn!(error = %err, "demo spans not all exported");
        }
    }
    for provider in [&orders_meters, &kafka_meters] {
        if let Err(err) = provider.shutdown() {
            warn!(error = %err, "demo metrics not all exported");
        }
    }
    Ok(shop.num_orders)
}
