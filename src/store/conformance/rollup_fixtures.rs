//! Shared rollup test data for every backend and the benchmarks: latency sketches, edge and
//! operation rollups with every field set, a mesh of edges like a mid-sized deployment's, and
//! the result order the rollup readers promise.

use crate::model::LatencySketch;
use crate::model::graph::{
    EdgeKey, EdgeKind, EdgeRollup, EdgeStats, NodeKey, NodeKind, NodePlacement, OperationRollup,
    OperationSplit, OperationStats, VersionStats,
};

use super::fixtures::{BASE_NANOS, MINUTE_NANOS};
use crate::model::split_mix as mix;

/// The minute of [`BASE_NANOS`], the first of an hour.
pub const BASE_MINUTE: i64 = (BASE_NANOS / MINUTE_NANOS) as i64;

const MILLI_NANOS: u64 = 1_000_000;

/// A sketch holding exactly `values` (nanoseconds).
pub fn sketch(values: impl IntoIterator<Item = u64>) -> LatencySketch {
    let mut sketch = LatencySketch::default();
    for value in values {
        sketch.record(value);
    }
    sketch
}

/// `num_values` latencies spread log-uniformly over 1 ms to about 1 s, derived from `seed`:
/// as many distinct sketch buckets as real traffic of that volume fills.
pub fn spread_sketch(seed: u64, num_values: u64) -> LatencySketch {
    sketch((0..num_values).map(|no| {
        let exponent = (mix(seed ^ (no << 32)) % 1_000) as f64 / 1_000.0 * 3.0;
        // Truncation to whole nanoseconds is fine for test data.
        (MILLI_NANOS as f64 * 10_f64.powf(exponent)) as u64
    }))
}

fn placement(seed: u64) -> NodePlacement {
    match seed % 4 {
        0 => NodePlacement::default(),
        1 => NodePlacement {
            namespace: Some("shop".to_owned()),
            environment: Some("prod".to_owned()),
        },
        2 => NodePlacement {
            namespace: Some(String::new()),
            environment: None,
        },
        _ => NodePlacement {
            namespace: None,
            environment: Some(format!("env-{seed}")),
        },
    }
}

/// An edge rollup with every field set, its numbers and placements derived from `seed` so
/// that rollups of different seeds differ everywhere.
pub fn edge_rollup(minute: i64, key: EdgeKey, seed: u64) -> EdgeRollup {
    let (publish_consume_latency, consumer_groups) = match key.kind {
        EdgeKind::Messaging => (
            spread_sketch(seed ^ 3, 5),
            vec!["audit".to_owned(), format!("group-{seed}")],
        ),
        _ => (LatencySketch::default(), Vec::new()),
    };
    EdgeRollup {
        minute,
        key,
        source_placement: placement(seed),
        target_placement: placement(seed + 1),
        stats: EdgeStats {
            num_requests: 100 + seed,
            num_unobserved: seed % 4 * 25,
            num_errors: seed % 7,
            num_retries: seed % 3,
            num_short_circuited: seed % 2,
            num_client_only: seed % 5,
            num_server_only: seed % 11,
            client_latency: spread_sketch(seed, 20),
            server_latency: spread_sketch(seed ^ 1, 10),
            publish_consume_latency,
            num_traces: 50 + seed,
            max_calls_per_trace: 1 + seed % 4,
            consumer_groups,
            operations: splits(seed),
        },
    }
}

/// An operation rollup with every field set, derived from `seed`.
pub fn operation_rollup(minute: i64, service: &str, operation: &str, seed: u64) -> OperationRollup {
    OperationRollup {
        minute,
        service: service.to_owned(),
        placement: placement(seed),
        operation: operation.to_owned(),
        stats: OperationStats {
            num_requests: 10 + seed,
            num_unobserved: seed % 2 * 5,
            num_errors: seed % 3,
            latency: spread_sketch(seed, 15),
            instance_minutes: 1 + seed % 4,
            instance_requests: 5 + seed,
            versions: versions(seed),
        },
    }
}

/// No split, one, or two (one of them with an unknown caller and a hostile name).
fn splits(seed: u64) -> Vec<OperationSplit> {
    let split = |caller: &str, callee: &str, num_requests: u64| OperationSplit {
        caller: caller.to_owned(),
        callee: callee.to_owned(),
        num_requests,
        num_errors: num_requests % 3,
        latency: spread_sketch(seed ^ num_requests, 4),
    };
    match seed % 3 {
        0 => Vec::new(),
        1 => vec![split(
            "GET /checkout",
            "POST /orders",
            seed.wrapping_add(100),
        )],
        _ => vec![
            split("", "SELECT orders", 40),
            split("GET /x", "'; DROP TABLE x --<b>", seed.wrapping_add(60)),
        ],
    }
}

/// No version, one serving everything, or a rollout's two (with hostile names).
fn versions(seed: u64) -> Vec<VersionStats> {
    let version = |name: &str, num_requests: u64, num_errors: u64| VersionStats {
        version: name.to_owned(),
        num_requests,
        num_errors,
        latency: spread_sketch(seed ^ num_requests, 5),
    };
    match seed % 3 {
        0 => Vec::new(),
        1 => vec![VersionStats {
            latency: spread_sketch(seed, 15),
            ..version("1.4.2", 10 + seed, seed % 3)
        }],
        _ => vec![
            version("2.0.0-rc.1'; --", 4, 1),
            version("2.0.0<b>", seed.wrapping_add(6), 0),
        ],
    }
}

/// The key of edge `no` of a mesh of 100 services, each calling others over HTTP and gRPC and
/// using databases, topics and external peers. Keys of numbers below 9,900 are distinct: the
/// source is `no % 100` and round `no / 100` picks a different target for each round.
pub fn mesh_edge_key(no: u64) -> EdgeKey {
    let (source_no, round) = (no % 100, no / 100);
    let target_no = (source_no + 1 + round) % 100;
    let (target, kind) = match round % 10 {
        0..=4 => (
            NodeKey::service(format!("service-{target_no:02}")),
            EdgeKind::Http,
        ),
        5 | 6 => (
            NodeKey::service(format!("service-{target_no:02}")),
            EdgeKind::Grpc,
        ),
        7 => (
            NodeKey::new(
                NodeKind::Database,
                format!("postgresql db-{target_no:02}:5432"),
            ),
            EdgeKind::Database,
        ),
        8 => (
            NodeKey::new(NodeKind::Topic, format!("kafka topic-{target_no:02}")),
            EdgeKind::Messaging,
        ),
        _ => (
            NodeKey::new(
                NodeKind::External,
                format!("api-{target_no:02}.example.com"),
            ),
            EdgeKind::Other,
        ),
    };
    EdgeKey {
        source: NodeKey::service(format!("service-{source_no:02}")),
        target,
        kind,
    }
}

/// One minute of `num_edges` (at most 9,900) mesh edges with realistic sketches: 20 to 200
/// calls each, client and server side, split over four operation pairs of their own.
pub fn mesh_edge_rollups(minute: i64, num_edges: u64) -> Vec<EdgeRollup> {
    debug_assert!(num_edges <= 9_900, "mesh edge keys repeat past 9,900");
    (0..num_edges)
        .map(|no| {
            let seed = mix(no ^ ((minute as u64) << 20));
            let mut rollup = edge_rollup(minute, mesh_edge_key(no), seed);
            let num_calls = 20 + seed % 181;
            rollup.stats.num_requests = num_calls;
            rollup.stats.client_latency = spread_sketch(seed, num_calls);
            rollup.stats.server_latency = spread_sketch(seed ^ 1, num_calls);
            rollup.stats.operations = (0..4)
                .map(|pair| OperationSplit {
                    caller: format!("GET /api/v1/resource-{}", no % 7),
                    callee: format!("POST /internal/op-{pair}"),
                    num_requests: num_calls / 4,
                    num_errors: u64::from(pair == 3),
                    latency: spread_sketch(seed ^ (pair + 2), num_calls / 4),
                })
                .collect();
            rollup
        })
        .collect()
}

/// One minute of the operations of a mesh's 100 services, five each, every tenth service
/// mid-rollout (two versions), the others on one.
pub fn mesh_operation_rollups(minute: i64) -> Vec<OperationRollup> {
    (0..100u64)
        .flat_map(|service| (0..5u64).map(move |operation| (service, operation)))
        .map(|(service, operation)| {
            let seed = mix((service << 8) ^ operation ^ ((minute as u64) << 20));
            let num_requests = 50 + seed % 200;
            let mut rollup = operation_rollup(
                minute,
                &format!("service-{service:02}"),
                &format!("POST /internal/op-{operation}"),
                seed,
            );
            rollup.stats.num_requests = num_requests;
            rollup.stats.num_errors = seed % 3;
            rollup.stats.latency = spread_sketch(seed, num_requests);
            let version = |name: &str, share: u64, salt: u64| VersionStats {
                version: name.to_owned(),
                num_requests: num_requests * share / 100,
                num_errors: 0,
                latency: spread_sketch(seed ^ salt, num_requests * share / 100),
            };
            rollup.stats.versions = if service % 10 == 0 {
                vec![version("2.4.0", 40, 1), version("2.5.0", 60, 2)]
            } else {
                vec![VersionStats {
                    latency: rollup.stats.latency.clone(),
                    num_errors: rollup.stats.num_errors,
                    ..version("2.4.0", 100, 0)
                }]
            };
            rollup
        })
        .collect()
}

/// `rollups` in the order readers return them: by minute, then key.
pub fn edges_in_read_order(mut rollups: Vec<EdgeRollup>) -> Vec<EdgeRollup> {
    rollups.sort_by(|left, right| (left.minute, &left.key).cmp(&(right.minute, &right.key)));
    rollups
}

/// `rollups` in the order readers return them: by minute, then service, then operation.
pub fn operations_in_read_order(mut rollups: Vec<OperationRollup>) -> Vec<OperationRollup> {
    rollups.sort_by(|left, right| {
        (left.minute, &left.service, &left.operation).cmp(&(
            right.minute,
            &right.service,
            &right.operation,
        ))
    });
    rollups
}
