//! The three listeners — OTLP/gRPC, OTLP/HTTP, the UI — bound (port 0 picks a free port) and
//! serving, each behind its gate.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::error;

use super::{AppError, DataPath, new_instance_id};
use crate::alert::Alerting;
use crate::auth::{IngestAuth, UiAuth};
use crate::body_deadline::BodyDeadline;
use crate::config::Config;
use crate::ingest::{IngestLimits, grpc, http};
use crate::query::QueryService;
use crate::telemetry::Telemetry;
use crate::tls::{ListenerTls, ServerIdentity};
use crate::web::gate::{Gate, Guarded};
use crate::web::{self, WebState};

/// What the UI serves besides the data path.
pub(super) struct WebParts {
    pub(super) query: QueryService,
    pub(super) alerting: Alerting,
    pub(super) instance: u32,
}

/// The three servers, listening.
pub(super) struct Listeners {
    pub(super) grpc: GrpcServer,
    pub(super) otlp_http_addr: SocketAddr,
    pub(super) otlp_http: ServerHandle,
    pub(super) ui_addr: SocketAddr,
    pub(super) ui: ServerHandle,
    /// The UI's base URL, for links in notifications.
    pub(super) ui_url: String,
}

impl Listeners {
    /// Binds and starts OTLP/gRPC, then OTLP/HTTP, then the UI, each behind its gate.
    pub(super) async fn start(
        config: &Config,
        tls: ListenerTls,
        data: &DataPath,
        web_parts: WebParts,
        telemetry: &Arc<Telemetry>,
    ) -> Result<Self, AppError> {
        let body_deadline = BodyDeadline::from_config(&config.listen, Arc::clone(telemetry));
        let limits = IngestLimits::from_config(&config.ingest);
        let exporter = grpc::Exporter {
            ingestor: data.ingestor.clone(),
            limits,
            body_deadline: body_deadline.clone(),
        };
        let grpc = serve_otlp_grpc(config, exporter, tls.otlp.clone(), telemetry).await?;
        let receiver = http::HttpReceiver {
            ingestor: data.ingestor.clone(),
            limits,
        };
        let ingest_gate = Gate::Ingest(IngestAuth::new(&config.security));
        let (otlp_http, otlp_http_addr) = start_http(
            "OTLP/HTTP",
            config.listen.otlp_http,
            tls.otlp,
            guarded(ingest_gate, telemetry, &body_deadline),
            move || http::configure(receiver.clone()),
        )?;
        let state = WebState {
            query: web_parts.query,
            pipeline: data.pipeline.clone(),
            telemetry: Arc::clone(telemetry),
            otlp_grpc_addr: grpc.addr.to_string(),
            otlp_http_addr: otlp_http_addr.to_string(),
            alerting: web_parts.alerting,
            csrf_token: new_csrf_token(web_parts.instance),
        };
        let ui_gate = Gate::Ui(UiAuth::new(&config.security));
        let ui_scheme = if tls.ui.is_some() { "https" } else { "http" };
        let (ui, ui_addr) = start_http(
            "UI",
            config.listen.ui,
            tls.ui,
            guarded(ui_gate, telemetry, &body_deadline),
            move || web::configure(state.clone()),
        )?;
        Ok(Self {
            grpc,
            otlp_http_addr,
            otlp_http,
            ui_addr,
            ui,
            ui_url: format!("{ui_scheme}://{ui_addr}"),
        })
    }
}

/// The OTLP/gRPC server's task, and the switch that stops it.
pub(super) struct GrpcServer {
    pub(super) addr: SocketAddr,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) task: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Binds OTLP/gRPC and serves it on a task until the server's switch is set.
async fn serve_otlp_grpc(
    config: &Config,
    exporter: grpc::Exporter,
    tls: Option<ServerIdentity>,
    telemetry: &Arc<Telemetry>,
) -> Result<GrpcServer, AppError> {
    let listener = bind_tokio("OTLP/gRPC", config.listen.otlp_grpc).await?;
    let addr = local_addr("OTLP/gRPC", config.listen.otlp_grpc, &listener)?;
    let (shutdown, mut stop) = watch::channel(false);
    let task = tokio::spawn(grpc::serve(
        listener,
        exporter,
        IngestAuth::new(&config.security),
        Arc::clone(telemetry),
        tls,
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        },
    ));
    Ok(GrpcServer {
        addr,
        shutdown,
        task,
    })
}

fn guarded(gate: Gate, telemetry: &Arc<Telemetry>, body_deadline: &BodyDeadline) -> Guarded {
    Guarded {
        gate,
        telemetry: Arc::clone(telemetry),
        body_deadline: body_deadline.clone(),
    }
}

/// The token UI forms carry: random per process (two independent draws).
fn new_csrf_token(instance: u32) -> String {
    format!(
        "{:016x}{:016x}",
        crate::model::split_mix(u64::from(new_instance_id())),
        crate::model::split_mix(crate::model::now_unix_nano() ^ u64::from(instance))
    )
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
