//! OTLP/HTTP receiver: `POST /v1/traces` and `/v1/metrics` in protobuf or JSON, optionally
//! gzip-compressed. Responses follow the OTLP specification, in the request's encoding.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures_util::StreamExt as _;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

use super::decode::Encoding;
use super::error::IngestError;
use super::limits::{IngestLimits, decode_request};
use super::service::{ExportOutcome, Ingestor};
use crate::auth::Tenancy;
use crate::telemetry::Signal;

/// Bodies at least this large are decoded on the blocking pool rather than inline.
const INLINE_DECODE_MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct HttpReceiver {
    pub ingestor: Ingestor,
    pub limits: IngestLimits,
}

/// Registers the OTLP/HTTP routes.
pub fn configure(receiver: HttpReceiver) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(receiver))
            .route("/v1/traces", web::post().to(export_traces))
            .route("/v1/metrics", web::post().to(export_metrics))
            .route("/v1/logs", web::post().to(export_logs))
            .default_service(web::to(not_found));
    }
}

async fn export_traces(
    request: HttpRequest,
    payload: web::Payload,
    receiver: web::Data<HttpReceiver>,
) -> HttpResponse {
    export(request, payload, receiver, Signal::Traces).await
}

async fn export_metrics(
    request: HttpRequest,
    payload: web::Payload,
    receiver: web::Data<HttpReceiver>,
) -> HttpResponse {
    export(request, payload, receiver, Signal::Metrics).await
}

async fn export_logs() -> HttpResponse {
    HttpResponse::NotImplemented()
        .json(serde_json::json!({"code": 12, "message": "logs are not collected by cartograph: send traces and metrics only"}))
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "code": 5,
        "message": format!("no OTLP endpoint at {} {}: use POST /v1/traces or POST /v1/metrics", request.method(), request.path()),
    }))
}

async fn export(
    request: HttpRequest,
    payload: web::Payload,
    receiver: web::Data<HttpReceiver>,
    signal: Signal,
) -> HttpResponse {
    let retry_after = receiver.ingestor.retry_after();
    let encoding = match content_encoding_of(request.headers()) {
        Ok(encoding) => encoding,
        Err(err) => {
            receiver.ingestor.record_refused(signal, &err);
            return error_response(&err, true, retry_after);
        }
    };
    let json = encoding == Encoding::Json;
    if let Err(err) = receiver.ingestor.admit(signal) {
        return error_response(&err, json, retry_after);
    }
    // Set by the gate when it admitted the request (the gate is in front of every route).
    let tenancy = actix_web::HttpMessage::extensions(&request)
        .get::<Tenancy>()
        .cloned();
    debug_assert!(tenancy.is_some(), "the ingest gate admits every request");
    let tenancy = tenancy.unwrap_or(Tenancy::Off);
    let result = match read_body(
        request.headers(),
        payload,
        receiver.limits.max_message_bytes,
    )
    .await
    {
        Ok(body) => {
            decode_and_ingest(
                receiver.get_ref().clone(),
                request.headers(),
                body,
                encoding,
                tenancy,
                signal,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(outcome) => success_response(signal, outcome, json),
        Err(err) => {
            if !matches!(err, IngestError::Submit(_)) {
                receiver.ingestor.record_refused(signal, &err);
            }
            error_response(&err, json, retry_after)
        }
    }
}

async fn decode_and_ingest(
    receiver: HttpReceiver,
    headers: &HeaderMap,
    body: web::Bytes,
    encoding: Encoding,
    tenancy: Tenancy,
    signal: Signal,
) -> Result<ExportOutcome, IngestError> {
    let gzipped = is_gzipped(headers)?;
    let work = move || -> Result<ExportOutcome, IngestError> {
        let decoded = decode_request(body, gzipped, encoding, signal, &receiver.limits)?;
        receiver.ingestor.export(decoded, &tenancy)
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|length| length < INLINE_DECODE_MAX_BYTES)
    {
        return work();
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| IngestError::BodyIncomplete(format!("decode task failed: {err}")))?
}

fn content_encoding_of(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(IngestError::UnsupportedContentType(content_type)),
    }
}

fn is_gzipped(headers: &HeaderMap) -> Result<bool, IngestError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let text = String::from_utf8_lossy(value.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match text.as_str() {
        "gzip" | "x-gzip" => Ok(true),
        "" | "identity" => Ok(false),
        _ => Err(IngestError::UnsupportedContentEncoding(text)),
    }
}

/// Reads the whole body, refusing it as soon as it exceeds `limit_bytes`.
async fn read_body(
    headers: &HeaderMap,
    mut payload: web::Payload,
    limit_bytes: usize,
) -> Result<web::Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit_bytes) {
        return Err(IngestError::BodyTooLarge { limit_bytes });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit_bytes));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            if crate::body_deadline::is_stalled(&err) {
                IngestError::BodyStalled(err.to_string())
            } else {
                IngestError::BodyIncomplete(err.to_string())
            }
        })?;
        if body.len() + chunk.len() > limit_bytes {
            return Err(IngestError::BodyTooLarge { limit_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn success_response(signal: Signal, outcome: ExportOutcome, json: bool) -> HttpResponse {
    let rejected = i64::try_from(outcome.num_rejected).unwrap_or(i64::MAX);
    let error_message = outcome.rejection_message.unwrap_or_default();
    let mut response = HttpResponse::Ok();
    match signal {
        Signal::Traces => {
            let body = ExportTraceServiceResponse {
                partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message,
                }),
            };
            encode_response(&mut response, &body, json)
        }
        Signal::Metrics => {
            let body = ExportMetricsServiceResponse {
                partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message,
                }),
            };
            encode_response(&mut response, &body, json)
        }
    }
}

/// `google.rpc.Status` without details: what OTLP/HTTP error bodies carry.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The OTLP/HTTP error response for `err`: a `google.rpc.Status` with the code of its gRPC
/// status, in the request's encoding (JSON when the request's encoding is unknown), with
/// `Retry-After` on retryable refusals.
fn error_response(err: &IngestError, json: bool, retry_after: Duration) -> HttpResponse {
    let status = err.http_status();
    let mut response = HttpResponse::build(status);
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response.insert_header(("Retry-After", retry_after.as_secs().max(1).to_string()));
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body may still come; the connection cannot be reused.
        response.force_close();
    }
    let rpc_status = RpcStatus {
        code: err.to_grpc_status(retry_after).code() as i32,
        message: err.to_string(),
    };
    encode_response(&mut response, &rpc_status, json)
}

/// Encodes an OTLP response message as protobuf or JSON.
fn encode_response<M: prost::Message + serde::Serialize>(
    response: &mut HttpResponseBuilder,
    message: &M,
    json: bool,
) -> HttpResponse {
    if json {
        // proto3 JSON omits unset message fields rather than writing `null`.
        let mut value = serde_json::to_value(message).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            fields.retain(|_, field| !field.is_null());
        }
        response
            .content_type("application/json")
            .body(value.to_string())
    } else {
        response
            .content_type("application/x-protobuf")
            .body(message.encode_to_vec())
    }
}
