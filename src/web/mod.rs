//! The UI port: dashboards (`pages`, `map`), JSON API, health and Prometheus metrics. Handlers
//! are thin: they parse, call the [`QueryService`], and map results through `error`.

mod chart;
pub mod error;
pub mod format;
pub mod gate;
pub mod graph_json;
mod handlers;
pub mod json;
pub mod map;
mod pages;
pub mod params;
mod signals_json;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::pipeline::Pipeline;
use crate::query::QueryService;
use crate::telemetry::Telemetry;

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct WebState {
    pub query: QueryService,
    pub pipeline: Pipeline,
    pub telemetry: Arc<Telemetry>,
    /// Where exporters should send, for the first-start instructions.
    pub otlp_grpc_addr: String,
    pub otlp_http_addr: String,
    pub alerting: crate::alert::Alerting,
    /// Proof that a form post comes from a page this process served (pages embed it; other
    /// sites cannot read it).
    pub csrf_token: String,
}

/// Registers every route of the UI port.
pub fn configure(state: WebState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(state))
            .route("/", web::get().to(pages::map))
            .route("/map/findings", web::get().to(pages::map_findings))
            .route("/services", web::get().to(pages::services))
            .route("/services/{name}", web::get().to(pages::service))
            .route("/edges/{source}/{target}", web::get().to(pages::edge))
            .route("/kafka", web::get().to(pages::kafka))
            .route("/breakers", web::get().to(pages::breakers))
            .route("/insights", web::get().to(pages::insights))
            .route(
                "/insights/anomalies",
                web::get().to(pages::insights_anomalies),
            )
            .route("/traces", web::get().to(pages::traces))
            // Before `/traces/{trace_id}`, which would take "open" for an id.
            .route(crate::links::OPEN_TRACE, web::get().to(pages::open_trace))
            .route("/traces/{trace_id}", web::get().to(pages::trace))
            .route("/static/{file}", web::get().to(pages::asset))
            .route("/health/live", web::get().to(handlers::ops::live))
            .route("/health/ready", web::get().to(handlers::ops::ready))
            .route("/metrics", web::get().to(handlers::ops::metrics))
            .route(
                "/api/v1/traces",
                web::get().to(handlers::traces::search_traces),
            )
            .route(
                "/api/v1/traces/{trace_id}",
                web::get().to(handlers::traces::get_trace),
            )
            .route(
                "/api/v1/metric-points",
                web::get().to(handlers::traces::metric_points),
            )
            .configure(map_api)
            .route("/api/v1/kafka", web::get().to(handlers::signals::kafka))
            .route(
                "/api/v1/breakers",
                web::get().to(handlers::signals::breakers),
            )
            .route("/api/v1/alerts", web::get().to(handlers::alerts::alerts))
            .route(
                "/api/v1/alerts/rules",
                web::get().to(handlers::alerts::rules),
            )
            .route(
                "/api/v1/alerts/deliveries",
                web::get().to(handlers::alerts::deliveries),
            )
            .route(
                "/api/v1/silences",
                web::get().to(handlers::alerts::silences),
            )
            .route(
                "/api/v1/silences",
                web::post().to(handlers::alerts::create_silence),
            )
            .route(
                "/api/v1/silences/{id}",
                web::delete().to(handlers::alerts::expire_silence),
            )
            .route("/alerts", web::get().to(pages::alerts))
            .route("/alerts/badge", web::get().to(pages::alert_badge))
            .route("/alerts/silences", web::post().to(pages::create_silence))
            .route(
                "/alerts/silences/{id}/expire",
                web::post().to(pages::expire_silence),
            )
            .default_service(web::to(not_found));
    }
}

/// The API of the map: the graph, its services, deploys, diffs and audit.
fn map_api(config: &mut web::ServiceConfig) {
    config
        .route("/api/v1/graph", web::get().to(handlers::graph::graph))
        .route(
            "/api/v1/graph.dot",
            web::get().to(handlers::graph::graph_dot),
        )
        .route(
            "/api/v1/graph.mmd",
            web::get().to(handlers::graph::graph_mermaid),
        )
        .route("/api/v1/services", web::get().to(handlers::graph::services))
        .route("/api/v1/deploys", web::get().to(handlers::changes::deploys))
        .route(
            "/api/v1/graph/diff",
            web::get().to(handlers::changes::graph_diff),
        )
        .route(
            "/api/v1/services/{name}",
            web::get().to(handlers::graph::service),
        )
        .route(
            "/api/v1/anomalies",
            web::get().to(handlers::anomalies::anomalies),
        )
        .route("/api/v1/insights", web::get().to(handlers::graph::insights));
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    if !request.path().starts_with("/api/") {
        return pages::not_found(&request);
    }
    HttpResponse::NotFound().json(serde_json::json!({
        "error": format!("no route for {} {}", request.method(), request.path())
    }))
}
