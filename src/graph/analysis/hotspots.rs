//! Hot spots read off single edges and single nodes: chatty pairs (many calls on one edge
//! within one trace, the N+1 pattern) and fan-out (nodes that call many others).

use serde::Serialize;

use crate::model::graph::{EdgeKind, NodeKind};

use super::view::{GraphView, IndexedGraph};

/// One edge whose calls come in bursts within a trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChattyPair {
    pub source: String,
    pub target: String,
    pub kind: EdgeKind,
    /// `num_requests / num_traces`: the average calls one trace makes on this edge.
    pub calls_per_trace: f64,
    /// The most calls a single trace made on this edge.
    pub max_calls_per_trace: u64,
    pub num_requests: u64,
    pub num_traces: u64,
    pub requests_per_s: f64,
}

/// Edges averaging at least `min_calls_per_trace` calls per trace (edges without trace counts
/// are skipped), most calls per trace first, then the highest single-trace burst, then by
/// source, target and kind; at most `top_n`.
pub fn chatty_pairs(view: &GraphView, min_calls_per_trace: f64, top_n: usize) -> Vec<ChattyPair> {
    let mut pairs: Vec<ChattyPair> = view
        .edges
        .iter()
        .filter(|(_, stats)| stats.num_traces > 0)
        .filter_map(|(edge, stats)| {
            let calls_per_trace = stats.num_requests as f64 / stats.num_traces as f64;
            (calls_per_trace >= min_calls_per_trace).then(|| ChattyPair {
                source: edge.source.id(),
                target: edge.target.id(),
                kind: edge.kind,
                calls_per_trace,
                max_calls_per_trace: stats.max_calls_per_trace,
                num_requests: stats.num_requests,
                num_traces: stats.num_traces,
                requests_per_s: view.rate_per_s(stats.num_requests),
            })
        })
        .collect();
    pairs.sort_by(|left, right| {
        right
            .calls_per_trace
            .total_cmp(&left.calls_per_trace)
            .then_with(|| right.max_calls_per_trace.cmp(&left.max_calls_per_trace))
            .then_with(|| left.source.cmp(&right.source))
            .then_with(|| left.target.cmp(&right.target))
            .then_with(|| left.kind.cmp(&right.kind))
    });
    pairs.truncate(top_n);
    pairs
}

/// A node and how widely it calls out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FanOut {
    pub node: String,
    pub kind: NodeKind,
    /// Distinct other nodes it calls or publishes to.
    pub num_callees: usize,
    /// Of those, the ones it calls synchronously (HTTP or gRPC) and so waits for.
    pub num_synchronous_callees: usize,
    /// All its outgoing requests per second, calls to itself included.
    pub requests_per_s: f64,
}

/// Nodes with the most distinct callees, then the most synchronous ones, then the busiest,
/// then by id; at most `top_n`. Topics (which deliver rather than call) and client nodes
/// (the outside world) are left out.
pub fn fan_out(view: &GraphView, top_n: usize) -> Vec<FanOut> {
    fan_out_in(&IndexedGraph::new(view), top_n)
}

pub(super) fn fan_out_in(graph: &IndexedGraph<'_>, top_n: usize) -> Vec<FanOut> {
    let mut fan_outs: Vec<FanOut> = (0..graph.num_nodes())
        .filter(|node| !matches!(graph.kind(*node), NodeKind::Topic | NodeKind::Client))
        .filter_map(|node| node_fan_out(graph, node))
        .collect();
    fan_outs.sort_by(|left, right| {
        right
            .num_callees
            .cmp(&left.num_callees)
            .then_with(|| {
                right
                    .num_synchronous_callees
                    .cmp(&left.num_synchronous_callees)
            })
            .then_with(|| right.requests_per_s.total_cmp(&left.requests_per_s))
            .then_with(|| left.node.cmp(&right.node))
    });
    fan_outs.truncate(top_n);
    fan_outs
}

/// `None` for a node that calls nobody else.
fn node_fan_out(graph: &IndexedGraph<'_>, node: usize) -> Option<FanOut> {
    // Links are merged per target, so each non-self link is one distinct callee.
    let links: Vec<_> = graph.outgoing[node]
        .iter()
        .map(|index| &graph.links[*index])
        .collect();
    let callees = links.iter().filter(|link| !link.is_self_loop());
    let num_callees = callees.clone().count();
    if num_callees == 0 {
        return None;
    }
    Some(FanOut {
        node: graph.ids[node].clone(),
        kind: graph.kind(node),
        num_callees,
        num_synchronous_callees: callees.filter(|link| link.has_synchronous_kind()).count(),
        requests_per_s: graph.rate_per_s(links.iter().map(|link| link.num_requests).sum()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::analysis::fixtures::ViewBuilder;

    #[test]
    fn reports_pairs_at_or_above_the_threshold_most_chatty_first() {
        let view = ViewBuilder::new()
            // 600 calls in 50 traces: 12 per trace, one trace made 40.
            .edge_with_traces(
                "service:orders",
                "service:pricing",
                EdgeKind::Http,
                600,
                50,
                40,
            )
            // Exactly 10 per trace: at the threshold, so reported.
            .edge_with_traces(
                "service:orders",
                "database:redis cache",
                EdgeKind::Database,
                100,
                10,
                10,
            )
            // 9.9 per trace: below.
            .edge_with_traces(
                "service:gateway",
                "service:orders",
                EdgeKind::Grpc,
                99,
                10,
                30,
            )
            // No trace counts (e.g. rolled up before they were kept): skipped, not infinite.
            .edge_with_traces("service:gateway", "service:auth", EdgeKind::Http, 500, 0, 0)
            .build();

        let pairs = chatty_pairs(&view, 10.0, 10);

        assert_eq!(
            pairs,
            vec![
                ChattyPair {
                    source: "service:orders".to_owned(),
                    target: "service:pricing".to_owned(),
                    kind: EdgeKind::Http,
                    calls_per_trace: 12.0,
                    max_calls_per_trace: 40,
                    num_requests: 600,
                    num_traces: 50,
                    requests_per_s: 10.0,
                },
                ChattyPair {
                    source: "service:orders".to_owned(),
                    target: "database:redis cache".to_owned(),
                    kind: EdgeKind::Database,
                    calls_per_trace: 10.0,
                    max_calls_per_trace: 10,
                    num_requests: 100,
                    num_traces: 10,
                    requests_per_s: 100.0 / 60.0,
                },
            ]
        );
        assert_eq!(chatty_pairs(&view, 10.0, 1).len(), 1);
    }

    #[test]
    fn counts_distinct_and_synchronous_callees() {
        let view = ViewBuilder::new()
            .http("client:user", "service:gateway", 600)
            .http("client:user", "service:admin", 60)
            .http("service:gateway", "service:a", 60)
            .edge("service:gateway", "service:a", EdgeKind::Grpc, 60)
            .edge("service:gateway", "service:b", EdgeKind::Grpc, 60)
            .edge(
                "service:gateway",
                "topic:kafka events",
                EdgeKind::Messaging,
                60,
            )
            .edge(
                "service:gateway",
                "database:postgresql db",
                EdgeKind::Database,
                60,
            )
            .http("service:gateway", "service:gateway", 60)
            .edge("topic:kafka events", "service:a", EdgeKind::Messaging, 60)
            .edge("topic:kafka events", "service:b", EdgeKind::Messaging, 60)
            .edge("topic:kafka events", "service:c", EdgeKind::Messaging, 60)
            .http("service:a", "service:b", 120)
            .http("service:c", "service:b", 120)
            .build();

        let fan_outs = fan_out(&view, 10);

        assert_eq!(
            fan_outs[0],
            FanOut {
                node: "service:gateway".to_owned(),
                kind: NodeKind::Service,
                num_callees: 4,
                num_synchronous_callees: 2,
                requests_per_s: 6.0,
            }
        );
        let ranked: Vec<(&str, usize)> = fan_outs
            .iter()
            .map(|fan_out| (fan_out.node.as_str(), fan_out.num_callees))
            .collect();
        // a and c tie on everything but the id; b, the database and topics call nobody or
        // are left out.
        assert_eq!(
            ranked,
            vec![("service:gateway", 4), ("service:a", 1), ("service:c", 1)]
        );
    }
}
