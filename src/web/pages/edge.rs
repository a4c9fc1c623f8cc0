//! One edge's page: its calls by kind, both sides' latencies, refused calls, its breaker and
//! lag (and a topic's publish → consume latency), its charts over the range, and its
//! drill-down from one read of its stored traces (`QueryService::edge_drilldown`): its calls
//! by operation and status (`edge_split`) and the traces that cross it.

use super::*;
use crate::model::figures;
use crate::model::graph::EdgeStats;

pub async fn edge(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (source, target) = path.into_inner();
    let (range, _) = graph_query(
        &state.query,
        &without_empty(request.query_string()),
        RANGE_PARAMS,
    )
    .await?;
    let (source, target) = (node_of_path(&source)?, node_of_path(&target)?);
    // The map, the charts (rollups) and the drill-down (stored traces) are read side by side,
    // the stored traces first so that their read starts at once.
    let drilldown = async {
        let bounds = range.minutes.unix_nano_bounds();
        let (source, target) = (source.clone(), target.clone());
        Ok::<_, PageError>(state.query.edge_drilldown(source, target, bounds).await?)
    };
    let (drilldown, (edges, overlay, window_secs), charts) = tokio::try_join!(
        drilldown,
        edges_between(&state, range, &source, &target),
        charts::edge_charts(&state, range, &source, &target),
    )?;
    let edges: Vec<&(EdgeKey, EdgeStats)> = edges.iter().collect();
    if edges.is_empty() {
        let error = ApiError::NotFound(format!(
            "No calls from {} to {} in this range.",
            source.name, target.name
        ));
        return Err(PageError::empty_range(error, request.path()));
    }
    let mut page = TablePage::new(
        Frame::new(format!("{} → {}", source.name, target.name), "Map").ranged(
            request.path(),
            request.query_string(),
            true,
        ),
        format!("{} → {}", source.name, target.name),
        "Client-side latency is what the caller waited; server-side is what the callee spent. The gap is network, queues and retries. Calls refused by the caller's open breaker never reached the callee: they are counted apart, in neither the errors nor the latencies.",
    );
    let (cards, section) = edge_calls(&edges, &overlay, window_secs);
    page.cards = cards;
    page.sections.push(section);
    page.sections.push(charts);
    page.sections
        .push(operations_section(&edges, &target, window_secs));
    page.sections
        .push(super::edge_split::section_of(&drilldown.split, &target));
    // Stored traces hold the calls of an edge with an instrumented side.
    if [&source, &target]
        .iter()
        .any(|node| node.kind == NodeKind::Service)
    {
        let mut examples = Section::new(
            format!(
                "Traces through {} → {}: failed first, then the slowest",
                source.name, target.name
            ),
            "No stored trace in this range crosses this edge.",
            &TRACE_COLUMNS,
        );
        trace_rows(&mut examples, &drilldown.crossing, false);
        page.sections.push(examples);
    }
    Ok(respond(&page))
}

/// The edges from `source` to `target` (one per kind of call), the breakers and lag placed on
/// the whole map (read without operation splits), and the range's seconds. Their operation
/// splits are read for them alone: on a large mesh, the whole map's splits are most of a read.
async fn edges_between(
    state: &WebState,
    range: GraphRange,
    source: &NodeKey,
    target: &NodeKey,
) -> Result<(Vec<(EdgeKey, EdgeStats)>, SignalOverlay, f64), PageError> {
    let whole_map = GraphFilter::default();
    let splits = async {
        let splits = state
            .query
            .edge_operation_splits(range.minutes, source, target);
        Ok::<_, PageError>(splits.await?)
    };
    let ((view, overlay), mut splits) =
        tokio::try_join!(placed_view(state, range, &whole_map), splits)?;
    let edges = view
        .edges
        .into_iter()
        .filter(|(key, _)| key.source == *source && key.target == *target)
        .map(|(key, stats)| {
            let operations = splits.remove(&key).unwrap_or_default();
            (
                key,
                EdgeStats {
                    operations,
                    ..stats
                },
            )
        })
        .collect();
    Ok((edges, overlay, view.window_secs))
}

/// The edge's calls by the caller's operation and the operation called, from the rollups:
/// which endpoint got slower or started failing. Calls to a service that left no span there
/// (refused by the caller's breaker, or never answered) are named as such: their split counts
/// them as failed.
fn operations_section(
    edges: &[&(EdgeKey, EdgeStats)],
    target: &NodeKey,
    window_secs: f64,
) -> Section {
    let mut section = Section::new(
        "By operation: from the caller's to the callee's",
        "No call on this edge named its operations in this range.",
        &[
            ("Caller's operation", false),
            ("Operation called", false),
            ("Rate", true),
            ("Errors", true),
            ("p50", true),
            ("p95", true),
            ("p99", true),
        ],
    );
    let mut merged = EdgeStats::default();
    for (_, stats) in edges {
        for split in &stats.operations {
            merged
                .split_mut(&split.caller, &split.callee)
                .0
                .merge(split);
        }
    }
    merged
        .operations
        .sort_by_key(|split| std::cmp::Reverse(split.num_requests));
    for split in &merged.operations {
        let red = crate::model::graph::OperationStats {
            num_requests: split.num_requests,
            num_errors: split.num_errors,
            latency: split.latency.clone(),
            ..Default::default()
        };
        let mut row = vec![
            Cell::text(or_unknown(&split.caller)),
            Cell::text(match split.callee.as_str() {
                "" if target.kind == NodeKind::Service => NO_CALLEE_SPAN,
                callee => or_unknown(callee),
            }),
        ];
        row.extend(
            ServiceFigures::of(&red, window_secs)
                .listed()
                .map(|(_, text)| Cell::number(text)),
        );
        section.rows.push(row);
    }
    section
}

/// The operation called, for calls to a service that left no span there.
const NO_CALLEE_SPAN: &str = "none: no span from the callee (refused or unanswered)";

fn or_unknown(operation: &str) -> &str {
    if operation.is_empty() {
        format::NONE
    } else {
        operation
    }
}

/// A node id from a page path, or a 400 that says what one looks like.
fn node_of_path(id: &str) -> Result<NodeKey, ApiError> {
    NodeKey::parse_id(id).ok_or_else(|| {
        ApiError::BadRequest(format!("{id:?} is not a node id such as service:checkout"))
    })
}

/// The headline cards and the calls table of an edge page (one row per kind of call).
fn edge_calls(
    edges: &[&(EdgeKey, EdgeStats)],
    overlay: &SignalOverlay,
    window_secs: f64,
) -> (Vec<Card>, Section) {
    let mut cards = Vec::new();
    let mut section = Section::new(
        "Calls",
        "",
        &[
            ("Kind", false),
            ("Requests", true),
            ("Failed", true),
            ("Refused by breaker", true),
            ("Retries", true),
            ("Unpaired", true),
            ("Client p50 / p95 / p99", true),
            ("Server p50 / p95 / p99", true),
            ("Calls per trace", true),
        ],
    );
    let show_kind = edges.len() > 1;
    for (key, stats) in edges {
        cards.extend(edge_cards(key, stats, window_secs, show_kind));
        cards.extend(super::services::sampling_card(stats.observed_share()));
        cards.extend(publish_consume_cards(key, stats));
        section.rows.push(edge_detail_row(key, stats));
        if let Some(breaker) = overlay.edge_breaker.get(key) {
            cards.push(Card::new(
                "breaker ".to_owned() + &breaker.name,
                breaker.state.as_str(),
            ));
        }
        if let Some(lag) = overlay.edge_lag.get(key) {
            cards.push(Card::new(
                "consumer lag",
                format!("{:.0} {}", lag.lag, trend_arrow(lag.trend)),
            ));
        }
    }
    (cards, section)
}

/// An edge page's headline for one kind of call: rate, error rate, refused calls and both
/// sides' p95 (each labelled with the kind when the page has several).
fn edge_cards(key: &EdgeKey, stats: &EdgeStats, window_secs: f64, show_kind: bool) -> Vec<Card> {
    EdgeFigures::of(stats, window_secs)
        .listed()
        .into_iter()
        .map(|(figure, text)| {
            let label = if show_kind {
                format!("{} {}", key.kind.as_str(), figure.label())
            } else {
                figure.label().to_owned()
            };
            Card::marked(label, text, Mark::edge(figure, key))
        })
        .collect()
}

/// A topic → consumer edge's publish → consume latency: from a message's publish to its
/// consumer's start, p50 and p95 (none on other edges).
fn publish_consume_cards(key: &EdgeKey, stats: &EdgeStats) -> Vec<Card> {
    if key.source.kind != NodeKind::Topic {
        return Vec::new();
    }
    [
        (Figure::PublishConsumeP50, 0.5),
        (Figure::PublishConsumeP95, 0.95),
    ]
    .into_iter()
    .map(|(figure, quantile)| {
        Card::marked(
            figure.label(),
            quantile_text(&stats.publish_consume_latency, quantile),
            Mark::edge(figure, key),
        )
    })
    .collect()
}

/// The counts and percentiles behind an edge page's headline.
fn edge_detail_row(key: &EdgeKey, stats: &EdgeStats) -> Vec<Cell> {
    let triple = |sketch: &crate::model::LatencySketch| {
        format!(
            "{} / {} / {}",
            quantile_text(sketch, 0.5),
            quantile_text(sketch, 0.95),
            quantile_text(sketch, 0.99)
        )
    };
    vec![
        Cell::text(key.kind.as_str()),
        Cell::number(format::counted_text(
            stats.num_requests,
            stats.num_observed(),
        )),
        Cell::number(stats.num_failed().to_string()),
        Cell::number(stats.num_refused().to_string()),
        Cell::number(stats.num_retries.to_string()),
        Cell::number((stats.num_client_only + stats.num_server_only).to_string()),
        Cell::number(triple(&stats.client_latency)),
        Cell::number(triple(&stats.server_latency)),
        Cell::number(
            figures::share(stats.num_requests, stats.num_traces)
                .map_or_else(|| format::NONE.to_owned(), |calls| format!("{calls:.1}")),
        ),
    ]
}
