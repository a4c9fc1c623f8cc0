//! OTLP/gRPC receiver: the TraceService and MetricsService `Export` methods hand requests to the
//! [`Ingestor`] (see [`export`]); LogsService says plainly that logs are not collected.

mod export;
mod raw_codec;
mod received_body;

use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

pub use self::export::Exporter;
use self::export::{ExportService, Logs, Metrics, Traces};
pub use self::raw_codec::RawCodec;
use crate::telemetry::Signal;

const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// Serves OTLP/gRPC on `listener` (over TLS with `tls`) until `shutdown` completes, then
/// finishes in-flight calls.
pub async fn serve(
    listener: TcpListener,
    exporter: Exporter,
    auth: crate::auth::IngestAuth,
    telemetry: Arc<crate::telemetry::Telemetry>,
    tls: Option<crate::tls::ServerIdentity>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let ingestor = exporter.ingestor.clone();
    let exporter = Arc::new(exporter);
    let traces = ExportService::<Traces>::new(Arc::clone(&exporter));
    let metrics = ExportService::<Metrics>::new(Arc::clone(&exporter));
    let logs = ExportService::<Logs>::new(exporter);
    // h2's default 64 KiB windows make a typical 200 KiB export wait for several window
    // updates per request; larger windows let a request arrive in one flight.
    // Refused before the message is decoded: wrong credentials, or (for exports) a full
    // queue or log, so refused load costs almost nothing.
    let check_for = |signal_opt: Option<Signal>| {
        let auth = auth.clone();
        let telemetry = Arc::clone(&telemetry);
        let ingestor = ingestor.clone();
        move |mut request: tonic::Request<()>| {
            let text = |name: &str| {
                request
                    .metadata()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
            };
            let Some(tenancy) = auth.admit(text("authorization"), text("x-service-auth")) else {
                telemetry.record_unauthenticated();
                return Err(tonic::Status::unauthenticated(
                    "missing or wrong credentials: send `authorization: Bearer TOKEN` or `x-service-auth: TOKEN` metadata",
                ));
            };
            if let Some(signal) = signal_opt
                && let Err(err) = ingestor.admit(signal)
            {
                return Err(err.to_grpc_status(ingestor.retry_after()));
            }
            request.extensions_mut().insert(tenancy);
            Ok(request)
        }
    };
    use tonic::service::interceptor::InterceptedService;
    let mut builder = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        builder = builder.tls_config(identity.tonic_config())?;
    }
    builder
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .add_service(InterceptedService::new(
            traces,
            check_for(Some(Signal::Traces)),
        ))
        .add_service(InterceptedService::new(
            metrics,
            check_for(Some(Signal::Metrics)),
        ))
        .add_service(InterceptedService::new(logs, check_for(None)))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}
