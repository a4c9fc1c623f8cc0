//! The one mapping from API failures to HTTP responses: JSON `{"error": "..."}` with the
//! right status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::alert::service::AlertingError;
use crate::query::QueryError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request body stalled (see `body_deadline`); the connection is closed.
    #[error("{0}")]
    BodyStalled(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An answer that could not be rendered (a failed serialization or render task).
    #[error("could not render the answer: {0}")]
    Render(String),
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("{0}")]
    Alerting(#[from] AlertingError),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Query(QueryError::Store(StoreError::InvalidQuery(_))) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Render(_) | ApiError::Query(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Alerting(AlertingError::Invalid(_)) => StatusCode::BAD_REQUEST,
            ApiError::Alerting(AlertingError::Full(_)) => StatusCode::CONFLICT,
            ApiError::Alerting(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            tracing::error!(error = %self, "api request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::BodyStalled(_)) {
            // The rest of the body may still come; the connection cannot be reused.
            response.force_close();
        }
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}
