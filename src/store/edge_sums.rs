//! Totals of a range summed straight from stored rows, for any store: each row's
//! edge found from its key read in place ([`EdgeKeyRef`]), its stats bytes (and its splits,
//! when read) copied to the end of the rows read so far, then each edge's rows summed
//! together, bucket by bucket (`codec_rollup::add_edge_stats`), the edges spread over the
//! cores. No rollup is built. Summing an edge's rows one after another keeps its sums in the
//! cache; summing rows as they come (by minute) moved through every edge's sums each minute
//! and waited on memory (an hour of a 2,000-edge mesh is 120k rows). Equal to
//! [`super::totals::edge_totals_of`], with or without operation splits (the conformance case
//! `rollup_totals_per_edge`): with them, each edge's rows are summed by minute, then instance,
//! as merging one by one would place them.

use std::hash::BuildHasher;

use serde::Deserialize;

use super::parallel::try_map_in_order_by;
use super::sqlite::codec_rollup::add_edge_stats;
use super::sqlite::codec_splits::add_splits_blob;
use super::totals::EdgeSum;
use super::{Splits, StoreError};
use crate::graph::hash::{FastMap, FoldBuildHasher};
use crate::model::graph::{EdgeKey, EdgeKind, EdgeTotal, NodeKey, NodeKind, NodePlacement};

/// Bytes of stats copied into one buffer before the next is started (a buffer never grows
/// past it, so copies never move).
const CHUNK_BYTES: usize = 4 << 20;
/// Edges from which summing is worth a second thread (each is about an hour of rows).
const EDGES_PER_THREAD: usize = 64;

/// An [`EdgeKey`] borrowed from a stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub struct EdgeKeyRef<'a> {
    #[serde(borrow)]
    pub source: NodeKeyRef<'a>,
    #[serde(borrow)]
    pub target: NodeKeyRef<'a>,
    pub kind: EdgeKind,
}

/// A [`NodeKey`] borrowed from a stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub struct NodeKeyRef<'a> {
    pub kind: NodeKind,
    pub name: &'a str,
}

/// A [`NodePlacement`] borrowed from a stored row.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PlacementRef<'a> {
    #[serde(borrow)]
    pub namespace: Option<&'a str>,
    #[serde(borrow)]
    pub environment: Option<&'a str>,
}

impl EdgeKeyRef<'_> {
    pub fn to_key(self) -> EdgeKey {
        let node = |node: NodeKeyRef<'_>| NodeKey::new(node.kind, node.name);
        EdgeKey {
            source: node(self.source),
            target: node(self.target),
            kind: self.kind,
        }
    }

    pub fn is(&self, key: &EdgeKey) -> bool {
        let same = |node: &NodeKeyRef<'_>, known: &NodeKey| {
            node.kind == known.kind && node.name == known.name
        };
        same(&self.source, &key.source) && same(&self.target, &key.target) && self.kind == key.kind
    }
}

impl PlacementRef<'_> {
    pub fn to_placement(self) -> NodePlacement {
        NodePlacement {
            namespace: self.namespace.map(str::to_owned),
            environment: self.environment.map(str::to_owned),
        }
    }
}

/// One stored row, read in place.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub minute: i64,
    pub instance: u32,
    pub key: EdgeKeyRef<'a>,
    pub source_placement: PlacementRef<'a>,
    pub target_placement: PlacementRef<'a>,
    /// The stats blob (`codec_rollup`).
    pub stats: &'a [u8],
    /// A splits blob kept apart from the stats (ClickHouse's `operations` column), empty when
    /// there is none; read only with [`Splits::Read`].
    pub operations: &'a [u8],
}

struct Entry {
    key: EdgeKey,
    /// The minute and instance of the rollup whose placements are kept: the first of the
    /// edge's in the order of an exact read (by minute, then instance).
    first: (i64, u32),
    source_placement: NodePlacement,
    target_placement: NodePlacement,
}

/// Where a row's stats (then its splits blob, if kept) were copied, and whose they are.
#[derive(Debug, Clone, Copy, Default)]
struct StatsAt {
    entry: usize,
    /// The row's minute and instance: with splits, an edge's rows are summed in their order.
    at: (i64, u32),
    chunk: usize,
    start: usize,
    stats_len: usize,
    operations_len: usize,
}

/// The edges read so far and their rows' stats.
#[derive(Default)]
pub struct EdgeSums {
    splits: Splits,
    hasher: FoldBuildHasher,
    /// Positions in `entries` by a hash of their key (colliding keys share a list).
    by_hash: FastMap<u64, Vec<usize>>,
    entries: Vec<Entry>,
    chunks: Vec<Vec<u8>>,
    rows: Vec<StatsAt>,
}

impl EdgeSums {
    /// Sums that read the rows' operation splits, or leave them.
    pub fn new(splits: Splits) -> Self {
        EdgeSums {
            splits,
            ..EdgeSums::default()
        }
    }

    /// Takes one row: its edge (new if it is the first), its placements if it comes first in
    /// an exact read's order, and a copy of its stats.
    pub fn add(&mut self, row: RowRef<'_>) -> Result<(), StoreError> {
        let slots = self
            .by_hash
            .entry(self.hasher.hash_one(row.key))
            .or_default();
        let found = slots
            .iter()
            .copied()
            .find(|&at| row.key.is(&self.entries[at].key));
        let at = found.unwrap_or_else(|| {
            slots.push(self.entries.len());
            self.entries.push(Entry {
                key: row.key.to_key(),
                first: (row.minute, row.instance),
                source_placement: row.source_placement.to_placement(),
                target_placement: row.target_placement.to_placement(),
            });
            self.entries.len() - 1
        });
        let entry = &mut self.entries[at];
        if (row.minute, row.instance) < entry.first {
            entry.first = (row.minute, row.instance);
            entry.source_placement = row.source_placement.to_placement();
            entry.target_placement = row.target_placement.to_placement();
        }
        let operations = match self.splits {
            Splits::Read => row.operations,
            Splits::Skipped => &[],
        };
        let len = row.stats.len() + operations.len();
        let has_room = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.len() + len <= chunk.capacity());
        if !has_room {
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES.max(len)));
        }
        let chunk_at = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_at];
        self.rows.push(StatsAt {
            entry: at,
            at: (row.minute, row.instance),
            chunk: chunk_at,
            start: chunk.len(),
            stats_len: row.stats.len(),
            operations_len: operations.len(),
        });
        chunk.extend_from_slice(row.stats);
        chunk.extend_from_slice(operations);
        Ok(())
    }

    /// Each edge's rows summed, ordered by key.
    pub fn into_totals(self) -> Result<Vec<EdgeTotal>, StoreError> {
        let firsts = self.into_totals_with_first_minutes()?;
        Ok(firsts.into_iter().map(|(_, total)| total).collect())
    }

    /// Each edge's rows summed, ordered by key, each with the minute of its first row (the
    /// one whose placements it keeps).
    pub fn into_totals_with_first_minutes(self) -> Result<Vec<(i64, EdgeTotal)>, StoreError> {
        let EdgeSums {
            splits,
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
        if splits == Splits::Read {
            for edge in starts.windows(2) {
                grouped[edge[0]..edge[1]].sort_by_key(|row| row.at);
            }
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by(|&left, &right| entries[left].key.cmp(&entries[right].key));
        let stats = try_map_in_order_by(order, EDGES_PER_THREAD, |at| {
            let mut sum = EdgeSum::default();
            for row in &grouped[starts[at]..starts[at + 1]] {
                add_row(&chunks[row.chunk][row.start..], row, &mut sum, splits)?;
            }
            Ok((at, sum.into_stats()))
        })?;
        let mut entries: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
        Ok(stats
            .into_iter()
            .filter_map(|(at, stats)| {
                let entry = entries[at].take()?;
                let total = EdgeTotal {
                    key: entry.key,
                    source_placement: entry.source_placement,
                    target_placement: entry.target_placement,
                    stats,
                };
                Some((entry.first.0, total))
            })
            .collect())
    }
}

/// Adds one row copied at the start of `bytes` to `sum`.
fn add_row(
    bytes: &[u8],
    row: &StatsAt,
    sum: &mut EdgeSum,
    splits: Splits,
) -> Result<(), StoreError> {
    let (stats, rest) = bytes.split_at(row.stats_len);
    let num_in_stats = add_edge_stats(stats, sum, splits)?;
    if row.operations_len > 0 {
        if num_in_stats > 0 {
            return Err(StoreError::Corrupt(
                "an edge rollup holds operation splits in two places".to_owned(),
            ));
        }
        add_splits_blob(&rest[..row.operations_len], &mut sum.operations)?;
    }
    Ok(())
}
