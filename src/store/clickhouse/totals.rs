//! The map's read of a range ([`crate::store::RollupReader::edge_totals`] without operation
//! splits). Only `payload` is read (the splits are in `operations`), and no rollup is built:
//! as rows stream in, each payload is read in place ([`EdgeRollupBodyRef`]) for its edge,
//! and its stats bytes are copied aside; then each edge's rows are summed together, bucket by
//! bucket (`codec_rollup::add_edge_stats`), the edges spread over the cores. Summing an edge's
//! rows one after another keeps its sums in the cache; summing rows as they come (by minute)
//! moved through every edge's sums each minute and waited on memory. An hour of a 2,000-edge
//! mesh is 120k rows.

use std::hash::BuildHasher;

use clickhouse::Row;
use serde::Deserialize;

use super::rows::EdgeRollupBodyRef;
use crate::graph::hash::{FastMap, FoldBuildHasher};
use crate::model::graph::{EdgeKey, EdgeTotal, NodePlacement};
use crate::store::StoreError;
use crate::store::parallel::try_map_in_order_by;
use crate::store::sqlite::codec_rollup::add_edge_stats;
use crate::store::totals::EdgeSum;

/// Bytes of stats copied into one buffer before the next is started (a buffer never grows
/// past it, so copies never move).
const CHUNK_BYTES: usize = 4 << 20;
/// Edges from which summing is worth a second thread (each is about an hour of rows).
const EDGES_PER_THREAD: usize = 64;

/// What the totals read selects, borrowed from the response.
#[derive(Row, Deserialize)]
pub(super) struct TotalsRow<'a> {
    pub minute: i64,
    pub instance: u32,
    pub payload: &'a [u8],
}

struct Entry {
    key: EdgeKey,
    /// The minute and instance of the rollup whose placements are kept: the first of the
    /// edge's in the order of an exact read (by minute, then instance).
    first: (i64, u32),
    source_placement: NodePlacement,
    target_placement: NodePlacement,
}

/// Where a row's stats were copied, and whose they are.
#[derive(Debug, Clone, Copy, Default)]
struct StatsAt {
    entry: usize,
    chunk: usize,
    start: usize,
    len: usize,
}

/// The edges read so far and their rows' stats.
#[derive(Default)]
pub(super) struct Summed {
    hasher: FoldBuildHasher,
    /// Positions in `entries` by a hash of their key (colliding keys share a list).
    by_hash: FastMap<u64, Vec<usize>>,
    entries: Vec<Entry>,
    chunks: Vec<Vec<u8>>,
    rows: Vec<StatsAt>,
}

impl Summed {
    /// Takes one row: its edge (new if it is the first), its placements if it comes first in
    /// an exact read's order, and a copy of its stats.
    pub(super) fn add(&mut self, row: &TotalsRow<'_>) -> Result<(), StoreError> {
        let body = EdgeRollupBodyRef::parse(row.payload)?;
        let slots = self
            .by_hash
            .entry(self.hasher.hash_one(body.key))
            .or_default();
        let found = slots
            .iter()
            .copied()
            .find(|&at| body.key.is(&self.entries[at].key));
        let at = found.unwrap_or_else(|| {
            slots.push(self.entries.len());
            self.entries.push(Entry {
                key: body.key.to_key(),
                first: (row.minute, row.instance),
                source_placement: body.source_placement.to_placement(),
                target_placement: body.target_placement.to_placement(),
            });
            self.entries.len() - 1
        });
        let entry = &mut self.entries[at];
        if (row.minute, row.instance) < entry.first {
            entry.first = (row.minute, row.instance);
            entry.source_placement = body.source_placement.to_placement();
            entry.target_placement = body.target_placement.to_placement();
        }
        let stats = body.stats;
        let has_room = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.len() + stats.len() <= chunk.capacity());
        if !has_room {
            self.chunks
                .push(Vec::with_capacity(CHUNK_BYTES.max(stats.len())));
        }
        let chunk_at = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_at];
        self.rows.push(StatsAt {
            entry: at,
            chunk: chunk_at,
            start: chunk.len(),
            len: stats.len(),
        });
        chunk.extend_from_slice(stats);
        Ok(())
    }

    /// Each edge's rows summed, ordered by key.
    pub(super) fn into_totals(self) -> Result<Vec<EdgeTotal>, StoreError> {
        let Summed {
            entries,
            chunks,
            rows,
            ..
        } = self;
        // Each edge's rows together: `grouped[starts[edge]..starts[edge + 1]]`.
        let mut starts = vec![0_usize; entries.len() + 1];
        for row in &rows {
            starts[row.entry + 1] += 1;
        }
        for at in 1..starts.len() {
            starts[at] += starts[at - 1];
        }
        let mut next = starts.clone();
        let mut grouped = vec![StatsAt::default(); rows.len()];
        for row in rows {
            grouped[next[row.entry]] = row;
            next[row.entry] += 1;
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by(|&left, &right| entries[left].key.cmp(&entries[right].key));
        let stats = try_map_in_order_by(order, EDGES_PER_THREAD, |at| {
            let mut sum = EdgeSum::default();
            for row in &grouped[starts[at]..starts[at + 1]] {
                let chunk = &chunks[row.chunk];
                add_edge_stats(&chunk[row.start..row.start + row.len], &mut sum)?;
            }
            Ok((at, sum.into_stats()))
        })?;
        let mut entries: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
        Ok(stats
            .into_iter()
            .filter_map(|(at, stats)| {
                let entry = entries[at].take()?;
                Some(EdgeTotal {
                    key: entry.key,
                    source_placement: entry.source_placement,
                    target_placement: entry.target_placement,
                    stats,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::rows::{EdgeRollupReadRow, EdgeRollupRow};
    use super::*;
    use crate::model::graph::{EdgeKind, EdgeRollup, EdgeStats, NodeKey, OperationSplit};
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
    fn sums_equal_merging_without_splits_and_keep_the_first_placements() {
        let rollups: Vec<EdgeRollup> = (0..5)
            .map(|no| rollup(BASE_MINUTE + no, no as u64))
            .collect();
        let mut summed = Summed::default();
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
            };
            summed.add(&totals_row).expect("a row");
        }
        let totals = summed.into_totals().expect("totals");
        let all: Vec<&EdgeStats> = rollups.iter().map(|rollup| &rollup.stats).collect();
        let mut merged = EdgeStats::merge_all(&all);
        merged.operations = Vec::new();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].key, rollups[0].key);
        assert_eq!(totals[0].source_placement, rollups[0].source_placement);
        assert_eq!(totals[0].target_placement, rollups[0].target_placement);
        assert_eq!(totals[0].stats, merged);
        let mut damaged = Summed::default();
        let row = EdgeRollupRow::new(1, &rollups[0], 1).expect("row");
        let cut = TotalsRow {
            minute: row.minute,
            instance: 1,
            payload: &row.payload[..row.payload.len() - 3],
        };
        // The cut shows where the stats are read: in the payload's read, or when summed.
        let read = damaged.add(&cut);
        assert!(read.is_err() || damaged.into_totals().is_err());
    }
}
