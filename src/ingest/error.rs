//! Everything that can go wrong with an export request, and its one mapping to a gRPC status
//! and to an HTTP status (which `http` turns into the OTLP/HTTP response). A leaf of `ingest`:
//! it knows the errors of decoding and of the pipeline, nothing of the receivers.

use std::time::Duration;

use actix_web::http::StatusCode;
use tonic_types::{ErrorDetails, StatusExt};

use super::decode::DecodeError;
use crate::pipeline::SubmitError;
use crate::telemetry::RejectReason;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("unsupported Content-Type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    #[error("unsupported Content-Encoding {0:?}: send gzip or no encoding")]
    UnsupportedContentEncoding(String),
    #[error("request body exceeds the limit of {limit_bytes} bytes")]
    BodyTooLarge { limit_bytes: usize },
    #[error("request body could not be read: {0}")]
    BodyIncomplete(String),
    #[error("{0}")]
    BodyStalled(String),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl IngestError {
    pub fn reject_reason(&self) -> RejectReason {
        match self {
            IngestError::Decode(DecodeError::TooLarge { .. } | DecodeError::TooCostly { .. }) => {
                RejectReason::TooLarge
            }
            IngestError::Decode(_)
            | IngestError::BodyIncomplete(_)
            | IngestError::BodyStalled(_) => RejectReason::Malformed,
            IngestError::UnsupportedContentType(_) | IngestError::UnsupportedContentEncoding(_) => {
                RejectReason::UnsupportedMedia
            }
            IngestError::BodyTooLarge { .. } => RejectReason::TooLarge,
            IngestError::Submit(
                SubmitError::Full { .. } | SubmitError::LogFull { .. } | SubmitError::LogFailed(_),
            ) => RejectReason::Backpressure,
            IngestError::Submit(SubmitError::TooLarge { .. }) => RejectReason::TooLarge,
            IngestError::Submit(SubmitError::ShuttingDown) => RejectReason::ShuttingDown,
        }
    }

    /// The gRPC status, chosen by the OTLP specification's retry rules: backpressure is
    /// `RESOURCE_EXHAUSTED` or `UNAVAILABLE` with RetryInfo (retried after the delay); what no
    /// retry can fix, a malformed or too large request, is `INVALID_ARGUMENT` (never retried;
    /// `RESOURCE_EXHAUSTED` without RetryInfo would still be retried by some SDKs).
    pub fn to_grpc_status(&self, retry_after: Duration) -> tonic::Status {
        let message = self.to_string();
        match self {
            IngestError::Submit(SubmitError::Full { .. } | SubmitError::LogFull { .. }) => {
                tonic::Status::with_error_details(
                    tonic::Code::ResourceExhausted,
                    message,
                    ErrorDetails::with_retry_info(Some(retry_after)),
                )
            }
            IngestError::Submit(SubmitError::ShuttingDown | SubmitError::LogFailed(_)) => {
                tonic::Status::with_error_details(
                    tonic::Code::Unavailable,
                    message,
                    ErrorDetails::with_retry_info(Some(retry_after)),
                )
            }
            IngestError::BodyStalled(_) => tonic::Status::deadline_exceeded(message),
            _ => tonic::Status::invalid_argument(message),
        }
    }

    /// The HTTP status of the OTLP/HTTP response: 429 and 503 are retried after `Retry-After`,
    /// other 4xx are not.
    pub fn http_status(&self) -> StatusCode {
        match self {
            IngestError::Decode(DecodeError::TooLarge { .. } | DecodeError::TooCostly { .. })
            | IngestError::BodyTooLarge { .. }
            | IngestError::Submit(SubmitError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Decode(_) | IngestError::BodyIncomplete(_) => StatusCode::BAD_REQUEST,
            IngestError::BodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            IngestError::UnsupportedContentType(_) | IngestError::UnsupportedContentEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            IngestError::Submit(SubmitError::Full { .. } | SubmitError::LogFull { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            IngestError::Submit(SubmitError::ShuttingDown | SubmitError::LogFailed(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}
