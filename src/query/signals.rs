//! Kafka lag and circuit breakers over a range, and where they sit on the map. A range that
//! ends now reads the live mapper; a past range replays the stored points of the recognised
//! metrics through a fresh mapper (from one history length before `from`), so both read alike.
//!
//! Attaching: a group's lag goes to the topic → service edge whose consumer spans named that
//! group, else to the edge into the service named like the group, else into the service that
//! reported the lag (client metrics). A breaker goes to the edge from its reporting service to
//! the node its target (`peer.service`) or name matches, else it stays on the service itself.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{GraphRange, QueryError, QueryService, StoreReader};
use crate::graph::analysis::GraphView;
use crate::model::graph::{EdgeKey, NodeKey, NodeKind};
use crate::model::{MetricPoint, now_unix_nano};
use crate::signals::{Breaker, GroupLag, SignalMapper, Trend};
use crate::store::{MetricQuery, StoreError};

/// Points replayed per metric name at most for a past range.
const MAX_REPLAY_POINTS_PER_NAME: usize = 200_000;

/// Lag and breakers as of the end of a range.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub lag: Vec<GroupLag>,
    pub breakers: Vec<Breaker>,
    /// Some metric had more points in the range than were replayed.
    pub is_truncated: bool,
}

/// The lag of the groups attached to one topic → service edge, together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeLag {
    pub lag: f64,
    pub trend: Trend,
    pub rate_per_s: Option<f64>,
    pub time_to_drain_secs: Option<f64>,
    pub groups: Vec<String>,
}

/// Signals placed on the map.
#[derive(Debug, Clone, Default)]
pub struct SignalOverlay {
    pub edge_lag: HashMap<EdgeKey, EdgeLag>,
    /// The worst breaker on each edge (open over half-open over closed).
    pub edge_breaker: HashMap<EdgeKey, Breaker>,
    /// Breakers that match no edge, on their reporting service.
    pub node_breakers: BTreeMap<NodeKey, Vec<Breaker>>,
    /// Each group's lag with the edge it sits on, if any.
    pub groups: Vec<(GroupLag, Option<EdgeKey>)>,
    /// Each breaker with the edge it sits on, if any.
    pub breakers: Vec<(Breaker, Option<EdgeKey>)>,
    /// What duration histograms describe (`query::metric_red`).
    pub metrics: super::MetricsOverlay,
    /// Badges of edges departing from their baseline (`query::anomalies`), when a page asked.
    pub anomalies: HashMap<EdgeKey, String>,
}

/// The map of a range with its lag and breakers placed on it.
#[derive(Debug, Clone)]
pub struct PlacedGraph {
    pub view: GraphView,
    pub overlay: SignalOverlay,
    /// Some signal metric had more points in the range than were replayed.
    pub is_truncated: bool,
}

impl QueryService {
    /// The map of `range`, filtered, with lag and breakers placed on its edges and nodes.
    pub async fn placed_graph(
        &self,
        range: GraphRange,
        filter: &super::GraphFilter,
    ) -> Result<PlacedGraph, QueryError> {
        let (view, metrics) = self.graph_and_metrics(range, filter).await?;
        let signals = self.signals(range).await?;
        let mut overlay = overlay(&view, &signals);
        let is_truncated = signals.is_truncated || metrics.is_truncated;
        overlay.metrics = metrics;
        Ok(PlacedGraph {
            view,
            overlay,
            is_truncated,
        })
    }

    /// Lag and breakers as of the end of `range`.
    pub async fn signals(&self, range: GraphRange) -> Result<Signals, QueryError> {
        let now = now_unix_nano();
        let (from_unix_nano, to_unix_nano) = range.minutes.unix_nano_bounds();
        if to_unix_nano > now {
            let mapper = self.signals.lock();
            return Ok(Signals {
                lag: mapper.lag_now(now),
                breakers: mapper.breakers().cloned().collect(),
                is_truncated: false,
            });
        }
        let settings = self.signals.lock().settings().clone();
        let from_unix_nano =
            from_unix_nano.saturating_sub(settings.history_secs.saturating_mul(1_000_000_000));
        let names: Vec<String> = settings.metric_names().map(str::to_owned).collect();
        let (points, is_truncated) = self
            .blocking(move |reader| read_points(reader, &names, from_unix_nano, to_unix_nano))
            .await?;
        Ok(replay(settings, points, to_unix_nano, is_truncated))
    }
}

/// Replays the last history length of stored points into the live mapper, so lag trends
/// and breaker histories continue across a restart.
impl QueryService {
    pub async fn seed_live_signals(&self) -> Result<(), QueryError> {
        let now = now_unix_nano();
        let settings = self.signals.lock().settings().clone();
        let from_unix_nano =
            now.saturating_sub(settings.history_secs.saturating_mul(1_000_000_000));
        let names: Vec<String> = settings.metric_names().map(str::to_owned).collect();
        let (mut points, _) = self
            .blocking(move |reader| read_points(reader, &names, from_unix_nano, now))
            .await?;
        points.sort_by_key(|point| point.time_unix_nano);
        self.signals.offer(&points, now);
        Ok(())
    }
}

/// The stored points of `names` in `[from, to)`, and whether a name hit the read limit.
pub(super) fn read_points(
    reader: &dyn StoreReader,
    names: &[String],
    from_unix_nano: u64,
    to_unix_nano: u64,
) -> Result<(Vec<MetricPoint>, bool), StoreError> {
    let mut points: Vec<MetricPoint> = Vec::new();
    let mut is_truncated = false;
    for name in names {
        let read = reader.metric_points(&MetricQuery {
            name: Some(name.clone()),
            service: None,
            from_unix_nano,
            to_unix_nano,
            limit: MAX_REPLAY_POINTS_PER_NAME,
        })?;
        is_truncated |= read.len() >= MAX_REPLAY_POINTS_PER_NAME;
        points.extend(read);
    }
    Ok((points, is_truncated))
}

/// Feeds stored points through a fresh mapper in time order, evaluated at `at_unix_nano`.
pub fn replay(
    settings: crate::signals::SignalSettings,
    mut points: Vec<MetricPoint>,
    at_unix_nano: u64,
    is_truncated: bool,
) -> Signals {
    points.sort_by_key(|point| point.time_unix_nano);
    let mut mapper = SignalMapper::new(settings);
    for point in &points {
        mapper.observe(point);
    }
    Signals {
        lag: mapper.lag(at_unix_nano),
        breakers: mapper.breakers().cloned().collect(),
        is_truncated,
    }
}

/// The destination part of a topic node's name (`{system} {destination}`).
fn topic_destination(node: &NodeKey) -> Option<&str> {
    (node.kind == NodeKind::Topic).then(|| {
        node.name
            .split_once(' ')
            .map_or(node.name.as_str(), |(_, destination)| destination)
    })
}

/// Places lag and breakers on the edges and nodes of `view`.
pub fn overlay(view: &GraphView, signals: &Signals) -> SignalOverlay {
    let mut overlay = SignalOverlay::default();
    for group in &signals.lag {
        let edge = lag_edge(view, group);
        if let Some(edge) = &edge {
            add_lag(overlay.edge_lag.entry(edge.clone()), group);
        }
        overlay.groups.push((group.clone(), edge));
    }
    for breaker in &signals.breakers {
        let edge = breaker_edge(view, breaker);
        match &edge {
            Some(edge) => {
                let slot = overlay.edge_breaker.entry(edge.clone());
                let current = slot.or_insert_with(|| breaker.clone());
                if worse(breaker, current) {
                    *current = breaker.clone();
                }
            }
            None => overlay
                .node_breakers
                .entry(NodeKey::service(breaker.service.clone()))
                .or_default()
                .push(breaker.clone()),
        }
        overlay.breakers.push((breaker.clone(), edge));
    }
    overlay
}

fn lag_edge(view: &GraphView, group: &GroupLag) -> Option<EdgeKey> {
    let into_topic_consumers: Vec<(&EdgeKey, &crate::model::graph::EdgeStats)> = view
        .edges
        .iter()
        .map(|(key, stats)| (key, stats))
        .filter(|(key, _)| {
            key.target.kind == NodeKind::Service
                && topic_destination(&key.source) == Some(group.topic.as_str())
        })
        .collect();
    let by_span_group = into_topic_consumers
        .iter()
        .find(|(_, stats)| stats.consumer_groups.contains(&group.group));
    let by_service_name = || {
        into_topic_consumers
            .iter()
            .find(|(key, _)| key.target.name == group.group)
    };
    let by_reporter = || {
        into_topic_consumers
            .iter()
            .find(|(key, _)| key.target.name == group.reporter)
    };
    by_span_group
        .or_else(by_service_name)
        .or_else(by_reporter)
        .map(|(key, _)| (*key).clone())
}

fn add_lag(slot: std::collections::hash_map::Entry<'_, EdgeKey, EdgeLag>, group: &GroupLag) {
    let edge = slot.or_insert_with(|| EdgeLag {
        lag: 0.0,
        trend: Trend::Unknown,
        rate_per_s: None,
        time_to_drain_secs: None,
        groups: Vec::new(),
    });
    edge.time_to_drain_secs = combined_drain_secs(edge, group);
    edge.lag += group.lag;
    if let Some(rate) = group.rate_per_s {
        edge.rate_per_s = Some(edge.rate_per_s.unwrap_or(0.0) + rate);
    }
    edge.trend = combined_trend(edge.trend, group.trend);
    edge.groups.push(group.group.clone());
}

/// The edge has drained when every group with lag on it has: the slowest one sets the time.
/// A group with no lag changes nothing; one with lag that is not draining leaves no time.
fn combined_drain_secs(edge: &EdgeLag, group: &GroupLag) -> Option<f64> {
    if group.lag <= 0.0 {
        return edge.time_to_drain_secs;
    }
    if edge.lag <= 0.0 {
        return group.time_to_drain_secs;
    }
    Some(edge.time_to_drain_secs?.max(group.time_to_drain_secs?))
}

/// Growing if any group grows; draining if none grows and one drains.
fn combined_trend(a: Trend, b: Trend) -> Trend {
    let rank = |trend: Trend| match trend {
        Trend::Growing => 3,
        Trend::Draining => 2,
        Trend::Stable => 1,
        Trend::Unknown => 0,
    };
    if rank(a) >= rank(b) { a } else { b }
}

fn breaker_edge(view: &GraphView, breaker: &Breaker) -> Option<EdgeKey> {
    let from_service: Vec<&EdgeKey> = view
        .edges
        .iter()
        .map(|(key, _)| key)
        .filter(|key| key.source.kind == NodeKind::Service && key.source.name == breaker.service)
        .collect();
    let names = breaker.target.iter().chain(std::iter::once(&breaker.name));
    for name in names {
        let exact = from_service.iter().find(|key| key.target.name == *name);
        let loose = || {
            from_service
                .iter()
                .find(|key| key.target.name.eq_ignore_ascii_case(name))
        };
        if let Some(key) = exact.or_else(loose) {
            return Some((*key).clone());
        }
    }
    None
}

fn worse(candidate: &Breaker, current: &Breaker) -> bool {
    (candidate.state.severity(), candidate.since_unix_nano)
        > (current.state.severity(), current.since_unix_nano)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::EdgeKind;

    fn group(name: &str, lag: f64, trend: Trend, time_to_drain_secs: Option<f64>) -> GroupLag {
        GroupLag {
            group: name.to_owned(),
            topic: "orders.created".to_owned(),
            reporter: "collector".to_owned(),
            lag,
            trend,
            rate_per_s: None,
            time_to_drain_secs,
            updated_unix_nano: 1,
            partitions: Vec::new(),
            history: Vec::new(),
        }
    }

    fn edge_lag(groups: &[GroupLag]) -> EdgeLag {
        let key = EdgeKey {
            source: NodeKey::new(NodeKind::Topic, "kafka orders.created"),
            target: NodeKey::service("inventory"),
            kind: EdgeKind::Messaging,
        };
        let mut edge_lag = HashMap::new();
        for group in groups {
            add_lag(edge_lag.entry(key.clone()), group);
        }
        edge_lag.remove(&key).expect("edge lag")
    }

    #[test]
    fn an_edges_lag_drains_with_its_slowest_lagging_group() {
        let drained = group("audit", 0.0, Trend::Stable, None);
        let fast = group("billing", 100.0, Trend::Draining, Some(20.0));
        let slow = group("inventory", 300.0, Trend::Draining, Some(60.0));
        let growing = group("search", 50.0, Trend::Growing, None);

        let edge = edge_lag(&[drained.clone(), fast.clone(), slow.clone()]);
        assert_eq!(
            (edge.trend, edge.time_to_drain_secs),
            (Trend::Draining, Some(60.0))
        );
        assert_eq!(edge.lag, 400.0);
        // A drained group does not hide the others' time, whatever the order.
        assert_eq!(
            edge_lag(&[fast.clone(), drained.clone()]).time_to_drain_secs,
            Some(20.0)
        );
        // One lagging group that is not draining leaves the edge without a time.
        let edge = edge_lag(&[slow, growing]);
        assert_eq!(
            (edge.trend, edge.time_to_drain_secs),
            (Trend::Growing, None)
        );
        assert_eq!(edge_lag(&[drained]).time_to_drain_secs, None);
    }
}
