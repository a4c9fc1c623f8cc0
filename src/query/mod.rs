//! The query service: what the web layer (and later alerts) may ask of stored and live data.
//! It runs store reads on the blocking pool and knows nothing about HTTP.

mod graph;
mod signals;

use std::sync::{Arc, Mutex};

use crate::graph::GraphEngine;
use crate::model::{MetricPoint, Span, TraceId};
use crate::service_graph_metrics::ServiceGraphMetrics;
use crate::signals::SharedSignals;
use crate::store::{
    MetricQuery, MetricReader, RollupReader, StoreError, TraceQuery, TraceReader, TraceSummary,
};

pub use graph::{GraphFilter, GraphRange, ServiceSummary};
pub use signals::{EdgeLag, PlacedGraph, SignalOverlay, Signals, overlay};

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

#[derive(Clone)]
pub struct QueryService {
    reader: Arc<dyn StoreReader>,
    engine: Arc<Mutex<GraphEngine>>,
    service_graph_metrics: Arc<ServiceGraphMetrics>,
    signals: SharedSignals,
    /// This process's id in stored rollups: its own minutes are read from memory instead.
    instance: u32,
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
        }
    }

    /// The map as Tempo-compatible Prometheus series plus the engine's counters.
    pub fn render_service_graph_metrics(&self) -> String {
        let engine = crate::pipeline::lock_engine(&self.engine);
        let open = engine
            .open_minute()
            .map(|minute| engine.edges(minute, minute + 1))
            .unwrap_or_default();
        self.service_graph_metrics.render(&open, &engine.counters())
    }

    /// The signal mapper's counters as Prometheus text.
    pub fn render_signal_metrics(&self) -> String {
        self.signals.render_prometheus()
    }

    pub async fn trace(&self, trace_id: TraceId) -> Result<Option<Vec<Span>>, QueryError> {
        self.blocking(move |reader| reader.trace(trace_id)).await
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
