//! OTLP/gRPC receiver: TraceService and MetricsService hand requests to the [`Ingestor`];
//! LogsService says plainly that logs are not collected.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::service::{ExportOutcome, Ingestor};
use crate::auth::Tenancy;
use crate::telemetry::Signal;

struct GrpcReceiver {
    ingestor: Ingestor,
}

impl GrpcReceiver {
    /// Stamps the request with its tenancy and exports it, both off the async workers: they
    /// walk and convert the whole request, which is CPU work when it is large.
    async fn export<Req, Out>(
        &self,
        request: Request<Req>,
        stamp: fn(&mut Req, &Tenancy),
        export: fn(&Ingestor, Req) -> Result<ExportOutcome, super::error::IngestError>,
        respond: fn(ExportOutcome) -> Out,
    ) -> Result<Response<Out>, Status>
    where
        Req: Send + 'static,
    {
        let tenancy = tenancy_of(&request);
        let mut request = request.into_inner();
        let ingestor = self.ingestor.clone();
        let retry_after = ingestor.retry_after();
        let result = tokio::task::spawn_blocking(move || {
            stamp(&mut request, &tenancy);
            export(&ingestor, request)
        })
        .await
        .map_err(|err| Status::internal(format!("export task failed: {err}")))?;
        match result {
            Ok(outcome) => Ok(Response::new(respond(outcome))),
            Err(err) => Err(err.to_grpc_status(retry_after)),
        }
    }
}

/// As the interceptor admitted the request (it always has, when the service runs).
fn tenancy_of<T>(request: &Request<T>) -> Tenancy {
    let tenancy = request.extensions().get::<Tenancy>().cloned();
    debug_assert!(tenancy.is_some(), "the interceptor admits every request");
    tenancy.unwrap_or(Tenancy::Off)
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        GrpcReceiver::export(
            self,
            request,
            super::tenant::stamp_traces,
            Ingestor::export_traces,
            |outcome| ExportTraceServiceResponse {
                partial_success: (outcome.num_rejected > 0).then(|| ExportTracePartialSuccess {
                    rejected_spans: i64::try_from(outcome.num_rejected).unwrap_or(i64::MAX),
                    error_message: outcome.rejection_message.unwrap_or_default(),
                }),
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        GrpcReceiver::export(
            self,
            request,
            super::tenant::stamp_metrics,
            Ingestor::export_metrics,
            |outcome| ExportMetricsServiceResponse {
                partial_success: (outcome.num_rejected > 0).then(|| ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(outcome.num_rejected).unwrap_or(i64::MAX),
                    error_message: outcome.rejection_message.unwrap_or_default(),
                }),
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl LogsService for GrpcReceiver {
    async fn export(
        &self,
        _request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Err(Status::unimplemented(
            "logs are not collected by cartograph: send traces and metrics only",
        ))
    }
}

const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// Serves OTLP/gRPC on `listener` (over TLS with `tls`) until `shutdown` completes, then
/// finishes in-flight calls.
pub async fn serve(
    listener: TcpListener,
    ingestor: Ingestor,
    auth: crate::auth::IngestAuth,
    telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    max_message_bytes: usize,
    tls: Option<crate::tls::ServerIdentity>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let receiver = std::sync::Arc::new(GrpcReceiver {
        ingestor: ingestor.clone(),
    });
    let traces = TraceServiceServer::from_arc(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    let metrics = MetricsServiceServer::from_arc(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    let logs = LogsServiceServer::from_arc(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    // h2's default 64 KiB windows make a typical 200 KiB export wait for several window
    // updates per request; larger windows let a request arrive in one flight.
    // Refused before the message is decoded: wrong credentials, or (for exports) a full
    // queue or log, so refused load costs almost nothing.
    let check_for = |signal_opt: Option<Signal>| {
        let auth = auth.clone();
        let telemetry = std::sync::Arc::clone(&telemetry);
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
