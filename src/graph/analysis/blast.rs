//! Blast radius: which nodes are hurt, how far away and by how much traffic, when one node
//! fails. The direction rule lives on [`blast_radius`].

use std::collections::VecDeque;

use serde::Serialize;

use crate::model::graph::{NodeKey, NodeKind};

use super::view::{GraphView, IndexedGraph};

/// What fails with one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlastRadius {
    /// The failing node's id.
    pub node: String,
    pub kind: NodeKind,
    pub num_affected: usize,
    /// Requests per second from affected nodes into the failing set (the failing node and
    /// every affected node): the traffic that errors or hangs.
    pub affected_requests_per_s: f64,
    /// Requests per second on every edge of the map.
    pub total_requests_per_s: f64,
    /// `affected_requests_per_s / total_requests_per_s`, 0 on an idle map.
    pub affected_traffic_share: f64,
    /// Nearest first, then the most traffic into the failing set, then by id.
    pub affected: Vec<AffectedNode>,
}

/// One node hurt by the failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AffectedNode {
    pub node: String,
    pub kind: NodeKind,
    /// Dependency hops from this node to the failing one (1 = a direct caller).
    pub num_hops: usize,
    /// This node's requests per second into the failing set.
    pub requests_per_s: f64,
}

/// The nodes that fail or degrade when `node` fails; `None` when `node` is not on the map.
///
/// # Direction
/// A failure travels from a dependency to its dependents: the nodes whose own requests error
/// or hang, which is what on-call means by "who else is down". X depends on Y when
/// - X calls Y (HTTP, gRPC, database, other): X's calls to Y fail;
/// - X publishes to topic Y: publishing fails when the topic (its broker) is down;
/// - X consumes topic Y: X's input stops.
///
/// So a failure climbs from callees to callers and from a topic to both its producers and
/// its consumers, and it does not travel from a consumer back to its topic or producers: a
/// failing consumer leaves lag, not errors, which is what the topic is there for. Nor does it
/// travel down a call: a failing caller only starves its callees of traffic.
pub fn blast_radius(view: &GraphView, node: &NodeKey) -> Option<BlastRadius> {
    let graph = IndexedGraph::new(view);
    let failing = graph.index_of(node)?;
    Some(blast_radius_in(&graph, failing))
}

pub(super) fn blast_radius_in(graph: &IndexedGraph<'_>, failing: usize) -> BlastRadius {
    let reach = Reach::of(graph, failing);
    let mut affected: Vec<AffectedNode> = (0..graph.num_nodes())
        .filter(|node| *node != failing)
        .filter_map(|node| {
            Some(AffectedNode {
                node: graph.ids[node].clone(),
                kind: graph.kind(node),
                num_hops: reach.num_hops[node]?,
                requests_per_s: graph.rate_per_s(reach.num_requests_into_failing[node]),
            })
        })
        .collect();
    // Node indices follow id order and the sort is stable: ties stay sorted by id.
    affected.sort_by(|left, right| {
        left.num_hops
            .cmp(&right.num_hops)
            .then_with(|| right.requests_per_s.total_cmp(&left.requests_per_s))
    });
    let affected_requests_per_s = graph.rate_per_s(reach.num_affected_requests());
    BlastRadius {
        node: graph.ids[failing].clone(),
        kind: graph.kind(failing),
        num_affected: affected.len(),
        affected_requests_per_s,
        total_requests_per_s: graph.total_requests_per_s,
        affected_traffic_share: share(affected_requests_per_s, graph.total_requests_per_s),
        affected,
    }
}

pub(super) fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// The failing node's dependents, by breadth-first search along the dependency direction.
#[derive(Debug)]
pub(super) struct Reach {
    /// Per node: hops from the failing node (0 for itself), `None` when unaffected.
    pub num_hops: Vec<Option<usize>>,
    /// Per node: its requests into the failing set (0 for the failing node itself).
    pub num_requests_into_failing: Vec<u64>,
}

impl Reach {
    pub fn of(graph: &IndexedGraph<'_>, failing: usize) -> Self {
        let mut num_hops = vec![None; graph.num_nodes()];
        num_hops[failing] = Some(0);
        let mut queue = VecDeque::from([(failing, 0)]);
        while let Some((node, hops)) = queue.pop_front() {
            for link in graph.dependents[node]
                .iter()
                .map(|index| &graph.links[*index])
            {
                if num_hops[link.dependent].is_none() {
                    num_hops[link.dependent] = Some(hops + 1);
                    queue.push_back((link.dependent, hops + 1));
                }
            }
        }
        let mut num_requests_into_failing = vec![0; graph.num_nodes()];
        // A link whose dependency failed has a failed dependent (the search is closed), so
        // every such link is traffic into the failing set, unless it leaves the failing node.
        for link in &graph.links {
            if num_hops[link.dependency].is_some() && link.dependent != failing {
                num_requests_into_failing[link.dependent] += link.num_requests;
            }
        }
        Self {
            num_hops,
            num_requests_into_failing,
        }
    }

    /// Affected nodes, the failing one excluded.
    pub fn num_affected(&self) -> usize {
        self.num_hops.iter().flatten().count().saturating_sub(1)
    }

    pub fn num_affected_requests(&self) -> u64 {
        self.num_requests_into_failing.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::analysis::fixtures::{ViewBuilder, key};
    use crate::model::graph::EdgeKind;

    fn affected(radius: &BlastRadius) -> Vec<(&str, usize, f64)> {
        radius
            .affected
            .iter()
            .map(|node| (node.node.as_str(), node.num_hops, node.requests_per_s))
            .collect()
    }

    /// user → gateway → {orders, search}; orders → pricing; orders, pricing → db;
    /// search → index (another database); orders → topic → shipping. A 60 s window.
    fn shop() -> GraphView {
        ViewBuilder::new()
            .http("client:user", "service:gateway", 600)
            .http("service:gateway", "service:orders", 300)
            .http("service:gateway", "service:search", 300)
            .http("service:orders", "service:pricing", 120)
            .edge(
                "service:orders",
                "database:postgresql db",
                EdgeKind::Database,
                180,
            )
            .edge(
                "service:pricing",
                "database:postgresql db",
                EdgeKind::Database,
                60,
            )
            .edge(
                "service:search",
                "database:elasticsearch index",
                EdgeKind::Database,
                300,
            )
            .edge(
                "service:orders",
                "topic:kafka orders",
                EdgeKind::Messaging,
                60,
            )
            .edge(
                "topic:kafka orders",
                "service:shipping",
                EdgeKind::Messaging,
                60,
            )
            .build()
    }

    #[test]
    fn a_failing_database_hurts_exactly_its_transitive_callers() {
        let radius = blast_radius(&shop(), &key("database:postgresql db")).expect("on the map");

        assert_eq!(
            affected(&radius),
            vec![
                ("service:orders", 1, 3.0 + 2.0),
                ("service:pricing", 1, 1.0),
                ("service:gateway", 2, 5.0),
                ("client:user", 3, 10.0),
            ]
        );
        assert_eq!(radius.num_affected, 4);
        assert_eq!(radius.affected_requests_per_s, 21.0);
        assert_eq!(radius.total_requests_per_s, 33.0);
        assert_eq!(radius.affected_traffic_share, 21.0 / 33.0);
        assert_eq!(radius.kind, NodeKind::Database);
    }

    #[test]
    fn a_failing_topic_hurts_its_producers_and_consumers() {
        let radius = blast_radius(&shop(), &key("topic:kafka orders")).expect("on the map");

        assert_eq!(
            affected(&radius),
            vec![
                ("service:orders", 1, 1.0),
                ("service:shipping", 1, 1.0),
                ("service:gateway", 2, 5.0),
                ("client:user", 3, 10.0),
            ]
        );
    }

    #[test]
    fn a_failing_consumer_does_not_reach_its_topic_or_producers() {
        let radius = blast_radius(&shop(), &key("service:shipping")).expect("on the map");

        assert_eq!(radius.num_affected, 0);
        assert_eq!(radius.affected_requests_per_s, 0.0);
        assert_eq!(radius.affected_traffic_share, 0.0);
    }

    #[test]
    fn a_failure_does_not_travel_down_a_call() {
        let radius = blast_radius(&shop(), &key("service:gateway")).expect("on the map");

        assert_eq!(affected(&radius), vec![("client:user", 1, 10.0)]);
    }

    #[test]
    fn a_node_not_on_the_map_has_no_blast_radius() {
        assert_eq!(blast_radius(&shop(), &key("service:unknown")), None);
    }

    #[test]
    fn a_cycle_does_not_count_the_failing_node_or_its_own_calls() {
        let view = ViewBuilder::new()
            .http("service:a", "service:b", 60)
            .http("service:b", "service:a", 120)
            .build();

        let radius = blast_radius(&view, &key("service:a")).expect("on the map");

        assert_eq!(affected(&radius), vec![("service:b", 1, 2.0)]);
        assert_eq!(radius.affected_traffic_share, 2.0 / 3.0);
    }

    #[test]
    fn an_empty_window_gives_zero_rates_not_nan() {
        let mut view = shop();
        view.window_secs = 0.0;

        let radius = blast_radius(&view, &key("database:postgresql db")).expect("on the map");

        assert_eq!(radius.num_affected, 4);
        assert_eq!(radius.affected_requests_per_s, 0.0);
        assert_eq!(radius.affected_traffic_share, 0.0);
    }
}
