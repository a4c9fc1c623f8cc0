//! Turns OTLP request bodies into `opentelemetry-proto` requests: bounded gunzip, protobuf via
//! prost, OTLP/JSON via the crate's serde impls (after the `json_compat` pre-pass). Pure and
//! synchronous; it neither validates content (that is `convert`) nor knows about transports.
//!
//! Memory is bounded before anything is decoded: a body inflates to at most
//! `max_decompressed_bytes`, and one whose decoded form [`cost`] estimates above
//! `max_decoded_bytes` is refused unparsed. One request's decoding thus holds at most the body
//! as received, plus its inflated copy, plus (JSON) a normalized copy, plus the decoded request.
//!
//! [`DecodeError`] messages go back to clients verbatim, so they say exactly what was wrong.

mod cost;
mod json_compat;
mod schema;

use std::io::Read;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::de::DeserializeOwned;

/// How a request body is encoded (from its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf: {message}")]
    Protobuf { message: String },
    #[error("invalid OTLP/JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("gzip body is corrupt: {0}")]
    Gzip(std::io::Error),
    #[error("decompressed body exceeds the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    #[error(
        "decoding this request would take more than the limit of {limit_bytes} bytes of memory \
         (ingest.max_decoded_bytes): send fewer spans, data points or attributes per request"
    )]
    TooCostly { limit_bytes: usize },
}

impl From<prost::DecodeError> for DecodeError {
    fn from(err: prost::DecodeError) -> Self {
        let text = err.to_string();
        // prost prefixes every message with this; ours already says "invalid protobuf".
        let message = text
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(&text)
            .to_owned();
        DecodeError::Protobuf { message }
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(err: serde_json::Error) -> Self {
        let (line, column) = (err.line(), err.column());
        let text = err.to_string();
        // serde_json appends the position, which our message puts first.
        let message = text
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&text)
            .to_owned();
        DecodeError::Json {
            line,
            column,
            message,
        }
    }
}

/// Decompresses a gzip body (all members of a multi-member stream), refusing to produce more
/// than `max_decompressed_bytes` so that a small bomb cannot exhaust memory: no more than the
/// limit is ever held. The first pass fills a buffer sized by the gzip trailer's ISIZE (exact
/// for the single-member bodies exporters send), clamped to the limit; should the body hold
/// more, the rest is only counted — past the limit it is refused — and a body that fits after
/// all is inflated again into a buffer of its exact size. An empty body stays empty (it is an
/// empty request, however labelled).
pub fn gunzip(body: &[u8], max_decompressed_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let limit = max_decompressed_bytes;
    let mut decompressed = vec![0; size_hint(body).clamp(1, limit.max(1))];
    let mut decoder = MultiGzDecoder::new(body);
    let filled = fill(&mut decoder, &mut decompressed)?;
    if filled < decompressed.len() {
        decompressed.truncate(filled);
        return Ok(decompressed);
    }
    let rest = count_rest(&mut decoder, limit.saturating_sub(filled))?
        .ok_or(DecodeError::TooLarge { limit_bytes: limit })?;
    if rest == 0 {
        return Ok(decompressed);
    }
    drop(decompressed);
    let mut exact = vec![0; filled + rest];
    let refilled = fill(&mut MultiGzDecoder::new(body), &mut exact)?;
    exact.truncate(refilled);
    Ok(exact)
}

/// The gzip trailer's ISIZE: the last member's size modulo 2^32 (a hint, nothing more).
fn size_hint(body: &[u8]) -> usize {
    body.len()
        .checked_sub(4)
        .and_then(|start| body[start..].try_into().ok())
        .map_or(0, |trailer: [u8; 4]| u32::from_le_bytes(trailer) as usize)
}

/// Reads until `buffer` is full or the stream ends; how much was read.
fn fill(decoder: &mut impl Read, buffer: &mut [u8]) -> Result<usize, DecodeError> {
    let mut len = 0;
    while len < buffer.len() {
        match decoder.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(num_read) => len += num_read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(DecodeError::Gzip(err)),
        }
    }
    Ok(len)
}

/// Counts what is left of the stream without keeping it; `None` once past `allowed`.
fn count_rest(decoder: &mut impl Read, allowed: usize) -> Result<Option<usize>, DecodeError> {
    let mut scratch = [0_u8; 16 * 1024];
    let mut total = 0_usize;
    loop {
        let num_read = fill(decoder, &mut scratch)?;
        total = total.saturating_add(num_read);
        if total > allowed {
            return Ok(None);
        }
        if num_read < scratch.len() {
            return Ok(Some(total));
        }
    }
}

/// Decodes a trace request, refusing one that would take more than `max_decoded_bytes`.
pub fn decode_traces(
    body: &[u8],
    encoding: Encoding,
    max_decoded_bytes: usize,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    // From a `&[u8]`, prost copies each `bytes` field (trace and span ids) twice, allocating
    // both times; from `Bytes` it slices first. One copy of the body saves three of the about
    // 25 allocations per typical span.
    decode_traces_bytes(Bytes::copy_from_slice(body), encoding, max_decoded_bytes)
}

/// [`decode_traces`] of a body the caller hands over (the receivers' path: no copy).
pub fn decode_traces_bytes(
    body: Bytes,
    encoding: Encoding,
    max_decoded_bytes: usize,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    let root = schema::Message::TraceRequest;
    match encoding {
        Encoding::Protobuf => {
            check_protobuf_cost(&body, root, max_decoded_bytes)?;
            Ok(ExportTraceServiceRequest::decode(body)?)
        }
        Encoding::Json => decode_json(
            &body,
            root,
            max_decoded_bytes,
            json_compat::restore_non_finite_traces,
        ),
    }
}

/// Decodes a metrics request, refusing one that would take more than `max_decoded_bytes`.
pub fn decode_metrics(
    body: &[u8],
    encoding: Encoding,
    max_decoded_bytes: usize,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    let root = schema::Message::MetricsRequest;
    match encoding {
        // Only exemplars have `bytes` fields, so the copy above would not pay here.
        Encoding::Protobuf => {
            check_protobuf_cost(body, root, max_decoded_bytes)?;
            Ok(ExportMetricsServiceRequest::decode(body)?)
        }
        Encoding::Json => decode_json(
            body,
            root,
            max_decoded_bytes,
            json_compat::restore_non_finite_metrics,
        ),
    }
}

/// What decoding `body` would take, as [`cost`] estimates it (for tests and benchmarks).
pub fn estimate_decoded_bytes(body: &[u8], encoding: Encoding, metrics: bool) -> usize {
    let root = if metrics {
        schema::Message::MetricsRequest
    } else {
        schema::Message::TraceRequest
    };
    match encoding {
        Encoding::Protobuf => {
            let mut budget = cost::Budget::protobuf(usize::MAX);
            let _ = cost::walk_protobuf(body, root, &mut budget);
            budget.spent()
        }
        Encoding::Json => {
            let mut budget = cost::Budget::json(usize::MAX);
            let _ = json_compat::normalize(body, root, &mut budget);
            budget.spent()
        }
    }
}

fn check_protobuf_cost(
    body: &[u8],
    root: schema::Message,
    max_decoded_bytes: usize,
) -> Result<(), DecodeError> {
    let mut budget = cost::Budget::protobuf(max_decoded_bytes);
    if !cost::could_exceed(body.len(), root, &budget) {
        return Ok(());
    }
    cost::walk_protobuf(body, root, &mut budget)
        .map_err(|message| DecodeError::Protobuf { message })?;
    check_budget(&budget, max_decoded_bytes)
}

fn check_budget(budget: &cost::Budget, max_decoded_bytes: usize) -> Result<(), DecodeError> {
    if budget.is_exceeded() {
        return Err(DecodeError::TooCostly {
            limit_bytes: max_decoded_bytes,
        });
    }
    Ok(())
}

fn decode_json<T: DeserializeOwned>(
    body: &[u8],
    root: schema::Message,
    max_decoded_bytes: usize,
    restore_non_finite: fn(&mut T),
) -> Result<T, DecodeError> {
    let mut budget = cost::Budget::json(max_decoded_bytes);
    let normalized = json_compat::normalize(body, root, &mut budget);
    check_budget(&budget, max_decoded_bytes)?;
    let mut request: T = serde_json::from_slice(&normalized.body)?;
    if normalized.has_non_finite {
        restore_non_finite(&mut request);
    }
    Ok(request)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod cost_tests;
