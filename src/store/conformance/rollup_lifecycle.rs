//! Cases for rollups over time: the minutes that hold data, retention, and late calls merged
//! into a stored minute.

use std::slice::from_ref;
use std::time::Duration;

use crate::model::{MinuteRange, UnixMinute};
use crate::store::{RetentionPolicy, RollupReader, RollupWriter, StoreWriter, merged_with_stored};

use super::fixtures::{BASE_NANOS, HOUR_NANOS, MINUTE_NANOS, SECOND_NANOS};
use super::rollup_fixtures::{BASE_MINUTE, edge_rollup, operation_rollup};
use super::rollups::{INSTANCE, all_edges, all_minutes, all_operations, key};

/// Minutes with any edge or operation rollup are listed once each; minutes without are not.
pub fn rollup_minutes_with_data<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let edge = |offset: i64, seed: u64| edge_rollup(BASE_MINUTE + offset, key("a", "b"), seed);
    let operation = |offset: i64| operation_rollup(BASE_MINUTE + offset, "a", "get", 1);
    writer
        .write_rollups(
            INSTANCE,
            &[edge(0, 1), edge(59, 2)],
            &[operation(59), operation(60)],
        )
        .expect("write_rollups");
    writer
        .write_rollups(
            INSTANCE,
            &[edge(59, 3), edge(0, 4), edge(200, 5)],
            &[operation(-1)],
        )
        .expect("write_rollups");
    let minutes = |offsets: &[i64]| -> Vec<i64> {
        offsets.iter().map(|offset| BASE_MINUTE + offset).collect()
    };

    assert_eq!(all_minutes(&reader), minutes(&[-1, 0, 59, 60, 200]));
    let range = |from: i64, to: i64| {
        reader
            .rollup_minutes(MinuteRange::new(
                UnixMinute(BASE_MINUTE + from),
                UnixMinute(BASE_MINUTE + to),
            ))
            .expect("rollup_minutes")
    };
    assert_eq!(range(0, 60), minutes(&[0, 59]));
    assert!(range(1, 59).is_empty());
    assert_eq!(range(59, 201), minutes(&[59, 60, 200]));
    assert!(range(60, 60).is_empty());
    assert!(range(61, 0).is_empty());
    let before = reader
        .rollup_minutes(MinuteRange::new(UnixMinute(0), UnixMinute(BASE_MINUTE - 1)))
        .expect("rollup_minutes");
    assert!(before.is_empty());
    // An edge missing from a listed minute had no traffic then.
    assert_eq!(
        reader
            .edge_rollups(
                MinuteRange::new(UnixMinute(BASE_MINUTE + 60), UnixMinute(BASE_MINUTE + 61)),
                None
            )
            .expect("edge_rollups"),
        []
    );
}

/// Rollups whose whole minute is before `now - max_age` go, the minute holding the cutoff and
/// later ones stay; the size limit removes rollups like any other data.
pub fn rollup_retention<W: StoreWriter + RollupWriter, R: RollupReader>(
    (mut writer, reader): (W, R),
) {
    let now_nanos = BASE_NANOS + 10 * HOUR_NANOS;
    let cutoff_nanos = BASE_NANOS + 6 * HOUR_NANOS + 30 * MINUTE_NANOS + 30 * SECOND_NANOS;
    let cutoff_minute = BASE_MINUTE + 6 * 60 + 30;
    let minutes = [
        BASE_MINUTE,
        BASE_MINUTE + 6 * 60,
        cutoff_minute - 1,
        cutoff_minute,
        cutoff_minute + 1,
        BASE_MINUTE + 10 * 60 - 1,
    ];
    let edges: Vec<_> = (0_u64..)
        .zip(minutes)
        .map(|(seed, minute)| edge_rollup(minute, key("a", "b"), seed))
        .collect();
    let operations: Vec<_> = (0_u64..)
        .zip(minutes)
        .map(|(seed, minute)| operation_rollup(minute, "a", "get", seed))
        .collect();
    writer
        .write_rollups(INSTANCE, &edges, &operations)
        .expect("write_rollups");

    let policy = RetentionPolicy {
        max_age: Duration::from_nanos(now_nanos - cutoff_nanos),
        max_size_bytes: u64::MAX,
    };
    let report = writer
        .apply_retention(&policy, now_nanos)
        .expect("apply_retention");
    assert_eq!(report.num_rollups_deleted, 6, "{report:?}");
    assert_eq!(
        (report.num_spans_deleted, report.num_metric_points_deleted),
        (0, 0)
    );
    assert_eq!(all_minutes(&reader), minutes[3..]);
    assert_eq!(all_edges(&reader), edges[3..]);
    assert_eq!(all_operations(&reader), operations[3..]);

    let again = writer
        .apply_retention(&policy, now_nanos)
        .expect("apply_retention");
    assert_eq!(again.num_rollups_deleted, 0);

    // A late rollup for an aged-out hour is stored again, and ages out again.
    writer
        .write_rollups(INSTANCE, &edges[..1], &[])
        .expect("write_rollups");
    assert_eq!(all_edges(&reader)[0], edges[0]);
    let report = writer
        .apply_retention(&policy, now_nanos)
        .expect("apply_retention");
    assert_eq!(report.num_rollups_deleted, 1);

    let nothing = RetentionPolicy {
        max_age: Duration::MAX,
        max_size_bytes: 0,
    };
    let report = writer
        .apply_retention(&nothing, now_nanos)
        .expect("apply_retention");
    assert_eq!(report.num_rollups_deleted, 6, "{report:?}");
    assert!(all_minutes(&reader).is_empty());
    assert_eq!(all_operations(&reader), []);

    // The store keeps working after being emptied.
    writer
        .write_rollups(INSTANCE, &edges[5..], &operations[5..])
        .expect("write_rollups");
    assert_eq!(all_edges(&reader), edges[5..]);
}

/// Late calls are added to what the instance stored for their minute and key (read with
/// [`RollupWriter::instance_rollups`], written back whole); other instances' rows and other
/// minutes stay as they were, and a key nothing was stored for is stored as it comes.
pub fn rollup_late_merge<W: StoreWriter + RollupWriter, R: RollupReader>(
    (mut writer, reader): (W, R),
) {
    let minute = BASE_MINUTE + 11;
    let stored_edge = edge_rollup(minute, key("a", "b"), 1);
    let other_minute = edge_rollup(minute + 1, key("a", "b"), 2);
    let stored_operation = operation_rollup(minute, "b", "get", 1);
    writer
        .write_rollups(
            INSTANCE,
            &[stored_edge.clone(), other_minute.clone()],
            from_ref(&stored_operation),
        )
        .expect("write_rollups");
    let peer_edge = edge_rollup(minute, key("a", "b"), 5);
    writer
        .write_rollups(INSTANCE + 1, from_ref(&peer_edge), &[])
        .expect("write_rollups of a peer");
    let (own_edges, own_operations) = writer
        .instance_rollups(INSTANCE, MinuteRange::single(UnixMinute(minute)))
        .expect("instance_rollups");
    assert_eq!(own_edges, from_ref(&stored_edge));
    assert_eq!(own_operations, from_ref(&stored_operation));

    let late_edge = edge_rollup(minute, key("a", "b"), 3);
    let new_key = edge_rollup(minute, key("a", "c"), 4);
    let late_operation = operation_rollup(minute, "b", "get", 2);
    let (edges, operations) = merged_with_stored(
        &mut writer,
        INSTANCE,
        &[late_edge.clone(), new_key.clone()],
        from_ref(&late_operation),
    )
    .expect("merged_with_stored");
    writer
        .write_rollups(INSTANCE, &edges, &operations)
        .expect("write merged");

    let range = MinuteRange::single(UnixMinute(minute));
    let mut expected_sum = stored_edge.stats.clone();
    expected_sum.merge(&late_edge.stats);
    let ab_requests: Vec<u64> = reader
        .edge_rollups(range, Some(INSTANCE + 1))
        .expect("edge_rollups")
        .iter()
        .filter(|rollup| rollup.key == key("a", "b"))
        .map(|rollup| rollup.stats.num_requests)
        .collect();
    assert_eq!(ab_requests, [expected_sum.num_requests]);
    let all = reader.edge_rollups(range, None).expect("edge_rollups");
    assert_eq!(
        all.len(),
        3,
        "own sum, the peer's row, the new key: {all:?}"
    );
    assert!(all.contains(&peer_edge));
    assert!(all.contains(&new_key));
    let operations = reader
        .operation_rollups(range, None, None)
        .expect("operation_rollups");
    assert_eq!(
        operations[0].stats.num_requests,
        stored_operation.stats.num_requests + late_operation.stats.num_requests
    );
    let next = MinuteRange::single(UnixMinute(minute + 1));
    assert_eq!(
        reader.edge_rollups(next, None).expect("read"),
        [other_minute]
    );
}
