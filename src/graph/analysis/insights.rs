//! Every map-wide analysis in one result, with the defaults `/api/v1/insights` and the
//! insights page use. Blast radius is per node, so it is served with a node, not here.

use serde::Serialize;

use super::chains::{Chain, longest_chains};
use super::cycles::{Cycle, cycles_in};
use super::hotspots::{ChattyPair, FanOut, chatty_pairs, fan_out_in};
use super::spof::{SinglePoint, single_points_of_failure_in};
use super::view::{GraphView, IndexedGraph, ObservedChain};

/// Length of each ranked list.
pub const DEFAULT_TOP_N: usize = 10;
/// Average calls per trace on one edge from which it counts as chatty.
pub const DEFAULT_CHATTY_CALLS_PER_TRACE: f64 = 10.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insights {
    /// The window the view covers; every `requests_per_s` is over it.
    pub window_secs: f64,
    /// All of them: each is a defect, and there are at most half as many as nodes.
    pub cycles: Vec<Cycle>,
    pub longest_chains: Vec<Chain>,
    pub chatty_pairs: Vec<ChattyPair>,
    pub fan_out: Vec<FanOut>,
    /// The top [`DEFAULT_TOP_N`] by number of dependents.
    pub single_points_of_failure: Vec<SinglePoint>,
}

/// All analyses over one view (indexed once) and the chains observed in the same window.
pub fn insights(view: &GraphView, observed_chains: &[ObservedChain]) -> Insights {
    let graph = IndexedGraph::new(view);
    let mut single_points_of_failure = single_points_of_failure_in(&graph);
    single_points_of_failure.truncate(DEFAULT_TOP_N);
    Insights {
        window_secs: view.window_secs,
        cycles: cycles_in(&graph),
        longest_chains: longest_chains(observed_chains, DEFAULT_TOP_N),
        chatty_pairs: chatty_pairs(view, DEFAULT_CHATTY_CALLS_PER_TRACE, DEFAULT_TOP_N),
        fan_out: fan_out_in(&graph, DEFAULT_TOP_N),
        single_points_of_failure,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::graph::analysis::blast_radius;
    use crate::graph::analysis::fixtures::{ViewBuilder, chain, key, trace_id};
    use crate::model::graph::EdgeKind;

    #[test]
    fn serializes_to_the_documented_json_shape() {
        let view = ViewBuilder::new()
            .http("client:user", "service:a", 60)
            .edge_with_traces("service:a", "service:b", EdgeKind::Grpc, 1200, 60, 30)
            .http("service:b", "service:a", 60)
            .edge("service:b", "database:redis cache", EdgeKind::Database, 60)
            .build();
        let observed = [chain(7, &["a", "b"])];

        let value = serde_json::to_value(insights(&view, &observed)).expect("serializes");

        assert_eq!(
            value,
            json!({
                "window_secs": 60.0,
                "cycles": [{
                    "path": ["service:a", "service:b", "service:a"],
                    "edge_kinds": ["grpc", "http"],
                    "through_topic": false,
                    "synchronous": true,
                    "component": ["service:a", "service:b"],
                }],
                "longest_chains": [{
                    "services": ["a", "b"],
                    "num_hops": 1,
                    "num_occurrences": 1,
                    "example_trace_id": trace_id(7).to_hex(),
                }],
                "chatty_pairs": [{
                    "source": "service:a",
                    "target": "service:b",
                    "kind": "grpc",
                    "calls_per_trace": 20.0,
                    "max_calls_per_trace": 30,
                    "num_requests": 1200,
                    "num_traces": 60,
                    "requests_per_s": 20.0,
                }],
                "fan_out": [
                    {"node": "service:b", "kind": "service", "num_callees": 2,
                     "num_synchronous_callees": 1, "requests_per_s": 2.0},
                    {"node": "service:a", "kind": "service", "num_callees": 1,
                     "num_synchronous_callees": 1, "requests_per_s": 20.0},
                ],
                "single_points_of_failure": [{
                    "node": "service:b",
                    "kind": "service",
                    "num_dependents": 2,
                    "num_separated_parts": 2,
                    "affected_requests_per_s": 21.0,
                    "affected_traffic_share": 21.0 / 23.0,
                }],
            })
        );
    }

    fn service(number: usize) -> String {
        format!("service:s{number:03}")
    }

    /// 500 services, each calling the next four (1,990 edges); s250 → s247 closes one
    /// cycle; s499 alone uses a database; s100 publishes to a topic s400 consumes; users
    /// enter at s000; s010 → s011 makes 30 calls per trace. Every edge carries 1 request/s.
    fn large_map() -> GraphView {
        let mut builder = ViewBuilder::new();
        for caller in 0..500 {
            for callee in (caller + 1)..(caller + 5).min(500) {
                builder = if (caller, callee) == (10, 11) {
                    builder.edge_with_traces(
                        &service(caller),
                        &service(callee),
                        EdgeKind::Http,
                        60,
                        2,
                        40,
                    )
                } else {
                    builder.http(&service(caller), &service(callee), 60)
                };
            }
        }
        builder
            .http(&service(250), &service(247), 60)
            .edge(
                &service(499),
                "database:postgresql db",
                EdgeKind::Database,
                60,
            )
            .edge(&service(100), "topic:kafka t", EdgeKind::Messaging, 60)
            .edge("topic:kafka t", &service(400), EdgeKind::Messaging, 60)
            .http("client:user", &service(0), 60)
            .build()
    }

    #[test]
    fn analyses_a_map_of_500_services_and_2000_edges() {
        let view = large_map();
        assert_eq!(view.edges.len(), 1990 + 5);
        let observed: Vec<_> = (1..=200u8)
            .map(|seed| chain(seed, &["s000", "s004", "s008"][..1 + usize::from(seed % 3)]))
            .collect();

        let found = insights(&view, &observed);

        assert_eq!(found.cycles.len(), 1);
        assert_eq!(
            found.cycles[0].path,
            [service(247), service(250), service(247)]
        );
        assert_eq!(found.cycles[0].component.len(), 4);
        assert_eq!(found.longest_chains.len(), 2);
        assert_eq!(found.longest_chains[0].num_hops, 2);
        assert_eq!(found.longest_chains[0].num_occurrences, 67);
        assert_eq!(found.chatty_pairs.len(), 1);
        assert_eq!(found.chatty_pairs[0].calls_per_trace, 30.0);
        let fan_out_leaders: Vec<(&str, usize, usize)> = found.fan_out[..3]
            .iter()
            .map(|fan_out| {
                (
                    fan_out.node.as_str(),
                    fan_out.num_callees,
                    fan_out.num_synchronous_callees,
                )
            })
            .collect();
        assert_eq!(
            fan_out_leaders,
            vec![
                ("service:s250", 5, 5),
                ("service:s100", 5, 4),
                ("service:s000", 4, 4)
            ]
        );
        let points: Vec<(&str, usize)> = found
            .single_points_of_failure
            .iter()
            .map(|point| (point.node.as_str(), point.num_dependents))
            .collect();
        // Every service reaches s499; the topic is no bridge because s100 reaches s400.
        assert_eq!(points, vec![("service:s499", 500)]);

        let radius = blast_radius(&view, &key("database:postgresql db")).expect("on the map");
        assert_eq!(radius.num_affected, 501);
        assert_eq!(radius.affected_requests_per_s, 1993.0);
        assert_eq!(radius.total_requests_per_s, 1995.0);
        for affected in &radius.affected {
            let expected_hops = match affected.node.strip_prefix("service:s") {
                Some(number) => 1 + (499 - number.parse::<usize>().expect("numbered")).div_ceil(4),
                None => 1 + 499_usize.div_ceil(4) + 1,
            };
            assert_eq!(affected.num_hops, expected_hops, "{}", affected.node);
        }
    }

    #[test]
    fn results_do_not_depend_on_input_order() {
        let view = large_map();
        let mut shuffled = view.clone();
        shuffled.nodes.reverse();
        shuffled.edges.reverse();
        shuffled.edges.rotate_left(777);
        let database = key("database:postgresql db");

        assert_eq!(insights(&view, &[]), insights(&shuffled, &[]));
        assert_eq!(
            blast_radius(&view, &database),
            blast_radius(&shuffled, &database)
        );
    }
}
