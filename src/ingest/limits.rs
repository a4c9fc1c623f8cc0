//! The size limits every export request passes, on both transports alike.

use bytes::Bytes;

use super::decode::{self, Encoding};
use super::error::IngestError;
use crate::config::IngestConfig;
use crate::telemetry::Signal;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// The byte limits of one request: as received, after gzip, and once decoded (estimated).
/// One request's decoding holds at most `max_message_bytes + max_decompressed_bytes +
/// max_decoded_bytes` (OTLP/JSON: plus a normalized copy of the decompressed body, at most
/// `max_decompressed_bytes` more).
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_message_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_decoded_bytes: usize,
}

impl IngestLimits {
    pub fn from_config(config: &IngestConfig) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes.get(),
            max_decompressed_bytes: config.max_decompressed_bytes.get(),
            max_decoded_bytes: config.max_decoded_bytes.get(),
        }
    }
}

/// A decoded export request of either signal.
#[derive(Debug)]
pub enum Decoded {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

/// Inflates (when `gzipped`) and decodes a `signal` request within `limits`.
pub fn decode_request(
    body: Bytes,
    gzipped: bool,
    encoding: Encoding,
    signal: Signal,
    limits: &IngestLimits,
) -> Result<Decoded, IngestError> {
    let body = if gzipped {
        Bytes::from(decode::gunzip(&body, limits.max_decompressed_bytes)?)
    } else {
        body
    };
    Ok(match signal {
        Signal::Traces => Decoded::Traces(decode::decode_traces_bytes(
            body,
            encoding,
            limits.max_decoded_bytes,
        )?),
        Signal::Metrics => Decoded::Metrics(decode::decode_metrics(
            &body,
            encoding,
            limits.max_decoded_bytes,
        )?),
    })
}
