//! Wiring: opens the store, starts the pipeline's writer thread and the three listeners, and
//! shuts them down in the order that loses nothing (ingest first, then drain, then the UI).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::alert::{Alerting, AlertingTasks};
use crate::auth::{IngestAuth, UiAuth};
use crate::body_deadline::BodyDeadline;
use crate::config::{Config, StoreKind};
use crate::graph::GraphEngine;
use crate::ingest::convert::ConvertLimits;
use crate::ingest::{IngestLimits, Ingestor, grpc, http};
use crate::pipeline::WriteStore;
use crate::pipeline::{
    GraphFeedHandle, Pipeline, SpanForm, StoreWriterHandle, WriterGate, WriterLog, WriterSettings,
    spawn_graph_feed, spawn_store_writer,
};
use crate::query::{QueryService, StoreReader};
use crate::service_graph_metrics::ServiceGraphMetrics;
use crate::signals::SharedSignals;
use crate::store::sqlite::{self, SqliteAlertStore, SqliteLocation, SqliteOptions};
use crate::store::{RetentionPolicy, StoreError};
use crate::telemetry::Telemetry;
use crate::web::gate::{Gate, Guarded};
use crate::web::{self, WebState};

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
        // Opening may block on the network (ClickHouse migrations): off the async threads.
        let store_config = config.clone();
        let (store_writer, reader, block_counters_opt) =
            tokio::task::spawn_blocking(move || open_store(&store_config))
                .await
                .map_err(|err| AppError::Start {
                    what: "store",
                    source: std::io::Error::other(err.to_string()),
                })??;
        if let Some(counters) = block_counters_opt {
            telemetry.attach_block_counters(counters);
        }
        let log_opt = open_log(&config)?;
        let wal_opt = log_opt.as_ref().map(|log| log.wal.clone());
        if let Some(wal) = &wal_opt {
            telemetry.attach_wal(wal.clone());
        }
        let capacity_items = config.pipeline.queue_capacity_items.get();
        // The embedded store keeps the log's encoded spans as they are; others take models.
        let span_form = match config.storage.store {
            StoreKind::Sqlite => SpanForm::Encoded {
                indexed_keys: sqlite::unique_keys(&config.storage.indexed_attributes).into(),
            },
            StoreKind::Memory | StoreKind::Clickhouse => SpanForm::Model,
        };
        let (pipeline, receiver) =
            Pipeline::new(capacity_items, Arc::clone(&telemetry), wal_opt, span_form);
        let writer_gate = Arc::new(WriterGate::default());
        let settings = WriterSettings {
            max_batch_items: config.pipeline.writer_batch_items.get(),
            instance,
            retention: RetentionPolicy {
                max_age: config.retention_max_age(),
                max_size_bytes: config.retention_max_size_bytes(),
            },
            retention_interval: Duration::from_secs(config.storage.retention_interval_secs),
        };
        let engine = Arc::new(Mutex::new(GraphEngine::new(config.graph.settings())));
        let signals = SharedSignals::new(config.signals.clone());
        let service_graph_metrics = Arc::new(ServiceGraphMetrics::default());
        let (graph_feed, graph) = spawn_graph_feed(
            Arc::clone(&engine),
            config.graph.queue_capacity_batches.get(),
            pipeline.clone(),
            Arc::clone(&service_graph_metrics),
            Arc::clone(&telemetry),
        )
        .map_err(|source| AppError::Start {
            what: "graph engine",
            source,
        })?;
        let depth_pipeline = pipeline.clone();
        let writer = spawn_store_writer(
            store_writer,
            receiver,
            settings,
            log_opt,
            Arc::clone(&writer_gate),
            Arc::clone(&telemetry),
            move || depth_pipeline.publish_depth(),
        )
        .map_err(|source| AppError::Start {
            what: "store writer",
            source,
        })?;

        let ingestor = Ingestor::new(
            pipeline.clone(),
            ConvertLimits {
                max_future_skew_nanos: config
                    .ingest
                    .max_future_skew_secs
                    .saturating_mul(1_000_000_000),
                max_attributes: config.ingest.max_attributes.get(),
                max_attribute_value_bytes: config.ingest.max_attribute_value_bytes.get(),
                ..ConvertLimits::default()
            },
            Arc::clone(&telemetry),
            Duration::from_secs(config.ingest.retry_after_secs),
            Some(graph_feed),
            Some(signals.clone()),
            config.storage.store_spans,
        );
        let query = QueryService::new(
            reader,
            Arc::clone(&engine),
            Arc::clone(&service_graph_metrics),
            signals,
            instance,
        );
        // Before any listener: live points then always come after the replayed ones.
        query
            .seed_live_signals()
            .await
            .map_err(|err| AppError::Start {
                what: "signal mapper",
                source: std::io::Error::other(err.to_string()),
            })?;
        let alert_store = Arc::new(SqliteAlertStore::open(&store_location(&config))?);
        let alerting =
            Alerting::new(config.alerts.clone(), alert_store, query.clone()).map_err(|err| {
                AppError::Start {
                    what: "alerting",
                    source: std::io::Error::other(err.to_string()),
                }
            })?;
        let body_deadline = BodyDeadline::from_config(&config.listen, Arc::clone(&telemetry));
        let limits = IngestLimits::from_config(&config.ingest);

        let grpc_listener = bind_tokio("OTLP/gRPC", config.listen.otlp_grpc).await?;
        let otlp_grpc_addr = local_addr("OTLP/gRPC", config.listen.otlp_grpc, &grpc_listener)?;
        let (grpc_shutdown, mut grpc_signal) = watch::channel(false);
        let grpc_task = tokio::spawn(grpc::serve(
            grpc_listener,
            grpc::Exporter {
                ingestor: ingestor.clone(),
                limits,
                body_deadline: body_deadline.clone(),
            },
            IngestAuth::new(&config.security),
            Arc::clone(&telemetry),
            tls.otlp.clone(),
            async move {
                let _ = grpc_signal.wait_for(|stop| *stop).await;
            },
        ));

        let receiver = http::HttpReceiver { ingestor, limits };
        let ingest_gate = Guarded {
            gate: Gate::Ingest(IngestAuth::new(&config.security)),
            telemetry: Arc::clone(&telemetry),
            body_deadline: body_deadline.clone(),
        };
        let (otlp_http, otlp_http_addr) = start_http(
            "OTLP/HTTP",
            config.listen.otlp_http,
            tls.otlp,
            ingest_gate,
            move || http::configure(receiver.clone()),
        )?;
        let state = WebState {
            query,
            pipeline: pipeline.clone(),
            telemetry: Arc::clone(&telemetry),
            otlp_grpc_addr: otlp_grpc_addr.to_string(),
            otlp_http_addr: otlp_http_addr.to_string(),
            alerting: alerting.clone(),
            csrf_token: format!(
                "{:016x}{:016x}",
                crate::model::split_mix(u64::from(new_instance_id())),
                crate::model::split_mix(crate::model::now_unix_nano() ^ u64::from(instance))
            ),
        };
        let ui_gate = Guarded {
            gate: Gate::Ui(UiAuth::new(&config.security)),
            telemetry: Arc::clone(&telemetry),
            body_deadline: body_deadline.clone(),
        };
        let ui_scheme = if tls.ui.is_some() { "https" } else { "http" };
        let (ui, ui_addr) = start_http("UI", config.listen.ui, tls.ui, ui_gate, move || {
            web::configure(state.clone())
        })?;
        alerting.set_ui_url(&format!("{ui_scheme}://{ui_addr}"));
        let alerting_tasks = alerting.start();
        info!(%otlp_grpc_addr, %otlp_http_addr, %ui_addr, store = ?config.storage.store, "cartograph is listening");
        Ok(Self {
            otlp_grpc_addr,
            otlp_http_addr,
            ui_addr,
            pipeline,
            writer,
            graph,
            writer_gate,
            telemetry,
            grpc_shutdown,
            grpc_task,
            otlp_http,
            ui,
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

async fn bind_tokio(
    what: &'static str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { what, addr, source })
}

fn local_addr(
    what: &'static str,
    addr: SocketAddr,
    listener: &tokio::net::TcpListener,
) -> Result<SocketAddr, AppError> {
    listener
        .local_addr()
        .map_err(|source| AppError::Bind { what, addr, source })
}

/// Starts an actix server on `addr` (over TLS with `tls`) with routes from `configure`, on the
/// current runtime, every request passing `gate` first. The UI's responses are gzipped for clients that accept
/// it (a large map's SVG shrinks about tenfold).
fn start_http<F, C>(
    what: &'static str,
    addr: SocketAddr,
    tls: Option<crate::tls::ServerIdentity>,
    gate: Guarded,
    configure: F,
) -> Result<(ServerHandle, SocketAddr), AppError>
where
    F: Fn() -> C + Send + Clone + 'static,
    C: FnOnce(&mut actix_web::web::ServiceConfig),
{
    let listener = std::net::TcpListener::bind(addr).map_err(|source| AppError::Bind {
        what,
        addr,
        source,
    })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AppError::Bind { what, addr, source })?;
    let compress = matches!(gate.gate, Gate::Ui(_));
    let server = actix_web::HttpServer::new(move || {
        let gate = gate.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::Condition::new(
                compress,
                actix_web::middleware::Compress::default(),
            ))
            .wrap(actix_web::middleware::from_fn(move |request, next| {
                crate::web::gate::guard(gate.clone(), request, next)
            }))
            .configure(configure())
    })
    .workers(2)
    // Responses are written in pieces (headers, then compressed chunks); without this, Nagle's
    // algorithm holds the last piece until the client's delayed ACK, ~40 ms later.
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(30);
    let server = match tls {
        Some(identity) => server
            .tls_handshake_timeout(crate::tls::HANDSHAKE_TIMEOUT)
            .listen_rustls_0_23(listener, identity.rustls_config()),
        None => server.listen(listener),
    }
    .map_err(|source| AppError::Bind { what, addr, source })?
    .run();
    let handle = server.handle();
    tokio::spawn(async move {
        if let Err(err) = server.await {
            error!(server = what, error = %err, "http server failed");
        }
    });
    Ok((handle, bound))
}
