//! `/api/v1/alerts` (pending, firing, recently resolved), `/api/v1/alerts/rules` (every rule
//! with its current value), `/api/v1/alerts/deliveries` (the outbox and its attempt log) and
//! `/api/v1/silences` (GET, POST, DELETE `/{id}`; Alertmanager's JSON shape).

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::alert::silence::{NewSilence, Silence};
use crate::model::{now_unix_nano, rfc3339};
use crate::web::WebState;
use crate::web::error::ApiError;
use crate::web::params::Params;

/// Largest silence accepted, in bytes.
pub const MAX_SILENCE_BYTES: usize = 64 * 1024;

const STATUSES: &[&str] = &["pending", "firing", "resolved"];

pub async fn alerts(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(request.query_string(), &["status"])?;
    let status = params.text("status");
    if let Some(status) = &status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "status must be one of {}, not {status:?}",
            STATUSES.join(", ")
        )));
    }
    let alerts: Vec<_> = state
        .alerting
        .alerts()
        .await?
        .into_iter()
        .filter(|alert| {
            status
                .as_deref()
                .is_none_or(|wanted| alert.status == wanted)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "alerts": alerts })))
}

pub async fn rules(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(request.query_string(), &[])?;
    Ok(HttpResponse::Ok().json(json!({ "rules": state.alerting.rules() })))
}

pub async fn deliveries(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(request.query_string(), &["limit"])?;
    let limit = params.limit()?;
    let deliveries = state.alerting.deliveries(limit).await?;
    let attempts = state.alerting.attempts(limit).await?;
    let attempts: Vec<_> = attempts
        .into_iter()
        .map(|attempt| {
            json!({
                "deliveryId": attempt.delivery_id,
                "receiver": attempt.receiver,
                "at": rfc3339(attempt.at_unix_nano),
                "status": attempt.status,
                "latencyMs": attempt.latency_ms,
                "error": attempt.error,
            })
        })
        .collect();
    let deliveries: Vec<_> = deliveries
        .into_iter()
        .map(|delivery| {
            json!({
                "id": delivery.id,
                "receiver": delivery.receiver,
                "url": delivery.url,
                "idempotencyKey": delivery.idempotency_key,
                "createdAt": rfc3339(delivery.created_at_unix_nano),
                "state": delivery.state,
                "attempts": delivery.num_attempts,
                "nextAttemptAt": rfc3339(delivery.next_attempt_at_unix_nano),
                "lastStatus": delivery.last_status,
                "lastError": delivery.last_error,
                "lastLatencyMs": delivery.last_latency_ms,
                "finishedAt": delivery.finished_at_unix_nano.and_then(rfc3339),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "deliveries": deliveries, "attempts": attempts })))
}

/// A silence in Alertmanager's `gettableSilence` shape.
pub fn silence_json(silence: &Silence, now: u64) -> serde_json::Value {
    json!({
        "id": silence.id,
        "status": { "state": silence.state(now).as_str() },
        "matchers": silence.matchers,
        "startsAt": rfc3339(silence.starts_at_unix_nano),
        "endsAt": rfc3339(silence.ends_at_unix_nano),
        "updatedAt": rfc3339(silence.updated_at_unix_nano),
        "createdBy": silence.created_by,
        "comment": silence.comment,
    })
}

pub async fn silences(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(request.query_string(), &[])?;
    let now = now_unix_nano();
    let silences: Vec<_> = state
        .alerting
        .silences()
        .await?
        .iter()
        .map(|silence| silence_json(silence, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "silences": silences })))
}

/// The request body, refused beyond `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt as _;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            if crate::body_deadline::is_stalled(&err) {
                ApiError::BodyStalled(err.to_string())
            } else {
                ApiError::BadRequest(format!("unreadable body: {err}"))
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "body larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub async fn create_silence(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the silence as application/json, not {content_type:?}"
        )));
    }
    let body = read_body(payload, MAX_SILENCE_BYTES).await?;
    let new: NewSilence = serde_json::from_slice(&body)
        .map_err(|err| ApiError::BadRequest(format!("invalid silence: {err}")))?;
    let id = state.alerting.add_silence(new).await?;
    Ok(HttpResponse::Ok().json(json!({ "silenceID": id })))
}

pub async fn expire_silence(
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if state.alerting.expire_silence(id.clone()).await? {
        Ok(HttpResponse::Ok().json(json!({ "id": id, "status": { "state": "expired" } })))
    } else {
        Err(ApiError::NotFound(format!("no silence with id {id:?}")))
    }
}
