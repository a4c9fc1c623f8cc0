//! The totals read of a range ([`crate::store::RollupReader::edge_totals`]): `payload`, and
//! `operations` only when the splits are read (the map's read leaves them), each row streamed
//! in read in place ([`EdgeRollupBodyRef`]) into [`EdgeSums`].

use clickhouse::Row;
use serde::Deserialize;

use super::rows::EdgeRollupBodyRef;
use crate::store::StoreError;
use crate::store::edge_sums::{EdgeSums, RowRef};

/// What the totals read selects, borrowed from the response.
#[derive(Row, Deserialize)]
pub(super) struct TotalsRow<'a> {
    pub minute: i64,
    pub instance: u32,
    pub payload: &'a [u8],
    /// Empty when the splits are not read (or the row has none).
    pub operations: &'a [u8],
}

/// Adds one streamed row to `sums`.
pub(super) fn add_row(sums: &mut EdgeSums, row: &TotalsRow<'_>) -> Result<(), StoreError> {
    let body = EdgeRollupBodyRef::parse(row.payload)?;
    sums.add(RowRef {
        minute: row.minute,
        instance: row.instance,
        key: body.key,
        source_placement: body.source_placement,
        target_placement: body.target_placement,
        stats: body.stats,
        operations: row.operations,
    })
}

#[cfg(test)]
mod tests {
    use super::super::rows::{EdgeRollupReadRow, EdgeRollupRow};
    use super::*;
    use crate::model::graph::{EdgeKey, EdgeKind, EdgeRollup, EdgeStats, NodeKey, OperationSplit};
    use crate::store::Splits;
    use crate::store::conformance::rollup_fixtures::{BASE_MINUTE, edge_rollup, spread_sketch};
    use crate::store::sqlite::codec_rollup::encode_edge_stats;

    fn rollup(minute: i64, seed: u64) -> EdgeRollup {
        let key = EdgeKey {
            source: NodeKey::service("a\u{0}<b>"),
            target: NodeKey::service("c"),
            kind: EdgeKind::Grpc,
        };
        let mut rollup = edge_rollup(minute, key, seed);
        rollup.stats.operations = vec![OperationSplit {
            caller: "GET /x".to_owned(),
            callee: "POST /y".to_owned(),
            num_requests: 4,
            num_errors: 1,
            latency: spread_sketch(seed, 4),
        }];
        rollup
    }

    /// A row as written before the `operations` column: the splits inside the payload.
    fn written_before_the_column(rollup: &EdgeRollup) -> EdgeRollupReadRow {
        let row = EdgeRollupRow::new(1, rollup, 1).expect("row");
        let mut stats = Vec::new();
        encode_edge_stats(&mut stats, &rollup.stats).expect("stats");
        let body = postcard::from_bytes::<EdgeRollupBodyRef<'_>>(&row.payload).expect("body");
        assert!(body.key.is(&rollup.key));
        // The payload's fields, in order (postcard writes a struct as its fields).
        let payload = postcard::to_allocvec(&(
            &rollup.key,
            &rollup.source_placement,
            &rollup.target_placement,
            serde_bytes::Bytes::new(&stats),
        ))
        .expect("payload");
        EdgeRollupReadRow {
            minute: rollup.minute,
            instance: 1,
            payload,
            operations: Vec::new(),
        }
    }

    #[test]
    fn rows_of_either_form_read_exactly_and_splits_in_two_places_are_refused() {
        let rollup = rollup(BASE_MINUTE, 7);
        let row = EdgeRollupRow::new(1, &rollup, 1).expect("row");
        assert!(!row.operations.is_empty(), "splits in their column");
        let read = EdgeRollupReadRow {
            minute: row.minute,
            instance: row.instance,
            payload: row.payload.clone(),
            operations: row.operations.clone(),
        };
        assert_eq!(read.into_rollup().expect("new form"), rollup);
        let old = written_before_the_column(&rollup);
        let both = EdgeRollupReadRow {
            operations: row.operations,
            ..written_before_the_column(&rollup)
        };
        assert_eq!(old.into_rollup().expect("old form"), rollup);
        assert!(both.into_rollup().is_err());
    }

    #[test]
    fn sums_equal_merging_with_or_without_splits_and_keep_the_first_placements() {
        for splits in [Splits::Skipped, Splits::Read] {
            sums_equal_merging(splits);
        }
    }

    fn sums_equal_merging(splits: Splits) {
        let rollups: Vec<EdgeRollup> = (0..5)
            .map(|no| rollup(BASE_MINUTE + no, no as u64))
            .collect();
        let mut summed = EdgeSums::new(splits);
        // Out of order, one row written before the column: neither changes the sum.
        for rollup in rollups.iter().rev() {
            let row = if rollup.minute == BASE_MINUTE + 2 {
                written_before_the_column(rollup)
            } else {
                let row = EdgeRollupRow::new(1, rollup, 1).expect("row");
                EdgeRollupReadRow {
                    minute: row.minute,
                    instance: 1,
                    payload: row.payload,
                    operations: row.operations,
                }
            };
            let totals_row = TotalsRow {
                minute: row.minute,
                instance: row.instance,
                payload: &row.payload,
                operations: &row.operations,
            };
            add_row(&mut summed, &totals_row).expect("a row");
        }
        let totals = summed.into_totals().expect("totals");
        let all: Vec<&EdgeStats> = rollups.iter().map(|rollup| &rollup.stats).collect();
        let mut merged = EdgeStats::merge_all(&all);
        if splits == Splits::Skipped {
            merged.operations = Vec::new();
        }
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].key, rollups[0].key);
        assert_eq!(totals[0].source_placement, rollups[0].source_placement);
        assert_eq!(totals[0].target_placement, rollups[0].target_placement);
        assert_eq!(totals[0].stats, merged);
        let mut damaged = EdgeSums::new(splits);
        let row = EdgeRollupRow::new(1, &rollups[0], 1).expect("row");
        let cut = TotalsRow {
            minute: row.minute,
            instance: 1,
            payload: &row.payload[..row.payload.len() - 3],
            operations: &row.operations,
        };
        // The cut shows where the stats are read: in the payload's read, or when summed.
        let read = add_row(&mut damaged, &cut);
        assert!(read.is_err() || damaged.into_totals().is_err());
        // Splits in both places are refused when they are read.
        let mut both = EdgeSums::new(splits);
        let old = written_before_the_column(&rollups[0]);
        let in_both = TotalsRow {
            minute: old.minute,
            instance: 1,
            payload: &old.payload,
            operations: &row.operations,
        };
        add_row(&mut both, &in_both).expect("a row");
        assert_eq!(both.into_totals().is_err(), splits == Splits::Read);
    }
}
