//! `/api/v1/kafka` and `/api/v1/breakers`: lag and breakers as of the end of the range
//! (`window`, or `from`/`to` read from the store), placed on the map of that range.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::query::{GraphFilter, SignalOverlay, overlay};
use crate::web::error::ApiError;
use crate::web::params::graph_query;
use crate::web::{WebState, signals_json};

const RANGE_PARAMS: &[&str] = &["window", "from", "to"];

async fn placed(
    request: &HttpRequest,
    state: &WebState,
) -> Result<(crate::graph::analysis::GraphView, SignalOverlay, bool), ApiError> {
    let (range, _) = graph_query(request.query_string(), RANGE_PARAMS)?;
    let view = state.query.graph(range, &GraphFilter::default()).await?;
    let signals = state.query.signals(range).await?;
    let overlay = overlay(&view, &signals);
    Ok((view, overlay, signals.is_truncated))
}

pub async fn kafka(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let (_, overlay, is_truncated) = placed(&request, &state).await?;
    Ok(HttpResponse::Ok().json(signals_json::kafka(&overlay, is_truncated)))
}

pub async fn breakers(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let (view, overlay, is_truncated) = placed(&request, &state).await?;
    let stats_of = |key: &crate::model::graph::EdgeKey| {
        view.edges
            .iter()
            .find(|(candidate, _)| candidate == key)
            .map(|(_, stats)| stats.clone())
    };
    Ok(HttpResponse::Ok().json(signals_json::breakers(&overlay, stats_of, is_truncated)))
}
