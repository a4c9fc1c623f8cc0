//! What a range holds over time: how much of it has data (rates divide by that part only),
//! and per-bucket series for sparklines and the edge page, each read once for the whole range
//! (memory and store) and split by minute — not one full query per bucket.

use std::collections::{BTreeMap, HashMap};

use super::{GraphRange, QueryError, QueryService};
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, OperationStats};
use crate::model::{MinuteRange, UnixMinute};
use crate::pipeline::lock_engine;

/// Consecutive buckets of whole minutes over a range, equal in length but the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesBuckets {
    range: MinuteRange,
    minutes_per_bucket: i64,
}

impl SeriesBuckets {
    /// At most `max_buckets` buckets over `range` (one at least).
    pub fn new(range: MinuteRange, max_buckets: i64) -> Self {
        let num_minutes = range.num_minutes().max(1);
        let max_buckets = max_buckets.max(1);
        Self {
            range,
            minutes_per_bucket: (num_minutes + max_buckets - 1) / max_buckets,
        }
    }

    /// The whole range the buckets cover.
    pub fn range(&self) -> MinuteRange {
        self.range
    }

    /// The same buckets `minutes` earlier (an earlier day's, to compare).
    pub fn earlier_by(&self, minutes: i64) -> Self {
        Self {
            range: MinuteRange::new(
                self.range.from().plus(-minutes),
                self.range.to().plus(-minutes),
            ),
            minutes_per_bucket: self.minutes_per_bucket,
        }
    }

    pub fn ranges(&self) -> Vec<MinuteRange> {
        self.range.chunks(self.minutes_per_bucket).collect()
    }

    pub fn len(&self) -> usize {
        let num_minutes = self.range.num_minutes();
        usize::try_from((num_minutes + self.minutes_per_bucket - 1) / self.minutes_per_bucket)
            .unwrap_or(0)
    }

    /// Bucket `index`, if there is one.
    fn bucket(&self, index: usize) -> Option<MinuteRange> {
        if index >= self.len() {
            return None;
        }
        let start = self
            .range
            .from()
            .plus(i64::try_from(index).ok()? * self.minutes_per_bucket);
        Some(MinuteRange::new(
            start,
            start.plus(self.minutes_per_bucket).min(self.range.to()),
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The seconds bucket `index` holds data of by `now_unix_nano`: a whole bucket, or the part
    /// of the one in progress that has passed (at least a second). Rates per bucket divide by
    /// this, so the bucket in progress does not read as a drop.
    pub fn covered_secs(&self, index: usize, now_unix_nano: u64) -> f64 {
        let Some(bucket) = self.bucket(index) else {
            return 1.0;
        };
        let (start, end) = bucket.unix_nano_bounds();
        (end.min(now_unix_nano).saturating_sub(start) as f64 / 1e9).max(1.0)
    }

    /// The bucket `minute` falls into, if it is in the range.
    pub fn index_of(&self, minute: i64) -> Option<usize> {
        if !self.range.contains(UnixMinute(minute)) {
            return None;
        }
        let offset = minute - self.range.from().get();
        usize::try_from(offset / self.minutes_per_bucket).ok()
    }
}

impl QueryService {
    /// `range` with its seconds cut to the part that has data: from the first minute holding
    /// any call or operation (in memory or stored) to its end. A map read 3 minutes after the
    /// first start otherwise divides 3 minutes of calls by 15. A range with no data at all is
    /// returned as it is. Every page and API rate divides by this.
    pub async fn covered(&self, range: GraphRange) -> Result<GraphRange, QueryError> {
        let first_live = lock_engine(&self.engine).first_minute_with_data(range.minutes);
        let before_live =
            first_live.map_or(range.minutes, |first| range.minutes.ending_before(first));
        let first_stored = if before_live.is_empty() {
            None
        } else {
            self.blocking(move |reader| reader.rollup_minutes(before_live))
                .await?
                .first()
                .map(|minute| UnixMinute(*minute))
        };
        let first = match (first_live, first_stored) {
            (Some(live), Some(stored)) => live.min(stored),
            (first, None) | (None, first) => match first {
                Some(first) => first,
                None => return Ok(range),
            },
        };
        let skipped_secs = (first.get() - range.minutes.from().get()) as f64 * 60.0;
        Ok(GraphRange {
            minutes: range.minutes,
            window_secs: (range.window_secs - skipped_secs).max(1.0),
        })
    }

    /// Per bucket, the edges from `source` to `target` (every kind) merged into one.
    pub async fn edge_series(
        &self,
        buckets: &SeriesBuckets,
        source: &NodeKey,
        target: &NodeKey,
    ) -> Result<Vec<EdgeStats>, QueryError> {
        let mut sums = vec![EdgeStats::default(); buckets.len()];
        self.each_edge_in_buckets(buckets, Some((source, target)), |index, _, stats| {
            sums[index].merge(stats)
        })
        .await?;
        Ok(sums)
    }

    /// Per edge, its stats in each bucket (one read for the whole range, like
    /// [`Self::edge_series`]).
    pub async fn edge_series_by_key(
        &self,
        buckets: &SeriesBuckets,
    ) -> Result<HashMap<EdgeKey, Vec<EdgeStats>>, QueryError> {
        let num_buckets = buckets.len();
        let mut series: HashMap<EdgeKey, Vec<EdgeStats>> = HashMap::new();
        self.each_edge_in_buckets(buckets, None, |index, key, stats| {
            series
                .entry(key.clone())
                .or_insert_with(|| vec![EdgeStats::default(); num_buckets])[index]
                .merge(stats);
        })
        .await?;
        Ok(series)
    }

    /// Calls `add(bucket index, edge, stats)` for each minute of each edge (only those from
    /// and to `between_opt`'s nodes when it names them, and neither memory nor the store reads
    /// others): from memory for the minutes it holds, from the store for the rest.
    async fn each_edge_in_buckets(
        &self,
        buckets: &SeriesBuckets,
        between_opt: Option<(&NodeKey, &NodeKey)>,
        mut add: impl FnMut(usize, &EdgeKey, &EdgeStats),
    ) -> Result<(), QueryError> {
        let live_since = {
            let engine = lock_engine(&self.engine);
            let live_since = engine.live_since_minute().unwrap_or(buckets.range.to());
            for (index, bucket) in buckets.ranges().into_iter().enumerate() {
                let live = bucket.starting_at_or_after(live_since);
                let edges = match between_opt {
                    Some((source, target)) => engine.edges_between(live, source, target),
                    None => engine.edges(live),
                };
                for edge in &edges {
                    add(index, &edge.key, &edge.stats);
                }
            }
            live_since
        };
        for (minutes, exclude) in self.stored_ranges(buckets.range, live_since) {
            let between = between_opt.map(|(source, target)| (source.clone(), target.clone()));
            let stored = self
                .blocking(move |reader| match &between {
                    Some((source, target)) => {
                        reader.edge_rollups_between(minutes, exclude, source, target)
                    }
                    None => reader.edge_rollups(minutes, exclude),
                })
                .await?;
            for rollup in &stored {
                if let Some(index) = buckets.index_of(rollup.minute) {
                    add(index, &rollup.key, &rollup.stats);
                }
            }
        }
        Ok(())
    }

    /// Per bucket, each service's operations merged (services without requests left out);
    /// only `service_opt`'s when it names one.
    pub async fn service_series(
        &self,
        buckets: &SeriesBuckets,
        service_opt: Option<&str>,
    ) -> Result<Vec<BTreeMap<String, OperationStats>>, QueryError> {
        let mut sums: Vec<BTreeMap<String, OperationStats>> = vec![BTreeMap::new(); buckets.len()];
        let live_since = {
            let engine = lock_engine(&self.engine);
            let live_since = engine.live_since_minute().unwrap_or(buckets.range.to());
            for (index, bucket) in buckets.ranges().into_iter().enumerate() {
                let live = bucket.starting_at_or_after(live_since);
                let operations = match service_opt {
                    Some(service) => engine.operations_of(live, service),
                    None => engine.operations(live),
                };
                for operation in operations {
                    add_operation(&mut sums[index], operation.service, &operation.stats);
                }
            }
            live_since
        };
        for (minutes, exclude) in self.stored_ranges(buckets.range, live_since) {
            let service = service_opt.map(str::to_owned);
            let stored = self
                .blocking(move |reader| {
                    reader.operation_rollups(minutes, service.as_deref(), exclude)
                })
                .await?;
            for rollup in stored {
                if let Some(index) = buckets.index_of(rollup.minute) {
                    add_operation(&mut sums[index], rollup.service, &rollup.stats);
                }
            }
        }
        Ok(sums)
    }
}

fn add_operation(
    sums: &mut BTreeMap<String, OperationStats>,
    service: String,
    stats: &OperationStats,
) {
    sums.entry(service).or_default().merge(stats);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_a_range_evenly_and_place_minutes() {
        let range = MinuteRange::new(UnixMinute(100), UnixMinute(160));
        let buckets = SeriesBuckets::new(range, 30);
        assert_eq!(buckets.len(), 30);
        assert_eq!(buckets.index_of(100), Some(0));
        assert_eq!(buckets.index_of(101), Some(0));
        assert_eq!(buckets.index_of(102), Some(1));
        assert_eq!(buckets.index_of(159), Some(29));
        assert_eq!(buckets.index_of(160), None, "the end is not in the range");
        assert_eq!(buckets.index_of(99), None);

        let short = SeriesBuckets::new(MinuteRange::new(UnixMinute(0), UnixMinute(7)), 30);
        assert_eq!(short.len(), 7);
        // The bucket in progress holds only the seconds that have passed.
        let now = 159 * crate::model::NANOS_PER_MINUTE + 30_000_000_000;
        assert_eq!(buckets.covered_secs(0, now), 120.0);
        assert_eq!(buckets.covered_secs(29, now), 90.0);
        assert_eq!(buckets.covered_secs(30, now), 1.0, "no such bucket");

        let uneven = SeriesBuckets::new(MinuteRange::new(UnixMinute(0), UnixMinute(25)), 12);
        assert_eq!(uneven.ranges().len(), 9, "3 minutes each, the last one 1");
        assert_eq!(uneven.len(), 9);
        assert_eq!(uneven.index_of(24), Some(8));
    }
}
