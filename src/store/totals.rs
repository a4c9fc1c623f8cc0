//! Rollups merged per edge ([`super::RollupReader::edge_totals`]) or per operation over a
//! range: what a map or the services' figures of a range need, one entry per edge or
//! operation instead of one per minute and instance, each sketch merged in one pass.

use std::cmp::Ordering;

use crate::model::SketchSum;
use crate::model::graph::{
    EdgeRollup, EdgeStats, EdgeTotal, OperationRollup, OperationStats, OperationTotal, SplitSums,
};

use super::StoreError;
use super::parallel::try_map_in_order;

/// `rollups` merged per edge, ordered by key. Each edge's rollups merge in the order they
/// come in `rollups` (stores give them by minute, then instance), which decides the
/// placements (the first rollup's) and, past the split limit, which operation pairs keep a
/// split of their own — as merging them one by one would.
pub fn edge_totals_of(rollups: Vec<EdgeRollup>) -> Result<Vec<EdgeTotal>, StoreError> {
    totals_by(
        &rollups,
        |left, right| left.key.cmp(&right.key),
        |group| {
            let first = group[0];
            let all: Vec<&EdgeStats> = group.iter().map(|rollup| &rollup.stats).collect();
            EdgeTotal {
                key: first.key.clone(),
                source_placement: first.source_placement.clone(),
                target_placement: first.target_placement.clone(),
                stats: EdgeStats::merge_all(&all),
            }
        },
    )
}

/// One edge's figures summed as its rollups are read: the counts and consumer groups as they
/// come, each latency bucket by bucket (`codec_rollup::add_edge_stats`), and the operation
/// splits when they are read. Equal to [`EdgeStats::merge_all`] of the rollups, whatever the
/// order they come in (counts add, consumer groups keep the first in sort order, extremes are
/// extremes) but for the splits, which need the rollups in order, and for the rounding of the
/// latency sums past 2^53 ns.
#[derive(Debug, Default)]
pub struct EdgeSum {
    pub(crate) counts: EdgeStats,
    pub(crate) client_latency: SketchSum,
    pub(crate) server_latency: SketchSum,
    pub(crate) publish_consume_latency: SketchSum,
    pub(crate) operations: SplitSums,
}

impl EdgeSum {
    pub fn into_stats(self) -> EdgeStats {
        EdgeStats {
            client_latency: self.client_latency.into_sketch(),
            server_latency: self.server_latency.into_sketch(),
            publish_consume_latency: self.publish_consume_latency.into_sketch(),
            operations: self.operations.into_splits(),
            ..self.counts
        }
    }
}

/// `rollups` (in the order stores give them: by minute, then instance, for each operation)
/// merged per service and operation, ordered by them; the first rollup's placement is kept.
pub fn operation_totals_of(
    rollups: Vec<OperationRollup>,
) -> Result<Vec<OperationTotal>, StoreError> {
    totals_by(
        &rollups,
        |left, right| (&left.service, &left.operation).cmp(&(&right.service, &right.operation)),
        |group| {
            let first = group[0];
            let all: Vec<&OperationStats> = group.iter().map(|rollup| &rollup.stats).collect();
            OperationTotal {
                service: first.service.clone(),
                operation: first.operation.clone(),
                placement: first.placement.clone(),
                stats: OperationStats::merge_all(&all),
            }
        },
    )
}

/// `rollups` grouped by `order` and each group made one total, on the machine's cores,
/// ordered as `order` says. References, not the rollups (a few hundred bytes each), are
/// sorted; stably, so each group keeps the rollups' order (and sorted input costs one pass).
fn totals_by<R: Sync, T: Send>(
    rollups: &[R],
    order: impl Fn(&R, &R) -> Ordering,
    total: impl Fn(&[&R]) -> T + Sync,
) -> Result<Vec<T>, StoreError> {
    let mut sorted: Vec<&R> = rollups.iter().collect();
    sorted.sort_by(|left, right| order(left, right));
    let groups: Vec<&[&R]> = sorted
        .chunk_by(|left, right| order(left, right) == Ordering::Equal)
        .collect();
    try_map_in_order(groups, |group| Ok(total(group)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::graph::{MAX_VERSIONS, VersionStats};
    use crate::store::conformance::rollup_fixtures::{
        BASE_MINUTE, operation_rollup, spread_sketch,
    };

    /// Totals equal merging one by one in order, past the version limit too (the versions
    /// seen first keep their own figures).
    #[test]
    fn operation_totals_equal_merging_one_by_one() {
        let mut rollups = Vec::new();
        for minute in 0..40_u64 {
            for (service, operation) in [("a", "GET /"), ("a", "POST /"), ("b'\u{0}", "GET /")] {
                let seed = minute * 7 + operation.len() as u64;
                let mut rollup =
                    operation_rollup(BASE_MINUTE + minute as i64, service, operation, seed);
                rollup.stats.versions = vec![VersionStats {
                    version: format!("1.{:02}", minute / 2),
                    num_requests: rollup.stats.num_requests,
                    num_errors: 1,
                    latency: spread_sketch(seed, 9),
                }];
                rollups.push(rollup);
            }
        }
        let mut one_by_one: BTreeMap<(String, String), OperationTotal> = BTreeMap::new();
        for rollup in &rollups {
            one_by_one
                .entry((rollup.service.clone(), rollup.operation.clone()))
                .or_insert_with(|| OperationTotal {
                    service: rollup.service.clone(),
                    operation: rollup.operation.clone(),
                    placement: rollup.placement.clone(),
                    stats: OperationStats::default(),
                })
                .stats
                .merge(&rollup.stats);
        }
        let totals = operation_totals_of(rollups).expect("totals");
        assert_eq!(totals, one_by_one.into_values().collect::<Vec<_>>());
        assert!(
            totals
                .iter()
                .all(|total| total.stats.versions.len() == MAX_VERSIONS)
        );
    }
}
