//! `/api/v1/traces`, `/api/v1/traces/{trace_id}` and `/api/v1/metric-points`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::links;
use crate::model::TraceId;
use crate::web::error::ApiError;
use crate::web::{WebState, json, params};

/// One page of a trace's spans (`offset`, `limit`: at most [`params::MAX_TRACE_PAGE_SPANS`]),
/// serialized on the blocking pool: a full page is several megabytes of JSON.
pub async fn get_trace(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let raw = path.into_inner();
    let trace_id: TraceId = raw.parse().map_err(|err| {
        ApiError::BadRequest(format!(
            "invalid trace id {raw:?}: {err} (expected 32 hex characters)"
        ))
    })?;
    let window = params::span_window(request.query_string())?;
    let page = state
        .query
        .trace_page(trace_id, window.offset, window.limit)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("trace {trace_id} not found")))?;
    let body = web::block(move || {
        let next_url = |offset| links::trace_api_page(trace_id, offset, window.limit);
        serde_json::to_vec(&json::trace_page(trace_id, &page, next_url))
    })
    .await
    .map_err(|err| ApiError::Render(err.to_string()))?
    .map_err(|err| ApiError::Render(err.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
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
