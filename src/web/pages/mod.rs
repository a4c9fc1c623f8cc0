//! The dashboards: thin handlers that read through the query service and fill askama views
//! (`views`). Errors become the friendly HTML error page here, in one place (`PageError`).

mod views;
mod waterfall;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template as _;

use crate::graph::analysis;
use crate::model::graph::{EdgeKey, NodeKey, NodeKind};
use crate::model::{TraceId, now_unix_nano};
use crate::query::{GraphFilter, GraphRange, SignalOverlay, overlay};
use crate::store::TraceQuery;
use crate::web::WebState;
use crate::web::error::ApiError;
use crate::web::map::svg::{self, millis_text, rate_text, trend_arrow, url_encode};
use crate::web::params::{self, GRAPH_PARAMS, graph_query};

use views::{Cell, ErrorPage, Field, Frame, MapPage, Section, TablePage, TracePage};

const WINDOWS: [&str; 5] = ["5m", "15m", "1h", "6h", "24h"];
const RANGE_PARAMS: &[&str] = &["window", "from", "to"];

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError(ApiError);

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(err: E) -> Self {
        PageError(err.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (heading, message) = match status {
            StatusCode::NOT_FOUND => ("Not found", self.0.to_string()),
            StatusCode::BAD_REQUEST => ("That request is not valid", self.0.to_string()),
            _ => {
                tracing::error!(error = %self.0, "page failed");
                (
                    "Something went wrong",
                    "Cartograph could not read this page's data; the log says why. Try again in a moment.".to_owned(),
                )
            }
        };
        error_page(status, heading, &message)
    }
}

fn error_page(status: StatusCode, heading: &str, message: &str) -> HttpResponse {
    let frame = Frame::new(heading, "");
    let page = ErrorPage {
        title: frame.title,
        section: frame.section,
        nav: frame.nav,
        heading: heading.to_owned(),
        message: message.to_owned(),
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
    let view = state.query.graph(range, filter).await?;
    let signals = state.query.signals(range).await?;
    let overlay = overlay(&view, &signals);
    Ok((view, overlay))
}

fn percent(numerator: u64, denominator: u64) -> String {
    if denominator == 0 {
        return "–".to_owned();
    }
    format!("{:.2} %", numerator as f64 * 100.0 / denominator as f64)
}

fn quantile(sketch: &crate::model::LatencySketch, q: f64) -> String {
    sketch.quantile_nanos(q).map_or("–".to_owned(), millis_text)
}

fn time_text(unix_nano: u64) -> String {
    crate::web::signals_json::rfc3339(unix_nano)
        .as_str()
        .map_or("–".to_owned(), |text| {
            text.replace('T', " ").chars().take(19).collect()
        })
}

/// The map form sends its time-range select always; a custom from/to replaces it.
fn custom_range_wins(query_string: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    let is_custom = pairs.iter().any(|(key, _)| key == "from" || key == "to");
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(key, _)| !(is_custom && key == "window"))
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

pub async fn map(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = custom_range_wins(&without_empty(request.query_string()));
    let (range, filter) = graph_query(&query_string, GRAPH_PARAMS)?;
    let (view, overlay) = placed_view(&state, range, &filter).await?;
    let layout = svg::map_layout(&view, &overlay);
    let parsed: Vec<(String, String)> =
        serde_urlencoded::from_str(&query_string).unwrap_or_default();
    let value = |name: &str| {
        parsed
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.clone())
    };
    let frame = Frame::new("Map", "Map");
    let page = MapPage {
        title: frame.title,
        section: frame.section,
        nav: frame.nav,
        windows: WINDOWS.to_vec(),
        window: value("window").unwrap_or_else(|| "15m".to_owned()),
        from: value("from").unwrap_or_default(),
        to: value("to").unwrap_or_default(),
        namespace: value("namespace").unwrap_or_default(),
        focus: value("focus").unwrap_or_default(),
        depth: filter.depth,
        summary: format!("{} nodes, {} edges", view.nodes.len(), view.edges.len()),
        is_empty: view.edges.is_empty(),
        has_filter: filter.namespace.is_some() || filter.focus.is_some(),
        grpc_addr: state.otlp_grpc_addr.clone(),
        http_addr: state.otlp_http_addr.clone(),
        refresh_url: if query_string.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{query_string}")
        },
        svg: svg::render(&view, &overlay, &layout),
    };
    Ok(respond(&page))
}

fn respond(page: &impl askama::Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::Ok()
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

pub async fn services(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    let (range, _) = graph_query(&query_string, &["window", "from", "to", "sort"])
        .or_else(|_| graph_query(&query_string, RANGE_PARAMS))?;
    let sort: Option<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(&query_string)
        .unwrap_or_default()
        .into_iter()
        .find(|(key, _)| key == "sort")
        .map(|(_, value)| value);
    let mut summaries = state.query.services(range, None).await?;
    let trends = service_trends(&state, range).await?;
    match sort.as_deref() {
        Some("rate") => summaries.sort_by_key(|s| std::cmp::Reverse(s.stats.num_requests)),
        Some("errors") => summaries.sort_by(|a, b| {
            let rate = |s: &crate::query::ServiceSummary| {
                s.stats.num_errors as f64 / s.stats.num_requests.max(1) as f64
            };
            rate(b).total_cmp(&rate(a))
        }),
        Some("p95") => summaries.sort_by(|a, b| {
            let p95 = |s: &crate::query::ServiceSummary| {
                s.stats.latency.quantile_nanos(0.95).unwrap_or(0.0)
            };
            p95(b).total_cmp(&p95(a))
        }),
        _ => {}
    }
    let mut page = TablePage::new(
        Frame::new("Services", "Services"),
        "Services",
        "RED per service over its operations (server and consumer spans). Click a heading to sort.",
    );
    let mut section = Section::new(
        format!("{} services", summaries.len()),
        "No service has reported server or consumer spans in this range yet.",
        &[
            ("Service", false),
            ("Namespace", false),
            ("Rate", true),
            ("Errors", true),
            ("p50", true),
            ("p95", true),
            ("p99", true),
            ("Health", false),
            ("Requests over the range", false),
        ],
    );
    let keep_range: String = serde_urlencoded::from_str::<Vec<(String, String)>>(&query_string)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| key != "sort")
        .map(|(key, value)| format!("&{}={}", url_encode(&key), url_encode(&value)))
        .collect();
    let sort_link = |by: &str| format!("/services?sort={by}{keep_range}");
    section.sortable(vec![
        sort_link("name"),
        String::new(),
        sort_link("rate"),
        sort_link("errors"),
        String::new(),
        sort_link("p95"),
    ]);
    for summary in &summaries {
        let stats = &summary.stats;
        let health = svg::health_class(stats.num_requests, stats.num_errors);
        section.rows.push(vec![
            Cell::link(
                &summary.name,
                format!("/services/{}", url_encode(&summary.name)),
            ),
            Cell::text(summary.placement.namespace.clone().unwrap_or_default()),
            Cell::number(rate_text(
                stats.num_requests as f64 / range.window_secs.max(1.0),
            )),
            Cell::number(percent(stats.num_errors, stats.num_requests)),
            Cell::number(quantile(&stats.latency, 0.5)),
            Cell::number(quantile(&stats.latency, 0.95)),
            Cell::number(quantile(&stats.latency, 0.99)),
            Cell::pill(health, health),
            trend_cell(trends.get(&summary.name)),
        ]);
    }
    page.sections.push(section);
    Ok(respond(&page))
}

/// Splits `range` into at most [`SPARK_BUCKETS`] consecutive ranges of whole minutes.
fn buckets(range: GraphRange) -> Vec<GraphRange> {
    let num_minutes = (range.to_minute - range.from_minute).max(1);
    let bucket_minutes = (num_minutes + SPARK_BUCKETS - 1) / SPARK_BUCKETS;
    (range.from_minute..range.to_minute)
        .step_by(usize::try_from(bucket_minutes).unwrap_or(1))
        .map(|from_minute| {
            let to_minute = (from_minute + bucket_minutes).min(range.to_minute);
            GraphRange {
                from_minute,
                to_minute,
                window_secs: (to_minute - from_minute) as f64 * 60.0,
            }
        })
        .collect()
}

/// Client vs server p95, requests and errors of one edge per bucket of the range.
async fn edge_over_time(
    state: &WebState,
    range: GraphRange,
    source: &NodeKey,
    target: &NodeKey,
) -> Result<Section, PageError> {
    let filter = GraphFilter {
        focus: Some(source.clone()),
        depth: 1,
        ..GraphFilter::default()
    };
    let mut client = Vec::new();
    let mut server = Vec::new();
    let mut requests = Vec::new();
    let mut errored = Vec::new();
    for bucket in buckets(range) {
        let view = state.query.graph(bucket, &filter).await?;
        let mut stats = crate::model::graph::EdgeStats::default();
        for (_, edge) in view
            .edges
            .iter()
            .filter(|(key, _)| key.source == *source && key.target == *target)
        {
            stats.merge(edge);
        }
        let p95_ms = |sketch: &crate::model::LatencySketch| {
            sketch.quantile_nanos(0.95).map_or(0.0, |nanos| nanos / 1e6)
        };
        client.push(p95_ms(&stats.client_latency));
        server.push(p95_ms(&stats.server_latency));
        requests.push(stats.num_requests as f64);
        errored.push(stats.num_errors > 0);
    }
    let peak = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    let mut section = Section::new(
        "Over the range",
        "",
        &[
            ("Series", false),
            ("Trend (oldest left)", false),
            ("Peak", true),
        ],
    );
    let no_alerts = vec![false; client.len()];
    section.rows = vec![
        vec![
            Cell::text("client p95 (what the caller waited)"),
            Cell::spark(views::sparkline(&client, &no_alerts), ""),
            Cell::number(millis_text(peak(&client) * 1e6)),
        ],
        vec![
            Cell::text("server p95 (what the callee spent)"),
            Cell::spark(views::sparkline(&server, &no_alerts), ""),
            Cell::number(millis_text(peak(&server) * 1e6)),
        ],
        vec![
            Cell::text("requests (red: errors)"),
            Cell::spark(views::sparkline(&requests, &errored), ""),
            Cell::number(format!("{:.0}", peak(&requests))),
        ],
    ];
    Ok(section)
}

/// Buckets a sparkline has at most.
const SPARK_BUCKETS: i64 = 30;

/// Requests per bucket and whether the bucket had errors, per service, oldest first.
async fn service_trends(
    state: &WebState,
    range: GraphRange,
) -> Result<HashMap<String, Vec<(f64, bool)>>, PageError> {
    let ranges = buckets(range);
    let num_buckets = ranges.len();
    let mut trends: HashMap<String, Vec<(f64, bool)>> = HashMap::new();
    for (bucket, bucket_range) in ranges.into_iter().enumerate() {
        for summary in state.query.services(bucket_range, None).await? {
            let series = trends
                .entry(summary.name)
                .or_insert_with(|| vec![(0.0, false); num_buckets]);
            series[bucket] = (
                summary.stats.num_requests as f64,
                summary.stats.num_errors > 0,
            );
        }
    }
    Ok(trends)
}

fn trend_cell(series: Option<&Vec<(f64, bool)>>) -> Cell {
    let Some(series) = series else {
        return Cell::text("");
    };
    let values: Vec<f64> = series.iter().map(|(requests, _)| *requests).collect();
    let alerts: Vec<bool> = series.iter().map(|(_, errors)| *errors).collect();
    Cell::spark(views::sparkline(&values, &alerts), "")
}

fn edge_rows(
    section: &mut Section,
    view: &analysis::GraphView,
    overlay: &SignalOverlay,
    keep: impl Fn(&EdgeKey) -> bool,
) {
    for (key, stats) in view.edges.iter().filter(|(key, _)| keep(key)) {
        let breaker = overlay
            .edge_breaker
            .get(key)
            .map_or(String::new(), |b| b.state.as_str().to_owned());
        section.rows.push(vec![
            Cell::link(&key.source.name, svg::node_href(&key.source)),
            Cell::link(&key.target.name, svg::node_href(&key.target)),
            Cell::link(key.kind.as_str(), svg::edge_href(key)),
            Cell::number(rate_text(
                stats.num_requests as f64 / view.window_secs.max(1.0),
            )),
            Cell::number(percent(stats.num_errors, stats.num_requests)),
            Cell::number(quantile(&stats.client_latency, 0.95)),
            Cell::text(breaker),
        ]);
    }
}

const EDGE_COLUMNS: [(&str, bool); 7] = [
    ("From", false),
    ("To", false),
    ("Kind", false),
    ("Rate", true),
    ("Errors", true),
    ("Client p95", true),
    ("Breaker", false),
];

pub async fn service(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let name = path.into_inner();
    let (range, _) = graph_query(&without_empty(request.query_string()), RANGE_PARAMS)?;
    let node = NodeKey::service(name.clone());
    let (view, overlay) = placed_view(&state, range, &GraphFilter::default()).await?;
    let summaries = state.query.services(range, Some(name.clone())).await?;
    if summaries.is_empty() && !view.nodes.iter().any(|(key, _)| *key == node) {
        return Err(
            ApiError::NotFound(format!("Service {name:?} has no data in this range.")).into(),
        );
    }
    let mut page = TablePage::new(
        Frame::new(format!("{name} · service"), "Services"),
        format!("Service {name}"),
        "",
    );
    if let Some(summary) = summaries.first() {
        let stats = &summary.stats;
        page.cards = vec![
            (
                "rate".to_owned(),
                rate_text(stats.num_requests as f64 / range.window_secs.max(1.0)),
            ),
            (
                "errors".to_owned(),
                percent(stats.num_errors, stats.num_requests),
            ),
            ("p50".to_owned(), quantile(&stats.latency, 0.5)),
            ("p95".to_owned(), quantile(&stats.latency, 0.95)),
            ("p99".to_owned(), quantile(&stats.latency, 0.99)),
        ];
        let mut operations = Section::new(
            "Operations",
            "",
            &[
                ("Operation", false),
                ("Rate", true),
                ("Errors", true),
                ("p50", true),
                ("p95", true),
                ("p99", true),
            ],
        );
        for (operation, stats) in &summary.operations {
            operations.rows.push(vec![
                Cell::text(operation),
                Cell::number(rate_text(
                    stats.num_requests as f64 / range.window_secs.max(1.0),
                )),
                Cell::number(percent(stats.num_errors, stats.num_requests)),
                Cell::number(quantile(&stats.latency, 0.5)),
                Cell::number(quantile(&stats.latency, 0.95)),
                Cell::number(quantile(&stats.latency, 0.99)),
            ]);
        }
        page.sections.push(operations);
    }
    let mut callers = Section::new(
        "Callers",
        "Nobody calls this service in this range.",
        &EDGE_COLUMNS,
    );
    edge_rows(&mut callers, &view, &overlay, |key| key.target == node);
    let mut callees = Section::new(
        "Callees",
        "This service calls nothing in this range.",
        &EDGE_COLUMNS,
    );
    edge_rows(&mut callees, &view, &overlay, |key| key.source == node);
    page.sections.extend([callers, callees]);

    let mut blast = Section::new(
        "Blast radius: who is hurt if it fails",
        "Nothing depends on this service.",
        &[
            ("Affected", false),
            ("Hops", true),
            ("Requests/s into the failure", true),
        ],
    );
    if let Some(radius) = analysis::blast_radius(&view, &node) {
        blast.title = format!(
            "Blast radius: {} nodes, {:.1} % of traffic",
            radius.num_affected,
            radius.affected_traffic_share * 100.0
        );
        for affected in &radius.affected {
            blast.rows.push(vec![
                Cell::text(&affected.node),
                Cell::number(affected.num_hops.to_string()),
                Cell::number(format!("{:.2}", affected.requests_per_s)),
            ]);
        }
    }
    page.sections.push(blast);

    let mut breakers = Section::new(
        "Circuit breakers",
        "This service reports no circuit breaker.",
        &[
            ("Breaker", false),
            ("Guards", false),
            ("State", false),
            ("Since", false),
        ],
    );
    for (breaker, edge) in overlay.breakers.iter().filter(|(b, _)| b.service == name) {
        breakers.rows.push(vec![
            Cell::text(&breaker.name),
            Cell::text(
                edge.as_ref()
                    .map_or("(the service itself)".to_owned(), |e| e.target.name.clone()),
            ),
            Cell::pill(breaker.state.as_str(), breaker_class(breaker.state)),
            Cell::text(time_text(breaker.since_unix_nano)),
        ]);
    }
    page.sections.push(breakers);
    let mut lag = Section::new(
        "Consumer lag",
        "This service consumes no topic with reported lag.",
        &LAG_COLUMNS,
    );
    lag_rows(
        &mut lag,
        overlay
            .groups
            .iter()
            .filter(|(_, edge)| edge.as_ref().is_some_and(|e| e.target == node)),
    );
    page.sections.push(lag);

    let query = TraceQuery {
        service: Some(name.clone()),
        operation: None,
        from_unix_nano: now_unix_nano().saturating_sub(3_600_000_000_000),
        to_unix_nano: now_unix_nano() + 60_000_000_000,
        min_duration_nanos: None,
        max_duration_nanos: None,
        error: Some(true),
        attribute: None,
        limit: 10,
    };
    let mut errors = Section::new(
        "Recent error traces",
        "No error traces in the last hour.",
        &TRACE_COLUMNS,
    );
    trace_rows(&mut errors, &state.query.search_traces(query).await?);
    page.sections.push(errors);
    Ok(respond(&page))
}

fn breaker_class(state: crate::signals::BreakerState) -> &'static str {
    match state.as_str() {
        "open" | "forced_open" => "open",
        "half_open" => "half_open",
        "closed" => "closed",
        _ => "idle",
    }
}

const LAG_COLUMNS: [(&str, bool); 8] = [
    ("Group", false),
    ("Topic", false),
    ("Consumer", false),
    ("Lag", true),
    ("Trend", false),
    ("Rate /s", true),
    ("Time to drain", true),
    ("Partitions", false),
];

fn lag_rows<'a>(
    section: &mut Section,
    groups: impl Iterator<Item = &'a (crate::signals::GroupLag, Option<EdgeKey>)>,
) {
    for (group, edge) in groups {
        let partitions: Vec<String> = group
            .partitions
            .iter()
            .map(|p| format!("{}: {:.0}", p.partition, p.lag))
            .collect();
        section.rows.push(vec![
            Cell::text(&group.group),
            Cell::text(&group.topic),
            edge.as_ref().map_or(Cell::text("(unmapped)"), |e| {
                Cell::link(&e.target.name, svg::node_href(&e.target))
            }),
            Cell::number(format!("{:.0}", group.lag)),
            Cell::text(trend_arrow(group.trend)),
            Cell::number(
                group
                    .rate_per_s
                    .map_or("–".to_owned(), |r| format!("{r:+.1}")),
            ),
            Cell::number(
                group
                    .time_to_drain_secs
                    .map_or("–".to_owned(), |s| format!("{s:.0} s")),
            ),
            Cell::text(partitions.join(", ")),
        ]);
    }
}

const TRACE_COLUMNS: [(&str, bool); 6] = [
    ("Trace", false),
    ("Root", false),
    ("Start", false),
    ("Duration", true),
    ("Spans", true),
    ("Errors", true),
];

fn trace_rows(section: &mut Section, traces: &[crate::store::TraceSummary]) {
    for trace in traces {
        let id = trace.trace_id.to_string();
        section.rows.push(vec![
            Cell::link(
                id.chars().take(16).collect::<String>(),
                format!("/traces/{id}"),
            ),
            Cell::text(format!("{} {}", trace.root_service, trace.root_name)),
            Cell::text(time_text(trace.start_time_unix_nano)),
            Cell::number(millis_text(trace.duration_nanos as f64)),
            Cell::number(trace.num_spans.to_string()),
            Cell::number(trace.num_errors.to_string()),
        ]);
    }
}

pub async fn edge(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (source, target) = path.into_inner();
    let (range, _) = graph_query(&without_empty(request.query_string()), RANGE_PARAMS)?;
    let parse = |id: &str| {
        NodeKey::parse_id(id).ok_or_else(|| {
            ApiError::BadRequest(format!("{id:?} is not a node id such as service:checkout"))
        })
    };
    let (source, target) = (parse(&source)?, parse(&target)?);
    let (view, overlay) = placed_view(&state, range, &GraphFilter::default()).await?;
    let edges: Vec<&(EdgeKey, crate::model::graph::EdgeStats)> = view
        .edges
        .iter()
        .filter(|(key, _)| key.source == source && key.target == target)
        .collect();
    if edges.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No calls from {} to {} in this range.",
            source.name, target.name
        ))
        .into());
    }
    let mut page = TablePage::new(
        Frame::new(format!("{} → {}", source.name, target.name), "Map"),
        format!("{} → {}", source.name, target.name),
        "Client-side latency is what the caller waited; server-side is what the callee spent. The gap is network, queues and retries.",
    );
    let mut section = Section::new(
        "Calls",
        "",
        &[
            ("Kind", false),
            ("Requests", true),
            ("Errors", true),
            ("Retries", true),
            ("Short-circuited", true),
            ("Unpaired", true),
            ("Client p50 / p95 / p99", true),
            ("Server p50 / p95 / p99", true),
            ("Calls per trace", true),
        ],
    );
    for (key, stats) in &edges {
        let triple = |sketch: &crate::model::LatencySketch| {
            format!(
                "{} / {} / {}",
                quantile(sketch, 0.5),
                quantile(sketch, 0.95),
                quantile(sketch, 0.99)
            )
        };
        section.rows.push(vec![
            Cell::text(key.kind.as_str()),
            Cell::number(stats.num_requests.to_string()),
            Cell::number(format!(
                "{} ({})",
                stats.num_errors,
                percent(stats.num_errors, stats.num_requests)
            )),
            Cell::number(stats.num_retries.to_string()),
            Cell::number(stats.num_short_circuited.to_string()),
            Cell::number((stats.num_client_only + stats.num_server_only).to_string()),
            Cell::number(triple(&stats.client_latency)),
            Cell::number(triple(&stats.server_latency)),
            Cell::number(if stats.num_traces > 0 {
                format!("{:.1}", stats.num_requests as f64 / stats.num_traces as f64)
            } else {
                "–".to_owned()
            }),
        ]);
        if let Some(breaker) = overlay.edge_breaker.get(key) {
            page.cards.push((
                "breaker ".to_owned() + &breaker.name,
                breaker.state.as_str().to_owned(),
            ));
        }
        if let Some(lag) = overlay.edge_lag.get(key) {
            page.cards.push((
                "consumer lag".to_owned(),
                format!("{:.0} {}", lag.lag, trend_arrow(lag.trend)),
            ));
        }
    }
    page.sections.push(section);
    page.sections
        .push(edge_over_time(&state, range, &source, &target).await?);
    if source.kind == NodeKind::Service {
        let query = TraceQuery {
            service: Some(source.name.clone()),
            operation: None,
            from_unix_nano: now_unix_nano().saturating_sub(3_600_000_000_000),
            to_unix_nano: now_unix_nano() + 60_000_000_000,
            min_duration_nanos: None,
            max_duration_nanos: None,
            error: None,
            attribute: None,
            limit: 10,
        };
        let mut examples = Section::new(
            format!("Recent traces through {}", source.name),
            "No stored traces in the last hour.",
            &TRACE_COLUMNS,
        );
        trace_rows(&mut examples, &state.query.search_traces(query).await?);
        page.sections.push(examples);
    }
    Ok(respond(&page))
}

pub async fn kafka(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (range, _) = graph_query(&without_empty(request.query_string()), RANGE_PARAMS)?;
    let (_, overlay) = placed_view(&state, range, &GraphFilter::default()).await?;
    let mut page = TablePage::new(
        Frame::new("Kafka", "Kafka"),
        "Kafka consumer lag",
        "Lag per consumer group and topic, from kafkametrics, kafka_exporter or client metrics; trend fitted over the last 5 minutes.",
    );
    let total: f64 = overlay.groups.iter().map(|(g, _)| g.lag).sum();
    page.cards = vec![
        ("groups".to_owned(), overlay.groups.len().to_string()),
        ("total lag".to_owned(), format!("{total:.0}")),
    ];
    let mut section = Section::new(
        "Consumer groups",
        "No consumer lag metrics have arrived (see docs/kafka-lag-and-breakers.md).",
        &LAG_COLUMNS,
    );
    lag_rows(&mut section, overlay.groups.iter());
    page.sections.push(section);
    Ok(respond(&page))
}

pub async fn breakers(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (range, _) = graph_query(&without_empty(request.query_string()), RANGE_PARAMS)?;
    let (view, overlay) = placed_view(&state, range, &GraphFilter::default()).await?;
    let mut page = TablePage::new(
        Frame::new("Breakers", "Breakers"),
        "Circuit breakers",
        "Every breaker reported by resilience4j, Polly or circuit_breaker.state metrics, with the calls it short-circuited.",
    );
    let num_open = overlay
        .breakers
        .iter()
        .filter(|(b, _)| b.state.is_open())
        .count();
    page.cards = vec![
        ("breakers".to_owned(), overlay.breakers.len().to_string()),
        ("open now".to_owned(), num_open.to_string()),
    ];
    let mut current = Section::new(
        "Now",
        "No circuit-breaker metrics have arrived (see docs/kafka-lag-and-breakers.md).",
        &[
            ("Service", false),
            ("Breaker", false),
            ("Guards", false),
            ("State", false),
            ("Since", false),
            ("Short-circuited calls", true),
            ("Transitions", true),
        ],
    );
    let mut history = Section::new(
        "Transitions",
        "",
        &[
            ("Service", false),
            ("Breaker", false),
            ("From", false),
            ("To", false),
            ("At", false),
        ],
    );
    for (breaker, edge) in &overlay.breakers {
        let short_circuited = edge
            .as_ref()
            .and_then(|key| view.edges.iter().find(|(k, _)| k == key))
            .map_or("–".to_owned(), |(_, stats)| {
                stats.num_short_circuited.to_string()
            });
        current.rows.push(vec![
            Cell::link(
                &breaker.service,
                format!("/services/{}", url_encode(&breaker.service)),
            ),
            Cell::text(&breaker.name),
            edge.as_ref()
                .map_or(Cell::text("(the service itself)"), |key| {
                    Cell::link(&key.target.name, svg::edge_href(key))
                }),
            Cell::pill(breaker.state.as_str(), breaker_class(breaker.state)),
            Cell::text(time_text(breaker.since_unix_nano)),
            Cell::number(short_circuited),
            Cell::number(breaker.transitions.len().to_string()),
        ]);
        for transition in breaker.transitions.iter().rev() {
            history.rows.push(vec![
                Cell::text(&breaker.service),
                Cell::text(&breaker.name),
                Cell::text(transition.from.map_or("–", |s| s.as_str())),
                Cell::pill(transition.to.as_str(), breaker_class(transition.to)),
                Cell::text(time_text(transition.at_unix_nano)),
            ]);
        }
    }
    page.sections.extend([current, history]);
    Ok(respond(&page))
}

pub async fn insights(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (range, _) = graph_query(&without_empty(request.query_string()), RANGE_PARAMS)?;
    let view = state.query.graph(range, &GraphFilter::default()).await?;
    let found = analysis::insights(&view, &state.query.observed_chains());
    let mut page = TablePage::new(
        Frame::new("Insights", "Insights"),
        "Insights",
        "What the structure of the map says: cycles, long synchronous chains, chatty pairs, fan-out and single points of failure.",
    );
    let mut cycles = Section::new(
        "Cycles",
        "No cycles.",
        &[
            ("Path", false),
            ("Synchronous", false),
            ("Through a topic", false),
        ],
    );
    for cycle in &found.cycles {
        cycles.rows.push(vec![
            Cell::text(cycle.path.join(" → ")),
            Cell::text(if cycle.synchronous { "yes" } else { "no" }),
            Cell::text(if cycle.through_topic { "yes" } else { "no" }),
        ]);
    }
    let mut chains = Section::new(
        "Longest synchronous chains",
        "No synchronous chains observed yet.",
        &[
            ("Services", false),
            ("Hops", true),
            ("Seen", true),
            ("Example", false),
        ],
    );
    for chain in &found.longest_chains {
        let id = chain.example_trace_id.to_string();
        chains.rows.push(vec![
            Cell::text(chain.services.join(" → ")),
            Cell::number(chain.num_hops.to_string()),
            Cell::number(chain.num_occurrences.to_string()),
            Cell::link("trace", format!("/traces/{id}")),
        ]);
    }
    let mut chatty = Section::new(
        "Chatty pairs",
        "No pair makes many calls per trace.",
        &[
            ("From", false),
            ("To", false),
            ("Calls per trace", true),
            ("Max in one trace", true),
            ("Rate", true),
        ],
    );
    for pair in &found.chatty_pairs {
        chatty.rows.push(vec![
            Cell::text(&pair.source),
            Cell::text(&pair.target),
            Cell::number(format!("{:.1}", pair.calls_per_trace)),
            Cell::number(pair.max_calls_per_trace.to_string()),
            Cell::number(rate_text(pair.requests_per_s)),
        ]);
    }
    let mut fan_out = Section::new(
        "Fan-out",
        "No fan-out hot spots.",
        &[
            ("Node", false),
            ("Callees", true),
            ("Synchronous", true),
            ("Rate", true),
        ],
    );
    for fan in &found.fan_out {
        fan_out.rows.push(vec![
            Cell::text(&fan.node),
            Cell::number(fan.num_callees.to_string()),
            Cell::number(fan.num_synchronous_callees.to_string()),
            Cell::number(rate_text(fan.requests_per_s)),
        ]);
    }
    let mut spof = Section::new(
        "Single points of failure",
        "No single node separates the map.",
        &[
            ("Node", false),
            ("Dependents", true),
            ("Parts it separates", true),
            ("Traffic affected", true),
        ],
    );
    for point in &found.single_points_of_failure {
        spof.rows.push(vec![
            Cell::text(&point.node),
            Cell::number(point.num_dependents.to_string()),
            Cell::number(point.num_separated_parts.to_string()),
            Cell::number(format!("{:.1} %", point.affected_traffic_share * 100.0)),
        ]);
    }
    page.sections
        .extend([cycles, chains, chatty, fan_out, spof]);
    Ok(respond(&page))
}

pub async fn traces(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    let query = params::trace_query(&query_string)?;
    let found = state.query.search_traces(query).await?;
    let mut page = TablePage::new(
        Frame::new("Traces", "Traces"),
        "Traces",
        "Newest first. Attribute: key=value, e.g. x-correlation-id=abc. Errors: true or false. Times: RFC 3339 (default: the last hour).",
    );
    page.form_action = "/traces".to_owned();
    page.form = trace_form(&query_string);
    let mut section = Section::new(
        format!("{} traces", found.len()),
        "No trace matches.",
        &TRACE_COLUMNS,
    );
    trace_rows(&mut section, &found);
    page.sections.push(section);
    Ok(respond(&page))
}

/// The search form, filled with what was searched.
fn trace_form(query_string: &str) -> Vec<Field> {
    let parsed: Vec<(String, String)> =
        serde_urlencoded::from_str(query_string).unwrap_or_default();
    let field = |label, name: &'static str, placeholder, size| Field {
        label,
        name,
        value: parsed
            .iter()
            .find(|(key, _)| key == name)
            .map_or(String::new(), |(_, value)| value.clone()),
        placeholder,
        size,
    };
    vec![
        field("Service", "service", "checkout", 14),
        field("Operation", "operation", "GET /orders", 16),
        field("Min ms", "min_duration_ms", "", 6),
        field("Max ms", "max_duration_ms", "", 6),
        field("Errors", "error", "true", 5),
        field("Attribute", "attr", "x-correlation-id=abc", 22),
        field("From", "from", "2026-01-01T10:00:00Z", 18),
        field("To", "to", "", 18),
    ]
}

pub async fn trace(
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let raw = path.into_inner();
    let trace_id: TraceId = raw
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a trace id (32 hex digits)")))?;
    let Some(spans) = state.query.trace(trace_id).await? else {
        return Err(ApiError::NotFound(format!(
            "Trace {raw} is not stored (it may have aged out)."
        ))
        .into());
    };
    let rows = waterfall::rows(&spans);
    let start = spans
        .iter()
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_time_unix_nano)
        .max()
        .unwrap_or(start);
    let services: std::collections::BTreeSet<&str> = spans
        .iter()
        .map(|s| s.resource.service_name.as_str())
        .collect();
    let frame = Frame::new(format!("Trace {raw}"), "Traces");
    let page = TracePage {
        title: frame.title,
        section: frame.section,
        nav: frame.nav,
        trace_id: trace_id.to_string(),
        cards: vec![
            ("duration".to_owned(), millis_text((end - start) as f64)),
            ("spans".to_owned(), spans.len().to_string()),
            ("services".to_owned(), services.len().to_string()),
            (
                "errors".to_owned(),
                rows.iter().filter(|r| r.is_error).count().to_string(),
            ),
            ("started".to_owned(), time_text(start)),
        ],
        spans: rows,
    };
    Ok(respond(&page))
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
