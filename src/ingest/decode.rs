//! Turns OTLP request bodies into `opentelemetry-proto` requests: bounded gunzip, protobuf via
//! prost, OTLP/JSON via the crate's serde impls (after the `json_compat` pre-pass). Pure and
//! synchronous; it neither validates content (that is `convert`) nor knows about transports.
//!
//! [`DecodeError`] messages go back to clients verbatim, so they say exactly what was wrong.

mod json_compat;

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
/// than `max_decompressed_bytes` so that a small bomb cannot exhaust memory: the buffer never
/// holds more than the limit (it grows by doubling, capped there), and one byte past the limit
/// ends decompression. An empty body stays empty (it is an empty request, however labelled).
pub fn gunzip(body: &[u8], max_decompressed_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = MultiGzDecoder::new(body);
    // Text-like telemetry usually compresses 5-10x; start there.
    let mut decompressed =
        vec![0; body.len().saturating_mul(8).clamp(1, max_decompressed_bytes.max(1))];
    let mut len = 0;
    loop {
        if len == decompressed.len() {
            if len >= max_decompressed_bytes {
                // Full at the limit: anything more is over it.
                let mut probe = [0_u8; 1];
                if decoder.read(&mut probe).map_err(DecodeError::Gzip)? > 0 {
                    return Err(DecodeError::TooLarge {
                        limit_bytes: max_decompressed_bytes,
                    });
                }
                break;
            }
            let grown = len.saturating_mul(2).min(max_decompressed_bytes);
            decompressed.reserve_exact(grown - len);
            decompressed.resize(grown, 0);
        }
        match decoder.read(&mut decompressed[len..]) {
            Ok(0) => break,
            Ok(num_read) => len += num_read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(DecodeError::Gzip(err)),
        }
    }
    decompressed.truncate(len);
    Ok(decompressed)
}

pub fn decode_traces(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    match encoding {
        // From a `&[u8]`, prost copies each `bytes` field (trace and span ids) twice, allocating
        // both times; from `Bytes` it slices first. One copy of the body saves three of the
        // about 25 allocations per typical span.
        Encoding::Protobuf => {
            let request = ExportTraceServiceRequest::decode(Bytes::copy_from_slice(body))?;
            Ok(request)
        }
        Encoding::Json => decode_json(body, json_compat::restore_non_finite_traces),
    }
}

pub fn decode_metrics(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    match encoding {
        // Only exemplars have `bytes` fields, so the copy above would not pay here.
        Encoding::Protobuf => Ok(ExportMetricsServiceRequest::decode(body)?),
        Encoding::Json => decode_json(body, json_compat::restore_non_finite_metrics),
    }
}

fn decode_json<T: DeserializeOwned>(
    body: &[u8],
    restore_non_finite: fn(&mut T),
) -> Result<T, DecodeError> {
    let normalized = json_compat::normalize(body);
    let mut request: T = serde_json::from_slice(&normalized.body)?;
    if normalized.has_non_finite {
        restore_non_finite(&mut request);
    }
    Ok(request)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
