//! JSON, Graphviz DOT and Mermaid renderings of a graph view for `/api/v1/graph*`.
//! Names are attacker-controlled (they come from span data): DOT and Mermaid output escapes
//! them, and Mermaid node ids are generated, never taken from names. Every figure is the one
//! `model::figures` defines, so the API says what the pages say.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::graph::analysis::GraphView;
use crate::model::LatencySketch;
use crate::model::figures::{NodeTraffic, per_second, share};
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodePlacement, OperationStats};
use crate::query::{FigureSource, NodeFigures, SignalOverlay};
use crate::web::format::EdgeFigures;
use crate::web::signals_json;

/// A node of `/api/v1/graph` with its figures over the view's window (`traffic`: what it
/// served, see `model::figures::node_traffic`).
pub fn node(
    key: &NodeKey,
    placement: &NodePlacement,
    overlay: &SignalOverlay,
    traffic: NodeTraffic,
    window_secs: f64,
) -> Value {
    let breakers: Vec<Value> = overlay
        .node_breakers
        .get(key)
        .into_iter()
        .flatten()
        .map(signals_json::breaker_badge)
        .collect();
    let source = if overlay.metrics.nodes.contains(key) {
        FigureSource::Metrics
    } else {
        FigureSource::Traces
    };
    json!({
        "id": key.id(),
        "name": key.name,
        "kind": key.kind.as_str(),
        "derived_from": source.as_str(),
        "namespace": placement.namespace,
        "environment": placement.environment,
        "breakers": breakers,
        "requests": traffic.num_requests,
        "observed_requests": traffic.num_requests.saturating_sub(traffic.num_unobserved),
        "observed_share": traffic.observed_share(),
        "errors": traffic.num_errors,
        "error_rate": traffic.error_rate(),
        "rate_per_s": per_second(traffic.num_requests, window_secs),
    })
}

/// One edge of `/api/v1/graph`, serialised straight from the statistics (a `json!` map per
/// edge cost 12 µs an edge on a 2,000-edge map).
#[derive(Debug, Serialize)]
pub struct EdgeJson {
    source: String,
    target: String,
    kind: &'static str,
    /// Every call on the edge, refused ones included: an estimate when sampled.
    requests: u64,
    /// The calls received, each sampled one once (`requests` when nothing was sampled).
    observed_requests: u64,
    /// `observed_requests / requests` when calls were inferred from sampling, else null.
    observed_share: Option<f64>,
    /// `requests` less the refused ones: the calls that went out to the target.
    attempted: u64,
    /// Attempted calls that failed.
    errors: u64,
    /// `errors / attempted`.
    error_rate: Option<f64>,
    /// `requests` per second.
    rate_per_s: f64,
    retries: u64,
    /// Calls refused by the caller's open breaker.
    short_circuited: u64,
    client_only: u64,
    server_only: u64,
    client_p50_ms: Option<f64>,
    client_p95_ms: Option<f64>,
    client_p99_ms: Option<f64>,
    server_p50_ms: Option<f64>,
    server_p95_ms: Option<f64>,
    server_p99_ms: Option<f64>,
    publish_consume_p95_ms: Option<f64>,
    calls_per_trace: Option<f64>,
    max_calls_per_trace: u64,
    kafka_lag: Option<Value>,
    breaker: Option<Value>,
    /// `traces`, `metrics` (only duration histograms describe it: the figures above are
    /// theirs) or `traces_and_metrics` (the figures above are the traces').
    derived_from: &'static str,
    /// With both sources: the histograms' figures and whether they disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Value>,
}

/// Requests, errors, rate and latency of one set of RED figures (a service, an operation,
/// what metrics say of an edge).
pub fn red(stats: &OperationStats, window_secs: f64) -> Value {
    json!({
        "requests": stats.num_requests,
        "observed_requests": stats.num_observed(),
        "observed_share": stats.observed_share(),
        "errors": stats.num_errors,
        "error_rate": stats.error_rate(),
        "rate_per_s": per_second(stats.num_requests, window_secs),
        "p50_ms": quantile_ms(&stats.latency, 0.5),
        "p95_ms": quantile_ms(&stats.latency, 0.95),
        "p99_ms": quantile_ms(&stats.latency, 0.99),
    })
}

/// An edge's source and, when traces and metrics both describe it, the metrics' figures.
fn edge_source(
    key: &EdgeKey,
    window_secs: f64,
    overlay: &SignalOverlay,
) -> (&'static str, Option<Value>) {
    match overlay.metrics.edges.get(key) {
        None => (FigureSource::Traces.as_str(), None),
        Some(figures) if figures.source == FigureSource::Metrics => (figures.source.as_str(), None),
        Some(figures) => {
            let mut body = red(&figures.stats, window_secs);
            body["disagrees"] = json!(figures.disagrees);
            (figures.source.as_str(), Some(body))
        }
    }
}

fn quantile_ms(sketch: &LatencySketch, quantile: f64) -> Option<f64> {
    sketch.quantile_nanos(quantile).map(|nanos| nanos / 1e6)
}

pub fn edge_json(
    key: &EdgeKey,
    stats: &EdgeStats,
    window_secs: f64,
    overlay: &SignalOverlay,
) -> EdgeJson {
    let (derived_from, metrics) = edge_source(key, window_secs, overlay);
    EdgeJson {
        derived_from,
        metrics,
        source: key.source.id(),
        target: key.target.id(),
        kind: key.kind.as_str(),
        requests: stats.num_requests,
        observed_requests: stats.num_observed(),
        observed_share: stats.observed_share(),
        attempted: stats.num_attempted(),
        errors: stats.num_failed(),
        error_rate: stats.error_rate(),
        rate_per_s: per_second(stats.num_requests, window_secs),
        retries: stats.num_retries,
        short_circuited: stats.num_refused(),
        client_only: stats.num_client_only,
        server_only: stats.num_server_only,
        client_p50_ms: quantile_ms(&stats.client_latency, 0.5),
        client_p95_ms: quantile_ms(&stats.client_latency, 0.95),
        client_p99_ms: quantile_ms(&stats.client_latency, 0.99),
        server_p50_ms: quantile_ms(&stats.server_latency, 0.5),
        server_p95_ms: quantile_ms(&stats.server_latency, 0.95),
        server_p99_ms: quantile_ms(&stats.server_latency, 0.99),
        publish_consume_p95_ms: quantile_ms(&stats.publish_consume_latency, 0.95),
        calls_per_trace: share(stats.num_requests, stats.num_traces),
        max_calls_per_trace: stats.max_calls_per_trace,
        kafka_lag: overlay.edge_lag.get(key).map(signals_json::edge_lag),
        breaker: overlay
            .edge_breaker
            .get(key)
            .map(signals_json::breaker_badge),
    }
}

pub fn edge(key: &EdgeKey, stats: &EdgeStats, window_secs: f64, overlay: &SignalOverlay) -> Value {
    serde_json::to_value(edge_json(key, stats, window_secs, overlay)).unwrap_or(Value::Null)
}

/// The body of `/api/v1/graph`.
#[derive(Debug, Serialize)]
pub struct GraphJson {
    window_secs: f64,
    nodes: Vec<Value>,
    edges: Vec<EdgeJson>,
}

pub fn graph(view: &GraphView, overlay: &SignalOverlay, figures: &NodeFigures) -> GraphJson {
    GraphJson {
        window_secs: view.window_secs,
        nodes: view
            .nodes
            .iter()
            .map(|(key, placement)| {
                let served = figures.traffic.get(key).copied().unwrap_or_default();
                let mut json = node(key, placement, overlay, served, view.window_secs);
                json["versions"] = json!(figures.versions.get(key).cloned().unwrap_or_default());
                json
            })
            .collect(),
        edges: view
            .edges
            .iter()
            .map(|(key, stats)| edge_json(key, stats, view.window_secs, overlay))
            .collect(),
    }
}

/// A DOT string literal: quotes, backslashes and line breaks escaped.
fn dot_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            other if other.is_control() => out.push(' '),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

fn edge_label(
    key: &EdgeKey,
    stats: &EdgeStats,
    window_secs: f64,
    overlay: &SignalOverlay,
) -> String {
    let figures = EdgeFigures::of(stats, window_secs);
    let mut label = figures.rate;
    if stats.client_latency.count() > 0 {
        let _ = write!(label, " p95 {}", figures.client_p95);
    }
    if stats.num_failed() > 0 {
        let _ = write!(label, " err {}", figures.error_rate);
    }
    if stats.num_refused() > 0 {
        let _ = write!(label, " refused {}", figures.refused);
    }
    if let Some(lag) = overlay.edge_lag.get(key) {
        let _ = write!(label, " lag {:.0}", lag.lag);
    }
    if let Some(breaker) = overlay.edge_breaker.get(key) {
        let _ = write!(label, " breaker {}", breaker.state.as_str());
    }
    label
}

pub fn dot(view: &GraphView, overlay: &SignalOverlay) -> String {
    let mut out =
        String::from("digraph cartograph {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n");
    for (key, _) in &view.nodes {
        let shape = match key.kind {
            crate::model::graph::NodeKind::Service => "box",
            crate::model::graph::NodeKind::Database => "cylinder",
            crate::model::graph::NodeKind::Topic => "cds",
            crate::model::graph::NodeKind::External => "doubleoctagon",
            crate::model::graph::NodeKind::Client => "ellipse",
        };
        let _ = writeln!(
            out,
            "  {} [label={}, shape={shape}];",
            dot_quoted(&key.id()),
            dot_quoted(&key.name)
        );
    }
    for (key, stats) in &view.edges {
        let label = format!(
            "{} {}",
            key.kind.as_str(),
            edge_label(key, stats, view.window_secs, overlay)
        );
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            dot_quoted(&key.source.id()),
            dot_quoted(&key.target.id()),
            dot_quoted(&label)
        );
    }
    out.push_str("}\n");
    out
}

/// A Mermaid label: only characters that cannot end the label or start markup survive as is.
fn mermaid_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '`' => out.push_str("#96;"),
            other if other.is_control() => out.push(' '),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

pub fn mermaid(view: &GraphView, overlay: &SignalOverlay) -> String {
    let mut out = String::from("flowchart LR\n");
    let index_of = |key: &NodeKey| {
        view.nodes
            .iter()
            .position(|(candidate, _)| candidate == key)
    };
    for (number, (key, _)) in view.nodes.iter().enumerate() {
        let label = mermaid_label(&key.name);
        let shaped = match key.kind {
            crate::model::graph::NodeKind::Service => format!("[{label}]"),
            crate::model::graph::NodeKind::Database => format!("[({label})]"),
            crate::model::graph::NodeKind::Topic => format!(">{label}]"),
            crate::model::graph::NodeKind::External => format!("{{{{{label}}}}}"),
            crate::model::graph::NodeKind::Client => format!("(({label}))"),
        };
        let _ = writeln!(out, "  n{number}{shaped}");
    }
    for (key, stats) in &view.edges {
        let (Some(source), Some(target)) = (index_of(&key.source), index_of(&key.target)) else {
            continue;
        };
        let label = mermaid_label(&format!(
            "{} {}",
            key.kind.as_str(),
            edge_label(key, stats, view.window_secs, overlay)
        ));
        let _ = writeln!(out, "  n{source} -->|{label}| n{target}");
    }
    out
}
