//! Deploys over a range: the versions each service reported minute by minute (its operations'
//! `service.version`s, from memory and the stored rollups), read from an hour before the range
//! so a range's first minute can be told from a deploy, then decided by `graph::deploys`.

use std::collections::BTreeMap;

use super::{GraphRange, QueryError, QueryService, SeriesBuckets};
use crate::graph::deploys::{self, Deploy, VersionMinute};
use crate::model::MinuteRange;

/// How far before a range the versions are read.
pub const LOOKBACK_MINUTES: i64 = 60;

impl QueryService {
    /// The deploys whose first minute is in `range` (of `service_opt` only when given), by
    /// first minute then service.
    pub async fn deploys(
        &self,
        range: GraphRange,
        service_opt: Option<&str>,
    ) -> Result<Vec<Deploy>, QueryError> {
        let read = MinuteRange::new(
            range.minutes.from().plus(-LOOKBACK_MINUTES),
            range.minutes.to(),
        );
        let buckets = SeriesBuckets::new(read, read.num_minutes());
        let per_minute = self.service_series(&buckets, service_opt).await?;
        let mut by_service: BTreeMap<&str, Vec<VersionMinute>> = BTreeMap::new();
        for (minute, services) in buckets.ranges().iter().zip(&per_minute) {
            for (service, stats) in services {
                by_service.entry(service).or_default().push(VersionMinute {
                    minute: minute.from().get(),
                    versions: stats
                        .versions
                        .iter()
                        .map(|version| (version.version.clone(), version.num_requests))
                        .collect(),
                });
            }
        }
        let mut found: Vec<Deploy> = by_service
            .into_iter()
            .flat_map(|(service, minutes)| deploys::deploys(service, &minutes))
            .filter(|deploy| {
                range
                    .minutes
                    .contains(crate::model::UnixMinute(deploy.first_seen))
            })
            .collect();
        found.sort_by(|a, b| (a.first_seen, &a.service).cmp(&(b.first_seen, &b.service)));
        Ok(found)
    }
}
