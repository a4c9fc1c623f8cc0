//! Reads of rollups for one purpose: merged per edge over a range (`edge_totals`, what a map
//! reads), equal to merging the stored rollups one by one, by minute then instance; and the
//! edges between two nodes only (`edge_rollups_between`, what an edge's charts read).

use std::collections::BTreeMap;

use crate::model::graph::{
    EdgeKey, EdgeKind, EdgeRollup, EdgeStats, EdgeTotal, NodeKey, NodeKind, OperationSplit,
};
use crate::model::{MinuteRange, UnixMinute};
use crate::store::{RollupReader, RollupWriter, Splits};

use super::rollup_fixtures::{BASE_MINUTE, edge_rollup};
use super::rollups::{INSTANCE, key};

/// Totals merge every minute and instance of each edge in order: counts add up, sketches
/// merge exactly, the first rollup's placements are kept, and past the split limit the
/// operation pairs seen first keep splits of their own (as merging one by one decides);
/// an excluded instance and minutes outside the range are left out. Without splits
/// ([`Splits::Skipped`]) they are the same with the splits left out. Two edges whose names
/// hold NULs so that their ids joined would read the same stay apart.
pub fn rollup_totals_per_edge<W: RollupWriter, R: RollupReader>((mut writer, reader): (W, R)) {
    let topic = EdgeKey {
        source: NodeKey::new(NodeKind::Topic, "orders"),
        target: NodeKey::service("billing"),
        kind: EdgeKind::Messaging,
    };
    let keys = [
        key("a", "b"),
        key("b", "c"),
        topic,
        key("x", "y\u{0}service:z"),
        key("x\u{0}service:y", "z"),
    ];
    let written = write_twelve_minutes(&mut writer, &keys);
    let range = |from: i64, to: i64| {
        MinuteRange::new(UnixMinute(BASE_MINUTE + from), UnixMinute(BASE_MINUTE + to))
    };
    for (minutes, exclude) in [
        (range(0, 12), None),
        (range(2, 9), None),
        (range(0, 12), Some(INSTANCE)),
        (range(-100, 100), Some(INSTANCE + 1)),
        (range(11, 12), None),
    ] {
        let totals = reader
            .edge_totals(minutes, exclude, Splits::Read)
            .expect("edge_totals");
        let expected = merged_one_by_one(&written, minutes, exclude);
        assert_eq!(totals, expected, "{minutes:?} without {exclude:?}");
        let without_splits: Vec<EdgeTotal> = expected
            .into_iter()
            .map(|mut total| {
                total.stats.operations = Vec::new();
                total
            })
            .collect();
        let skipped = reader
            .edge_totals(minutes, exclude, Splits::Skipped)
            .expect("edge_totals without splits");
        assert_eq!(skipped, without_splits, "{minutes:?} without {exclude:?}");
        assert_eq!(totals.len(), keys.len());
        let stored = reader.edge_rollups(minutes, exclude).expect("edge_rollups");
        let num_requests: u64 = stored.iter().map(|rollup| rollup.stats.num_requests).sum();
        assert_eq!(
            totals
                .iter()
                .map(|total| total.stats.num_requests)
                .sum::<u64>(),
            num_requests
        );
    }
    let whole = reader
        .edge_totals(range(0, 12), None, Splits::Read)
        .expect("edge_totals");
    assert!(
        whole.iter().all(|total| total.stats.operations.len() == 9),
        "eight splits of their own and the rest"
    );
    for splits in [Splits::Read, Splits::Skipped] {
        let nothing = reader
            .edge_totals(range(20, 30), None, splits)
            .expect("edge_totals");
        assert!(nothing.is_empty());
    }
}

/// Twelve minutes of `keys` from two instances, each minute with a new operation pair;
/// written, and returned with the instance that wrote each.
fn write_twelve_minutes(
    writer: &mut impl RollupWriter,
    keys: &[EdgeKey],
) -> Vec<(u32, EdgeRollup)> {
    let mut written: Vec<(u32, EdgeRollup)> = Vec::new();
    for offset in 0..12_i64 {
        for (no, edge) in keys.iter().enumerate() {
            for instance in [INSTANCE, INSTANCE + 1] {
                let seed = (offset as u64) * 31 + no as u64 * 7 + u64::from(instance);
                let mut rollup = edge_rollup(BASE_MINUTE + offset, edge.clone(), seed);
                // A new operation pair every minute: more than an edge keeps over the range.
                let splits = &mut rollup.stats.operations;
                if splits.is_empty() {
                    splits.push(OperationSplit {
                        caller: String::new(),
                        callee: "POST /pay".to_owned(),
                        num_requests: 3,
                        num_errors: 1,
                        latency: rollup.stats.client_latency.clone(),
                    });
                }
                for split in splits.iter_mut() {
                    split.caller = format!("GET /minute-{offset:02}");
                }
                splits.sort_by(|l, r| (&l.caller, &l.callee).cmp(&(&r.caller, &r.callee)));
                written.push((instance, rollup));
            }
        }
    }
    for instance in [INSTANCE, INSTANCE + 1] {
        let mine: Vec<EdgeRollup> = written
            .iter()
            .filter(|(by, _)| *by == instance)
            .map(|(_, rollup)| rollup.clone())
            .collect();
        writer
            .write_rollups(instance, &mine, &[])
            .expect("write_rollups");
    }
    written
}

/// The edges between two nodes are every kind of edge from the one to the other, nothing
/// else: not the other direction, not nodes whose names start the same or hold the key's
/// separators.
pub fn rollup_reads_between_two_nodes<W: RollupWriter, R: RollupReader>(
    (mut writer, reader): (W, R),
) {
    let edge = |source: NodeKey, target: &str, kind: EdgeKind| EdgeKey {
        source,
        target: NodeKey::service(target),
        kind,
    };
    let from = NodeKey::service("a'\u{0}");
    let wanted = [
        edge(from.clone(), "b", EdgeKind::Http),
        edge(from.clone(), "b", EdgeKind::Grpc),
    ];
    let others = [
        edge(NodeKey::service("b"), "a'\u{0}", EdgeKind::Http),
        edge(from.clone(), "bc", EdgeKind::Http),
        edge(
            NodeKey::new(NodeKind::Database, "a'\u{0}"),
            "b",
            EdgeKind::Http,
        ),
        edge(
            NodeKey::service("a'\u{0}\u{0}service:b"),
            "c",
            EdgeKind::Http,
        ),
        edge(NodeKey::service("a'"), "b", EdgeKind::Http),
    ];
    let rollups: Vec<EdgeRollup> = (0..3_i64)
        .flat_map(|offset| {
            wanted
                .iter()
                .chain(&others)
                .enumerate()
                .map(move |(no, key)| {
                    edge_rollup(
                        BASE_MINUTE + offset,
                        key.clone(),
                        no as u64 + 3 * offset as u64,
                    )
                })
        })
        .collect();
    writer
        .write_rollups(INSTANCE, &rollups, &[])
        .expect("write_rollups");
    let range = MinuteRange::new(UnixMinute(BASE_MINUTE), UnixMinute(BASE_MINUTE + 2));
    let between = reader
        .edge_rollups_between(range, None, &from, &NodeKey::service("b"))
        .expect("edge_rollups_between");
    let expected: Vec<EdgeRollup> = reader
        .edge_rollups(range, None)
        .expect("edge_rollups")
        .into_iter()
        .filter(|rollup| wanted.contains(&rollup.key))
        .collect();
    assert_eq!(expected.len(), 4, "two kinds, two minutes");
    assert_eq!(between, expected);
    let excluded = reader
        .edge_rollups_between(range, Some(INSTANCE), &from, &NodeKey::service("b"))
        .expect("edge_rollups_between");
    assert!(excluded.is_empty());
    let none = reader
        .edge_rollups_between(range, None, &NodeKey::service("b"), &NodeKey::service("c"))
        .expect("edge_rollups_between");
    assert!(none.is_empty());
}

/// What the store should return, from what was written: per key, [`EdgeStats::merge`] one
/// rollup after another, by minute then instance.
fn merged_one_by_one(
    written: &[(u32, EdgeRollup)],
    minutes: MinuteRange,
    exclude: Option<u32>,
) -> Vec<EdgeTotal> {
    let mut chosen: Vec<&(u32, EdgeRollup)> = written
        .iter()
        .filter(|(instance, rollup)| {
            Some(*instance) != exclude && minutes.contains(UnixMinute(rollup.minute))
        })
        .collect();
    chosen.sort_by_key(|(instance, rollup)| (rollup.minute, *instance));
    let mut totals: BTreeMap<EdgeKey, EdgeTotal> = BTreeMap::new();
    for (_, rollup) in chosen {
        totals
            .entry(rollup.key.clone())
            .or_insert_with(|| EdgeTotal {
                key: rollup.key.clone(),
                source_placement: rollup.source_placement.clone(),
                target_placement: rollup.target_placement.clone(),
                stats: EdgeStats::default(),
            })
            .stats
            .merge(&rollup.stats);
    }
    totals.into_values().collect()
}
