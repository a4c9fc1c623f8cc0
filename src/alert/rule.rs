//! Rule evaluation, pure: what a rule's condition holds for, given the map of the evaluation
//! window and the lag and breakers placed on it. Each result is a label set (the alert's
//! identity) with the value that made the condition hold. Config parsing, `for` and delivery
//! live elsewhere (`state`, and the loop to come).

use serde::{Deserialize, Serialize};

use super::state::Labels;
use crate::graph::analysis::{self, GraphView};
use crate::model::graph::{EdgeKind, NodeKind};
use crate::query::SignalOverlay;
use crate::signals::Trend;

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// Errors / requests of an edge above `threshold` (0–1), with at least `min_requests`.
    EdgeErrorRate {
        threshold: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
        /// Only edges of these kinds (empty: all).
        #[serde(default)]
        edge_kinds: Vec<EdgeKind>,
    },
    /// A client-side latency quantile of an edge above `threshold_ms`.
    EdgeLatency {
        quantile: f64,
        threshold_ms: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
        #[serde(default)]
        edge_kinds: Vec<EdgeKind>,
    },
    /// Publish → consume latency quantile of a topic → consumer edge above `threshold_ms`.
    PublishConsumeLatency { quantile: f64, threshold_ms: f64 },
    /// Consumer lag of a topic → consumer edge above `threshold` messages.
    KafkaLag { threshold: f64 },
    /// Consumer lag growing (over the lag trend window).
    KafkaLagGrowing,
    /// Any breaker in one of `states` (default: open, forced_open).
    BreakerState {
        #[serde(default = "default_breaker_states")]
        states: Vec<String>,
    },
    /// Any cycle of synchronous calls (or through a topic when `include_async`).
    Cycle {
        #[serde(default)]
        include_async: bool,
    },
}

fn default_min_requests() -> u64 {
    10
}

fn default_breaker_states() -> Vec<String> {
    vec!["open".to_owned(), "forced_open".to_owned()]
}

fn label(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn kind_matches(kinds: &[EdgeKind], kind: EdgeKind) -> bool {
    kinds.is_empty() || kinds.contains(&kind)
}

/// The label sets for which `kind` holds on `view` and `overlay`, with their values.
pub fn evaluate(kind: &RuleKind, view: &GraphView, overlay: &SignalOverlay) -> Vec<(Labels, f64)> {
    let edge_labels = |key: &crate::model::graph::EdgeKey| {
        label(&[
            ("source", &key.source.id()),
            ("target", &key.target.id()),
            ("edge_kind", key.kind.as_str()),
        ])
    };
    match kind {
        RuleKind::EdgeErrorRate {
            threshold,
            min_requests,
            edge_kinds,
        } => view
            .edges
            .iter()
            .filter(|(key, stats)| {
                kind_matches(edge_kinds, key.kind) && stats.num_requests >= *min_requests
            })
            .filter_map(|(key, stats)| {
                let rate = stats.num_errors as f64 / stats.num_requests as f64;
                (rate > *threshold).then(|| (edge_labels(key), rate))
            })
            .collect(),
        RuleKind::EdgeLatency {
            quantile,
            threshold_ms,
            min_requests,
            edge_kinds,
        } => view
            .edges
            .iter()
            .filter(|(key, stats)| {
                kind_matches(edge_kinds, key.kind) && stats.num_requests >= *min_requests
            })
            .filter_map(|(key, stats)| {
                let millis = stats.client_latency.quantile_nanos(*quantile)? / 1e6;
                (millis > *threshold_ms).then(|| (edge_labels(key), millis))
            })
            .collect(),
        RuleKind::PublishConsumeLatency {
            quantile,
            threshold_ms,
        } => view
            .edges
            .iter()
            .filter(|(key, _)| key.source.kind == NodeKind::Topic)
            .filter_map(|(key, stats)| {
                let millis = stats.publish_consume_latency.quantile_nanos(*quantile)? / 1e6;
                (millis > *threshold_ms).then(|| (edge_labels(key), millis))
            })
            .collect(),
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
        RuleKind::BreakerState { states } => overlay
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
            .collect(),
        RuleKind::Cycle { include_async } => analysis::insights(view, &[])
            .cycles
            .into_iter()
            .filter(|cycle| cycle.synchronous || *include_async)
            .map(|cycle| {
                (
                    label(&[("cycle", &cycle.path.join(" -> "))]),
                    cycle.path.len() as f64,
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodePlacement};

    fn edge(
        source: &str,
        target: &str,
        kind: EdgeKind,
        requests: u64,
        errors: u64,
        millis: u64,
    ) -> (EdgeKey, EdgeStats) {
        let mut stats = EdgeStats {
            num_requests: requests,
            num_errors: errors,
            ..EdgeStats::default()
        };
        for _ in 0..requests.min(100) {
            stats.client_latency.record(millis * 1_000_000);
        }
        let key = EdgeKey {
            source: NodeKey::service(source.to_owned()),
            target: NodeKey::service(target.to_owned()),
            kind,
        };
        (key, stats)
    }

    fn view(edges: Vec<(EdgeKey, EdgeStats)>) -> GraphView {
        let mut nodes: Vec<(NodeKey, NodePlacement)> = Vec::new();
        for (key, _) in &edges {
            for node in [&key.source, &key.target] {
                if !nodes.iter().any(|(known, _)| known == node) {
                    nodes.push((node.clone(), NodePlacement::default()));
                }
            }
        }
        GraphView {
            nodes,
            edges,
            window_secs: 300.0,
        }
    }

    fn targets(results: &[(Labels, f64)]) -> Vec<String> {
        let mut targets: Vec<String> = results
            .iter()
            .map(|(labels, _)| labels["target"].clone())
            .collect();
        targets.sort();
        targets
    }

    #[test]
    fn edge_error_rate_holds_above_the_threshold_with_enough_requests() {
        let map = view(vec![
            edge("orders", "payments", EdgeKind::Http, 100, 6, 10),
            edge("orders", "stock", EdgeKind::Http, 100, 5, 10),
            edge("orders", "audit", EdgeKind::Grpc, 5, 5, 10),
        ]);
        let rule = RuleKind::EdgeErrorRate {
            threshold: 0.05,
            min_requests: 10,
            edge_kinds: vec![],
        };
        let results = evaluate(&rule, &map, &SignalOverlay::default());
        assert_eq!(targets(&results), ["service:payments"]);
        assert!((results[0].1 - 0.06).abs() < 1e-12);
    }

    #[test]
    fn edge_latency_holds_for_slow_edges_of_the_chosen_kinds() {
        let map = view(vec![
            edge("gateway", "users", EdgeKind::Http, 50, 0, 150),
            edge("gateway", "orders", EdgeKind::Grpc, 50, 0, 150),
            edge("gateway", "cart", EdgeKind::Http, 50, 0, 40),
        ]);
        let rule = RuleKind::EdgeLatency {
            quantile: 0.95,
            threshold_ms: 100.0,
            min_requests: 10,
            edge_kinds: vec![EdgeKind::Http],
        };
        let results = evaluate(&rule, &map, &SignalOverlay::default());
        assert_eq!(targets(&results), ["service:users"]);
        assert!(
            (results[0].1 - 150.0).abs() / 150.0 < 0.01,
            "{}",
            results[0].1
        );
    }

    #[test]
    fn a_synchronous_cycle_holds_and_rules_parse_from_toml() {
        let map = view(vec![
            edge("a", "b", EdgeKind::Http, 10, 0, 1),
            edge("b", "c", EdgeKind::Grpc, 10, 0, 1),
            edge("c", "a", EdgeKind::Http, 10, 0, 1),
        ]);
        let results = evaluate(
            &RuleKind::Cycle {
                include_async: false,
            },
            &map,
            &SignalOverlay::default(),
        );
        assert_eq!(results.len(), 1, "{results:?}");
        let parsed: RuleKind =
            toml::from_str("kind = \"edge_error_rate\"\nthreshold = 0.05\n").expect("parses");
        assert_eq!(
            parsed,
            RuleKind::EdgeErrorRate {
                threshold: 0.05,
                min_requests: 10,
                edge_kinds: vec![]
            }
        );
        let err = toml::from_str::<RuleKind>("kind = \"edge_error_rate\"\nthreshhold = 0.05\n")
            .expect_err("typo");
        assert!(err.to_string().contains("threshhold"), "{err}");
    }
}
