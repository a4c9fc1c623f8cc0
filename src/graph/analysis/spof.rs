//! Single points of failure: nodes that are the only link between parts of the map and whose
//! failure hurts others. Structure comes from the articulation points of the undirected map;
//! harm comes from the blast radius.

use serde::Serialize;

use crate::model::graph::NodeKind;

use super::blast::{Reach, share};
use super::view::{GraphView, IndexedGraph};

/// A node whose removal splits the map and whose failure hurts other nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinglePoint {
    pub node: String,
    pub kind: NodeKind,
    /// Nodes in its blast radius (see [`super::blast_radius`]), client nodes included.
    pub num_dependents: usize,
    /// Parts its connected piece of the map falls into without it (2 or more).
    pub num_separated_parts: usize,
    pub affected_requests_per_s: f64,
    pub affected_traffic_share: f64,
}

/// Articulation points of the map taken as undirected, client nodes left out (they stand for
/// the outside world, which would otherwise tie unrelated entry services together), that have
/// at least one dependent. Most dependents first, then the most affected traffic, then by id.
///
/// Costs one blast-radius search per articulation point: O(points × (nodes + edges)).
pub fn single_points_of_failure(view: &GraphView) -> Vec<SinglePoint> {
    single_points_of_failure_in(&IndexedGraph::new(view))
}

pub(super) fn single_points_of_failure_in(graph: &IndexedGraph<'_>) -> Vec<SinglePoint> {
    let num_parts_without = separated_parts(&undirected_adjacency(graph));
    let mut points: Vec<SinglePoint> = num_parts_without
        .iter()
        .enumerate()
        .filter(|(_, num_parts)| **num_parts >= 2)
        .filter_map(|(node, num_parts)| {
            let reach = Reach::of(graph, node);
            let affected_requests_per_s = graph.rate_per_s(reach.num_affected_requests());
            (reach.num_affected() > 0).then(|| SinglePoint {
                node: graph.ids[node].clone(),
                kind: graph.kind(node),
                num_dependents: reach.num_affected(),
                num_separated_parts: *num_parts,
                affected_requests_per_s,
                affected_traffic_share: share(affected_requests_per_s, graph.total_requests_per_s),
            })
        })
        .collect();
    // Stable sort over nodes in id order: ties stay sorted by id.
    points.sort_by(|left, right| {
        right
            .num_dependents
            .cmp(&left.num_dependents)
            .then_with(|| {
                right
                    .affected_requests_per_s
                    .total_cmp(&left.affected_requests_per_s)
            })
    });
    points
}

/// Sorted, deduplicated neighbours of every node, ignoring direction, self-loops and client
/// nodes (whose own lists stay empty).
fn undirected_adjacency(graph: &IndexedGraph<'_>) -> Vec<Vec<usize>> {
    let mut adjacency = vec![Vec::new(); graph.num_nodes()];
    let is_client = |node: usize| graph.kind(node) == NodeKind::Client;
    for link in &graph.links {
        if link.is_self_loop() || is_client(link.source) || is_client(link.target) {
            continue;
        }
        adjacency[link.source].push(link.target);
        adjacency[link.target].push(link.source);
    }
    for neighbours in &mut adjacency {
        neighbours.sort_unstable();
        neighbours.dedup();
    }
    adjacency
}

/// For every node, the number of parts its connected component falls into when it is removed
/// (0 for an isolated node, 1 when nothing separates, 2+ for an articulation point), by
/// Tarjan's low-link depth-first search, iterative so deep chains cannot overflow the stack.
/// Written here rather than taken from petgraph because that one reports only membership.
fn separated_parts(adjacency: &[Vec<usize>]) -> Vec<usize> {
    const UNVISITED: usize = usize::MAX;
    let num_nodes = adjacency.len();
    let mut discovered_at = vec![UNVISITED; num_nodes];
    let mut low = vec![UNVISITED; num_nodes];
    let mut num_parts = vec![0; num_nodes];
    let mut is_root = vec![false; num_nodes];
    let mut time = 0;
    for root in 0..num_nodes {
        if discovered_at[root] != UNVISITED {
            continue;
        }
        is_root[root] = true;
        discovered_at[root] = time;
        low[root] = time;
        time += 1;
        // (node, its DFS parent, position of the next neighbour to look at)
        let mut stack = vec![(root, UNVISITED, 0)];
        while let Some((node, parent, next)) = stack.last_mut() {
            let (node, parent) = (*node, *parent);
            if let Some(&neighbour) = adjacency[node].get(*next) {
                *next += 1;
                if discovered_at[neighbour] == UNVISITED {
                    discovered_at[neighbour] = time;
                    low[neighbour] = time;
                    time += 1;
                    stack.push((neighbour, node, 0));
                } else if neighbour != parent {
                    low[node] = low[node].min(discovered_at[neighbour]);
                }
                continue;
            }
            stack.pop();
            if parent != UNVISITED {
                low[parent] = low[parent].min(low[node]);
                // Nothing below `node` reaches above `parent`: removing `parent` cuts it off.
                if low[node] >= discovered_at[parent] {
                    num_parts[parent] += 1;
                }
            }
        }
    }
    // Besides the subtrees it cuts off, a non-root leaves the part holding its parent.
    for (num_parts, is_root) in num_parts.iter_mut().zip(&is_root) {
        if !is_root {
            *num_parts += 1;
        }
    }
    num_parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::analysis::fixtures::ViewBuilder;
    use crate::model::graph::EdgeKind;

    fn ranked(points: &[SinglePoint]) -> Vec<(&str, usize, usize)> {
        points
            .iter()
            .map(|point| {
                (
                    point.node.as_str(),
                    point.num_dependents,
                    point.num_separated_parts,
                )
            })
            .collect()
    }

    #[test]
    fn the_hub_of_a_star_is_the_single_point() {
        let database = "database:postgresql shared";
        let view = ViewBuilder::new()
            .edge("service:a", database, EdgeKind::Database, 60)
            .edge("service:b", database, EdgeKind::Database, 60)
            .edge("service:c", database, EdgeKind::Database, 60)
            .edge("service:d", database, EdgeKind::Database, 60)
            .http("client:user", "service:a", 60)
            .build();

        let points = single_points_of_failure(&view);

        assert_eq!(ranked(&points), vec![(database, 5, 4)]);
        assert_eq!(points[0].affected_requests_per_s, 5.0);
        assert_eq!(points[0].affected_traffic_share, 1.0);
    }

    #[test]
    fn ranks_the_nodes_bridging_two_clusters_by_dependents() {
        // Two triangles joined by a1 → b → c1; users enter at a2 (and skip the ranking).
        let view = ViewBuilder::new()
            .http("service:a2", "service:a1", 60)
            .http("service:a3", "service:a1", 60)
            .http("service:a2", "service:a3", 60)
            .http("service:a1", "service:b", 60)
            .http("service:b", "service:c1", 60)
            .http("service:c1", "service:c2", 60)
            .http("service:c1", "service:c3", 60)
            .http("service:c2", "service:c3", 60)
            .http("client:user", "service:a2", 60)
            .build();

        let points = single_points_of_failure(&view);

        assert_eq!(
            ranked(&points),
            vec![
                ("service:c1", 5, 2),
                ("service:b", 4, 2),
                ("service:a1", 3, 2),
            ]
        );
    }

    #[test]
    fn a_gateway_that_only_users_call_still_counts() {
        let view = ViewBuilder::new()
            .http("client:user", "service:gateway", 60)
            .http("service:gateway", "service:a", 60)
            .http("service:gateway", "service:b", 60)
            .http("service:gateway", "service:c", 60)
            .build();

        assert_eq!(
            ranked(&single_points_of_failure(&view)),
            vec![("service:gateway", 1, 3)]
        );
    }

    #[test]
    fn a_ring_has_no_single_point() {
        let view = ViewBuilder::new()
            .http("service:a", "service:b", 60)
            .http("service:b", "service:c", 60)
            .http("service:c", "service:d", 60)
            .http("service:a", "service:d", 60)
            .build();

        assert_eq!(single_points_of_failure(&view), Vec::new());
    }

    #[test]
    fn counts_the_parts_a_node_separates() {
        // 0 - 1 - 2 - 3, 1 - 4, and 5 alone; 6 - 7 - 6 joined twice.
        let adjacency = vec![
            vec![1],
            vec![0, 2, 4],
            vec![1, 3],
            vec![2],
            vec![1],
            vec![],
            vec![7],
            vec![6],
        ];

        assert_eq!(separated_parts(&adjacency), vec![1, 3, 2, 1, 1, 0, 1, 1]);
    }
}
