//! The OTLP/gRPC `Export` methods, served without the generated servers so that the request
//! arrives as bytes: decoded on the blocking pool within [`IngestLimits`] exactly as OTLP/HTTP
//! does, malformed input answered `INVALID_ARGUMENT`. Logs are refused without being decoded.
//!
//! tonic's message decoder answers, before any method runs, a message over its size limit with
//! `OUT_OF_RANGE`, one that inflates past it with `RESOURCE_EXHAUSTED` (no RetryInfo), and a
//! truncated or badly compressed one with `INTERNAL`: codes that OTLP exporters retry, sending
//! the same hopeless request again and again. Those answers become `INVALID_ARGUMENT`, which
//! the OTLP specification says not to retry.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::raw_codec::RawCodec;
use super::received_body::ReceivedBody;
use crate::auth::Tenancy;
use crate::body_deadline::BodyDeadline;
use crate::ingest::decode::Encoding;
use crate::ingest::limits::{IngestLimits, decode_request};
use crate::ingest::{ExportOutcome, Ingestor};
use crate::telemetry::Signal;

/// Messages up to this size are decoded on the async worker that received them: decoding them
/// in the blocking pool with the export cost about 15 % of the saturated gRPC ingest rate
/// (`cartograph loadgen --protocol grpc --rate 0`: ~176k against ~210k spans/s on 2 cores).
const INLINE_DECODE_MAX_BYTES: usize = 1024 * 1024;

/// What the export methods share.
#[derive(Debug)]
pub struct Exporter {
    pub ingestor: Ingestor,
    pub limits: IngestLimits,
    pub body_deadline: BodyDeadline,
}

/// One OTLP service: its name, the signal it carries and its response.
pub(super) trait OtlpService: Send + Sync + 'static {
    const NAME: &'static str;
    /// `None`: a signal Cartograph does not collect.
    const SIGNAL: Option<Signal>;
    type Response: prost::Message;
    fn respond(outcome: ExportOutcome) -> Self::Response;
}

pub(super) struct Traces;
pub(super) struct Metrics;
pub(super) struct Logs;

fn num_rejected(outcome: &ExportOutcome) -> i64 {
    i64::try_from(outcome.num_rejected).unwrap_or(i64::MAX)
}

impl OtlpService for Traces {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Option<Signal> = Some(Signal::Traces);
    type Response = ExportTraceServiceResponse;
    fn respond(outcome: ExportOutcome) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (outcome.num_rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: num_rejected(&outcome),
                error_message: outcome.rejection_message.unwrap_or_default(),
            }),
        }
    }
}

impl OtlpService for Metrics {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Option<Signal> = Some(Signal::Metrics);
    type Response = ExportMetricsServiceResponse;
    fn respond(outcome: ExportOutcome) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (outcome.num_rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: num_rejected(&outcome),
                error_message: outcome.rejection_message.unwrap_or_default(),
            }),
        }
    }
}

impl OtlpService for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Option<Signal> = None;
    type Response = ExportLogsServiceResponse;
    fn respond(_outcome: ExportOutcome) -> Self::Response {
        ExportLogsServiceResponse::default()
    }
}

/// The tower service of one OTLP service.
pub(super) struct ExportService<S> {
    exporter: Arc<Exporter>,
    _service: PhantomData<fn() -> S>,
}

impl<S> ExportService<S> {
    pub(super) fn new(exporter: Arc<Exporter>) -> Self {
        Self {
            exporter,
            _service: PhantomData,
        }
    }
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.exporter))
    }
}

impl<S: OtlpService> NamedService for ExportService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for ExportService<S>
where
    S: OtlpService,
    B: tonic::codegen::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let exporter = Arc::clone(&self.exporter);
        Box::pin(async move {
            let method = request.uri().path().strip_prefix('/');
            if method.and_then(|path| path.strip_prefix(S::NAME)) != Some("/Export") {
                return Ok(Status::unimplemented(format!(
                    "no method {} here: OTLP services have only Export",
                    request.uri().path()
                ))
                .into_http());
            }
            let (parts, body) = request.into_parts();
            let body = ReceivedBody::new(
                body,
                exporter.body_deadline.start(),
                exporter.limits.max_message_bytes,
            );
            let request = http::Request::from_parts(parts, body);
            let reached = Arc::new(AtomicBool::new(false));
            let method = ExportMethod::<S> {
                exporter: Arc::clone(&exporter),
                reached: Arc::clone(&reached),
                _service: PhantomData,
            };
            let mut grpc = Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(exporter.limits.max_decompressed_bytes);
            let mut response = grpc.unary(method, request).await;
            if !reached.load(Ordering::Relaxed) {
                not_retryable(&mut response);
            }
            Ok(response)
        })
    }
}

/// Turns the retryable codes tonic's decoder gives hopeless requests into `INVALID_ARGUMENT`.
fn not_retryable(response: &mut http::Response<tonic::body::Body>) {
    let headers = response.headers_mut();
    let code = headers
        .get(Status::GRPC_STATUS)
        .and_then(|value| value.to_str().ok()?.parse::<i32>().ok())
        .map(tonic::Code::from_i32);
    if matches!(
        code,
        Some(tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::Internal)
    ) {
        headers.insert(
            Status::GRPC_STATUS,
            (tonic::Code::InvalidArgument as i32).into(),
        );
    }
}

/// The method itself, once the message has arrived whole.
struct ExportMethod<S> {
    exporter: Arc<Exporter>,
    reached: Arc<AtomicBool>,
    _service: PhantomData<fn() -> S>,
}

impl<S: OtlpService> UnaryService<Bytes> for ExportMethod<S> {
    type Response = Bytes;
    type Future = BoxFuture<Response<Bytes>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        self.reached.store(true, Ordering::Relaxed);
        let exporter = Arc::clone(&self.exporter);
        Box::pin(async move {
            let Some(signal) = S::SIGNAL else {
                return Err(Status::unimplemented(
                    "logs are not collected by cartograph: send traces and metrics only",
                ));
            };
            let tenancy = tenancy_of(&request);
            let body = request.into_inner();
            let retry_after = exporter.ingestor.retry_after();
            let limits = exporter.limits;
            let decode =
                move |body: Bytes| decode_request(body, false, Encoding::Protobuf, signal, &limits);
            // Typical batches are decoded here, as tonic's own codec would; large ones are
            // left to the blocking pool with the export.
            let inline = if body.len() <= INLINE_DECODE_MAX_BYTES {
                Ok(decode(body))
            } else {
                Err(body)
            };
            let result = tokio::task::spawn_blocking(move || {
                let decoded = inline
                    .unwrap_or_else(decode)
                    .inspect_err(|err| exporter.ingestor.record_refused(signal, err))?;
                exporter.ingestor.export(decoded, &tenancy)
            })
            .await
            .map_err(|err| Status::internal(format!("export task failed: {err}")))?;
            match result {
                Ok(outcome) => Ok(Response::new(S::respond(outcome).encode_to_vec().into())),
                Err(err) => Err(err.to_grpc_status(retry_after)),
            }
        })
    }
}

/// As the interceptor admitted the request (it always has, when the service runs).
fn tenancy_of<T>(request: &Request<T>) -> Tenancy {
    let tenancy = request.extensions().get::<Tenancy>().cloned();
    debug_assert!(tenancy.is_some(), "the interceptor admits every request");
    tenancy.unwrap_or(Tenancy::Off)
}
