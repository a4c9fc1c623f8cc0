//! Cases for per-minute rollups: exact round trip, replace on rewrite, range bounds and order,
//! the service filter and hostile names; the minutes that hold data, retention and late merges
//! are in `rollup_lifecycle`.

use std::slice::from_ref;
use std::time::Duration;

/// The instance every case writes as (one process).
pub(super) const INSTANCE: u32 = 7;

use crate::model::graph::{
    EdgeKey, EdgeKind, EdgeRollup, EdgeStats, NodeKey, NodeKind, NodePlacement, OTHER_OPERATIONS,
    OperationRollup, OperationSplit, OperationStats,
};
use crate::model::{MinuteRange, UnixMinute};
use crate::store::{
    MAX_ROLLUP_MINUTE, RetentionPolicy, RollupReader, RollupWriter, StoreError, StoreWriter,
};

use super::fixtures::{BASE_NANOS, HOUR_NANOS};
use super::rollup_fixtures::{
    BASE_MINUTE, edge_rollup, edges_in_read_order, operation_rollup, operations_in_read_order,
    sketch,
};

const NODE_KINDS: [NodeKind; 5] = [
    NodeKind::Service,
    NodeKind::Database,
    NodeKind::Topic,
    NodeKind::External,
    NodeKind::Client,
];
const EDGE_KINDS: [EdgeKind; 5] = [
    EdgeKind::Http,
    EdgeKind::Grpc,
    EdgeKind::Messaging,
    EdgeKind::Database,
    EdgeKind::Other,
];

pub(super) fn key(source: &str, target: &str) -> EdgeKey {
    EdgeKey {
        source: NodeKey::service(source),
        target: NodeKey::service(target),
        kind: EdgeKind::Http,
    }
}

pub(super) fn all_edges<R: RollupReader>(reader: &R) -> Vec<EdgeRollup> {
    reader
        .edge_rollups(
            MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)),
            None,
        )
        .expect("edge_rollups")
}

pub(super) fn all_operations<R: RollupReader>(reader: &R) -> Vec<OperationRollup> {
    reader
        .operation_rollups(
            MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)),
            None,
            None,
        )
        .expect("operation_rollups")
}

pub(super) fn all_minutes<R: RollupReader>(reader: &R) -> Vec<i64> {
    reader
        .rollup_minutes(MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)))
        .expect("rollup_minutes")
}

/// Stats with every counter at an extreme and every sketch holding extreme values.
fn extreme_edge_stats() -> EdgeStats {
    EdgeStats {
        num_requests: u64::MAX,
        num_unobserved: u64::MAX - 2,
        num_errors: u64::MAX - 1,
        num_retries: 0,
        num_short_circuited: 1,
        num_client_only: i64::MAX as u64,
        num_server_only: (i64::MAX as u64) + 1,
        client_latency: sketch([0, 0, 1, 999, 1_000_000_007, u64::MAX]),
        server_latency: sketch([u64::MAX]),
        publish_consume_latency: sketch([0]),
        num_traces: 3,
        max_calls_per_trace: u64::MAX,
        consumer_groups: vec![String::new(), "'; --".to_owned(), "group\0ünï".to_owned()],
        operations: vec![OperationSplit {
            caller: "\0".to_owned(),
            callee: OTHER_OPERATIONS.to_owned(),
            num_requests: u64::MAX,
            num_errors: u64::MAX,
            latency: sketch([u64::MAX]),
        }],
    }
}

/// Every node kind at both ends, every edge kind, every placement shape, default and extreme
/// statistics, minutes at both ends of the allowed range: all come back exactly, in order.
pub fn rollup_round_trip<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let mut edges = Vec::new();
    for (seed, (source_kind, target_kind)) in
        (0_u64..).zip(NODE_KINDS.iter().zip(NODE_KINDS.iter().rev()))
    {
        for kind in EDGE_KINDS {
            let key = EdgeKey {
                source: NodeKey::new(*source_kind, format!("source-{seed}")),
                target: NodeKey::new(*target_kind, format!("target-{seed}")),
                kind,
            };
            edges.push(edge_rollup(BASE_MINUTE + 59, key, seed * 10 + kind as u64));
        }
    }
    let extreme = |minute: i64| EdgeRollup {
        minute,
        key: key("checkout", "payments"),
        source_placement: NodePlacement {
            namespace: Some("shop".into()),
            environment: Some(String::new()),
        },
        target_placement: NodePlacement::default(),
        stats: extreme_edge_stats(),
    };
    edges.extend([
        extreme(0),
        extreme(BASE_MINUTE + 60),
        extreme(MAX_ROLLUP_MINUTE),
    ]);
    edges.push(EdgeRollup {
        stats: EdgeStats::default(),
        ..edge_rollup(BASE_MINUTE, key("idle", "quiet"), 1)
    });

    let mut operations: Vec<OperationRollup> = (0..6)
        .map(|seed| operation_rollup(BASE_MINUTE + 59, "orders", &format!("op {seed}"), seed))
        .collect();
    operations.push(OperationRollup {
        stats: OperationStats {
            num_requests: u64::MAX,
            num_unobserved: u64::MAX,
            num_errors: 0,
            latency: sketch([0, u64::MAX]),
            instance_minutes: u64::MAX,
            instance_requests: u64::MAX,
            versions: Vec::new(),
        },
        ..operation_rollup(MAX_ROLLUP_MINUTE, "billing", "charge", 7)
    });
    operations.push(OperationRollup {
        stats: OperationStats::default(),
        ..operation_rollup(0, "billing", "refund", 8)
    });

    // Written newest first and in two calls: the order of reads must not depend on writes.
    let (later_edges, earlier_edges) = edges.split_at(edges.len() / 2);
    writer
        .write_rollups(INSTANCE, earlier_edges, &operations)
        .expect("write_rollups");
    writer
        .write_rollups(INSTANCE, later_edges, &[])
        .expect("write_rollups");

    assert_eq!(all_edges(&reader), edges_in_read_order(edges));
    assert_eq!(
        all_operations(&reader),
        operations_in_read_order(operations)
    );
}

/// A minute out of range fails the whole call and stores nothing of it.
pub fn rollup_minute_out_of_range<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let valid_edge = edge_rollup(BASE_MINUTE, key("a", "b"), 1);
    let valid_operation = operation_rollup(BASE_MINUTE, "a", "get", 1);
    for bad_minute in [-1, i64::MIN, MAX_ROLLUP_MINUTE + 1, i64::MAX] {
        let bad_edge = edge_rollup(bad_minute, key("a", "c"), 2);
        let result = writer.write_rollups(
            INSTANCE,
            &[valid_edge.clone(), bad_edge],
            from_ref(&valid_operation),
        );
        assert!(
            matches!(result, Err(StoreError::InvalidData(_))),
            "{bad_minute}: {result:?}"
        );
        let bad_operation = operation_rollup(bad_minute, "a", "put", 2);
        let result = writer.write_rollups(INSTANCE, from_ref(&valid_edge), &[bad_operation]);
        assert!(
            matches!(result, Err(StoreError::InvalidData(_))),
            "{bad_minute}: {result:?}"
        );
    }
    assert_eq!(all_edges(&reader), []);
    assert_eq!(all_operations(&reader), []);
    assert!(all_minutes(&reader).is_empty());
    // Nothing is left half-done: the next write goes through.
    writer
        .write_rollups(INSTANCE, from_ref(&valid_edge), from_ref(&valid_operation))
        .expect("write_rollups");
    assert_eq!(all_edges(&reader), [valid_edge]);
    assert_eq!(all_operations(&reader), [valid_operation]);
}

/// Writing a minute's rollup for a key again replaces it whole; a re-sent minute counts once.
/// Two instances' rollups of one minute and key are both kept, and either can be left out.
pub fn rollup_instances_side_by_side<W: StoreWriter + RollupWriter, R: RollupReader>(
    (mut writer, reader): (W, R),
) {
    let minute = BASE_MINUTE + 3;
    let mine = edge_rollup(minute, key("a", "b"), 1);
    let theirs = edge_rollup(minute, key("a", "b"), 2);
    let my_operation = operation_rollup(minute, "a", "get", 1);
    let their_operation = operation_rollup(minute, "a", "get", 4);
    writer
        .write_rollups(INSTANCE, from_ref(&mine), from_ref(&my_operation))
        .expect("write_rollups");
    writer
        .write_rollups(INSTANCE + 1, from_ref(&theirs), from_ref(&their_operation))
        .expect("write_rollups");
    let mut all = all_edges(&reader);
    all.sort_by_key(|rollup| rollup.stats.num_requests);
    let mut expected = vec![mine.clone(), theirs.clone()];
    expected.sort_by_key(|rollup| rollup.stats.num_requests);
    assert_eq!(all, expected, "both instances' rollups are kept");
    let others = reader
        .edge_rollups(
            MinuteRange::new(UnixMinute(minute), UnixMinute(minute + 1)),
            Some(INSTANCE),
        )
        .expect("edge_rollups");
    assert_eq!(others, vec![theirs]);
    let other_operations = reader
        .operation_rollups(
            MinuteRange::new(UnixMinute(minute), UnixMinute(minute + 1)),
            None,
            Some(INSTANCE + 1),
        )
        .expect("operation_rollups");
    assert_eq!(other_operations, vec![my_operation]);
}

pub fn rollup_rewrite_replaces<W: StoreWriter + RollupWriter, R: RollupReader>(
    (mut writer, reader): (W, R),
) {
    let minute = BASE_MINUTE + 7;
    let first_edges = [
        edge_rollup(minute, key("a", "b"), 1),
        edge_rollup(minute, key("a", "c"), 2),
    ];
    let first_operations = [
        operation_rollup(minute, "a", "get", 1),
        operation_rollup(minute, "a", "put", 2),
    ];
    writer
        .write_rollups(INSTANCE, &first_edges, &first_operations)
        .expect("write_rollups");
    // A re-sent minute: stored once.
    writer
        .write_rollups(INSTANCE, &first_edges, &first_operations)
        .expect("write_rollups");
    assert_eq!(all_edges(&reader), first_edges);
    assert_eq!(all_operations(&reader), first_operations);

    // New stats and placements for one key of each replace the old ones, the others stay.
    let replaced_edge = edge_rollup(minute, key("a", "b"), 3);
    let replaced_operation = operation_rollup(minute, "a", "get", 6);
    assert_ne!(
        replaced_edge.source_placement,
        first_edges[0].source_placement
    );
    writer
        .write_rollups(
            INSTANCE,
            from_ref(&replaced_edge),
            from_ref(&replaced_operation),
        )
        .expect("write_rollups");
    assert_eq!(
        all_edges(&reader),
        [replaced_edge.clone(), first_edges[1].clone()]
    );
    assert_eq!(
        all_operations(&reader),
        [replaced_operation.clone(), first_operations[1].clone()]
    );

    // Within one call the later rollup of a key wins.
    let last_edge = edge_rollup(minute, key("a", "c"), 5);
    let last_operation = operation_rollup(minute, "a", "put", 9);
    writer
        .write_rollups(
            INSTANCE,
            &[edge_rollup(minute, key("a", "c"), 4), last_edge.clone()],
            &[
                operation_rollup(minute, "a", "put", 8),
                last_operation.clone(),
            ],
        )
        .expect("write_rollups");
    assert_eq!(all_edges(&reader), [replaced_edge, last_edge]);
    assert_eq!(
        all_operations(&reader),
        [replaced_operation, last_operation]
    );
    assert_eq!(all_minutes(&reader), [minute]);

    // Four rollups are stored, however often they were written.
    let everything = RetentionPolicy {
        max_age: Duration::ZERO,
        max_size_bytes: u64::MAX,
    };
    let now_nanos = BASE_NANOS + HOUR_NANOS;
    let report = writer
        .apply_retention(&everything, now_nanos)
        .expect("apply_retention");
    assert_eq!(report.num_rollups_deleted, 4);
    assert_eq!(all_edges(&reader), []);
}

/// `from` inclusive, `to` exclusive, across hour boundaries; empty and inverted ranges are empty.
pub fn rollup_range_bounds<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let offsets = [0, 1, 59, 60, 61, 120];
    let mut edges = Vec::new();
    let mut operations = Vec::new();
    for (seed, offset) in (0_u64..).zip(offsets) {
        let minute = BASE_MINUTE + offset;
        edges.push(edge_rollup(minute, key("z", "a"), seed));
        edges.push(edge_rollup(minute, key("a", "z"), seed + 100));
        operations.push(operation_rollup(minute, "z", "get", seed));
        operations.push(operation_rollup(minute, "a", "get", seed + 100));
    }
    edges.reverse();
    operations.reverse();
    writer
        .write_rollups(INSTANCE, &edges, &operations)
        .expect("write_rollups");

    let ranges = [
        (BASE_MINUTE + 1, BASE_MINUTE + 60),
        (BASE_MINUTE + 60, BASE_MINUTE + 61),
        (BASE_MINUTE + 59, BASE_MINUTE + 121),
        (BASE_MINUTE, BASE_MINUTE + 1),
        (BASE_MINUTE - 1_000, BASE_MINUTE),
        (BASE_MINUTE + 121, i64::MAX),
        (BASE_MINUTE + 61, BASE_MINUTE + 61),
        (BASE_MINUTE + 62, BASE_MINUTE + 1),
        (i64::MIN, i64::MAX),
    ];
    for (from, to) in ranges {
        let in_range = |minute: i64| from <= minute && minute < to;
        let expected_edges: Vec<_> = edges
            .iter()
            .filter(|r| in_range(r.minute))
            .cloned()
            .collect();
        let expected_operations: Vec<_> = operations
            .iter()
            .filter(|r| in_range(r.minute))
            .cloned()
            .collect();
        assert_eq!(
            reader
                .edge_rollups(MinuteRange::new(UnixMinute(from), UnixMinute(to)), None)
                .expect("edge_rollups"),
            edges_in_read_order(expected_edges),
            "edges of {from}..{to}"
        );
        assert_eq!(
            reader
                .operation_rollups(
                    MinuteRange::new(UnixMinute(from), UnixMinute(to)),
                    None,
                    None
                )
                .expect("operation_rollups"),
            operations_in_read_order(expected_operations),
            "operations of {from}..{to}"
        );
    }
}

/// The service filter matches one service exactly: no prefixes, patterns or case folding.
pub fn rollup_service_filter<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let services = [
        "billing",
        "Billing",
        "billing-v2",
        "bill%",
        "bill_ng",
        "orders",
    ];
    let mut operations = Vec::new();
    for (seed, service) in (0_u64..).zip(services) {
        for offset in [0, 1, 60] {
            operations.push(operation_rollup(
                BASE_MINUTE + offset,
                service,
                "charge",
                seed,
            ));
            operations.push(operation_rollup(
                BASE_MINUTE + offset,
                service,
                "refund",
                seed,
            ));
        }
    }
    writer
        .write_rollups(INSTANCE, &[], &operations)
        .expect("write_rollups");

    for service in services {
        let expected: Vec<_> = operations
            .iter()
            .filter(|r| r.service == service && r.minute < BASE_MINUTE + 60)
            .cloned()
            .collect();
        assert_eq!(expected.len(), 4);
        assert_eq!(
            reader
                .operation_rollups(
                    MinuteRange::new(UnixMinute(BASE_MINUTE), UnixMinute(BASE_MINUTE + 60)),
                    Some(service),
                    None
                )
                .expect("operation_rollups"),
            operations_in_read_order(expected),
            "{service}"
        );
    }
    for absent in ["", "bill", "BILLING", "%", "_illing"] {
        assert_eq!(
            reader
                .operation_rollups(
                    MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)),
                    Some(absent),
                    None
                )
                .expect("operation_rollups"),
            [],
            "{absent}"
        );
    }
}

/// Names that are SQL, patterns, quotes, control characters, non-ASCII or long are data like
/// any other: stored exactly, ordered like the model's `Ord`, matched exactly by the filter.
pub fn rollup_hostile_strings<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let long_name = "x".repeat(10_000);
    let names = [
        "",
        "'; DROP TABLE partitions; --",
        "\" OR 1=1 --",
        "%",
        "_",
        "a\0b",
        "line\nbreak\ttab",
        "back\\slash",
        "ünïcödé 🚀 名前",
        "\u{10FFFF}",
        "Service",
        "service",
        "service:checkout",
        long_name.as_str(),
    ];
    let mut edges = Vec::new();
    let mut operations = Vec::new();
    for (no, (source, target)) in (0_u64..).zip(names.iter().zip(names.iter().rev())) {
        let key = EdgeKey {
            source: NodeKey::new(NODE_KINDS[no as usize % 5], *source),
            target: NodeKey::new(NODE_KINDS[(no as usize + 2) % 5], *target),
            kind: EDGE_KINDS[no as usize % 5],
        };
        let mut rollup = edge_rollup(BASE_MINUTE, key, no);
        rollup.source_placement = NodePlacement {
            namespace: Some((*target).to_owned()),
            environment: Some((*source).to_owned()),
        };
        edges.push(rollup);
        let mut operation = operation_rollup(BASE_MINUTE, source, target, no);
        operation.placement.namespace = Some((*source).to_owned());
        operations.push(operation);
    }
    writer
        .write_rollups(INSTANCE, &edges, &operations)
        .expect("write_rollups");

    assert_eq!(all_edges(&reader), edges_in_read_order(edges));
    assert_eq!(
        all_operations(&reader),
        operations_in_read_order(operations.clone())
    );
    for operation in &operations {
        assert_eq!(
            reader
                .operation_rollups(
                    MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)),
                    Some(&operation.service),
                    None
                )
                .expect("operation_rollups"),
            from_ref(operation),
            "{:?}",
            operation.service
        );
    }
}
