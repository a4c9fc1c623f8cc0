//! Rollups merged per edge over a range ([`super::RollupReader::edge_totals`]): what a map of
//! a range needs, one entry per edge instead of one per edge, minute and instance.

use crate::model::graph::{EdgeRollup, EdgeStats, EdgeTotal};

use super::StoreError;
use super::parallel::try_map_in_order;

/// `rollups` merged per edge, ordered by key. Each edge's rollups merge in the order they
/// come in `rollups` (stores give them by minute, then instance), which decides the
/// placements (the first rollup's) and, past the split limit, which operation pairs keep a
/// split of their own — as merging them one by one would.
pub fn edge_totals_of(rollups: Vec<EdgeRollup>) -> Result<Vec<EdgeTotal>, StoreError> {
    // References, not the rollups (a few hundred bytes each), are sorted; stably, so each
    // edge's rollups keep their order (and sorted input costs one pass).
    let mut sorted: Vec<&EdgeRollup> = rollups.iter().collect();
    sorted.sort_by(|left, right| left.key.cmp(&right.key));
    let groups: Vec<&[&EdgeRollup]> = sorted
        .chunk_by(|left, right| left.key == right.key)
        .collect();
    try_map_in_order(groups, |group| {
        let first = &group[0];
        let all: Vec<&EdgeStats> = group.iter().map(|rollup| &rollup.stats).collect();
        Ok(EdgeTotal {
            key: first.key.clone(),
            source_placement: first.source_placement.clone(),
            target_placement: first.target_placement.clone(),
            stats: EdgeStats::merge_all(&all),
        })
    })
}
