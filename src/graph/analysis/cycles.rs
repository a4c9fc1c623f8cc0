//! Dependency cycles: one report per strongly connected component of the map (Tarjan), with a
//! concrete cycle through it. Edges keep their observed direction, so a cycle may run through
//! a topic (A → topic → B → A); a purely synchronous cycle is preferred as the example when
//! the component has one, because that is the kind that deadlocks and amplifies retries.

use std::collections::{HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeFiltered;
use serde::Serialize;

use crate::model::graph::{EdgeKind, NodeKind};

use super::view::{GraphView, IndexedGraph};

/// One strongly connected component of the map and an example cycle through it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cycle {
    /// Node ids around the example cycle, the first repeated at the end (`[a, b, a]`).
    pub path: Vec<String>,
    /// The kind of each hop of `path` (one fewer than `path`); the busiest kind where a pair
    /// has several, the busiest synchronous one on a synchronous cycle.
    pub edge_kinds: Vec<EdgeKind>,
    /// The cycle passes through a topic, so part of it is asynchronous.
    pub through_topic: bool,
    /// Every hop is a blocking call (HTTP or gRPC).
    pub synchronous: bool,
    /// Every node of the component, sorted by id: all of them lie on some cycle.
    pub component: Vec<String>,
}

/// Cycles of the map, synchronous ones first, then by the id where the example path starts.
pub fn cycles(view: &GraphView) -> Vec<Cycle> {
    cycles_in(&IndexedGraph::new(view))
}

pub(super) fn cycles_in(graph: &IndexedGraph<'_>) -> Vec<Cycle> {
    let digraph = to_petgraph(graph);
    let synchronous_only = EdgeFiltered::from_fn(&digraph, |edge| {
        graph.links[*edge.weight()].has_synchronous_kind()
    });
    let synchronous_component_of = label_components(graph, tarjan_scc(&synchronous_only), |kind| {
        kind.is_synchronous()
    });
    let mut found: Vec<Cycle> = tarjan_scc(&digraph)
        .into_iter()
        .map(|component| sorted_indices(&component))
        .filter(|component| is_cyclic(graph, component, |_| true))
        .filter_map(|component| example_cycle(graph, &component, &synchronous_component_of))
        .collect();
    found.sort_by(|left, right| {
        right
            .synchronous
            .cmp(&left.synchronous)
            .then_with(|| left.path.cmp(&right.path))
    });
    found
}

/// Node `i` of the petgraph graph is node `i` of `graph`; edge weights index `graph.links`.
fn to_petgraph(graph: &IndexedGraph<'_>) -> StableDiGraph<(), usize> {
    let mut digraph = StableDiGraph::with_capacity(graph.num_nodes(), graph.links.len());
    for _ in 0..graph.num_nodes() {
        digraph.add_node(());
    }
    for (link_index, link) in graph.links.iter().enumerate() {
        digraph.add_edge(
            NodeIndex::new(link.source),
            NodeIndex::new(link.target),
            link_index,
        );
    }
    digraph
}

fn sorted_indices(component: &[NodeIndex]) -> Vec<usize> {
    let mut indices: Vec<usize> = component.iter().map(|node| node.index()).collect();
    indices.sort_unstable();
    indices
}

/// A component is cyclic when it has two nodes or more, or one node calling itself.
fn is_cyclic(
    graph: &IndexedGraph<'_>,
    component: &[usize],
    accept: impl Fn(EdgeKind) -> bool,
) -> bool {
    match component {
        [] => false,
        [node] => graph.outgoing[*node].iter().any(|link_index| {
            let link = &graph.links[*link_index];
            link.is_self_loop() && link.busiest_kind(&accept).is_some()
        }),
        _ => true,
    }
}

/// For each node on a cyclic component (under `accept`), that component's number.
fn label_components(
    graph: &IndexedGraph<'_>,
    components: Vec<Vec<NodeIndex>>,
    accept: impl Fn(EdgeKind) -> bool,
) -> Vec<Option<usize>> {
    let mut component_of = vec![None; graph.num_nodes()];
    let cyclic = components
        .iter()
        .map(|component| sorted_indices(component))
        .filter(|component| is_cyclic(graph, component, &accept));
    for (number, component) in cyclic.enumerate() {
        for node in component {
            component_of[node] = Some(number);
        }
    }
    component_of
}

/// The example cycle of `component`: through the lowest-id node that lies on a synchronous
/// cycle if there is one (staying on synchronous hops), else through the lowest-id node.
fn example_cycle(
    graph: &IndexedGraph<'_>,
    component: &[usize],
    synchronous_component_of: &[Option<usize>],
) -> Option<Cycle> {
    let synchronous_start = component
        .iter()
        .find_map(|node| synchronous_component_of[*node].map(|number| (*node, number)));
    let hops = match synchronous_start {
        Some((start, number)) => shortest_cycle_through(
            graph,
            start,
            |node| synchronous_component_of[node] == Some(number),
            EdgeKind::is_synchronous,
        ),
        None => shortest_cycle_through(
            graph,
            *component.first()?,
            |node| component.binary_search(&node).is_ok(),
            |_| true,
        ),
    };
    debug_assert!(hops.is_some(), "a cyclic component has a cycle");
    let hops = hops?;
    Some(Cycle {
        path: std::iter::once(hops.first()?.0)
            .chain(hops.iter().map(|(_, target, _)| *target))
            .map(|node| graph.ids[node].clone())
            .collect(),
        edge_kinds: hops.iter().map(|(_, _, kind)| *kind).collect(),
        through_topic: hops
            .iter()
            .any(|(source, _, _)| graph.kind(*source) == NodeKind::Topic),
        synchronous: hops.iter().all(|(_, _, kind)| kind.is_synchronous()),
        component: component
            .iter()
            .map(|node| graph.ids[*node].clone())
            .collect(),
    })
}

/// Breadth-first search from `start` over `in_scope` nodes and `accept`ed kinds until a link
/// leads back to `start`: the hops (source, target, kind) of a shortest cycle through it.
fn shortest_cycle_through(
    graph: &IndexedGraph<'_>,
    start: usize,
    in_scope: impl Fn(usize) -> bool,
    accept: impl Fn(EdgeKind) -> bool,
) -> Option<Vec<(usize, usize, EdgeKind)>> {
    let mut reached_by: HashMap<usize, (usize, EdgeKind)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for link in graph.outgoing[node]
            .iter()
            .map(|index| &graph.links[*index])
        {
            let Some(kind) = link.busiest_kind(&accept) else {
                continue;
            };
            if link.target == start {
                return Some(hops_back_to(start, node, kind, &reached_by));
            }
            if in_scope(link.target) && !reached_by.contains_key(&link.target) {
                reached_by.insert(link.target, (node, kind));
                queue.push_back(link.target);
            }
        }
    }
    None
}

/// The hops from `start` to `last` along `reached_by`, then the closing hop `last` → `start`.
fn hops_back_to(
    start: usize,
    last: usize,
    closing_kind: EdgeKind,
    reached_by: &HashMap<usize, (usize, EdgeKind)>,
) -> Vec<(usize, usize, EdgeKind)> {
    let mut hops = vec![(last, start, closing_kind)];
    let mut node = last;
    while node != start {
        let Some(&(previous, kind)) = reached_by.get(&node) else {
            debug_assert!(false, "every reached node has a predecessor");
            break;
        };
        hops.push((previous, node, kind));
        node = previous;
    }
    hops.reverse();
    hops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::analysis::fixtures::ViewBuilder;

    fn ids(path: &[&str]) -> Vec<String> {
        path.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn finds_a_synchronous_three_node_cycle() {
        let view = ViewBuilder::new()
            .http("service:b", "service:c", 10)
            .http("service:a", "service:b", 10)
            .edge("service:c", "service:a", EdgeKind::Grpc, 10)
            .http("client:user", "service:a", 5)
            .build();

        let found = cycles(&view);

        assert_eq!(
            found,
            vec![Cycle {
                path: ids(&["service:a", "service:b", "service:c", "service:a"]),
                edge_kinds: vec![EdgeKind::Http, EdgeKind::Http, EdgeKind::Grpc],
                through_topic: false,
                synchronous: true,
                component: ids(&["service:a", "service:b", "service:c"]),
            }]
        );
    }

    #[test]
    fn a_cycle_through_a_topic_counts_and_is_asynchronous() {
        let view = ViewBuilder::new()
            .edge("service:a", "topic:kafka orders", EdgeKind::Messaging, 10)
            .edge("topic:kafka orders", "service:b", EdgeKind::Messaging, 10)
            .http("service:b", "service:a", 10)
            .build();

        let found = cycles(&view);

        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            ids(&["service:a", "topic:kafka orders", "service:b", "service:a"])
        );
        assert_eq!(
            found[0].edge_kinds,
            vec![EdgeKind::Messaging, EdgeKind::Messaging, EdgeKind::Http]
        );
        assert!(found[0].through_topic);
        assert!(!found[0].synchronous);
    }

    #[test]
    fn a_dag_has_no_cycle() {
        // A diamond with a shared database and a topic: many paths, no way back.
        let view = ViewBuilder::new()
            .http("client:user", "service:gateway", 100)
            .http("service:gateway", "service:a", 50)
            .http("service:gateway", "service:b", 50)
            .http("service:a", "service:c", 50)
            .http("service:b", "service:c", 50)
            .edge(
                "service:c",
                "database:postgresql db",
                EdgeKind::Database,
                100,
            )
            .edge("service:a", "topic:kafka t", EdgeKind::Messaging, 10)
            .edge("topic:kafka t", "service:b", EdgeKind::Messaging, 10)
            .build();

        assert_eq!(cycles(&view), Vec::<Cycle>::new());
    }

    #[test]
    fn a_service_calling_itself_is_a_cycle() {
        let view = ViewBuilder::new()
            .http("service:a", "service:a", 3)
            .http("service:a", "service:b", 3)
            .build();

        let found = cycles(&view);

        assert_eq!(
            found,
            vec![Cycle {
                path: ids(&["service:a", "service:a"]),
                edge_kinds: vec![EdgeKind::Http],
                through_topic: false,
                synchronous: true,
                component: ids(&["service:a"]),
            }]
        );
    }

    #[test]
    fn prefers_a_synchronous_cycle_as_the_example_of_a_mixed_component() {
        // a → topic → b → a is shorter through `a`, but b ⇄ c is the synchronous hazard.
        let view = ViewBuilder::new()
            .edge("service:a", "topic:kafka t", EdgeKind::Messaging, 10)
            .edge("topic:kafka t", "service:b", EdgeKind::Messaging, 10)
            .http("service:b", "service:a", 10)
            .http("service:b", "service:c", 10)
            .http("service:c", "service:b", 10)
            .build();

        let found = cycles(&view);

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, ids(&["service:b", "service:c", "service:b"]));
        assert!(found[0].synchronous);
        assert_eq!(
            found[0].component,
            ids(&["service:a", "service:b", "service:c", "topic:kafka t"])
        );
    }

    #[test]
    fn reports_each_component_synchronous_first() {
        let view = ViewBuilder::new()
            .edge("service:a", "service:b", EdgeKind::Other, 1)
            .edge("service:b", "service:a", EdgeKind::Other, 1)
            .http("service:x", "service:y", 1)
            .http("service:y", "service:x", 1)
            .http("service:b", "service:x", 1)
            .build();

        let starts: Vec<(String, bool)> = cycles(&view)
            .into_iter()
            .map(|cycle| (cycle.path[0].clone(), cycle.synchronous))
            .collect();

        assert_eq!(
            starts,
            vec![
                ("service:x".to_owned(), true),
                ("service:a".to_owned(), false)
            ]
        );
    }
}
