//! Wiring: opens the store, starts the pipeline's writer thread and the three listeners, and
//! shuts them down in the order that loses nothing (ingest first, then drain, then the UI).
//!
//! [`App::build`] runs its steps in this order: storage (store and write-ahead log), the data
//! path (pipeline, graph thread, store writer, ingestor), the query service (live signals
//! seeded), alerting, then the listeners (`listeners`: OTLP/gRPC, OTLP/HTTP, the UI) and
//! alerting's loops.

mod listeners;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::alert::store::SqliteAlertStore;
use crate::alert::{Alerting, AlertingTasks};
use crate::config::{Config, StoreKind};
use crate::graph::GraphEngine;
use crate::ingest::Ingestor;
use crate::ingest::convert::ConvertLimits;
use crate::pipeline::WriteStore;
use crate::pipeline::{
    GraphFeed, GraphFeedHandle, Pipeline, SpanForm, StoreWriterHandle, WriterGate, WriterLog,
    WriterSettings, spawn_graph_feed, spawn_store_writer,
};
use crate::query::{QueryService, StoreReader};
use crate::service_graph_metrics::ServiceGraphMetrics;
use crate::signals::SharedSignals;
use crate::store::sqlite::{self, SqliteLocation, SqliteOptions};
use crate::store::{RetentionPolicy, StoreError};
use crate::telemetry::Telemetry;
use listeners::{Listeners, WebParts};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Log(#[from] crate::wal::WalError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start {what}: {source}")]
    Start {
        what: &'static str,
        source: std::io::Error,
    },
}

/// A running Cartograph. Dropping it without [`App::shutdown`] aborts without flushing.
pub struct App {
    otlp_grpc_addr: SocketAddr,
    otlp_http_addr: SocketAddr,
    ui_addr: SocketAddr,
    pipeline: Pipeline,
    writer: StoreWriterHandle,
    graph: GraphFeedHandle,
    writer_gate: Arc<WriterGate>,
    telemetry: Arc<Telemetry>,
    grpc_shutdown: watch::Sender<bool>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    otlp_http: ServerHandle,
    ui: ServerHandle,
    alerting: Alerting,
    alerting_tasks: AlertingTasks,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("otlp_grpc_addr", &self.otlp_grpc_addr)
            .field("otlp_http_addr", &self.otlp_http_addr)
            .field("ui_addr", &self.ui_addr)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Validates `config`, opens the store and binds every listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Self, AppError> {
        crate::tls::install_provider();
        config.validate()?;
        let tls = config.tls.load()?;
        let telemetry = Arc::new(Telemetry::default());
        let instance = new_instance_id();
        let storage = open_storage(&config, &telemetry).await?;
        let data = DataPath::start(
            &config,
            instance,
            storage.writer,
            storage.log_opt,
            &telemetry,
        )?;
        let query = start_query(&config, &data, storage.reader, instance).await?;
        let alerting = start_alerting(&config, query.clone())?;
        let web_parts = WebParts {
            query,
            alerting: alerting.clone(),
            instance,
        };
        let listeners = Listeners::start(&config, tls, &data, web_parts, &telemetry).await?;
        alerting.set_ui_url(&listeners.ui_url);
        let alerting_tasks = alerting.start();
        info!(
            otlp_grpc_addr = %listeners.grpc.addr,
            otlp_http_addr = %listeners.otlp_http_addr,
            ui_addr = %listeners.ui_addr,
            store = ?config.storage.store,
            "cartograph is listening"
        );
        Ok(Self {
            otlp_grpc_addr: listeners.grpc.addr,
            otlp_http_addr: listeners.otlp_http_addr,
            ui_addr: listeners.ui_addr,
            pipeline: data.pipeline,
            writer: data.writer,
            graph: data.graph,
            writer_gate: data.writer_gate,
            telemetry,
            grpc_shutdown: listeners.grpc.shutdown,
            grpc_task: listeners.grpc.task,
            otlp_http: listeners.otlp_http,
            ui: listeners.ui,
            alerting,
            alerting_tasks,
        })
    }

    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc_addr
    }

    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.otlp_http_addr
    }

    pub fn ui_addr(&self) -> SocketAddr {
        self.ui_addr
    }

    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
    }

    /// Alerting: rules, alerts, silences, the outbox.
    pub fn alerting(&self) -> &Alerting {
        &self.alerting
    }

    /// Holds the store writer back (to test or observe backpressure) until resumed.
    pub fn writer_gate(&self) -> Arc<WriterGate> {
        Arc::clone(&self.writer_gate)
    }

    /// Stops ingest (finishing in-flight requests), commits everything accepted, then stops
    /// the UI. Returns once all accepted data is in the store.
    pub async fn shutdown(self) {
        info!("shutting down: stopping alerting, then ingest");
        self.alerting_tasks.stop().await;
        let _ = self.grpc_shutdown.send(true);
        self.otlp_http.stop(true).await;
        match self.grpc_task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => error!(error = %err, "OTLP/gRPC server failed"),
            Err(err) => error!(error = %err, "OTLP/gRPC task failed"),
        }
        info!(
            num_items = self.pipeline.num_queued_items(),
            "draining accepted data into the store"
        );
        let graph = self.graph;
        if tokio::task::spawn_blocking(move || graph.stop())
            .await
            .is_err()
        {
            error!("graph thread join failed");
        }
        self.pipeline.close();
        self.writer_gate.resume();
        let writer = self.writer;
        if tokio::task::spawn_blocking(move || writer.join())
            .await
            .is_err()
        {
            error!("store writer join failed");
        }
        self.ui.stop(true).await;
        info!("shutdown complete");
    }
}

/// The opened store and the write-ahead log in front of it, before any thread uses them.
struct Storage {
    writer: Box<dyn WriteStore>,
    reader: Arc<dyn StoreReader>,
    log_opt: Option<WriterLog>,
}

/// Opens the store (off the async threads: opening may block on the network, e.g. ClickHouse
/// migrations) and its write-ahead log, and shows both at `/metrics`.
async fn open_storage(config: &Config, telemetry: &Telemetry) -> Result<Storage, AppError> {
    let store_config = config.clone();
    let (writer, reader, block_counters_opt) =
        tokio::task::spawn_blocking(move || open_store(&store_config))
            .await
            .map_err(|err| AppError::Start {
                what: "store",
                source: std::io::Error::other(err.to_string()),
            })??;
    if let Some(counters) = block_counters_opt {
        telemetry.attach_block_counters(counters);
    }
    let log_opt = open_log(config)?;
    if let Some(log) = &log_opt {
        telemetry.attach_wal(log.wal.clone());
    }
    Ok(Storage {
        writer,
        reader,
        log_opt,
    })
}

/// Everything between the receivers and the store: the bounded pipeline with the store
/// writer thread behind it, the graph thread, the live state queries read, and the ingestor
/// both receivers hand exports to.
struct DataPath {
    pipeline: Pipeline,
    writer: StoreWriterHandle,
    writer_gate: Arc<WriterGate>,
    graph: GraphFeedHandle,
    engine: Arc<Mutex<GraphEngine>>,
    signals: SharedSignals,
    service_graph_metrics: Arc<ServiceGraphMetrics>,
    ingestor: Ingestor,
}

impl DataPath {
    /// Starts the graph thread, then the store writer (which replays `log_opt` first).
    fn start(
        config: &Config,
        instance: u32,
        store_writer: Box<dyn WriteStore>,
        log_opt: Option<WriterLog>,
        telemetry: &Arc<Telemetry>,
    ) -> Result<Self, AppError> {
        let wal_opt = log_opt.as_ref().map(|log| log.wal.clone());
        let (pipeline, receiver) = Pipeline::new(
            config.pipeline.queue_capacity_items.get(),
            Arc::clone(telemetry),
            wal_opt,
            span_form(config),
        );
        let writer_gate = Arc::new(WriterGate::default());
        let engine = Arc::new(Mutex::new(GraphEngine::new(config.graph.settings())));
        let signals = SharedSignals::new(config.signals.clone());
        let service_graph_metrics = Arc::new(ServiceGraphMetrics::default());
        let (graph_feed, graph) = spawn_graph_feed(
            Arc::clone(&engine),
            config.graph.queue_capacity_batches.get(),
            pipeline.clone(),
            Arc::clone(&service_graph_metrics),
            Arc::clone(telemetry),
            config.graph.sampling_rules(),
        )
        .map_err(|source| AppError::Start {
            what: "graph engine",
            source,
        })?;
        let depth_pipeline = pipeline.clone();
        let writer = spawn_store_writer(
            store_writer,
            receiver,
            writer_settings(config, instance),
            log_opt,
            Arc::clone(&writer_gate),
            Arc::clone(telemetry),
            move || depth_pipeline.publish_depth(),
        )
        .map_err(|source| AppError::Start {
            what: "store writer",
            source,
        })?;
        let ingestor = new_ingestor(config, &pipeline, graph_feed, &signals, telemetry);
        Ok(Self {
            pipeline,
            writer,
            writer_gate,
            graph,
            engine,
            signals,
            service_graph_metrics,
            ingestor,
        })
    }
}

/// How the pipeline hands spans to the writer: the embedded store keeps the log's encoded
/// spans as they are; others take models.
fn span_form(config: &Config) -> SpanForm {
    match config.storage.store {
        StoreKind::Sqlite => SpanForm::Encoded {
            indexed_keys: sqlite::unique_keys(&config.storage.indexed_attributes).into(),
        },
        StoreKind::Memory | StoreKind::Clickhouse => SpanForm::Model,
    }
}

fn writer_settings(config: &Config, instance: u32) -> WriterSettings {
    WriterSettings {
        max_batch_items: config.pipeline.writer_batch_items.get(),
        instance,
        retention: RetentionPolicy {
            max_age: config.retention_max_age(),
            max_size_bytes: config.retention_max_size_bytes(),
        },
        retention_interval: Duration::from_secs(config.storage.retention_interval_secs),
    }
}

fn new_ingestor(
    config: &Config,
    pipeline: &Pipeline,
    graph_feed: GraphFeed,
    signals: &SharedSignals,
    telemetry: &Arc<Telemetry>,
) -> Ingestor {
    let limits = ConvertLimits {
        max_future_skew_nanos: config
            .ingest
            .max_future_skew_secs
            .saturating_mul(1_000_000_000),
        max_attributes: config.ingest.max_attributes.get(),
        max_attribute_value_bytes: config.ingest.max_attribute_value_bytes.get(),
        ..ConvertLimits::default()
    };
    Ingestor::new(
        pipeline.clone(),
        limits,
        Arc::clone(telemetry),
        Duration::from_secs(config.ingest.retry_after_secs),
        Some(graph_feed),
        Some(signals.clone()),
        config.storage.store_spans,
    )
}

/// The query service over the store and the live map, with the live signal mapper seeded
/// from the store — before any listener opens, so live points always come after the
/// replayed ones.
async fn start_query(
    config: &Config,
    data: &DataPath,
    reader: Arc<dyn StoreReader>,
    instance: u32,
) -> Result<QueryService, AppError> {
    let query = QueryService::new(
        reader,
        Arc::clone(&data.engine),
        Arc::clone(&data.service_graph_metrics),
        data.signals.clone(),
        instance,
    )
    .with_targets(config.graph.targets())
    .with_audit(config.insights.audit_settings());
    query
        .seed_live_signals()
        .await
        .map_err(|err| AppError::Start {
            what: "signal mapper",
            source: std::io::Error::other(err.to_string()),
        })?;
    Ok(query)
}

/// Alerting over `query`, with its own store (`alerts.sqlite3`); its loops start later, once
/// the UI's address (for links in notifications) is known.
fn start_alerting(config: &Config, query: QueryService) -> Result<Alerting, AppError> {
    let alert_store = Arc::new(SqliteAlertStore::open(&store_location(config))?);
    Alerting::new(config.alerts.clone(), alert_store, query).map_err(|err| AppError::Start {
        what: "alerting",
        source: std::io::Error::other(err.to_string()),
    })
}

/// A fresh id for this process's rollups, different on every start (a restart must not
/// overwrite the minutes its previous run stored).
fn new_instance_id() -> u32 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::model::now_unix_nano());
    hasher.write_u32(std::process::id());
    (hasher.finish() >> 32) as u32
}

/// The two halves of an opened store, and the embedded store's block counters.
type OpenedStore = (
    Box<dyn WriteStore>,
    Arc<dyn StoreReader>,
    Option<Arc<sqlite::BlockCounters>>,
);

fn store_location(config: &Config) -> SqliteLocation {
    match config.storage.store {
        StoreKind::Sqlite => SqliteLocation::Dir(config.storage.data_dir.clone()),
        StoreKind::Memory => SqliteLocation::Memory,
        // Alert state stays local to each instance, beside its other files.
        StoreKind::Clickhouse => SqliteLocation::Dir(config.storage.data_dir.clone()),
    }
}

/// The write-ahead log in `data_dir/wal` in front of a store that persists (none for the
/// memory store, which loses everything on exit anyway).
fn open_log(config: &Config) -> Result<Option<WriterLog>, AppError> {
    const MIB: u64 = 1024 * 1024;
    if config.storage.store == StoreKind::Memory {
        return Ok(None);
    }
    // Small segments under a small size budget, so a checkpointed log frees its disk soon.
    let segment_bytes = (config.retention_max_size_bytes() / 32).clamp(MIB, 64 * MIB);
    let (wal, replay) = crate::wal::Wal::open(crate::wal::WalOptions {
        dir: config.storage.data_dir.join("wal"),
        sync: config.pipeline.log_sync,
        max_bytes: config.pipeline.log_max_size_mb.saturating_mul(MIB),
        segment_bytes,
    })?;
    Ok(Some(WriterLog { wal, replay }))
}

fn open_store(config: &Config) -> Result<OpenedStore, AppError> {
    if config.storage.store == StoreKind::Clickhouse {
        let (writer, reader) = crate::store::clickhouse::open(&config.clickhouse_options())?;
        return Ok((Box::new(writer), Arc::new(reader), None));
    }
    let (writer, reader) = sqlite::open(&SqliteOptions {
        location: store_location(config),
        indexed_attribute_keys: config.storage.indexed_attributes.clone(),
    })?;
    let counters = writer.block_counters();
    Ok((Box::new(writer), Arc::new(reader), Some(counters)))
}
