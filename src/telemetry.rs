//! Cartograph's own telemetry: structured logs via `tracing`, and counters rendered as
//! Prometheus text at `/metrics`. Every label set is fixed, so cardinality is bounded.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Which kind of telemetry an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    const ALL: [Signal; 2] = [Signal::Traces, Signal::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why items were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Decoded, but individual items failed validation (reported as partial success).
    Invalid,
    /// The request could not be decoded (or decompressed).
    Malformed,
    /// The pipeline was full.
    Backpressure,
    /// The request was bigger than a limit.
    TooLarge,
    /// Content type or encoding not supported.
    UnsupportedMedia,
    /// Cartograph is shutting down.
    ShuttingDown,
}

impl RejectReason {
    const ALL: [RejectReason; 6] = [
        RejectReason::Invalid,
        RejectReason::Malformed,
        RejectReason::Backpressure,
        RejectReason::TooLarge,
        RejectReason::UnsupportedMedia,
        RejectReason::ShuttingDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Invalid => "invalid",
            RejectReason::Malformed => "malformed",
            RejectReason::Backpressure => "backpressure",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnsupportedMedia => "unsupported_media",
            RejectReason::ShuttingDown => "shutting_down",
        }
    }
}

/// Upper bounds of the store batch latency histogram, in seconds.
const BATCH_SECONDS_BOUNDS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How long a failure of the write-ahead log keeps `/health/ready` at 503.
pub const LOG_FAILURE_MEMORY: Duration = Duration::from_secs(10);

/// All counters of one running Cartograph. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Telemetry {
    export_requests: [AtomicU64; 2],
    received_items: [AtomicU64; 2],
    accepted_items: [AtomicU64; 2],
    rejected_items: [[AtomicU64; 6]; 2],
    rejected_requests: [[AtomicU64; 6]; 2],
    unknown_service_items: [AtomicU64; 2],
    limited_attributes: [AtomicU64; 2],
    stored_items: [AtomicU64; 2],
    retention_deleted_items: [AtomicU64; 2],
    store_size_bytes: AtomicU64,
    store_write_errors: AtomicU64,
    store_failing: AtomicBool,
    store_batches: AtomicU64,
    store_batch_nanos_sum: AtomicU64,
    store_batch_buckets: [AtomicU64; BATCH_SECONDS_BOUNDS.len()],
    queue_items: AtomicU64,
    graph_skipped_spans: AtomicU64,
    queue_capacity_items: AtomicU64,
    unauthenticated_requests: AtomicU64,
    stalled_bodies: AtomicU64,
    store_spans_kept: AtomicU64,
    replayed_frames: AtomicU64,
    replayed_items: AtomicU64,
    replay_nanos: AtomicU64,
    replaying: AtomicBool,
    /// Why an export could last not be made durable, and when; cleared when one succeeds.
    log_failure: std::sync::Mutex<Option<(String, std::time::Instant)>>,
    /// The write-ahead log whose own statistics `/metrics` shows, once there is one.
    wal: std::sync::OnceLock<crate::wal::Wal>,
    /// The embedded store's block counters, when that is the store.
    blocks: std::sync::OnceLock<Arc<crate::store::sqlite::BlockCounters>>,
}

fn add(counter: &AtomicU64, value: u64) {
    counter.fetch_add(value, Ordering::Relaxed);
}

impl Telemetry {
    pub fn record_request(&self, signal: Signal, num_items: u64) {
        add(&self.export_requests[signal.index()], 1);
        add(&self.received_items[signal.index()], num_items);
    }

    /// Attributes dropped or cut by the ingest limits.
    pub fn record_limited_attributes(&self, signal: Signal, num_attributes: u64) {
        add(&self.limited_attributes[signal.index()], num_attributes);
    }

    pub fn record_accepted(&self, signal: Signal, num_items: u64, num_unknown_service: u64) {
        add(&self.accepted_items[signal.index()], num_items);
        add(
            &self.unknown_service_items[signal.index()],
            num_unknown_service,
        );
    }

    /// Counts a whole request (or some of its items) that was refused.
    pub fn record_rejected(&self, signal: Signal, reason: RejectReason, num_items: u64) {
        let reason_index = reason as usize;
        add(
            &self.rejected_items[signal.index()][reason_index],
            num_items,
        );
        if reason != RejectReason::Invalid {
            add(&self.rejected_requests[signal.index()][reason_index], 1);
        }
    }

    pub fn record_stored(&self, num_spans: u64, num_points: u64, elapsed: Duration) {
        add(&self.stored_items[Signal::Traces.index()], num_spans);
        add(&self.stored_items[Signal::Metrics.index()], num_points);
        add(&self.store_batches, 1);
        self.store_failing.store(false, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        add(&self.store_batch_nanos_sum, nanos);
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BATCH_SECONDS_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
        {
            add(&self.store_batch_buckets[bucket], 1);
        }
    }

    /// Spans not fed to the map because the graph queue was full (they are still stored).
    /// A request refused for missing or wrong credentials (any port).
    pub fn record_unauthenticated(&self) {
        add(&self.unauthenticated_requests, 1);
    }

    /// A request body cut off for stalling or arriving too slowly (see `body_deadline`).
    pub fn record_stalled_body(&self) {
        add(&self.stalled_bodies, 1);
    }

    pub fn stalled_bodies(&self) -> u64 {
        self.stalled_bodies.load(Ordering::Relaxed)
    }

    pub fn record_graph_skipped(&self, num_spans: u64) {
        add(&self.graph_skipped_spans, num_spans);
    }

    pub fn record_store_error(&self) {
        add(&self.store_write_errors, 1);
        self.store_failing.store(true, Ordering::Relaxed);
    }

    /// False while the store writer's last attempt failed.
    pub fn store_healthy(&self) -> bool {
        !self.store_failing.load(Ordering::Relaxed)
    }

    pub fn record_retention(&self, num_spans: u64, num_points: u64, size_bytes: u64) {
        add(
            &self.retention_deleted_items[Signal::Traces.index()],
            num_spans,
        );
        add(
            &self.retention_deleted_items[Signal::Metrics.index()],
            num_points,
        );
        self.store_size_bytes.store(size_bytes, Ordering::Relaxed);
    }

    /// Spans the store held after the last retention run (for bytes per span).
    pub fn record_spans_kept(&self, num_spans: u64) {
        self.store_spans_kept.store(num_spans, Ordering::Relaxed);
    }

    /// What the write-ahead log replayed at start, and how long it took.
    pub fn set_replaying(&self, replaying: bool) {
        self.replaying.store(replaying, Ordering::Relaxed);
    }

    /// Records why the write-ahead log refused the last export (`None`: it took the last one).
    pub fn set_log_failure(&self, reason_opt: Option<String>) {
        let mut failure = self
            .log_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failure.is_some() || reason_opt.is_some() {
            *failure = reason_opt.map(|reason| (reason, std::time::Instant::now()));
        }
    }

    /// Why the write-ahead log failed an export in the last [`LOG_FAILURE_MEMORY`], if it
    /// did (forgotten after that, so readiness does not wait for traffic to come back).
    pub fn log_failure(&self) -> Option<String> {
        self.log_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(_, at)| at.elapsed() < LOG_FAILURE_MEMORY)
            .map(|(reason, _)| reason.clone())
    }

    /// Whether the write-ahead log is still being replayed into the store (not ready).
    pub fn is_replaying(&self) -> bool {
        self.replaying.load(Ordering::Relaxed)
    }

    pub fn record_replay(&self, num_frames: u64, num_items: u64, elapsed: Duration) {
        self.set_replaying(false);
        self.replayed_frames.store(num_frames, Ordering::Relaxed);
        self.replayed_items.store(num_items, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.replay_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Shows the embedded store's block counters at `/metrics` from now on.
    pub fn attach_block_counters(&self, counters: Arc<crate::store::sqlite::BlockCounters>) {
        let _ = self.blocks.set(counters);
    }

    /// Shows the log's statistics at `/metrics` from now on.
    pub fn attach_wal(&self, wal: crate::wal::Wal) {
        let _ = self.wal.set(wal);
    }

    pub fn set_queue(&self, num_items: u64, capacity_items: u64) {
        self.queue_items.store(num_items, Ordering::Relaxed);
        self.queue_capacity_items
            .store(capacity_items, Ordering::Relaxed);
    }

    pub fn accepted_items(&self, signal: Signal) -> u64 {
        self.accepted_items[signal.index()].load(Ordering::Relaxed)
    }

    pub fn stored_items(&self, signal: Signal) -> u64 {
        self.stored_items[signal.index()].load(Ordering::Relaxed)
    }

    /// Renders every counter in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let per_signal = [
            (
                "cartograph_otlp_requests_total",
                "OTLP export requests received.",
                &self.export_requests,
            ),
            (
                "cartograph_received_items_total",
                "Spans or metric points received in export requests.",
                &self.received_items,
            ),
            (
                "cartograph_accepted_items_total",
                "Spans or metric points accepted into the pipeline.",
                &self.accepted_items,
            ),
            (
                "cartograph_unknown_service_items_total",
                "Accepted items whose resource had no service.name.",
                &self.unknown_service_items,
            ),
            (
                "cartograph_limited_attributes_total",
                "Attributes dropped (over ingest.max_attributes) or cut (over ingest.max_attribute_value_bytes).",
                &self.limited_attributes,
            ),
            (
                "cartograph_stored_items_total",
                "Spans or metric points committed to the store.",
                &self.stored_items,
            ),
            (
                "cartograph_retention_deleted_items_total",
                "Spans or metric points deleted by retention.",
                &self.retention_deleted_items,
            ),
        ];
        for (name, help, counters) in per_signal {
            header(&mut out, name, help, "counter");
            for signal in Signal::ALL {
                let value = counters[signal.index()].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{signal=\"{}\"}} {value}", signal.as_str());
            }
        }
        let per_reason = [
            (
                "cartograph_rejected_items_total",
                "Items not accepted, by reason.",
                &self.rejected_items,
            ),
            (
                "cartograph_rejected_requests_total",
                "Whole export requests refused, by reason.",
                &self.rejected_requests,
            ),
        ];
        for (name, help, counters) in per_reason {
            header(&mut out, name, help, "counter");
            for signal in Signal::ALL {
                for reason in RejectReason::ALL {
                    let value = counters[signal.index()][reason as usize].load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "{name}{{signal=\"{}\",reason=\"{}\"}} {value}",
                        signal.as_str(),
                        reason.as_str()
                    );
                }
            }
        }
        self.render_store(&mut out);
        self.render_log(&mut out);
        out
    }

    fn render_log(&self, out: &mut String) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let spans_kept = load(&self.store_spans_kept);
        let bytes_per_span = if spans_kept == 0 {
            0.0
        } else {
            load(&self.store_size_bytes) as f64 / spans_kept as f64
        };
        header(
            out,
            "cartograph_store_bytes_per_span",
            "Store size over the spans it holds, after the last retention run (everything in the data directory counted).",
            "gauge",
        );
        let _ = writeln!(out, "cartograph_store_bytes_per_span {bytes_per_span}");
        let replay_seconds = load(&self.replay_nanos) as f64 / 1e9;
        let replay = [
            (
                "cartograph_wal_replay_seconds",
                "Time the write-ahead log replay took at start.",
                replay_seconds,
            ),
            (
                "cartograph_wal_replayed_frames",
                "Frames replayed from the write-ahead log at start.",
                load(&self.replayed_frames) as f64,
            ),
            (
                "cartograph_wal_replayed_items",
                "Spans and points replayed from the write-ahead log at start.",
                load(&self.replayed_items) as f64,
            ),
        ];
        for (name, help, value) in replay {
            header(out, name, help, "gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(wal) = self.wal.get() {
            crate::wal::render_prometheus(wal, out);
        }
        if let Some(blocks) = self.blocks.get() {
            let counters = [
                (
                    "cartograph_store_blocks_written_total",
                    "Compressed span blocks written.",
                    &blocks.num_blocks_written,
                ),
                (
                    "cartograph_store_block_bytes_written_total",
                    "Bytes of compressed span blocks written.",
                    &blocks.num_block_bytes_written,
                ),
                (
                    "cartograph_store_parts_sealed_total",
                    "Span parts sealed (exact indexes written).",
                    &blocks.num_parts_sealed,
                ),
            ];
            for (name, help, counter) in counters {
                header(out, name, help, "counter");
                let _ = writeln!(out, "{name} {}", load(counter));
            }
        }
    }

    fn render_store(&self, out: &mut String) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let scalars = [
            (
                "cartograph_pipeline_queue_items",
                "Items accepted and waiting for the store.",
                "gauge",
                load(&self.queue_items),
            ),
            (
                "cartograph_pipeline_queue_capacity_items",
                "Capacity of the pipeline queue.",
                "gauge",
                load(&self.queue_capacity_items),
            ),
            (
                "cartograph_store_write_errors_total",
                "Failed store transactions (retried).",
                "counter",
                load(&self.store_write_errors),
            ),
            (
                "cartograph_store_size_bytes",
                "Size of the store after the last retention run.",
                "gauge",
                load(&self.store_size_bytes),
            ),
            (
                "cartograph_graph_skipped_spans_total",
                "Spans stored but not fed to the map because its queue was full.",
                "counter",
                load(&self.graph_skipped_spans),
            ),
            (
                "cartograph_unauthenticated_requests_total",
                "Requests refused for missing or wrong credentials, on any port.",
                "counter",
                load(&self.unauthenticated_requests),
            ),
            (
                "cartograph_stalled_bodies_total",
                "Request bodies cut off for pausing too long or arriving too slowly, on any port.",
                "counter",
                load(&self.stalled_bodies),
            ),
        ];
        for (name, help, kind, value) in scalars {
            header(out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "cartograph_store_batch_seconds";
        header(
            out,
            name,
            "Time to commit one store transaction.",
            "histogram",
        );
        let mut cumulative = 0;
        for (bound, bucket) in BATCH_SECONDS_BOUNDS.iter().zip(&self.store_batch_buckets) {
            cumulative += load(bucket);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = load(&self.store_batches);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum_seconds = load(&self.store_batch_nanos_sum) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum_seconds}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Installs the log subscriber: `RUST_LOG` filters, default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_fixed_labels() {
        let telemetry = Telemetry::default();
        telemetry.record_request(Signal::Traces, 5);
        telemetry.record_rejected(Signal::Traces, RejectReason::Backpressure, 5);
        telemetry.record_stored(3, 0, Duration::from_millis(2));
        let text = telemetry.render_prometheus();
        assert!(text.contains("cartograph_received_items_total{signal=\"traces\"} 5"));
        assert!(text.contains(
            "cartograph_rejected_items_total{signal=\"traces\",reason=\"backpressure\"} 5"
        ));
        assert!(text.contains(
            "cartograph_rejected_requests_total{signal=\"traces\",reason=\"backpressure\"} 1"
        ));
        assert!(text.contains("cartograph_store_batch_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("cartograph_store_batch_seconds_count 1"));
    }
}
