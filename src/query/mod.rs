//! The query service: what the web layer (and later alerts) may ask of stored and live data.
//! It runs store reads on the blocking pool and knows nothing about HTTP.

mod anomalies;
mod audit;
mod deploys;
mod diff;
mod edge_split;
mod graph;
mod metric_red;
mod nodes;
mod series;
mod signal_series;
mod signals;
mod trace_page;

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::graph::GraphEngine;
use crate::model::figures::LatencyTargets;
use crate::model::{MetricPoint, MinuteRange, TraceId};
use crate::service_graph_metrics::ServiceGraphMetrics;
use crate::signals::SharedSignals;
use crate::store::{
    MetricQuery, MetricReader, RollupReader, StoreError, TraceQuery, TraceReader, TraceSummary,
};

pub use anomalies::{
    Anomalies, Anomaly, MAX_SUBJECTS as MAX_ANOMALY_SUBJECTS,
    MAX_WINDOW_MINUTES as MAX_ANOMALY_WINDOW_MINUTES, Subject,
};
pub use audit::{Audit, AuditSettings, FindingFilter};
pub use diff::{Baseline, GraphDiff};
pub use edge_split::{
    EdgeDrilldown, EdgeSplit, MAX_SPANS as DRILLDOWN_MAX_SPANS, REFUSED_STATUS, SpanSearch,
    SplitRow, drilldown_queries,
};
pub use graph::{GraphFilter, GraphRange, ServiceSummary};
pub use metric_red::{FigureSource, MetricFigures, MetricsOverlay};
pub use nodes::NodeFigures;
pub use series::SeriesBuckets;
pub use signal_series::{BreakerHistory, LagSeries, SignalHistory};
pub use signals::{EdgeLag, PlacedGraph, SignalOverlay, Signals, overlay};
pub use trace_page::TracePage;

/// Whole-trace reads running at once. A read holds every span of its trace until it is cut to
/// a page (about 40 MB for 100,000 spans), so this bounds what readers of huge traces hold
/// together, however many ask; the others wait their turn without holding a thread.
pub const MAX_CONCURRENT_TRACE_READS: usize = 4;

/// Every read trait of one store.
pub trait StoreReader: TraceReader + MetricReader + RollupReader {}

impl<T: TraceReader + MetricReader + RollupReader> StoreReader for T {}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query task failed: {0}")]
    Task(String),
}

/// Spans a page looks at, newest first, for the example traces it lists beside its figures
/// (failed traces of a service, traces crossing an edge, an edge's split): about 50 ms of the
/// embedded store's decoding. The figures themselves come from the map, not from this scan.
pub const EXAMPLE_SCAN_SPANS: usize = 50_000;

#[derive(Clone)]
pub struct QueryService {
    reader: Arc<dyn StoreReader>,
    engine: Arc<Mutex<GraphEngine>>,
    service_graph_metrics: Arc<ServiceGraphMetrics>,
    signals: SharedSignals,
    /// This process's id in stored rollups: its own minutes are read from memory instead.
    instance: u32,
    /// [`MAX_CONCURRENT_TRACE_READS`] permits.
    trace_reads: Arc<Semaphore>,
    /// What latency is held against (the map's colours).
    pub targets: LatencyTargets,
    /// What the audit holds the system to (`[insights]`).
    pub audit_settings: AuditSettings,
}

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService").finish_non_exhaustive()
    }
}

impl QueryService {
    pub fn new(
        reader: Arc<dyn StoreReader>,
        engine: Arc<Mutex<GraphEngine>>,
        service_graph_metrics: Arc<ServiceGraphMetrics>,
        signals: SharedSignals,
        instance: u32,
    ) -> Self {
        Self {
            reader,
            engine,
            service_graph_metrics,
            signals,
            instance,
            trace_reads: Arc::new(Semaphore::new(MAX_CONCURRENT_TRACE_READS)),
            targets: LatencyTargets::default(),
            audit_settings: AuditSettings::default(),
        }
    }

    /// The same service auditing with `settings` (gateways, correlation ids, endpoint
    /// patterns, the per-instance target).
    pub fn with_audit(mut self, settings: AuditSettings) -> Self {
        self.audit_settings = settings;
        self
    }

    /// The same service holding latency against `targets`.
    pub fn with_targets(mut self, targets: LatencyTargets) -> Self {
        self.targets = targets;
        self
    }

    /// The map as Tempo-compatible Prometheus series plus the engine's counters.
    pub fn render_service_graph_metrics(&self) -> String {
        let engine = crate::pipeline::lock_engine(&self.engine);
        let open = engine
            .open_minute()
            .map(|minute| engine.edges(MinuteRange::single(minute)))
            .unwrap_or_default();
        self.service_graph_metrics.render(&open, &engine.counters())
    }

    /// The signal mapper's counters as Prometheus text.
    pub fn render_signal_metrics(&self) -> String {
        self.signals.render_prometheus()
    }

    /// At most `limit` spans of one trace from `offset` on (start time, then span id), or
    /// `None` when no span of it is stored. The store reads the whole trace; the other spans
    /// are dropped on the blocking pool, before the caller renders the page. At most
    /// [`MAX_CONCURRENT_TRACE_READS`] run at once.
    pub async fn trace_page(
        &self,
        trace_id: TraceId,
        offset: usize,
        limit: usize,
    ) -> Result<Option<TracePage>, QueryError> {
        self.whole_trace_read(move |reader| {
            Ok(reader
                .trace(trace_id)?
                .map(|spans| TracePage::cut(spans, offset, limit)))
        })
        .await
    }

    /// `read`, which holds whole traces, on the blocking pool once one of the
    /// [`MAX_CONCURRENT_TRACE_READS`] places is free.
    async fn whole_trace_read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn StoreReader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let permit = Arc::clone(&self.trace_reads)
            .acquire_owned()
            .await
            .map_err(|err| QueryError::Task(err.to_string()))?;
        self.blocking(move |reader| {
            // Held by the read itself: a caller that goes away does not free its place early.
            let _permit = permit;
            read(reader)
        })
        .await
    }

    pub async fn search_traces(&self, query: TraceQuery) -> Result<Vec<TraceSummary>, QueryError> {
        self.blocking(move |reader| reader.search_traces(&query))
            .await
    }

    pub async fn metric_points(&self, query: MetricQuery) -> Result<Vec<MetricPoint>, QueryError> {
        self.blocking(move |reader| reader.metric_points(&query))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn StoreReader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || read(reader.as_ref()))
            .await
            .map_err(|err| QueryError::Task(err.to_string()))?
            .map_err(QueryError::Store)
    }
}
