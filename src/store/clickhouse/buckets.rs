//! Ten-minute sums of each instance's edge rollups (`edge_rollup_buckets`), so that the map's
//! read of a long range takes one row per edge and ten minutes instead of one per minute (an
//! hour of a 2,000-edge mesh: 12k rows instead of 120k).
//!
//! The rows of one bucket and instance are a *set*: each the sum of one edge's minute rows,
//! written in one insert by the instance's writer once the bucket's last minute is stored, and
//! again whenever a minute of it is stored later. Every row of a set carries the set's version,
//! its number of rows, and the count and the sum of `written_at` of the minute rows it summed.
//! A read uses a set only while it is whole (one version, as many rows as it says) and its
//! minute rows are still those it summed (same count, same sum of versions). A minute replaced
//! later, a set half written before a crash, rows a cluster delivers late, retention that cut
//! the bucket: each makes the read take that bucket's minute rows instead, so a set is only
//! ever a faster way to the same totals. Operation splits are not summed here: the read with
//! splits sums minute rows in their order (see [`crate::store::edge_sums`]).

use std::collections::{BTreeSet, HashMap};

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::Shared;
use super::bound::{Bound, bound_query, rollup_condition};
use super::rows::EdgeRollupRow;
use super::totals::{TotalsRow, add_row};
use crate::model::graph::EdgeRollup;
use crate::model::{MinuteRange, UnixMinute};
use crate::store::edge_sums::EdgeSums;
use crate::store::{Instances, Splits, StoreError};

/// Minutes summed in one bucket; buckets start at multiples of it.
pub(super) const BUCKET_MINUTES: i64 = 10;

const TABLE: &str = "edge_rollup_buckets";

/// The first minute of `minute`'s bucket.
pub(super) fn bucket_of(minute: i64) -> i64 {
    minute - minute.rem_euclid(BUCKET_MINUTES)
}

/// One row of a set.
#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct BucketRow {
    pub bucket: i64,
    pub instance: u32,
    pub key: String,
    /// The first minute of the edge's rows in the bucket: the row whose placements are kept.
    pub minute: i64,
    /// The set's version, shared by its rows.
    pub written_at: u64,
    pub num_keys: u32,
    pub source_rows: u32,
    pub source_versions: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A minute row as a set sums it.
#[derive(Row, Deserialize)]
struct SourceRow<'a> {
    minute: i64,
    instance: u32,
    written_at: u64,
    payload: &'a [u8],
}

/// The sets a writer owes: of each instance, the buckets it stored minutes of since their set
/// was written, due once closed (the newest minute it stored is at or past their last).
#[derive(Debug, Default)]
pub(super) struct PendingBuckets {
    changed: BTreeSet<(u32, i64)>,
    newest: HashMap<u32, i64>,
}

impl PendingBuckets {
    /// Notes the minutes of `instance`'s edge rollups just stored; returns its buckets now due.
    /// An instance's first minutes in a process also make the bucket before theirs owed: a
    /// restart may have come before that bucket's set was written.
    pub(super) fn stored(
        &mut self,
        instance: u32,
        minutes: impl IntoIterator<Item = i64>,
    ) -> Vec<i64> {
        for minute in minutes {
            let newest = self.newest.entry(instance).or_insert_with(|| {
                if minute >= BUCKET_MINUTES {
                    self.changed
                        .insert((instance, bucket_of(minute) - BUCKET_MINUTES));
                }
                minute
            });
            *newest = (*newest).max(minute);
            self.changed.insert((instance, bucket_of(minute)));
        }
        let Some(&newest) = self.newest.get(&instance) else {
            return Vec::new();
        };
        self.changed
            .range((instance, i64::MIN)..=(instance, i64::MAX))
            .map(|&(_, bucket)| bucket)
            .filter(|bucket| bucket + BUCKET_MINUTES - 1 <= newest)
            .collect()
    }

    /// Notes that `instance`'s set of `bucket` was written.
    pub(super) fn written(&mut self, instance: u32, bucket: i64) {
        self.changed.remove(&(instance, bucket));
    }
}

/// Writes the set of `bucket` for `instance` from its minute rows as stored now.
pub(super) fn write_set(shared: &Shared, instance: u32, bucket: i64) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT minute, instance, written_at, payload FROM {} FINAL \
         WHERE minute >= ? AND minute < ? AND instance = ?",
        shared.table("edge_rollups")
    );
    let binds = vec![
        Bound::minute(bucket),
        Bound::minute(bucket + BUCKET_MINUTES),
        Bound::Number(u64::from(instance)),
    ];
    let client = shared.client.clone();
    let (sums, source_rows, source_versions) = shared.block(async move {
        let mut cursor = bound_query(&client, &sql, binds).fetch::<SourceRow<'_>>()?;
        let mut sums = EdgeSums::new(Splits::Skipped);
        let (mut num_rows, mut versions) = (0_u32, 0_u64);
        while let Some(row) = cursor.next().await? {
            num_rows += 1;
            // The engine's sum of UInt64 wraps the same way.
            versions = versions.wrapping_add(row.written_at);
            let row = TotalsRow {
                minute: row.minute,
                instance: row.instance,
                payload: row.payload,
                operations: &[],
            };
            if let Err(err) = add_row(&mut sums, &row) {
                return Ok(Err(err));
            }
        }
        Ok(Ok((sums, num_rows, versions)))
    })??;
    let totals = sums.into_totals_with_first_minutes()?;
    let num_keys = u32::try_from(totals.len()).unwrap_or(u32::MAX);
    let version = crate::model::now_unix_nano();
    let rows = totals
        .into_iter()
        .map(|(minute, total)| {
            let rollup = EdgeRollup {
                minute,
                key: total.key,
                source_placement: total.source_placement,
                target_placement: total.target_placement,
                stats: total.stats,
            };
            let row = EdgeRollupRow::new(instance, &rollup, version)?;
            Ok(BucketRow {
                bucket,
                instance,
                key: row.key,
                minute,
                written_at: version,
                num_keys,
                source_rows,
                source_versions,
                payload: row.payload,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    shared.insert(TABLE, &rows)
}

/// The buckets wholly inside `range`, as a range of minutes (empty when there is none).
fn whole_buckets(range: MinuteRange) -> MinuteRange {
    // The first bucket starting at or after the range's start.
    let first = bucket_of(range.from().get() + BUCKET_MINUTES - 1);
    let end = bucket_of(range.to().get());
    MinuteRange::new(UnixMinute(first), UnixMinute(end.max(first)))
}

/// A query of the (bucket, instance) pairs in `buckets` whose set stands for their minutes:
/// whole (one version, as many rows as it says) and summed from the minute rows as they are
/// (their count and sum of versions).
fn standing_sets(
    shared: &Shared,
    buckets: MinuteRange,
    instances: Instances,
) -> (String, Vec<Bound>) {
    let (minutes, mut binds) = rollup_condition("minute", buckets, instances);
    let (sets, set_binds) = rollup_condition("bucket", buckets, instances);
    binds.extend(set_binds);
    let sql = format!(
        "SELECT m.bucket, m.instance \
         FROM (SELECT intDiv(minute, {BUCKET_MINUTES}) * {BUCKET_MINUTES} AS bucket, instance, \
         count() AS num_rows, sum(written_at) AS versions \
         FROM {minute_table} FINAL WHERE {minutes} GROUP BY bucket, instance) AS m \
         INNER JOIN (SELECT bucket, instance, count() AS num_rows, max(num_keys) AS num_keys, \
         min(written_at) AS low, max(written_at) AS high, max(source_rows) AS source_rows, \
         max(source_versions) AS source_versions \
         FROM {set_table} FINAL WHERE {sets} GROUP BY bucket, instance) AS s \
         ON m.bucket = s.bucket AND m.instance = s.instance \
         WHERE s.num_rows = s.num_keys AND s.low = s.high \
         AND s.source_rows = m.num_rows AND s.source_versions = m.versions",
        minute_table = shared.table("edge_rollups"),
        set_table = shared.table(TABLE),
    );
    (sql, binds)
}

/// The statement for the totals of `range` without splits (the columns of [`TotalsRow`]):
/// the sets that stand for their minutes, and the minute rows of everything else. `None` when
/// no set in `range` stands for its minutes (read the minute rows alone).
pub(super) fn totals_statement(
    shared: &Shared,
    range: MinuteRange,
    instances: Instances,
) -> Result<Option<(String, Vec<Bound>)>, StoreError> {
    let buckets = whole_buckets(range);
    if buckets.is_empty() {
        return Ok(None);
    }
    let (standing, binds) = standing_sets(shared, buckets, instances);
    let client = shared.client.clone();
    let standing: Vec<(i64, u32)> =
        shared.block(async move { bound_query(&client, &standing, binds).fetch_all().await })?;
    if standing.is_empty() {
        return Ok(None);
    }
    let (sets, mut binds) = rollup_condition("bucket", buckets, instances);
    binds.push(Bound::Pairs(standing.clone()));
    let (minutes, minute_binds) = rollup_condition("minute", range, instances);
    binds.extend(minute_binds);
    binds.push(Bound::Pairs(standing));
    // PREWHERE on sorting-key columns only: every version of a row passes or fails alike, so
    // FINAL still keeps the latest; rows left out are never read past their key.
    let sql = format!(
        "SELECT minute, instance, payload, '' AS operations FROM {set_table} FINAL \
         WHERE {sets} AND (bucket, instance) IN ? \
         UNION ALL SELECT minute, instance, payload, '' AS operations FROM {minute_table} FINAL \
         PREWHERE {minutes} AND (intDiv(minute, {BUCKET_MINUTES}) * {BUCKET_MINUTES}, instance) \
         NOT IN ?",
        set_table = shared.table(TABLE),
        minute_table = shared.table("edge_rollups"),
    );
    Ok(Some((sql, binds)))
}

/// Deletes the sets of buckets that start before `cutoff_minute` (a bucket retention cut
/// stands for nothing any more).
pub(super) fn delete_sets_before(shared: &Shared, cutoff_minute: u64) -> Result<(), StoreError> {
    let sql = format!(
        "ALTER TABLE {} DELETE WHERE bucket < ?",
        shared.local_table(TABLE)
    );
    let client = shared.client.clone();
    shared.block(async move {
        client
            .query(&sql)
            .bind(cutoff_minute)
            .with_setting("mutations_sync", "2")
            .execute()
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_at_multiples_of_ten_and_whole_ones_lie_inside_the_range() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(19), 10);
        assert_eq!(bucket_of(20), 20);
        let range = |from, to| MinuteRange::new(UnixMinute(from), UnixMinute(to));
        let whole = |from, to| {
            let buckets = whole_buckets(range(from, to));
            (buckets.from().get(), buckets.to().get())
        };
        assert_eq!(whole(20, 80), (20, 80));
        assert_eq!(whole(23, 83), (30, 80));
        assert_eq!(whole(23, 39), (30, 30));
        assert!(whole_buckets(range(23, 29)).is_empty());
        assert!(whole_buckets(range(21, 39)).is_empty());
    }

    #[test]
    fn a_bucket_is_due_once_closed_and_again_when_changed() {
        let mut pending = PendingBuckets::default();
        // The first minutes also owe the bucket before (a restart may have left it).
        assert_eq!(pending.stored(1, [25]), vec![10]);
        pending.written(1, 10);
        assert!(pending.stored(1, [26, 27, 28]).is_empty());
        assert_eq!(pending.stored(1, [29]), vec![20]);
        pending.written(1, 20);
        assert!(pending.stored(1, [30]).is_empty());
        // A late minute of a closed bucket makes it due again at once.
        assert_eq!(pending.stored(1, [12]), vec![10]);
        pending.written(1, 10);
        // A set not written stays owed.
        assert_eq!(pending.stored(1, [41]), vec![30]);
        assert_eq!(pending.stored(1, [42]), vec![30]);
        // Each instance's minutes and sets are its own.
        assert!(pending.stored(2, [5]).is_empty());
        assert_eq!(pending.stored(2, [9]), vec![0]);
        pending.written(2, 0);
        assert_eq!(pending.stored(1, [43]), vec![30]);
    }
}
