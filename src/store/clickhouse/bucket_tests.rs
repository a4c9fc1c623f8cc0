//! Ten-minute sets on the real engine: a whole set is read in place of its minutes, and a set
//! that no longer matches its minutes (a minute stored by another writer, a set half written)
//! is not: the totals stay those of the minute rows.

use std::sync::Arc;

use super::buckets::{BUCKET_MINUTES, BucketRow};
use super::rows::{EdgeRollupBodyRef, EdgeRollupRow};
use super::tests::test_options;
use super::{ClickHouseReader, ClickHouseWriter, Shared, connect};
use crate::model::graph::{EdgeKey, EdgeRollup, EdgeTotal, NodeKey};
use crate::model::{MinuteRange, UnixMinute};
use crate::store::conformance::rollup_fixtures::{BASE_MINUTE, edge_rollup};
use crate::store::totals::edge_totals_of;
use crate::store::{RollupReader, RollupWriter, Splits};

fn fresh() -> Arc<Shared> {
    let shared = connect(&test_options()).expect("connects");
    shared.block_migrations().expect("migrates");
    Arc::new(shared)
}

fn keys() -> Vec<EdgeKey> {
    ["b", "c", "d"]
        .iter()
        .map(|target| EdgeKey {
            source: NodeKey::service("a"),
            target: NodeKey::service(*target),
            kind: crate::model::graph::EdgeKind::Http,
        })
        .collect()
}

fn minute_of(offset: i64, instance: u32, seed: u64) -> Vec<EdgeRollup> {
    keys()
        .into_iter()
        .enumerate()
        .map(|(no, key)| {
            let seed = seed + offset as u64 * 13 + no as u64 * 5 + u64::from(instance);
            edge_rollup(BASE_MINUTE + offset, key, seed)
        })
        .collect()
}

fn range(from: i64, to: i64) -> MinuteRange {
    MinuteRange::new(UnixMinute(BASE_MINUTE + from), UnixMinute(BASE_MINUTE + to))
}

/// What the totals must be: the stored minute rows merged one by one, without splits.
fn merged_minutes(reader: &ClickHouseReader, minutes: MinuteRange) -> Vec<EdgeTotal> {
    let stored = reader.edge_rollups(minutes, None).expect("edge_rollups");
    let mut totals = edge_totals_of(stored).expect("merged");
    for total in &mut totals {
        total.stats.operations = Vec::new();
    }
    totals
}

fn assert_totals_are_the_minutes(reader: &ClickHouseReader, what: &str) {
    for minutes in [range(0, 10), range(0, 12), range(3, 12), range(-5, 25)] {
        let totals = reader
            .edge_totals(minutes, None, Splits::Skipped)
            .expect("edge_totals");
        assert_eq!(
            totals,
            merged_minutes(reader, minutes),
            "{what}: {minutes:?}"
        );
    }
}

fn sets(shared: &Shared, instance: u32) -> Vec<BucketRow> {
    let sql = format!(
        "SELECT ?fields FROM {} FINAL WHERE instance = ? ORDER BY bucket, key",
        shared.table("edge_rollup_buckets")
    );
    let client = shared.client.clone();
    shared
        .block(async move { client.query(&sql).bind(instance).fetch_all().await })
        .expect("sets")
}

/// `row` as a newer version of its set would write it, with other figures.
fn newer_with_other_figures(mut row: BucketRow) -> BucketRow {
    row.written_at += 1;
    let key = EdgeRollupBodyRef::parse(&row.payload)
        .expect("body")
        .key
        .to_key();
    let mut rollup = edge_rollup(row.minute, key, 999);
    rollup.stats.num_requests = 1_000_000;
    row.payload = EdgeRollupRow::new(row.instance, &rollup, row.written_at)
        .expect("row")
        .payload;
    row
}

#[test]
fn sets_stand_for_their_minutes_only_while_they_match_them() {
    let shared = fresh();
    let mut writer = ClickHouseWriter::new(Arc::clone(&shared));
    let reader = ClickHouseReader::new(Arc::clone(&shared));
    // Two instances, a minute at a time, as the pipeline writes them.
    for offset in 0..BUCKET_MINUTES + 2 {
        for instance in [1, 2] {
            writer
                .write_rollups(instance, &minute_of(offset, instance, 0), &[])
                .expect("write_rollups");
        }
    }
    let written = sets(&shared, 1);
    assert_eq!(
        written.len(),
        keys().len(),
        "the first bucket's set, once closed"
    );
    assert!(written.iter().all(|row| row.bucket == BASE_MINUTE));
    let num_minute_rows = keys().len() as u32 * BUCKET_MINUTES as u32;
    assert!(written.iter().all(|row| row.source_rows == num_minute_rows));
    assert_eq!(sets(&shared, 2).len(), keys().len());
    assert_totals_are_the_minutes(&reader, "whole sets");

    // A whole set is read in place of its minutes: one that says otherwise shows.
    let forged: Vec<BucketRow> = written.into_iter().map(newer_with_other_figures).collect();
    shared
        .insert("edge_rollup_buckets", &forged)
        .expect("forged set");
    let totals = reader
        .edge_totals(range(0, 10), None, Splits::Skipped)
        .expect("edge_totals");
    assert!(
        totals
            .iter()
            .all(|total| total.stats.num_requests > 1_000_000)
    );

    // A later minute of the bucket, stored by this writer, writes the set again.
    writer
        .write_rollups(1, &minute_of(4, 1, 50), &[])
        .expect("a late minute");
    assert_totals_are_the_minutes(&reader, "set written again");

    // Another writer (a restart) stores a minute of a closed bucket and owes nothing yet:
    // the set no longer matches its minutes.
    let mut other = ClickHouseWriter::new(Arc::clone(&shared));
    other
        .write_rollups(2, &minute_of(6, 2, 70), &[])
        .expect("another writer");
    assert_totals_are_the_minutes(&reader, "a set behind its minutes");

    // A set half written (one row of a newer version, its minutes the same) is not whole.
    let mut half: Vec<BucketRow> = sets(&shared, 1)
        .into_iter()
        .map(newer_with_other_figures)
        .collect();
    half.truncate(1);
    shared
        .insert("edge_rollup_buckets", &half)
        .expect("half a set");
    assert_totals_are_the_minutes(&reader, "half a set");
}
