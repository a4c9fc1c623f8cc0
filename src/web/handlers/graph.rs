//! `/api/v1/graph` (+ `.dot`, `.mmd`), `/api/v1/services`, `/api/v1/services/{name}` and
//! `/api/v1/insights`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::graph::analysis;
use crate::model::graph::NodeKey;
use crate::query::{GraphFilter, ServiceSummary};
use crate::web::error::ApiError;
use crate::web::params::{GRAPH_PARAMS, INSIGHTS_PARAMS, finding_filter, graph_query};
use crate::web::{WebState, graph_json};

pub async fn graph(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let (range, filter) = graph_query(&state.query, request.query_string(), GRAPH_PARAMS).await?;
    let placed = state.query.placed_graph(range, &filter).await?;
    let figures = state
        .query
        .node_traffic(range, &filter, &placed.view)
        .await?;
    Ok(HttpResponse::Ok().json(graph_json::graph(&placed.view, &placed.overlay, &figures)))
}

/// The requested view with lag and breakers placed on it.
async fn placed_view(
    request: &HttpRequest,
    state: &WebState,
) -> Result<(analysis::GraphView, crate::query::SignalOverlay), ApiError> {
    let (range, filter) = graph_query(&state.query, request.query_string(), GRAPH_PARAMS).await?;
    let placed = state.query.placed_graph(range, &filter).await?;
    Ok((placed.view, placed.overlay))
}

pub async fn graph_dot(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let (view, overlay) = placed_view(&request, &state).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/vnd.graphviz; charset=utf-8")
        .body(graph_json::dot(&view, &overlay)))
}

pub async fn graph_mermaid(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let (view, overlay) = placed_view(&request, &state).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(graph_json::mermaid(&view, &overlay)))
}

pub async fn insights(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let filter = finding_filter(request.query_string())?;
    let (range, view_filter) =
        graph_query(&state.query, request.query_string(), INSIGHTS_PARAMS).await?;
    let audit = state.query.audit(range, &view_filter, &filter).await?;
    let mut body = serde_json::to_value(&audit.insights).unwrap_or_default();
    body["findings"] = serde_json::to_value(&audit.findings).unwrap_or_default();
    Ok(HttpResponse::Ok().json(body))
}

/// A service's figures; `derived_from` says whether they come from traces or, for a service that
/// sends none, from its duration histograms; with both, `metrics` holds the histograms'.
fn service_json(summary: &ServiceSummary, window_secs: f64) -> Value {
    let mut body = graph_json::red(&summary.stats, window_secs);
    body["name"] = json!(summary.name);
    body["id"] = json!(NodeKey::service(summary.name.clone()).id());
    body["namespace"] = json!(summary.placement.namespace);
    body["environment"] = json!(summary.placement.environment);
    body["derived_from"] = json!(summary.source.as_str());
    if let Some(metrics) = &summary.metrics_opt {
        let mut figures = graph_json::red(metrics, window_secs);
        figures["disagrees"] = json!(summary.metrics_disagree);
        body["metrics"] = figures;
    }
    body
}

pub async fn services(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let (range, _) = graph_query(
        &state.query,
        request.query_string(),
        &["window", "from", "to"],
    )
    .await?;
    let summaries = state.query.services(range, None).await?;
    let services: Vec<Value> = summaries
        .iter()
        .map(|summary| service_json(summary, range.window_secs))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "services": services })))
}

pub async fn service(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let (range, _) = graph_query(
        &state.query,
        request.query_string(),
        &["window", "from", "to"],
    )
    .await?;
    let summaries = state.query.services(range, Some(name.clone())).await?;
    let node = NodeKey::service(name.clone());
    let crate::query::PlacedGraph { view, overlay, .. } = state
        .query
        .placed_graph(range, &GraphFilter::default())
        .await?;
    let Some(summary) = summaries.first() else {
        if !view.nodes.iter().any(|(key, _)| *key == node) {
            return Err(ApiError::NotFound(format!(
                "service {name:?} has no data in this range"
            )));
        }
        return Ok(HttpResponse::Ok().json(json!({ "name": name, "operations": [], "callers": edges_where(&view, &overlay, |key| key.target == node), "callees": edges_where(&view, &overlay, |key| key.source == node), "blast_radius": analysis::blast_radius(&view, &node) })));
    };
    let operations: Vec<Value> = summary
        .operations
        .iter()
        .map(|(operation, stats)| {
            let single = ServiceSummary {
                name: operation.clone(),
                placement: summary.placement.clone(),
                stats: stats.clone(),
                operations: Vec::new(),
                source: summary.source,
                metrics_opt: None,
                metrics_disagree: false,
            };
            service_json(&single, range.window_secs)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "service": service_json(summary, range.window_secs),
        "operations": operations,
        "callers": edges_where(&view, &overlay, |key| key.target == node),
        "callees": edges_where(&view, &overlay, |key| key.source == node),
        "blast_radius": analysis::blast_radius(&view, &node),
    })))
}

fn edges_where(
    view: &analysis::GraphView,
    overlay: &crate::query::SignalOverlay,
    keep: impl Fn(&crate::model::graph::EdgeKey) -> bool,
) -> Vec<Value> {
    view.edges
        .iter()
        .filter(|(key, _)| keep(key))
        .map(|(key, stats)| graph_json::edge(key, stats, view.window_secs, overlay))
        .collect()
}
