//! `/api/v1/kafka` and `/api/v1/breakers`: lag and breakers as of the end of the range
//! (`window`, or `from`/`to` read from the store), placed on the map of that range.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::query::{GraphFilter, PlacedGraph};
use crate::web::error::ApiError;
use crate::web::params::graph_query;
use crate::web::{WebState, signals_json};

const RANGE_PARAMS: &[&str] = &["window", "from", "to"];

async fn placed(request: &HttpRequest, state: &WebState) -> Result<PlacedGraph, ApiError> {
    let (range, _) = graph_query(&state.query, request.query_string(), RANGE_PARAMS).await?;
    Ok(state
        .query
        .placed_graph(range, &GraphFilter::default())
        .await?)
}

pub async fn kafka(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let placed = placed(&request, &state).await?;
    Ok(HttpResponse::Ok().json(signals_json::kafka(&placed.overlay, placed.is_truncated)))
}

pub async fn breakers(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let PlacedGraph {
        view,
        overlay,
        is_truncated,
    } = placed(&request, &state).await?;
    let stats_of = |key: &crate::model::graph::EdgeKey| {
        view.edges
            .iter()
            .find(|(candidate, _)| candidate == key)
            .map(|(_, stats)| stats.clone())
    };
    Ok(HttpResponse::Ok().json(signals_json::breakers(&overlay, stats_of, is_truncated)))
}
