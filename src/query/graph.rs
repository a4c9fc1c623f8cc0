//! Graph queries: the live engine answers for the minutes it holds, stored rollups for older
//! ones, merged into one [`GraphView`] — so a past range reads the same after a restart.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::Serialize;

use super::{QueryError, QueryService};
use crate::graph::analysis::{self, GraphView};
use crate::model::graph::{
    EdgeKey, EdgeStats, NodeKey, NodePlacement, OperationSplit, OperationStats,
};
use crate::model::{LatencySketch, MinuteRange, NANOS_PER_MINUTE, UnixMinute};
use crate::pipeline::lock_engine;
use crate::store::Splits;
use crate::store::totals::{edge_totals_of, operation_totals_of};

/// The minutes of a query and the seconds they stand for (rates divide by it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphRange {
    pub minutes: MinuteRange,
    pub window_secs: f64,
}

impl GraphRange {
    /// The last `minutes` minutes up to `now`, the minute in progress included (its elapsed
    /// part counted in `window_secs`, at least a second).
    pub fn last_minutes(minutes: i64, now_unix_nano: u64) -> Self {
        let now = UnixMinute::of_unix_nano(now_unix_nano);
        let elapsed_in_minute = (now_unix_nano % NANOS_PER_MINUTE) as f64 / 1e9;
        let window_secs = (minutes - 1) as f64 * 60.0 + elapsed_in_minute.max(1.0);
        GraphRange {
            minutes: MinuteRange::ending_with(now, minutes),
            window_secs,
        }
    }

    /// The whole minutes touched by `[from, to)` (nanoseconds): counts are per whole minute,
    /// so rates divide by the seconds of those minutes up to `now` (at least one second).
    pub fn covering(from_unix_nano: u64, to_unix_nano: u64, now_unix_nano: u64) -> Self {
        let minutes = MinuteRange::covering_unix_nano(from_unix_nano, to_unix_nano);
        let (start, end) = minutes.unix_nano_bounds();
        let covered_end = end.min(now_unix_nano).max(start + 1_000_000_000);
        GraphRange {
            minutes,
            window_secs: (covered_end - start) as f64 / 1e9,
        }
    }

    /// Whole minutes: each counts 60 seconds.
    pub fn whole(minutes: MinuteRange) -> Self {
        GraphRange {
            minutes,
            window_secs: minutes.num_minutes() as f64 * 60.0,
        }
    }

    /// The same length of time just before this range.
    pub fn before(&self) -> Self {
        GraphRange::whole(self.minutes.before())
    }
}

/// Which part of the map to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphFilter {
    /// Keep edges with at least one end in this namespace.
    pub namespace: Option<String>,
    /// Keep nodes within `depth` hops of this node (either direction).
    pub focus: Option<NodeKey>,
    pub depth: usize,
    /// Keep each edge's operation splits (an edge's page and change over time show them).
    /// Without, the edges of stored minutes come without them (the live minutes' keep theirs):
    /// the map, alerts and the audit never read them, and ClickHouse then reads less.
    pub operation_splits: bool,
}

impl GraphFilter {
    /// The whole map, with each edge's operation splits.
    pub fn whole_with_splits() -> Self {
        GraphFilter {
            operation_splits: true,
            ..GraphFilter::default()
        }
    }
}

/// RED of one service over a range: its operations merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSummary {
    pub name: String,
    pub placement: NodePlacement,
    pub stats: OperationStats,
    /// Per operation, sorted by name.
    pub operations: Vec<(String, OperationStats)>,
    /// Where `stats` come from: traces, or duration histograms for a service that sends
    /// no traces (`query::metric_red`).
    pub source: super::FigureSource,
    /// With traces and metrics both: the metrics' figures, never added to `stats`.
    pub metrics_opt: Option<OperationStats>,
    /// With both: they disagree beyond `model::figures::SOURCES_TOLERANCE`.
    pub metrics_disagree: bool,
}

pub(super) type EdgeMap = BTreeMap<EdgeKey, (NodePlacement, NodePlacement, EdgeStats)>;

impl QueryService {
    /// The map over `range`, filtered: trace edges, and the edges only duration histograms
    /// describe (`query::metric_red`).
    pub async fn graph(
        &self,
        range: GraphRange,
        filter: &GraphFilter,
    ) -> Result<GraphView, QueryError> {
        Ok(self.graph_and_metrics(range, filter).await?.0)
    }

    /// [`Self::graph`] with what metrics describe on it.
    pub async fn graph_and_metrics(
        &self,
        range: GraphRange,
        filter: &GraphFilter,
    ) -> Result<(GraphView, super::MetricsOverlay), QueryError> {
        let (live_since, mut edges) = self.live_edges(range.minutes);
        let splits = if filter.operation_splits {
            Splits::Read
        } else {
            Splits::Skipped
        };
        for (minutes, exclude) in self.stored_ranges(range.minutes, live_since) {
            let stored = self
                .blocking(move |reader| reader.edge_totals(minutes, exclude, splits))
                .await?;
            for total in stored {
                let entry = edges.entry(total.key).or_insert_with(|| {
                    (
                        total.source_placement.clone(),
                        total.target_placement.clone(),
                        EdgeStats::default(),
                    )
                });
                entry.2.merge(&total.stats);
            }
        }
        let (red, is_truncated) = self.metric_red(range).await?;
        let overlay = super::metric_red::place(&mut edges, &red, is_truncated);
        let mut view = view_of(edges, range.window_secs);
        add_lone_nodes(&mut view, &red);
        Ok((filter_view(view, filter), overlay))
    }

    /// The operation splits of each edge from `source` to `target` over `range`, read
    /// without the rest of the map: equal to those [`Self::graph`] gives with
    /// [`GraphFilter::operation_splits`] (memory's minutes first, then the store's totals,
    /// merged in the same order), so one edge's page need not read the whole map's splits.
    pub async fn edge_operation_splits(
        &self,
        range: MinuteRange,
        source: &NodeKey,
        target: &NodeKey,
    ) -> Result<BTreeMap<EdgeKey, Vec<OperationSplit>>, QueryError> {
        let (live_since, mut edges) = {
            let engine = lock_engine(&self.engine);
            let live_since = engine.live_since_minute().unwrap_or(range.to());
            let live = range.starting_at_or_after(live_since);
            let edges: BTreeMap<EdgeKey, EdgeStats> = engine
                .edges_between(live, source, target)
                .into_iter()
                .map(|edge| (edge.key, edge.stats))
                .collect();
            (live_since, edges)
        };
        for (minutes, exclude) in self.stored_ranges(range, live_since) {
            let (source, target) = (source.clone(), target.clone());
            let stored = self
                .blocking(move |reader| {
                    edge_totals_of(reader.edge_rollups_between(minutes, exclude, &source, &target)?)
                })
                .await?;
            for total in stored {
                edges.entry(total.key).or_default().merge(&total.stats);
            }
        }
        Ok(edges
            .into_iter()
            .map(|(key, stats)| (key, stats.operations))
            .collect())
    }

    /// Per-service RED over `range` (of one service when `service_opt` is given).
    pub async fn services(
        &self,
        range: GraphRange,
        service_opt: Option<String>,
    ) -> Result<Vec<ServiceSummary>, QueryError> {
        let mut operations: BTreeMap<(String, String), (NodePlacement, OperationStats)> =
            BTreeMap::new();
        let live_since = {
            let engine = lock_engine(&self.engine);
            let live_since = engine.live_since_minute().unwrap_or(range.minutes.to());
            for operation in engine.operations(range.minutes.starting_at_or_after(live_since)) {
                if service_opt
                    .as_ref()
                    .is_some_and(|service| *service != operation.service)
                {
                    continue;
                }
                let entry = operations
                    .entry((operation.service, operation.operation))
                    .or_insert_with(|| (operation.placement, OperationStats::default()));
                entry.1.merge(&operation.stats);
            }
            live_since
        };
        for (minutes, exclude) in self.stored_ranges(range.minutes, live_since) {
            let service = service_opt.clone();
            let totals = self
                .blocking(move |reader| {
                    operation_totals_of(reader.operation_rollups(
                        minutes,
                        service.as_deref(),
                        exclude,
                    )?)
                })
                .await?;
            for total in totals {
                let entry = operations
                    .entry((total.service, total.operation))
                    .or_insert_with(|| (total.placement, OperationStats::default()));
                entry.1.merge(&total.stats);
            }
        }
        let mut summaries = summarise(operations);
        let (red, _) = self.metric_red(range).await?;
        super::metric_red::add_services(&mut summaries, &red, service_opt.as_deref());
        Ok(summaries)
    }

    /// The longest synchronous chains the engine has seen, one entry per observation.
    pub fn observed_chains(&self) -> Vec<analysis::ObservedChain> {
        let chains = lock_engine(&self.engine).chains();
        chains
            .into_iter()
            .flat_map(|chain| {
                let services: Vec<String> =
                    chain.nodes.iter().map(|node| node.name.clone()).collect();
                let observed = analysis::ObservedChain {
                    trace_id: chain.trace_id,
                    services,
                };
                let num_observed = usize::try_from(chain.num_observed.clamp(1, 1000)).unwrap_or(1);
                std::iter::repeat_n(observed, num_observed)
            })
            .collect()
    }

    /// What to read from the store: every instance's rollups before this engine's memory
    /// starts, and other instances' (an earlier run of this one, or peers sharing the store)
    /// for the minutes memory holds.
    pub(super) fn stored_ranges(
        &self,
        range: MinuteRange,
        live_since: UnixMinute,
    ) -> Vec<(MinuteRange, Option<u32>)> {
        let before = range.ending_before(live_since);
        let live = range.starting_at_or_after(live_since);
        [(before, None), (live, Some(self.instance))]
            .into_iter()
            .filter(|(minutes, _)| !minutes.is_empty())
            .collect()
    }

    fn live_edges(&self, range: MinuteRange) -> (UnixMinute, EdgeMap) {
        let engine = lock_engine(&self.engine);
        let live_since = engine.live_since_minute().unwrap_or(range.to());
        let mut edges = EdgeMap::new();
        for edge in engine.edges(range.starting_at_or_after(live_since)) {
            edges.insert(
                edge.key,
                (edge.source_placement, edge.target_placement, edge.stats),
            );
        }
        (live_since, edges)
    }
}

fn view_of(edges: EdgeMap, window_secs: f64) -> GraphView {
    let mut nodes: BTreeMap<NodeKey, NodePlacement> = BTreeMap::new();
    let mut view_edges = Vec::with_capacity(edges.len());
    for (key, (source_placement, target_placement, stats)) in edges {
        merge_placement(&mut nodes, &key.source, source_placement);
        merge_placement(&mut nodes, &key.target, target_placement);
        view_edges.push((key, stats));
    }
    GraphView {
        nodes: nodes.into_iter().collect(),
        edges: view_edges,
        window_secs,
    }
}

/// Services that report duration histograms but are on no edge (a server nobody's metrics
/// call) are still nodes of the map.
fn add_lone_nodes(view: &mut GraphView, red: &crate::metric_red::RedView) {
    let mut missing: Vec<(NodeKey, NodePlacement)> = red
        .placements
        .iter()
        .map(|(service, placement)| (NodeKey::service(service.clone()), placement.clone()))
        .filter(|(node, _)| !view.nodes.iter().any(|(key, _)| key == node))
        .collect();
    if missing.is_empty() {
        return;
    }
    view.nodes.append(&mut missing);
    view.nodes.sort_by(|a, b| a.0.cmp(&b.0));
}

/// Keeps the first placement that names a namespace or environment.
fn merge_placement(
    nodes: &mut BTreeMap<NodeKey, NodePlacement>,
    key: &NodeKey,
    placement: NodePlacement,
) {
    let entry = nodes.entry(key.clone()).or_default();
    if entry.namespace.is_none() && entry.environment.is_none() {
        *entry = placement;
    }
}

fn filter_view(view: GraphView, filter: &GraphFilter) -> GraphView {
    let GraphView {
        nodes,
        mut edges,
        window_secs,
    } = view;
    let placements: HashMap<&NodeKey, &NodePlacement> = nodes
        .iter()
        .map(|(key, placement)| (key, placement))
        .collect();
    if let Some(namespace) = &filter.namespace {
        let in_namespace = |key: &NodeKey| {
            placements
                .get(key)
                .and_then(|placement| placement.namespace.as_ref())
                == Some(namespace)
        };
        edges.retain(|(key, _)| in_namespace(&key.source) || in_namespace(&key.target));
    }
    let kept: Option<HashSet<NodeKey>> = filter
        .focus
        .as_ref()
        .map(|focus| neighbourhood(&edges, focus, filter.depth));
    if let Some(kept) = &kept {
        edges.retain(|(key, _)| kept.contains(&key.source) && kept.contains(&key.target));
    }
    let used: HashSet<&NodeKey> = edges
        .iter()
        .flat_map(|(key, _)| [&key.source, &key.target])
        .collect();
    let nodes = nodes
        .iter()
        .filter(|(key, _)| {
            used.contains(key) || kept.as_ref().is_some_and(|kept| kept.contains(key))
        })
        .cloned()
        .collect();
    GraphView {
        nodes,
        edges,
        window_secs,
    }
}

/// Nodes within `depth` hops of `focus`, following edges either way.
fn neighbourhood(
    edges: &[(EdgeKey, EdgeStats)],
    focus: &NodeKey,
    depth: usize,
) -> HashSet<NodeKey> {
    let mut adjacent: HashMap<&NodeKey, Vec<&NodeKey>> = HashMap::new();
    for (key, _) in edges {
        adjacent.entry(&key.source).or_default().push(&key.target);
        adjacent.entry(&key.target).or_default().push(&key.source);
    }
    let mut kept = HashSet::from([focus.clone()]);
    let mut queue = VecDeque::from([(focus, 0_usize)]);
    while let Some((node, distance)) = queue.pop_front() {
        if distance == depth {
            continue;
        }
        for next in adjacent.get(node).into_iter().flatten() {
            if kept.insert((*next).clone()) {
                queue.push_back((next, distance + 1));
            }
        }
    }
    kept
}

fn summarise(
    operations: BTreeMap<(String, String), (NodePlacement, OperationStats)>,
) -> Vec<ServiceSummary> {
    let mut services: BTreeMap<String, ServiceSummary> = BTreeMap::new();
    for ((service, operation), (placement, stats)) in operations {
        let summary = services
            .entry(service.clone())
            .or_insert_with(|| ServiceSummary {
                name: service,
                placement,
                stats: OperationStats {
                    latency: LatencySketch::default(),
                    ..OperationStats::default()
                },
                operations: Vec::new(),
                source: super::FigureSource::Traces,
                metrics_opt: None,
                metrics_disagree: false,
            });
        summary.stats.merge(&stats);
        summary.operations.push((operation, stats));
    }
    services.into_values().collect()
}
