//! [`evaluate`]: for which label sets a rule's condition holds on one evaluation's inputs.

use std::collections::{BTreeMap, HashSet};

use super::{AnomalySubjects, ChangeFilter, Comparison, DropScope, Inputs, RuleKind};
use crate::alert::state::Labels;
use crate::graph::analysis::{self, GraphView};
use crate::model::graph::{EdgeKey, EdgeKind, EdgeStats, NodeKind};
use crate::model::{AttrValue, MetricPoint, attr_get};
use crate::model::{NumberValue, PointValue};
use crate::query::{Anomaly, ServiceSummary, SignalOverlay, Subject};
use crate::signals::Trend;

fn label(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// Edges of `kinds` (all when empty) with at least `min_requests` calls.
fn busy_edges<'a>(
    view: &'a GraphView,
    kinds: &'a [EdgeKind],
    min_requests: u64,
) -> impl Iterator<Item = &'a (EdgeKey, EdgeStats)> {
    view.edges.iter().filter(move |(key, stats)| {
        (kinds.is_empty() || kinds.contains(&key.kind)) && stats.num_requests >= min_requests
    })
}

fn edge_labels(key: &EdgeKey) -> Labels {
    label(&[
        ("source", &key.source.id()),
        ("target", &key.target.id()),
        ("edge_kind", key.kind.as_str()),
    ])
}

/// The label sets for which `kind` holds on `inputs`, with their values.
pub fn evaluate(kind: &RuleKind, inputs: &Inputs<'_>) -> Vec<(Labels, f64)> {
    let view = inputs.view;
    let overlay = inputs.overlay;
    match kind {
        RuleKind::EdgeErrorRate {
            threshold,
            min_requests,
            edge_kinds,
        } => edge_error_rates(view, *threshold, *min_requests, edge_kinds),
        RuleKind::ServiceErrorRate {
            threshold,
            min_requests,
        } => service_error_rates(inputs.services, *threshold, *min_requests),
        RuleKind::EdgeLatency {
            quantile,
            threshold_ms,
            min_requests,
            edge_kinds,
        } => edge_latencies(view, *quantile, *threshold_ms, *min_requests, edge_kinds),
        RuleKind::ServiceLatency {
            quantile,
            threshold_ms,
            min_requests,
        } => service_latencies(inputs.services, *quantile, *threshold_ms, *min_requests),
        RuleKind::RequestRateDrop {
            drop_ratio,
            min_baseline_requests,
            scope,
        } => rate_drops(inputs, *drop_ratio, *min_baseline_requests, *scope),
        RuleKind::PublishConsumeLatency {
            quantile,
            threshold_ms,
        } => publish_consume_latencies(view, *quantile, *threshold_ms),
        RuleKind::KafkaLag { threshold } => overlay
            .edge_lag
            .iter()
            .filter(|(_, lag)| lag.lag > *threshold)
            .map(|(key, lag)| (edge_labels(key), lag.lag))
            .collect(),
        RuleKind::KafkaLagGrowing => overlay
            .edge_lag
            .iter()
            .filter(|(_, lag)| lag.trend == Trend::Growing)
            .map(|(key, lag)| (edge_labels(key), lag.rate_per_s.unwrap_or(0.0)))
            .collect(),
        RuleKind::BreakerState { states } => breakers_in(overlay, states),
        RuleKind::DependencyChange {
            change,
            min_requests,
        } => dependency_changes(view, inputs.baseline, *change, *min_requests),
        RuleKind::Cycle { include_async } => cycles(view, *include_async),
        RuleKind::Finding {
            kinds,
            min_severity,
        } => findings(inputs.findings, kinds, min_severity),
        RuleKind::Anomaly { figures, subjects } => anomalies(inputs.anomalies, figures, *subjects),
        RuleKind::MetricThreshold {
            metric,
            matchers,
            op,
            threshold,
        } => metric_threshold(inputs.metric_points, metric, matchers, *op, *threshold),
    }
}

fn edge_error_rates(
    view: &GraphView,
    threshold: f64,
    min_requests: u64,
    edge_kinds: &[EdgeKind],
) -> Vec<(Labels, f64)> {
    busy_edges(view, edge_kinds, min_requests)
        .filter_map(|(key, stats)| {
            // The edge's error rate as every page shows it: refused calls left out.
            let rate = stats.error_rate()?;
            (rate > threshold).then(|| (edge_labels(key), rate))
        })
        .collect()
}

fn service_error_rates(
    services: &[ServiceSummary],
    threshold: f64,
    min_requests: u64,
) -> Vec<(Labels, f64)> {
    services
        .iter()
        .filter(|service| service.stats.num_requests >= min_requests.max(1))
        .filter_map(|service| {
            let rate = service.stats.error_rate()?;
            (rate > threshold).then(|| (label(&[("service", &service.name)]), rate))
        })
        .collect()
}

/// Client-side latency: what the caller waited.
fn edge_latencies(
    view: &GraphView,
    quantile: f64,
    threshold_ms: f64,
    min_requests: u64,
    edge_kinds: &[EdgeKind],
) -> Vec<(Labels, f64)> {
    busy_edges(view, edge_kinds, min_requests)
        .filter_map(|(key, stats)| {
            let millis = stats.client_latency.quantile_nanos(quantile)? / 1e6;
            (millis > threshold_ms).then(|| (edge_labels(key), millis))
        })
        .collect()
}

fn service_latencies(
    services: &[ServiceSummary],
    quantile: f64,
    threshold_ms: f64,
    min_requests: u64,
) -> Vec<(Labels, f64)> {
    services
        .iter()
        .filter(|service| service.stats.num_requests >= min_requests)
        .filter_map(|service| {
            let millis = service.stats.latency.quantile_nanos(quantile)? / 1e6;
            (millis > threshold_ms).then(|| (label(&[("service", &service.name)]), millis))
        })
        .collect()
}

/// Services or edges whose request rate fell by more than `drop_ratio` from the window
/// before, among those with at least `min_baseline_requests` calls then.
fn rate_drops(
    inputs: &Inputs<'_>,
    drop_ratio: f64,
    min_baseline_requests: u64,
    scope: DropScope,
) -> Vec<(Labels, f64)> {
    let view = inputs.view;
    // Rates, not counts: the current window may hold a partial minute.
    let seconds = |map: &GraphView| map.window_secs.max(1.0);
    let (now_secs, before_secs) = (seconds(view), seconds(inputs.baseline));
    let dropped = |before: u64, now: u64| {
        let (before_rate, now_rate) = (before as f64 / before_secs, now as f64 / now_secs);
        let fall = 1.0 - now_rate / before_rate.max(f64::MIN_POSITIVE);
        (before >= min_baseline_requests && fall > drop_ratio).then_some(fall)
    };
    match scope {
        DropScope::Service => inputs
            .baseline_services
            .iter()
            .filter_map(|before| {
                let now = inputs
                    .services
                    .iter()
                    .find(|service| service.name == before.name)
                    .map_or(0, |service| service.stats.num_requests);
                let fall = dropped(before.stats.num_requests, now)?;
                Some((label(&[("service", &before.name)]), fall))
            })
            .collect(),
        DropScope::Edge => inputs
            .baseline
            .edges
            .iter()
            .filter_map(|(key, before)| {
                let now = view
                    .edges
                    .iter()
                    .find(|(current, _)| current == key)
                    .map_or(0, |(_, stats)| stats.num_requests);
                let fall = dropped(before.num_requests, now)?;
                Some((edge_labels(key), fall))
            })
            .collect(),
    }
}

/// Topic → consumer edges: from the end of the producer span to the start of the consumer's.
fn publish_consume_latencies(
    view: &GraphView,
    quantile: f64,
    threshold_ms: f64,
) -> Vec<(Labels, f64)> {
    view.edges
        .iter()
        .filter(|(key, _)| key.source.kind == NodeKind::Topic)
        .filter_map(|(key, stats)| {
            let millis = stats.publish_consume_latency.quantile_nanos(quantile)? / 1e6;
            (millis > threshold_ms).then(|| (edge_labels(key), millis))
        })
        .collect()
}

/// Breakers in one of `states`, with the edge they guard when it is known.
fn breakers_in(overlay: &SignalOverlay, states: &[String]) -> Vec<(Labels, f64)> {
    overlay
        .breakers
        .iter()
        .filter(|(breaker, _)| states.iter().any(|state| state == breaker.state.as_str()))
        .map(|(breaker, edge)| {
            let mut labels = label(&[
                ("service", &breaker.service),
                ("breaker", &breaker.name),
                ("state", breaker.state.as_str()),
            ]);
            if let Some(edge) = edge {
                labels.insert("target".to_owned(), edge.target.id());
            }
            (labels, 1.0)
        })
        .collect()
}

/// Call cycles on the map (synchronous only, unless `include_async`), valued by length.
fn cycles(view: &GraphView, include_async: bool) -> Vec<(Labels, f64)> {
    analysis::insights(view, &[])
        .cycles
        .into_iter()
        .filter(|cycle| cycle.synchronous || include_async)
        .map(|cycle| {
            let length = cycle.path.len() as f64;
            (label(&[("cycle", &cycle.path.join(" -> "))]), length)
        })
        .collect()
}

/// Findings of `kinds` (all when empty) at `min_severity` or worse, one label set each.
fn findings(
    found: &[crate::graph::audit::Finding],
    kinds: &[String],
    min_severity: &str,
) -> Vec<(Labels, f64)> {
    let least = crate::graph::audit::Severity::parse(min_severity)
        .unwrap_or(crate::graph::audit::Severity::Warning);
    found
        .iter()
        .filter(|finding| finding.severity >= least)
        .filter(|finding| kinds.is_empty() || kinds.iter().any(|kind| kind == finding.kind.name()))
        .map(|finding| {
            let mut labels = label(&[
                ("finding", finding.kind.name()),
                ("finding_severity", finding.severity.name()),
                ("subjects", &finding.subjects.join(", ")),
            ]);
            // A finding about one node or edge names it the way other alerts do, so the map
            // badges it.
            if let Some(first) = finding.subjects.first() {
                match first.split_once(" -> ") {
                    Some((source, target)) => {
                        labels.insert("source".to_owned(), source.to_owned());
                        labels.insert("target".to_owned(), target.to_owned());
                    }
                    None => {
                        labels.insert("source".to_owned(), first.clone());
                    }
                }
            }
            (labels, finding.severity as u8 as f64 + 1.0)
        })
        .collect()
}

fn dependency_changes(
    view: &GraphView,
    baseline: &GraphView,
    change: ChangeFilter,
    min_requests: u64,
) -> Vec<(Labels, f64)> {
    let busy = |map: &GraphView| -> HashSet<EdgeKey> {
        map.edges
            .iter()
            .filter(|(_, stats)| stats.num_requests >= min_requests.max(1))
            .map(|(key, _)| key.clone())
            .collect()
    };
    // Also the quiet edges: an edge that merely fell below `min_requests` did not vanish.
    let seen = |map: &GraphView| -> HashSet<EdgeKey> {
        map.edges.iter().map(|(key, _)| key.clone()).collect()
    };
    if baseline.edges.is_empty() {
        return Vec::new();
    }
    let mut results = Vec::new();
    let mut push = |key: &EdgeKey, what: &str, requests: u64| {
        let mut labels = edge_labels(key);
        labels.insert("change".to_owned(), what.to_owned());
        results.push((labels, requests as f64));
    };
    // Each set built once: built per edge, a map of 4,000 edges took seconds per evaluation.
    if change != ChangeFilter::Vanished {
        let (before, busy_now) = (seen(baseline), busy(view));
        for (key, stats) in &view.edges {
            if busy_now.contains(key) && !before.contains(key) {
                push(key, "new", stats.num_requests);
            }
        }
    }
    if change != ChangeFilter::New {
        let (now, busy_before) = (seen(view), busy(baseline));
        for (key, stats) in &baseline.edges {
            if busy_before.contains(key) && !now.contains(key) {
                push(key, "vanished", stats.num_requests);
            }
        }
    }
    results
}

/// The latest value of each series (service + attributes) of `metric` that matches.
fn metric_threshold(
    points: &[MetricPoint],
    metric: &str,
    matchers: &BTreeMap<String, String>,
    op: Comparison,
    threshold: f64,
) -> Vec<(Labels, f64)> {
    /// Series reported per rule at most: a high-cardinality metric must not flood alerts.
    const MAX_SERIES: usize = 1000;
    let mut latest: BTreeMap<Labels, (u64, f64)> = BTreeMap::new();
    for point in points.iter().filter(|point| point.name == metric) {
        let Some(value) = point_value(&point.value) else {
            continue;
        };
        let attribute = |key: &str| -> Option<String> {
            if key == "service.name" {
                return Some(point.service_name().to_owned());
            }
            attr_get(&point.attributes, key)
                .or_else(|| attr_get(&point.resource.attributes, key))
                .and_then(AttrValue::to_search_text)
        };
        let matches = matchers
            .iter()
            .all(|(key, wanted)| attribute(key).as_deref() == Some(wanted.as_str()));
        if !matches {
            continue;
        }
        let mut labels = label(&[("metric", metric), ("service", point.service_name())]);
        for (key, value) in &point.attributes {
            if let Some(text) = value.to_search_text() {
                labels.insert(key.clone(), text);
            }
        }
        if latest.len() >= MAX_SERIES && !latest.contains_key(&labels) {
            continue;
        }
        let entry = latest.entry(labels).or_insert((0, value));
        if point.time_unix_nano >= entry.0 {
            *entry = (point.time_unix_nano, value);
        }
    }
    latest
        .into_iter()
        .filter(|(_, (_, value))| op.holds(*value, threshold))
        .map(|(labels, (_, value))| (labels, value))
        .collect()
}

/// A number for gauges and sums; the mean of histograms and summaries.
fn point_value(value: &PointValue) -> Option<f64> {
    let mean = |sum: f64, count: u64| (count > 0).then(|| sum / count as f64);
    match value {
        PointValue::Gauge { value } | PointValue::Sum { value, .. } => {
            Some(NumberValue::as_f64(*value))
        }
        PointValue::Histogram(histogram) => mean(histogram.sum?, histogram.count),
        PointValue::ExponentialHistogram(histogram) => mean(histogram.sum?, histogram.count),
        PointValue::Summary(summary) => mean(summary.sum, summary.count),
    }
}

/// Anomalies of `figures` (all when empty) of the `subjects` watched: labelled by subject,
/// figure and direction; the current value and the baseline as details for templates
/// (`state::DETAIL_PREFIX`: not part of the alert's identity).
fn anomalies(
    found: &[Anomaly],
    figures: &[String],
    subjects: AnomalySubjects,
) -> Vec<(Labels, f64)> {
    found
        .iter()
        .filter(|anomaly| figures.is_empty() || figures.iter().any(|f| f == anomaly.figure.name()))
        .filter_map(|anomaly| {
            let mut labels = match (&anomaly.subject, subjects) {
                (Subject::Edge(key), AnomalySubjects::Any | AnomalySubjects::Edges) => {
                    edge_labels(key)
                }
                (Subject::Service(name), AnomalySubjects::Any | AnomalySubjects::Services) => {
                    label(&[("service", name)])
                }
                _ => return None,
            };
            let departure = &anomaly.departure;
            let direction = match departure.direction() {
                crate::graph::anomaly::Direction::Up => "up",
                crate::graph::anomaly::Direction::Down => "down",
            };
            labels.insert("figure".to_owned(), anomaly.figure.name().to_owned());
            labels.insert("direction".to_owned(), direction.to_owned());
            let print = |value| crate::alert::template::figure_text(anomaly.figure, value);
            let detail = |name: &str| format!("{}{name}", crate::alert::state::DETAIL_PREFIX);
            labels.insert(detail("now"), print(departure.now));
            labels.insert(detail("baseline"), print(departure.baseline));
            labels.insert(detail("reference"), departure.reference.words().to_owned());
            labels.insert(
                detail("score"),
                crate::alert::template::humanize(departure.score),
            );
            Some((labels, departure.now))
        })
        .collect()
}
