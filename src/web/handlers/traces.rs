//! `/api/v1/traces`, `/api/v1/traces/{trace_id}` and `/api/v1/metric-points`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::model::TraceId;
use crate::web::error::ApiError;
use crate::web::{WebState, json, params};

pub async fn get_trace(
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let raw = path.into_inner();
    let trace_id: TraceId = raw.parse().map_err(|err| {
        ApiError::BadRequest(format!(
            "invalid trace id {raw:?}: {err} (expected 32 hex characters)"
        ))
    })?;
    let spans = state
        .query
        .trace(trace_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("trace {trace_id} not found")))?;
    Ok(HttpResponse::Ok().json(json!({
        "trace_id": trace_id,
        "spans": spans.iter().map(json::span).collect::<Vec<_>>(),
    })))
}

pub async fn search_traces(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let query = params::trace_query(request.query_string())?;
    let traces = state.query.search_traces(query).await?;
    Ok(HttpResponse::Ok().json(json!({
        "traces": traces.iter().map(json::trace_summary).collect::<Vec<_>>(),
    })))
}

pub async fn metric_points(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let query = params::metric_query(request.query_string())?;
    let points = state.query.metric_points(query).await?;
    Ok(HttpResponse::Ok().json(json!({
        "points": points.iter().map(json::metric_point).collect::<Vec<_>>(),
    })))
}
