//! Operational endpoints: `/health/live`, `/health/ready` and `/metrics`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::web::WebState;

/// Readiness fails when the queue is this full: ingest is about to push back.
const QUEUE_READY_MAX_FRACTION: f64 = 0.9;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

pub async fn ready(state: web::Data<WebState>) -> HttpResponse {
    let mut failing = Vec::new();
    if state.pipeline.is_closed() {
        failing.push("pipeline: shutting down, not accepting data".to_owned());
    }
    let num_queued = state.pipeline.num_queued_items();
    let capacity = state.pipeline.capacity_items();
    if num_queued as f64 >= capacity as f64 * QUEUE_READY_MAX_FRACTION {
        failing.push(format!(
            "queue: {num_queued} of {capacity} items waiting for the store"
        ));
    }
    if let Some(reason) = state.telemetry.log_failure() {
        failing.push(format!("log: exports cannot be made durable: {reason}"));
    }
    if state.telemetry.is_replaying() {
        failing.push("store: replaying the write-ahead log of the last run".to_owned());
    }
    if !state.telemetry.store_healthy() {
        failing.push("store: the last write failed and is being retried".to_owned());
    }
    if failing.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not ready", "failing": failing }))
    }
}

pub async fn metrics(state: web::Data<WebState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(
            state.telemetry.render_prometheus()
                + &state.query.render_service_graph_metrics()
                + &state.query.render_signal_metrics()
                + &state.alerting.render_prometheus(),
        )
}
