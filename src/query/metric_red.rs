//! Services and edges from duration histograms ([`crate::metric_red`]) placed on the map of a
//! range. A range the live accumulator saw whole reads it; an older one replays the stored
//! histogram points (from [`REPLAY_LOOKBACK_NANOS`] before `from`, so a cumulative series has
//! its previous point) through a fresh accumulator — the same code either way.
//!
//! An edge or service only metrics describe joins the view with the metrics' figures and is
//! marked so; one that traces describe too keeps the trace figures, with the metrics' beside
//! them and a flag when they disagree beyond `model::figures::SOURCES_TOLERANCE`. The two are
//! never added together.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::graph::EdgeMap;
use super::{GraphRange, QueryError, QueryService, ServiceSummary};
use crate::metric_red::{MetricRed, RedView, Side};
use crate::model::figures::sources_disagree;
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodeKind, NodePlacement, OperationStats};
use crate::model::{NANOS_PER_MINUTE, now_unix_nano};

/// How far before a past range's start stored points are replayed.
pub const REPLAY_LOOKBACK_NANOS: u64 = 10 * NANOS_PER_MINUTE;

/// Where a figure comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureSource {
    #[default]
    Traces,
    Metrics,
    /// Both describe it: the trace figures are shown, the metrics' beside them.
    TracesAndMetrics,
}

impl FigureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FigureSource::Traces => "traces",
            FigureSource::Metrics => "metrics",
            FigureSource::TracesAndMetrics => "traces_and_metrics",
        }
    }
}

/// What metrics say about one edge or service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricFigures {
    pub stats: OperationStats,
    pub source: FigureSource,
    /// Traces and metrics disagree beyond the tolerance (only with both sources).
    pub disagrees: bool,
}

/// Metrics placed on the map.
#[derive(Debug, Clone, Default)]
pub struct MetricsOverlay {
    /// Every edge metrics describe.
    pub edges: HashMap<EdgeKey, MetricFigures>,
    /// Nodes only metrics describe.
    pub nodes: HashSet<NodeKey>,
    /// Some histogram had more stored points in the range than were replayed.
    pub is_truncated: bool,
}

impl QueryService {
    /// RED from duration histograms over `range`, and whether the replay was cut short.
    pub async fn metric_red(&self, range: GraphRange) -> Result<(RedView, bool), QueryError> {
        let (from_unix_nano, to_unix_nano) = range.minutes.unix_nano_bounds();
        {
            let live = self.signals.lock_red();
            if from_unix_nano >= live.since_unix_nano() {
                return Ok((live.view(range.minutes), false));
            }
        }
        let since = from_unix_nano.saturating_sub(REPLAY_LOOKBACK_NANOS);
        let to_unix_nano = to_unix_nano.min(now_unix_nano().saturating_add(NANOS_PER_MINUTE));
        let names: Vec<String> = MetricRed::metric_names().map(str::to_owned).collect();
        let (mut points, is_truncated) = self
            .blocking(move |reader| {
                super::signals::read_points(reader, &names, since, to_unix_nano)
            })
            .await?;
        points.sort_by_key(|point| point.time_unix_nano);
        let mut red = MetricRed::new(since);
        for point in &points {
            red.observe(point);
        }
        Ok((red.view(range.minutes), is_truncated))
    }
}

/// Adds the edges only metrics describe to `edges` (the trace edges of the range) and says
/// what metrics describe.
pub(super) fn place(edges: &mut EdgeMap, red: &RedView, is_truncated: bool) -> MetricsOverlay {
    let traced_nodes: HashSet<NodeKey> = edges
        .keys()
        .flat_map(|key| [key.source.clone(), key.target.clone()])
        .collect();
    let services: HashSet<&str> = traced_nodes
        .iter()
        .filter(|node| node.kind == NodeKind::Service)
        .map(|node| node.name.as_str())
        .chain(red.placements.keys().map(String::as_str))
        .collect();
    let mut merged: BTreeMap<EdgeKey, (Side, OperationStats)> = BTreeMap::new();
    for (edge, stats) in &red.edges {
        let target =
            if edge.target.is_logical_name && services.contains(edge.target.node.name.as_str()) {
                NodeKey::service(edge.target.node.name.clone())
            } else {
                edge.target.node.clone()
            };
        let key = EdgeKey {
            source: edge.source.clone(),
            target,
            kind: edge.kind,
        };
        let slot = merged
            .entry(key)
            .or_insert((edge.measured_by, OperationStats::default()));
        slot.1.merge(stats);
    }
    let mut overlay = MetricsOverlay {
        is_truncated,
        ..MetricsOverlay::default()
    };
    for (key, (measured_by, stats)) in merged {
        let figures = match edges.get(&key) {
            Some((_, _, traced)) => MetricFigures {
                disagrees: sources_disagree(
                    (traced.num_requests, traced.num_failed()),
                    (stats.num_requests, stats.num_errors),
                ),
                source: FigureSource::TracesAndMetrics,
                stats,
            },
            None => {
                let placement = |node: &NodeKey| match node.kind {
                    NodeKind::Service => red.placements.get(&node.name).cloned(),
                    _ => None,
                };
                let source_placement = placement(&key.source).unwrap_or_default();
                let target_placement =
                    placement(&key.target).unwrap_or_else(|| source_placement.clone());
                for node in [&key.source, &key.target] {
                    if !traced_nodes.contains(node) {
                        overlay.nodes.insert(node.clone());
                    }
                }
                edges.insert(
                    key.clone(),
                    (
                        source_placement,
                        target_placement,
                        edge_stats(&stats, measured_by),
                    ),
                );
                MetricFigures {
                    stats,
                    source: FigureSource::Metrics,
                    disagrees: false,
                }
            }
        };
        overlay.edges.insert(key, figures);
    }
    for service in red.placements.keys() {
        let node = NodeKey::service(service.clone());
        if !traced_nodes.contains(&node) {
            overlay.nodes.insert(node);
        }
    }
    overlay
}

/// An edge's statistics as far as a histogram knows them: calls, failed calls and the
/// latency of the side that measured.
fn edge_stats(stats: &OperationStats, measured_by: Side) -> EdgeStats {
    let mut edge = EdgeStats {
        num_requests: stats.num_requests,
        num_errors: stats.num_errors,
        ..EdgeStats::default()
    };
    match measured_by {
        Side::Calling => edge.client_latency = stats.latency.clone(),
        Side::Serving => edge.server_latency = stats.latency.clone(),
    }
    edge
}

/// The services only metrics describe join `summaries` (sorted by name); the others get the
/// metrics' figures beside theirs.
pub(super) fn add_services(
    summaries: &mut Vec<ServiceSummary>,
    red: &RedView,
    service_opt: Option<&str>,
) {
    let mut by_service: BTreeMap<&str, Vec<(String, OperationStats)>> = BTreeMap::new();
    for ((service, operation), stats) in &red.operations {
        if service_opt.is_some_and(|wanted| wanted != service) {
            continue;
        }
        by_service
            .entry(service.as_str())
            .or_default()
            .push((operation.clone(), stats.clone()));
    }
    for (service, operations) in by_service {
        let mut total = OperationStats::default();
        for (_, stats) in &operations {
            total.merge(stats);
        }
        match summaries.iter_mut().find(|summary| summary.name == service) {
            Some(summary) => {
                summary.source = FigureSource::TracesAndMetrics;
                summary.metrics_disagree = sources_disagree(
                    (summary.stats.num_requests, summary.stats.num_errors),
                    (total.num_requests, total.num_errors),
                );
                summary.metrics_opt = Some(total);
            }
            None => summaries.push(ServiceSummary {
                name: service.to_owned(),
                placement: red
                    .placements
                    .get(service)
                    .cloned()
                    .unwrap_or_else(NodePlacement::default),
                stats: total,
                operations,
                source: FigureSource::Metrics,
                metrics_opt: None,
                metrics_disagree: false,
            }),
        }
    }
    summaries.sort_by(|a, b| a.name.cmp(&b.name));
}
