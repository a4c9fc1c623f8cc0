//! The figures the map, the pages, the API and the alerts show, each defined once here so a
//! number reads the same wherever it appears (ARCHITECTURE.md, "What the numbers mean").
//! Printing them is `web::format`'s job; this module only counts and divides.

use std::collections::HashMap;

use super::graph::{EdgeKey, EdgeStats, NodeKey, NodeKind, OperationStats};

/// `count` per second over `window_secs`: the one rate of every figure. 0 for an empty or
/// invalid window (nothing happened in it), never NaN or infinity.
#[allow(clippy::cast_precision_loss)]
pub fn per_second(count: u64, window_secs: f64) -> f64 {
    if window_secs.is_finite() && window_secs > 0.0 {
        count as f64 / window_secs
    } else {
        0.0
    }
}

/// `part / whole`; `None` when nothing was counted: no calls have no error rate, not 0 %.
#[allow(clippy::cast_precision_loss)]
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The share of `num_requests` that was received, when some were inferred from sampling
/// (`num_unobserved` > 0): 0.25 for calls sampled at 25 %. `None` when every call counted was
/// received, so the counts are exact.
pub fn observed_share(num_requests: u64, num_unobserved: u64) -> Option<f64> {
    (num_unobserved > 0)
        .then(|| share(num_requests.saturating_sub(num_unobserved), num_requests))
        .flatten()
}

/// The figures of an edge. `num_requests` counts every call the caller made on it, calls its
/// own open breaker refused included (its demand on the target, which its rate shows);
/// everything that describes the target's answers leaves the refused calls out, since they
/// never reached it.
impl EdgeStats {
    /// Calls received (each sampled one once): what `num_requests` is estimated from.
    pub fn num_observed(&self) -> u64 {
        self.num_requests.saturating_sub(self.num_unobserved)
    }

    /// See [`observed_share`].
    pub fn observed_share(&self) -> Option<f64> {
        observed_share(self.num_requests, self.num_unobserved)
    }

    /// Calls the caller's open circuit breaker refused: they never left the caller.
    pub fn num_refused(&self) -> u64 {
        self.num_short_circuited
    }

    /// Calls that went out to the target: every call but the refused ones.
    pub fn num_attempted(&self) -> u64 {
        self.num_requests.saturating_sub(self.num_refused())
    }

    /// Attempted calls that failed. `num_errors` counts refused calls as failed too (the
    /// Tempo-compatible `_failed_total`), so they come off here.
    pub fn num_failed(&self) -> u64 {
        self.num_errors.saturating_sub(self.num_refused())
    }

    /// The edge's error rate: failed attempted calls over attempted calls. Refused calls
    /// are shown beside it as their own count, never in it.
    pub fn error_rate(&self) -> Option<f64> {
        share(self.num_failed(), self.num_attempted())
    }
}

impl OperationStats {
    /// A service's (or one operation's) error rate: the requests it served (its server and
    /// consumer spans) that failed, over those requests.
    pub fn error_rate(&self) -> Option<f64> {
        share(self.num_errors, self.num_requests)
    }

    /// Requests received (each sampled one once).
    pub fn num_observed(&self) -> u64 {
        self.num_requests.saturating_sub(self.num_unobserved)
    }

    /// See [`observed_share`].
    pub fn observed_share(&self) -> Option<f64> {
        observed_share(self.num_requests, self.num_unobserved)
    }
}

/// A latency sketch's p95 in milliseconds; `None` without timed calls.
pub fn p95_ms(sketch: &super::LatencySketch) -> Option<f64> {
    sketch.quantile_nanos(0.95).map(|nanos| nanos / 1e6)
}

/// The p95 each kind of call should stay under (`[graph]` `target_*_p95_ms`): what the map's
/// colours, and the audit, hold latency against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyTargets {
    /// Synchronous calls (HTTP, gRPC, databases, anything not messaging): what the caller waited.
    pub sync_p95_ms: f64,
    /// Publishing an event (producer → topic): what the producer waited.
    pub publish_p95_ms: f64,
    /// Processing an event (topic → consumer): what the consumer spent.
    pub processing_p95_ms: f64,
}

impl Default for LatencyTargets {
    fn default() -> Self {
        Self {
            sync_p95_ms: 100.0,
            publish_p95_ms: 50.0,
            processing_p95_ms: 500.0,
        }
    }
}

impl LatencyTargets {
    /// The p95 that counts for an edge and its target: a topic → consumer edge's processing
    /// (the consumer's side), a producer → topic edge's publish and any other edge's client
    /// side. `None` when the edge recorded no latency of that side.
    pub fn p95_and_target_ms(&self, key: &EdgeKey, stats: &EdgeStats) -> Option<(f64, f64)> {
        let (sketch, target) = if key.source.kind == NodeKind::Topic {
            (&stats.server_latency, self.processing_p95_ms)
        } else if key.target.kind == NodeKind::Topic {
            (&stats.client_latency, self.publish_p95_ms)
        } else {
            (&stats.client_latency, self.sync_p95_ms)
        };
        Some((sketch.quantile_nanos(0.95)? / 1e6, target))
    }

    /// An edge's p95 beside its target.
    pub fn load(&self, key: &EdgeKey, stats: &EdgeStats) -> Option<LatencyLoad> {
        self.p95_and_target_ms(key, stats)
            .map(|(p95_ms, target_ms)| LatencyLoad { p95_ms, target_ms })
    }
}

/// A p95 beside the target it is held against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyLoad {
    pub p95_ms: f64,
    pub target_ms: f64,
}

impl LatencyLoad {
    /// The p95 over its target: above 1 it misses the target.
    pub fn ratio(&self) -> f64 {
        self.p95_ms / self.target_ms.max(f64::MIN_POSITIVE)
    }
}

/// What one node of the map served over a range: the figures of its colour, its label, its
/// entry in `/api/v1/graph` and, for a service, its row in `/services`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeTraffic {
    pub num_requests: u64,
    /// Of `num_requests`, those inferred from sampling (see [`observed_share`]).
    pub num_unobserved: u64,
    pub num_errors: u64,
    /// The edge into the node furthest over its target ([`LatencyTargets::load`]): what its
    /// callers waited (or, for a consumer, what it spent on events) beside the target.
    pub latency: Option<LatencyLoad>,
}

impl NodeTraffic {
    pub fn of_operations(stats: &OperationStats) -> Self {
        Self {
            num_requests: stats.num_requests,
            num_unobserved: stats.num_unobserved,
            num_errors: stats.num_errors,
            latency: None,
        }
    }

    pub fn error_rate(&self) -> Option<f64> {
        share(self.num_errors, self.num_requests)
    }

    /// See [`observed_share`].
    pub fn observed_share(&self) -> Option<f64> {
        observed_share(self.num_requests, self.num_unobserved)
    }

    /// `load` becomes the node's latency if it is further over its target than the one held.
    pub fn keep_worse_latency(&mut self, load: LatencyLoad) {
        if self
            .latency
            .is_none_or(|known| load.ratio() > known.ratio())
        {
            self.latency = Some(load);
        }
    }

    fn add_attempted_calls(&mut self, stats: &EdgeStats) {
        self.num_requests += stats.num_attempted();
        // Which of the inferred calls were refused is not kept; at most all were attempted.
        self.num_unobserved += stats.num_unobserved.min(stats.num_attempted());
        self.num_errors += stats.num_failed();
    }
}

/// Every node's traffic over one range. A service's is what it served itself: its server and
/// consumer operations (`services`, the `/services` figures), never what its callers sent or
/// had refused. Other nodes report nothing of their own: a database's, topic's or
/// uninstrumented peer's is the attempted calls into it, a client node's the calls out of it.
/// `edges` must be the whole map's, so a focus or namespace filter never changes a figure.
pub fn node_traffic<'a>(
    edges: &[(EdgeKey, EdgeStats)],
    services: impl IntoIterator<Item = (&'a str, &'a OperationStats)>,
    targets: &LatencyTargets,
) -> HashMap<NodeKey, NodeTraffic> {
    let mut traffic: HashMap<NodeKey, NodeTraffic> = services
        .into_iter()
        .map(|(name, stats)| (NodeKey::service(name), NodeTraffic::of_operations(stats)))
        .collect();
    for (key, stats) in edges {
        if key.target.kind != NodeKind::Service {
            let into = traffic.entry(key.target.clone()).or_default();
            into.add_attempted_calls(stats);
        }
        if key.source.kind == NodeKind::Client {
            let out = traffic.entry(key.source.clone()).or_default();
            out.add_attempted_calls(stats);
        }
        if let Some(load) = targets.load(key, stats) {
            traffic
                .entry(key.target.clone())
                .or_default()
                .keep_worse_latency(load);
        }
    }
    traffic
}

/// Largest relative difference between what traces and what metrics count for one edge or
/// service before the two are flagged as disagreeing (docs/metrics-source.md): 10 % of the
/// larger count, and more than [`SOURCES_TOLERANCE_CALLS`] calls.
pub const SOURCES_TOLERANCE: f64 = 0.10;
/// Differences of this many calls or fewer never disagree (a minute's edge effects).
pub const SOURCES_TOLERANCE_CALLS: u64 = 5;

/// Whether traces' and metrics' (requests, errors) of one subject disagree beyond the
/// tolerance, in either count. Both are shown side by side, never added.
pub fn sources_disagree(traces: (u64, u64), metrics: (u64, u64)) -> bool {
    let differ = |a: u64, b: u64| {
        let difference = a.abs_diff(b);
        #[allow(clippy::cast_precision_loss)]
        let relative = difference as f64 / a.max(b).max(1) as f64;
        difference > SOURCES_TOLERANCE_CALLS && relative > SOURCES_TOLERANCE
    };
    differ(traces.0, metrics.0) || differ(traces.1, metrics.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::EdgeKind;

    fn edge(
        source: NodeKey,
        target: NodeKey,
        requests: u64,
        errors: u64,
        refused: u64,
    ) -> (EdgeKey, EdgeStats) {
        let key = EdgeKey {
            source,
            target,
            kind: EdgeKind::Http,
        };
        let stats = EdgeStats {
            num_requests: requests,
            num_errors: errors,
            num_short_circuited: refused,
            ..EdgeStats::default()
        };
        (key, stats)
    }

    #[test]
    fn refused_calls_are_counted_beside_the_edge_error_rate_not_in_it() {
        let (_, stats) = edge(
            NodeKey::service("orders"),
            NodeKey::service("payments"),
            100,
            30,
            20,
        );
        assert_eq!(stats.num_refused(), 20);
        assert_eq!(stats.num_attempted(), 80);
        assert_eq!(stats.num_failed(), 10);
        assert_eq!(stats.error_rate(), Some(0.125));

        let (_, all_refused) = edge(
            NodeKey::service("orders"),
            NodeKey::service("payments"),
            5,
            5,
            5,
        );
        assert_eq!(
            all_refused.error_rate(),
            None,
            "nothing attempted: no error rate"
        );
    }

    #[test]
    fn rates_are_per_second_and_zero_over_an_empty_window() {
        assert_eq!(per_second(90, 60.0), 1.5);
        assert_eq!(per_second(90, 0.0), 0.0);
        assert_eq!(per_second(90, f64::NAN), 0.0);
        assert_eq!(share(1, 0), None);
    }

    #[test]
    fn a_service_node_shows_what_it_served_and_other_nodes_the_calls_into_them() {
        let user = NodeKey::new(NodeKind::Client, "user");
        let database = NodeKey::new(NodeKind::Database, "postgresql db");
        let edges = [
            edge(user.clone(), NodeKey::service("gateway"), 50, 5, 0),
            // Refused calls into payments: neither its errors nor its requests.
            edge(
                NodeKey::service("orders"),
                NodeKey::service("payments"),
                40,
                32,
                30,
            ),
            edge(NodeKey::service("orders"), database.clone(), 40, 4, 0),
            edge(NodeKey::service("users"), database.clone(), 10, 0, 0),
        ];
        let payments = OperationStats {
            num_requests: 10,
            num_errors: 1,
            ..OperationStats::default()
        };
        let traffic = node_traffic(
            &edges,
            [("payments", &payments)],
            &LatencyTargets::default(),
        );
        assert_eq!(
            traffic[&NodeKey::service("payments")],
            NodeTraffic {
                num_requests: 10,
                num_errors: 1,
                latency: None,
                ..NodeTraffic::default()
            }
        );
        assert_eq!(
            traffic[&database],
            NodeTraffic {
                num_requests: 50,
                num_errors: 4,
                latency: None,
                ..NodeTraffic::default()
            }
        );
        assert_eq!(
            traffic[&user],
            NodeTraffic {
                num_requests: 50,
                num_errors: 5,
                latency: None,
                ..NodeTraffic::default()
            }
        );
        assert!(
            !traffic.contains_key(&NodeKey::service("gateway")),
            "a service without operations served nothing"
        );
    }

    #[test]
    fn latency_is_held_against_the_target_of_its_kind_and_a_node_gets_its_slowest_caller() {
        let topic = NodeKey::new(NodeKind::Topic, "kafka orders");
        let with_latency = |source: NodeKey, target: NodeKey, client_ms: u64, server_ms: u64| {
            let (key, mut stats) = edge(source, target, 10, 0, 0);
            for _ in 0..10 {
                stats.client_latency.record(client_ms * 1_000_000);
                stats.server_latency.record(server_ms * 1_000_000);
            }
            (key, stats)
        };
        let edges = [
            // A synchronous call at 250 ms: 2.5x the 100 ms target.
            with_latency(
                NodeKey::service("gateway"),
                NodeKey::service("orders"),
                250,
                240,
            ),
            // Another caller of orders, on target.
            with_latency(
                NodeKey::service("admin"),
                NodeKey::service("orders"),
                40,
                30,
            ),
            // Publishing at 60 ms against 50 ms.
            with_latency(NodeKey::service("orders"), topic.clone(), 60, 0),
            // Processing at 400 ms against 500 ms: the consumer's side counts, not the 900 ms
            // the broker-side client span says.
            with_latency(topic.clone(), NodeKey::service("inventory"), 900, 400),
        ];
        let targets = LatencyTargets::default();
        let traffic = node_traffic(&edges, [], &targets);
        let ratio = |node: &NodeKey| traffic[node].latency.map(|load| load.ratio());
        let close = |value: Option<f64>, expected: f64| {
            value.is_some_and(|value| (value - expected).abs() < 0.05)
        };
        assert!(
            close(ratio(&NodeKey::service("orders")), 2.5),
            "{traffic:?}"
        );
        assert!(close(ratio(&topic), 1.2), "{traffic:?}");
        assert!(
            close(ratio(&NodeKey::service("inventory")), 0.8),
            "{traffic:?}"
        );
    }
}
