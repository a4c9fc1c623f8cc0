//! The map of one period against another (`graph::diff` decides each edge's change), and the
//! periods a comparison names: an explicit base, the period before, a day or a week before, or
//! the same length of time before and after a deploy.

use std::collections::BTreeMap;

use super::{GraphFilter, GraphRange, QueryError, QueryService};
use crate::graph::analysis::GraphView;
use crate::graph::diff::{self, Change, EdgeDiff, Period};
use crate::model::graph::{NodeKey, NodePlacement};
use crate::model::{MinuteRange, UnixMinute};

/// A deploy's periods are at most this long on each side.
pub const MAX_DEPLOY_PERIOD_MINUTES: i64 = 60;

/// What a range is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// The same length of time just before.
    Previous,
    /// The same minutes `n` minutes earlier (a day, a week).
    EarlierBy(i64),
    /// Explicit minutes.
    Minutes(MinuteRange),
    /// Before and after the first minute `version` of `service` reported.
    Deploy { service: String, version: String },
}

/// Two periods of the map side by side.
#[derive(Debug, Clone)]
pub struct GraphDiff {
    pub base: GraphRange,
    pub now: GraphRange,
    /// Every node of either period, with whether it is new, vanished or in both.
    pub nodes: Vec<(NodeKey, NodePlacement, Change)>,
    pub edges: Vec<EdgeDiff>,
}

impl QueryService {
    /// The base and current periods `baseline` names for `range`; `None` when a deploy it
    /// names is not found within `range`.
    pub async fn diff_periods(
        &self,
        range: GraphRange,
        baseline: &Baseline,
    ) -> Result<Option<(GraphRange, GraphRange)>, QueryError> {
        let base_minutes = match baseline {
            Baseline::Previous => range.minutes.before(),
            Baseline::EarlierBy(minutes) => MinuteRange::new(
                range.minutes.from().plus(-minutes),
                range.minutes.to().plus(-minutes),
            ),
            Baseline::Minutes(minutes) => *minutes,
            Baseline::Deploy { service, version } => {
                let deploys = self.deploys(range, Some(service)).await?;
                let Some(deploy) = deploys.iter().find(|deploy| deploy.version == *version) else {
                    return Ok(None);
                };
                let at = UnixMinute(deploy.first_seen);
                let length =
                    (range.minutes.to().get() - at.get()).clamp(1, MAX_DEPLOY_PERIOD_MINUTES);
                let now = MinuteRange::new(at, at.plus(length));
                return Ok(Some((
                    GraphRange::whole(MinuteRange::new(at.plus(-length), at)),
                    self.covered(GraphRange::whole(now)).await?,
                )));
            }
        };
        Ok(Some((GraphRange::whole(base_minutes), range)))
    }

    /// The whole map in `base` against `now`.
    pub async fn graph_diff(
        &self,
        base: GraphRange,
        now: GraphRange,
    ) -> Result<GraphDiff, QueryError> {
        let after = self.graph(now, &GraphFilter::whole_with_splits()).await?;
        self.graph_diff_of(base, now, &after).await
    }

    /// The whole map in `base` against `after`, the whole map already read for `now` (with
    /// its operation splits: [`GraphFilter::operation_splits`]).
    pub async fn graph_diff_of(
        &self,
        base: GraphRange,
        now: GraphRange,
        after: &GraphView,
    ) -> Result<GraphDiff, QueryError> {
        let base = self.covered(base).await?;
        let before = self.graph(base, &GraphFilter::whole_with_splits()).await?;
        let edges = diff::diff(
            &Period {
                edges: &before.edges,
                secs: base.window_secs,
            },
            &Period {
                edges: &after.edges,
                secs: now.window_secs,
            },
        );
        Ok(GraphDiff {
            base,
            now,
            nodes: node_changes(&before, after),
            edges,
        })
    }
}

/// Nodes of either view: new (only now), vanished (only before) or unchanged.
fn node_changes(before: &GraphView, after: &GraphView) -> Vec<(NodeKey, NodePlacement, Change)> {
    let mut nodes: BTreeMap<NodeKey, (NodePlacement, Change)> = before
        .nodes
        .iter()
        .map(|(key, placement)| (key.clone(), (placement.clone(), Change::Vanished)))
        .collect();
    for (key, placement) in &after.nodes {
        nodes
            .entry(key.clone())
            .and_modify(|(_, change)| *change = Change::Unchanged)
            .or_insert_with(|| (placement.clone(), Change::New));
    }
    nodes
        .into_iter()
        .map(|(key, (placement, change))| (key, placement, change))
        .collect()
}
