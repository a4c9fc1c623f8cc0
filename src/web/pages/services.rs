//! The services table (sparklines, sorting) and one service's page. Every
//! figure is printed by `web::format` from its one definition in `model::figures`, and marked.

use super::*;
use crate::model::graph::OperationStats;
use crate::query::{FigureSource, ServiceSummary};

pub async fn services(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    let (range, _) = params::parse_graph_query(&query_string, &["window", "from", "to", "sort"])
        .or_else(|_| params::parse_graph_query(&query_string, RANGE_PARAMS))?;
    let range = state.query.covered(range).await?;
    let sort: Option<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(&query_string)
        .unwrap_or_default()
        .into_iter()
        .find(|(key, _)| key == "sort")
        .map(|(_, value)| value);
    let mut summaries = state.query.services(range, None).await?;
    let trends = service_trends(&state, range).await?;
    sort_services(&mut summaries, sort.as_deref());
    let mut page = TablePage::new(
        Frame::new("Services", "Services").ranged(request.path(), request.query_string(), true),
        "Services",
        "What each service served: its operations (server and consumer spans), never the calls its callers' breakers refused. Click a heading to sort.",
    );
    let keep_range: String = serde_urlencoded::from_str::<Vec<(String, String)>>(&query_string)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| key != "sort")
        .map(|(key, value)| format!("&{}={}", url_encode(&key), url_encode(&value)))
        .collect();
    page.sections
        .push(services_section(&summaries, &trends, range, &keep_range));
    Ok(respond(&page))
}

/// Sorts by `sort` (`rate`, `errors` or `p95`, largest first); by name otherwise.
fn sort_services(summaries: &mut [crate::query::ServiceSummary], sort: Option<&str>) {
    match sort {
        Some("rate") => summaries.sort_by_key(|s| std::cmp::Reverse(s.stats.num_requests)),
        Some("errors") => summaries.sort_by(|a, b| {
            let rate = |s: &crate::query::ServiceSummary| s.stats.error_rate().unwrap_or(0.0);
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
}

/// The services table; `keep_range` is appended to the sort links.
fn services_section(
    summaries: &[crate::query::ServiceSummary],
    trends: &HashMap<String, Vec<(f64, bool)>>,
    range: GraphRange,
    keep_range: &str,
) -> Section {
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
            ("Requests per second over the range", false),
        ],
    );
    let sort_link = |by: &str| format!("/services?sort={by}{keep_range}");
    section.sortable(vec![
        sort_link("name"),
        String::new(),
        sort_link("rate"),
        sort_link("errors"),
        String::new(),
        sort_link("p95"),
    ]);
    for summary in summaries {
        let stats = &summary.stats;
        let health = health_class(stats.error_rate());
        let node = NodeKey::service(summary.name.clone());
        let mut row = vec![
            Cell::link(&summary.name, links::node(&node)),
            Cell::text(summary.placement.namespace.clone().unwrap_or_default()),
        ];
        row.extend(red_cells(stats, range.window_secs, Some(&node)));
        row.extend([
            Cell::pill(health, health),
            trend_cell(trends.get(&summary.name)),
        ]);
        section.rows.push(row);
    }
    section
}

/// Requests per bucket and whether the bucket had errors, per service, oldest first.
async fn service_trends(
    state: &WebState,
    range: GraphRange,
) -> Result<HashMap<String, Vec<(f64, bool)>>, PageError> {
    let buckets = SeriesBuckets::new(range.minutes, SPARK_BUCKETS);
    let num_buckets = buckets.len();
    let mut trends: HashMap<String, Vec<(f64, bool)>> = HashMap::new();
    let now = now_unix_nano();
    for (bucket, services) in state
        .query
        .service_series(&buckets, None)
        .await?
        .into_iter()
        .enumerate()
    {
        let secs = buckets.covered_secs(bucket, now);
        for (service, stats) in services {
            let series = trends
                .entry(service)
                .or_insert_with(|| vec![(0.0, false); num_buckets]);
            series[bucket] = (stats.num_requests as f64 / secs, stats.num_errors > 0);
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
        let mut row = vec![
            Cell::link(&key.source.name, links::node(&key.source)),
            Cell::link(&key.target.name, links::node(&key.target)),
            Cell::link(key.kind.as_str(), links::edge(key)),
        ];
        let figures = EdgeFigures::of(stats, view.window_secs).listed();
        row.extend(
            figures
                .into_iter()
                .filter(|(figure, _)| *figure != Figure::ServerP95)
                .map(|(figure, text)| Cell::number(text).marked(Mark::edge(figure, key))),
        );
        row.push(Cell::text(breaker));
        section.rows.push(row);
    }
}

const EDGE_COLUMNS: [(&str, bool); 8] = [
    ("From", false),
    ("To", false),
    ("Kind", false),
    ("Rate", true),
    ("Errors", true),
    ("Refused by breaker", true),
    ("Client p95", true),
    ("Breaker", false),
];

pub async fn service(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let name = path.into_inner();
    let (range, _) = graph_query(
        &state.query,
        &without_empty(request.query_string()),
        RANGE_PARAMS,
    )
    .await?;
    let node = NodeKey::service(name.clone());
    // The map, the service's figures, its charts (rollups) and its error traces (stored spans)
    // are read side by side, the stored spans first so that their read starts at once.
    let summaries =
        async { Ok::<_, PageError>(state.query.services(range, Some(name.clone())).await?) };
    let whole_map = GraphFilter::default();
    let (error_traces, (view, overlay), summaries, charts) = tokio::try_join!(
        recent_traces(&state, &name, true),
        placed_view(&state, range, &whole_map),
        summaries,
        charts::service_charts(&state, range, &name),
    )?;
    if summaries.is_empty() && !view.nodes.iter().any(|(key, _)| *key == node) {
        let error = ApiError::NotFound(format!("Service {name:?} has no data in this range."));
        return Err(PageError::empty_range(error, request.path()));
    }
    let mut page = TablePage::new(
        Frame::new(format!("{name} · service"), "Services").ranged(
            request.path(),
            request.query_string(),
            true,
        ),
        format!("Service {name}"),
        "",
    );
    page.related = vec![
        ("On the map".to_owned(), links::map_focus(&node.id())),
        ("Traces".to_owned(), links::trace_search(&name, None)),
    ];
    page.sections.push(charts);
    if let Some(summary) = summaries.first() {
        page.intro = source_note(summary).to_owned();
        page.cards = service_cards(&summary.stats, range.window_secs, &node);
        page.sections
            .push(operations_section(summary, range.window_secs));
        page.sections
            .push(versions_section(&summary.stats, range.window_secs));
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
    page.sections.extend([
        callers,
        callees,
        blast_section(&view, &node),
        breakers_section(&overlay, &name),
        lag_section(&overlay, &node),
    ]);
    let mut errors = Section::new(
        "Recent error traces",
        "No error traces in the last hour.",
        &TRACE_COLUMNS,
    );
    trace_rows(&mut errors, &error_traces, false);
    page.sections.push(errors);
    Ok(respond(&page))
}

/// A service's operations with their RED figures, each linking to its traces.
fn operations_section(summary: &crate::query::ServiceSummary, window_secs: f64) -> Section {
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
        let traces = links::trace_search(&summary.name, Some(operation));
        let mut row = vec![Cell::link(operation, traces)];
        row.extend(red_cells(stats, window_secs, None));
        operations.rows.push(row);
    }
    operations
}

/// The service's `service.version`s in the range with their RED side by side (a deploy's two
/// versions, a canary beside the rest).
fn versions_section(stats: &OperationStats, window_secs: f64) -> Section {
    let mut versions = Section::new(
        "Versions",
        "No span of this service named its service.version in this range.",
        &[
            ("Version", false),
            ("Rate", true),
            ("Errors", true),
            ("p50", true),
            ("p95", true),
            ("p99", true),
        ],
    );
    for version in &stats.versions {
        let red = OperationStats {
            num_requests: version.num_requests,
            num_errors: version.num_errors,
            latency: version.latency.clone(),
            ..OperationStats::default()
        };
        let mut row = vec![Cell::text(&version.version)];
        row.extend(red_cells(&red, window_secs, None));
        versions.rows.push(row);
    }
    versions
}

/// Who is hurt if `node` fails.
fn blast_section(view: &analysis::GraphView, node: &NodeKey) -> Section {
    let mut blast = Section::new(
        "Blast radius: who is hurt if it fails",
        "Nothing depends on this service.",
        &[
            ("Affected", false),
            ("Hops", true),
            ("Requests into the failure", true),
        ],
    );
    if let Some(radius) = analysis::blast_radius(view, node) {
        blast.title = format!(
            "Blast radius: {} nodes, {:.1} % of traffic",
            radius.num_affected,
            radius.affected_traffic_share * 100.0
        );
        for affected in &radius.affected {
            blast.rows.push(vec![
                Cell::text(shown(&affected.node)),
                Cell::number(affected.num_hops.to_string()),
                Cell::number(rate_text(affected.requests_per_s)),
            ]);
        }
    }
    blast
}

/// The breakers `service` reports and what they guard.
fn breakers_section(overlay: &SignalOverlay, service: &str) -> Section {
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
    for (breaker, edge) in overlay
        .breakers
        .iter()
        .filter(|(b, _)| b.service == service)
    {
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
    breakers
}

/// Lag of the topics `node` consumes.
fn lag_section(overlay: &SignalOverlay, node: &NodeKey) -> Section {
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
            .filter(|(_, edge)| edge.as_ref().is_some_and(|e| e.target == *node)),
    );
    lag
}

/// Rate, errors, p50, p95 and p99 of a service (marked as `node_opt`'s) or an operation.
fn red_cells(stats: &OperationStats, window_secs: f64, node_opt: Option<&NodeKey>) -> [Cell; 5] {
    ServiceFigures::of(stats, window_secs)
        .listed()
        .map(|(figure, text)| {
            let cell = Cell::number(text);
            match node_opt {
                Some(node) => cell.marked(Mark::node(figure, node)),
                None => cell,
            }
        })
}

/// A service page's headline: the service's rate, errors and latencies.
fn service_cards(stats: &OperationStats, window_secs: f64, node: &NodeKey) -> Vec<Card> {
    ServiceFigures::of(stats, window_secs)
        .listed()
        .into_iter()
        .map(|(figure, text)| Card::marked(figure.label(), text, Mark::node(figure, node)))
        .chain(sampling_card(stats.observed_share()))
        .collect()
}

/// "≈ estimated from 25 % of traces" beside counts built from sampled traces.
pub(super) fn sampling_card(observed_share: Option<f64>) -> Option<Card> {
    format::sampled_note(observed_share).map(|note| Card::new("sampled", note))
}

/// What the service page says about where its figures come from (`query::metric_red`).
fn source_note(summary: &ServiceSummary) -> &'static str {
    match (summary.source, summary.metrics_disagree) {
        (FigureSource::Metrics, _) => {
            "From metrics: this service sends no traces; its figures come from its duration histograms."
        }
        (FigureSource::TracesAndMetrics, true) => {
            "Traces ≠ metrics: its duration histograms count differently from its traces beyond the tolerance; the API shows both."
        }
        _ => "",
    }
}
