//! The graph engine's thread. Ingest offers each accepted batch's graph spans through a
//! bounded queue; when the map falls behind, spans are skipped for the map and counted (the
//! store still receives them, so nothing acknowledged is lost). The thread feeds the engine,
//! ticks it every second, and hands closed minutes to the store writer as rollups.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::Pipeline;
use crate::graph::sampling::SamplingRules;
use crate::graph::{GraphEngine, GraphSpan};
use crate::model::{NANOS_PER_MINUTE, Span, now_unix_nano};
use crate::service_graph_metrics::ServiceGraphMetrics;
use crate::telemetry::Telemetry;

const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Cloneable sending side, held by the ingest service.
#[derive(Debug, Clone)]
pub struct GraphFeed {
    sender: SyncSender<Vec<GraphSpan>>,
    telemetry: Arc<Telemetry>,
    rules: Arc<SamplingRules>,
}

impl GraphFeed {
    /// The map's view of a batch (on the ingest thread), weighed by the sampling rules.
    pub fn classify(&self, spans: &[Span]) -> Vec<GraphSpan> {
        GraphSpan::from_spans(spans, &self.rules)
    }

    /// Queues spans for the map without waiting; counts them as skipped when the queue is full.
    pub fn offer(&self, spans: Vec<GraphSpan>) {
        if spans.is_empty() {
            return;
        }
        let num_spans = spans.len() as u64;
        match self.sender.try_send(spans) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.telemetry.record_graph_skipped(num_spans);
            }
        }
    }
}

/// The running graph thread.
pub struct GraphFeedHandle {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl GraphFeedHandle {
    /// Feeds what is queued, closes finished minutes, and stops the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            error!("graph thread panicked");
        }
    }
}

pub fn spawn_graph_feed(
    engine: Arc<Mutex<GraphEngine>>,
    queue_capacity_batches: usize,
    pipeline: Pipeline,
    metrics: Arc<ServiceGraphMetrics>,
    telemetry: Arc<Telemetry>,
    rules: SamplingRules,
) -> std::io::Result<(GraphFeed, GraphFeedHandle)> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(queue_capacity_batches);
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("graph".to_owned())
        .spawn(move || run(&engine, &receiver, &pipeline, &metrics, &thread_stop))?;
    Ok((
        GraphFeed {
            sender,
            telemetry,
            rules: Arc::new(rules),
        },
        GraphFeedHandle { thread, stop },
    ))
}

fn run(
    engine: &Mutex<GraphEngine>,
    receiver: &Receiver<Vec<GraphSpan>>,
    pipeline: &Pipeline,
    metrics: &ServiceGraphMetrics,
    stop: &AtomicBool,
) {
    let mut next_tick = Instant::now() + TICK_INTERVAL;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait.min(Duration::from_millis(100))) {
            Ok(spans) => lock_engine(engine).ingest(spans, now_unix_nano()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if stop.load(Ordering::Relaxed) {
            while let Ok(spans) = receiver.try_recv() {
                lock_engine(engine).ingest(spans, now_unix_nano());
            }
            break;
        }
        if Instant::now() >= next_tick {
            tick(engine, pipeline, metrics, now_unix_nano());
            next_tick = Instant::now() + TICK_INTERVAL;
        }
    }
    // Close the minute in progress too, so a graceful restart keeps its calls (rollups are
    // per instance, so the next run's own counts for this minute add to them). Halves still
    // waiting for a partner can no longer pair and are recorded as unpaired.
    tick(
        engine,
        pipeline,
        metrics,
        now_unix_nano() + NANOS_PER_MINUTE,
    );
}

fn tick(
    engine: &Mutex<GraphEngine>,
    pipeline: &Pipeline,
    metrics: &ServiceGraphMetrics,
    now_unix_nano: u64,
) {
    let closed = {
        let mut engine = lock_engine(engine);
        let mut closed = engine.tick(now_unix_nano);
        metrics.add_closed(&std::mem::take(&mut closed.counted_edges));
        closed
    };
    if closed.is_empty() {
        return;
    }
    if let Err(err) = pipeline.submit_rollups(closed) {
        warn!(error = %err, "graph rollups not stored");
    }
}

pub fn lock_engine(engine: &Mutex<GraphEngine>) -> std::sync::MutexGuard<'_, GraphEngine> {
    engine.lock().unwrap_or_else(PoisonError::into_inner)
}
