//! The dashboards: thin handlers that read through the query service and fill askama views
//! (`views`). Errors become the friendly HTML error page here, in one place (`PageError`).

mod alerts;
mod audit;
mod charts;
mod edge;
mod edge_split;
mod insights;
mod map;
mod map_compare;
mod services;
mod signals;
mod trace_search;
mod traces;
mod views;
mod waterfall;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template as _;

use crate::graph::analysis;
use crate::links::{self, url_encode};
use crate::model::graph::{EdgeKey, NodeKey, NodeKind};
use crate::model::{TraceId, now_unix_nano};
use crate::query::{GraphFilter, GraphRange, SeriesBuckets, SignalOverlay};
use crate::store::TraceQuery;
use crate::web::WebState;
use crate::web::error::ApiError;
use crate::web::format::{
    self, EdgeFigures, Figure, Mark, ServiceFigures, health_class, millis_text, quantile_text,
    rate_text,
};
use crate::web::map::svg::{self, trend_arrow};
use crate::web::params::{self, graph_query};

pub use alerts::{alert_badge, alerts, create_silence, expire_silence};
pub use edge::edge;
pub use insights::{insights, insights_anomalies};
pub use map::{map, map_findings};
pub use services::{service, services};
use signals::{LAG_COLUMNS, lag_rows};
pub use signals::{breakers, kafka};
pub use trace_search::traces;
use traces::{TRACE_COLUMNS, recent_traces, trace_rows};
pub use traces::{open_trace, trace};
use views::{
    Card, Cell, ErrorPage, Field, Frame, Input, MapFindings, MapPage, Section, SectionsFragment,
    TablePage, TraceCut, TracePage,
};

const RANGE_PARAMS: &[&str] = &["window", "from", "to"];

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    error: ApiError,
    /// The page's own path, when widening its time range may find what it looked for.
    widen_path: Option<String>,
}

impl PageError {
    /// Nothing in the range: the error page offers the same page over longer ranges.
    fn empty_range(error: ApiError, path: &str) -> Self {
        PageError {
            error,
            widen_path: Some(path.to_owned()),
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(err: E) -> Self {
        PageError {
            error: err.into(),
            widen_path: None,
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.error.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (heading, message) = match status {
            StatusCode::NOT_FOUND => ("Not found", self.error.to_string()),
            StatusCode::BAD_REQUEST => ("That request is not valid", self.error.to_string()),
            _ => {
                tracing::error!(error = %self.error, "page failed");
                (
                    "Something went wrong",
                    "Cartograph could not read this page's data; the log says why. Try again in a moment.".to_owned(),
                )
            }
        };
        let widen = self
            .widen_path
            .as_deref()
            .map_or_else(Vec::new, wider_ranges);
        error_page_with(status, heading, &message, widen)
    }
}

/// Links to `path` over the longer windows, for a page that found nothing in its range.
fn wider_ranges(path: &str) -> Vec<(String, String)> {
    ["1h", "6h", "24h"]
        .into_iter()
        .map(|window| (format!("last {window}"), format!("{path}?window={window}")))
        .collect()
}

fn error_page(status: StatusCode, heading: &str, message: &str) -> HttpResponse {
    error_page_with(status, heading, message, Vec::new())
}

fn error_page_with(
    status: StatusCode,
    heading: &str,
    message: &str,
    widen: Vec<(String, String)>,
) -> HttpResponse {
    let page = ErrorPage {
        frame: Frame::new(heading, ""),
        heading: heading.to_owned(),
        message: message.to_owned(),
        widen,
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render().unwrap_or_else(|_| message.to_owned()))
}

/// The HTML answer to a path nothing serves.
pub fn not_found(request: &HttpRequest) -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("There is no page at {}.", request.path()),
    )
}

/// A form's query string without its empty fields (an empty box means "not set").
fn without_empty(query_string: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

async fn placed_view(
    state: &WebState,
    range: GraphRange,
    filter: &GraphFilter,
) -> Result<(analysis::GraphView, SignalOverlay), PageError> {
    let placed = state.query.placed_graph(range, filter).await?;
    Ok((placed.view, placed.overlay))
}

fn time_text(unix_nano: u64) -> String {
    crate::model::rfc3339(unix_nano).map_or("–".to_owned(), |text| {
        text.replace('T', " ").chars().take(19).collect()
    })
}

fn respond(page: &impl askama::Template) -> HttpResponse {
    respond_with(StatusCode::OK, page)
}

/// `page` with `status` (a page that shows what was wrong with its request).
fn respond_with(status: StatusCode, page: &impl askama::Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "template failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "This page could not be rendered.",
            )
        }
    }
}

/// A node id as the pages show it: services by name, other nodes with their kind.
fn shown(id: &str) -> &str {
    id.strip_prefix("service:").unwrap_or(id)
}

/// Buckets a sparkline has at most.
const SPARK_BUCKETS: i64 = 30;

fn breaker_class(state: crate::signals::BreakerState) -> &'static str {
    match state.as_str() {
        "open" | "forced_open" => "open",
        "half_open" => "half_open",
        "closed" => "closed",
        _ => "idle",
    }
}

/// Vendored assets, embedded in the binary.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let (body, content_type): (&'static [u8], &str) = match path.as_str() {
        "app.css" => (
            include_bytes!("../../../static/app.css"),
            "text/css; charset=utf-8",
        ),
        "map.js" => (
            include_bytes!("../../../static/map.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (
            include_bytes!("../../../static/favicon.svg"),
            "image/svg+xml",
        ),
        "htmx.min.js" => (
            include_bytes!("../../../static/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => {
            return HttpResponse::NotFound()
                .content_type("text/plain")
                .body("no such asset");
        }
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(body)
}
