//! The map page: controls, the server-rendered SVG, the first-start instructions.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::signals::BreakerState;
use crate::web::map::groups;
use crate::web::params::Params;

/// Maps with more edges than this draw no anomaly badges (see [`anomaly_badges`]).
const MAX_EDGES_WITH_ANOMALY_BADGES: usize = 300;

/// The map's parameters: the graph's, and what to compare with (see `map_compare`).
const MAP_PARAMS: &[&str] = &[
    "window",
    "from",
    "to",
    "namespace",
    "focus",
    "depth",
    "compare",
    "deploy",
];

/// The map form sends its time-range select always; a custom from/to replaces it.
fn custom_range_wins(query_string: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    let is_custom = params::names_custom_range(&pairs);
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(key, _)| !(is_custom && key == "window"))
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// The map with `expand` added to its query.
fn expand_href(query_string: &str, expand: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query_string).unwrap_or_default();
    pairs.push(("expand".to_owned(), expand.to_owned()));
    format!(
        "/?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// How each group node of `folded` is drawn: its namespace and size, a click opening it.
fn group_nodes(
    folded: &groups::Folded,
    expand: &groups::Expand,
    query_string: &str,
) -> HashMap<NodeKey, groups::GroupNode> {
    folded
        .groups
        .iter()
        .map(|(key, group)| {
            let node = if group.is_rest {
                groups::GroupNode {
                    label: format!("{} quieter nodes in {}", group.num_members, group.namespace),
                    href: expand_href(query_string, "all"),
                }
            } else {
                groups::GroupNode {
                    label: format!("{} · {} nodes", group.namespace, group.num_members),
                    href: expand_href(query_string, &expand.with(&group.namespace)),
                }
            };
            (key.clone(), node)
        })
        .collect()
}

/// Nodes with a badge on them or their edges: an open or half-open breaker, lag, a firing
/// alert. A folded map draws them first.
fn marked_nodes(
    view: &analysis::GraphView,
    overlay: &SignalOverlay,
    alerts: &svg::FiringAlerts,
) -> HashSet<NodeKey> {
    let mut marked = HashSet::new();
    for (edge, breaker) in &overlay.edge_breaker {
        if breaker.state != BreakerState::Closed {
            marked.extend([edge.source.clone(), edge.target.clone()]);
        }
    }
    marked.extend(overlay.node_breakers.keys().cloned());
    for edge in overlay.edge_lag.keys() {
        marked.extend([edge.source.clone(), edge.target.clone()]);
    }
    let alerting: HashSet<&String> = alerts
        .nodes
        .keys()
        .chain(
            alerts
                .edges
                .keys()
                .flat_map(|(source, target)| [source, target]),
        )
        .collect();
    marked.extend(
        view.nodes
            .iter()
            .map(|(key, _)| key)
            .filter(|key| alerting.contains(&key.id()))
            .cloned(),
    );
    marked
}

/// What the folded map says about what it folded.
fn fold_note(folded: &groups::Folded, num_nodes: usize) -> String {
    let (rest, namespaces): (Vec<&groups::Group>, Vec<&groups::Group>) =
        folded.groups.values().partition(|group| group.is_rest);
    let mut parts = Vec::new();
    if !namespaces.is_empty() {
        parts.push(format!(
            "{} namespaces are folded into one node each (click one to open it)",
            namespaces.len()
        ));
    }
    if !rest.is_empty() {
        let quieter: usize = rest.iter().map(|group| group.num_members).sum();
        let drawn = folded.view.nodes.len() - folded.groups.len();
        parts.push(format!(
            "the {drawn} that need attention first are drawn (breakers, lag, alerts, then health, errors and calls); {quieter} quieter ones are folded"
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{num_nodes} nodes: {}.", parts.join("; "))
    }
}

/// The latency targets in words, for the legend.
fn targets_text(targets: crate::model::figures::LatencyTargets) -> String {
    format!(
        "calls {}, publish {}, processing {}",
        millis_text(targets.sync_p95_ms * 1e6),
        millis_text(targets.publish_p95_ms * 1e6),
        millis_text(targets.processing_p95_ms * 1e6)
    )
}

/// The map's `expand` parameter (which folded namespaces to open, see [`groups::fold`]) and
/// the query without it.
fn without_expand(query_string: &str) -> (groups::Expand, String) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    // `mark` (what an audit finding concerns) is drawn by the page's script, not the server.
    let (expand, rest): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .filter(|(key, _)| key != "mark")
        .partition(|(key, _)| key == "expand");
    let value = expand
        .into_iter()
        .map(|(_, value)| value)
        .collect::<Vec<_>>()
        .join(",");
    (
        groups::Expand::parse(&value),
        serde_urlencoded::to_string(rest).unwrap_or_default(),
    )
}

/// The map's Focus box takes a plain service name too: `orders` means `service:orders` (node ids
/// of other kinds name their kind; the API stays strict).
fn forgiving_focus(query_string: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    let forgiven: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(key, value)| {
            if key == "focus" && NodeKey::parse_id(&value).is_none() {
                (key, NodeKey::service(value.trim().to_owned()).id())
            } else {
                (key, value)
            }
        })
        .collect();
    serde_urlencoded::to_string(forgiven).unwrap_or_default()
}

/// What firing alerts concern (none when alerting cannot be read: the map still draws).
async fn firing_alerts(state: &WebState) -> svg::FiringAlerts {
    let alerts = state.alerting.alerts().await.unwrap_or_default();
    svg::FiringAlerts::from_labels(
        alerts
            .iter()
            .filter(|alert| alert.status == "firing")
            .map(|alert| &alert.labels),
    )
}

/// The map's query as the page reads it: `expand` apart, a custom range over `window`, a
/// plain name in Focus taken as a service.
fn map_query(raw: &str) -> (groups::Expand, String) {
    let (expand, query_string) = without_expand(&without_empty(raw));
    (expand, forgiving_focus(&custom_range_wins(&query_string)))
}

/// Badges of the edges departing from their baseline over ranges up to an hour (none when
/// the read fails: the map still draws).
pub(super) async fn anomaly_badges(
    state: &WebState,
    range: GraphRange,
    num_edges: usize,
) -> HashMap<EdgeKey, String> {
    // The read takes the range a day and a week before from the store on every render: small
    // maps only (a large mesh's would cost more than drawing it; the API lists them all).
    if range.minutes.num_minutes() > crate::query::MAX_ANOMALY_WINDOW_MINUTES
        || num_edges > MAX_EDGES_WITH_ANOMALY_BADGES
    {
        return HashMap::new();
    }
    match state.query.anomalies(range).await {
        Ok(found) => found
            .by_edge()
            .into_iter()
            .map(|(key, anomaly)| (key.clone(), crate::web::format::anomaly_badge(anomaly)))
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "anomalies not read for the map");
            HashMap::new()
        }
    }
}

/// The map's Audit select, loaded after the map (the audit of a large map costs as much as
/// drawing a part of it, and the map refreshes without it).
pub async fn map_findings(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (_, query_string) = map_query(request.query_string());
    // The audit of the range's map, whatever it is compared with.
    let (range, filter) = graph_query(&state.query, &query_string, MAP_PARAMS).await?;
    let (view, overlay) = placed_view(&state, range, &filter).await?;
    let findings = super::audit::map_choices(
        &state.query.audit_of(&view, &overlay).1,
        request.query_string(),
    );
    Ok(respond(&MapFindings { findings }))
}

pub async fn map(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (expand, query_string) = map_query(request.query_string());
    let (range, filter) = graph_query(&state.query, &query_string, MAP_PARAMS).await?;
    let params = Params::parse(&query_string, MAP_PARAMS)?;
    let map_compare::Drawn {
        view,
        overlay,
        traffic,
        comparison,
    } = map_compare::drawn(&state, range, &filter, &params).await?;
    let deploys = map_compare::deploy_strip(&state, range, &query_string).await?;
    let (num_nodes, num_edges) = (view.nodes.len(), view.edges.len());
    let mut node_ids: Vec<String> = traffic.keys().map(NodeKey::id).collect();
    node_ids.sort();
    let expand = if filter.focus.is_some() {
        groups::Expand::All
    } else {
        expand
    };
    let alerts = firing_alerts(&state).await;
    let marked = marked_nodes(&view, &overlay, &alerts);
    let folded = groups::fold(view, traffic, &expand, &marked);
    let group_nodes = group_nodes(&folded, &expand, &query_string);
    let fold_note = fold_note(&folded, num_nodes);
    let (view, traffic) = (folded.view, folded.traffic);
    let parsed: Vec<(String, String)> =
        serde_urlencoded::from_str(&query_string).unwrap_or_default();
    let text = |name: &str| params.text(name).unwrap_or_default();
    let page = MapPage {
        frame: Frame::new("Map", "Map").ranged(request.path(), &query_string, false),
        windows: params::window_names(),
        window: if params::names_custom_range(&parsed) {
            String::new()
        } else {
            params
                .text("window")
                .unwrap_or_else(|| params::DEFAULT_WINDOW.to_owned())
        },
        from: text("from"),
        to: text("to"),
        namespace: text("namespace"),
        focus: text("focus"),
        depth: filter.depth,
        summary: format!("{num_nodes} nodes, {num_edges} edges"),
        fold_note,
        findings_url: format!("/map/findings?{}", request.query_string()),
        show_all_href: expand_href(&query_string, "all"),
        is_empty: view.edges.is_empty(),
        has_filter: filter.namespace.is_some() || filter.focus.is_some(),
        grpc_addr: state.otlp_grpc_addr.clone(),
        http_addr: state.otlp_http_addr.clone(),
        refresh_url: match request.query_string() {
            "" => "/".to_owned(),
            raw => format!("/?{raw}"),
        },
        targets: targets_text(state.query.targets),
        compare: text("compare"),
        compare_choices: map_compare::COMPARE_CHOICES.to_vec(),
        deploy: map_compare::deploy_compared(&params),
        deploys,
        diff_note: comparison
            .as_ref()
            .map(|compared| compared.note.clone())
            .unwrap_or_default(),
        node_ids,
        svg: svg::render(
            &view,
            &svg::MapMarks {
                overlay: &overlay,
                traffic: &traffic,
                alerts: &alerts,
                targets: state.query.targets,
                groups: &group_nodes,
                changes: comparison.as_ref().map(|compared| &compared.changes),
            },
            &params::range_query(&query_string),
        ),
    };
    Ok(respond(&page))
}
