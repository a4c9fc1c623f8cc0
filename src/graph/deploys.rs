//! Deploys from the versions a service reported minute by minute (`service.version` of the
//! spans serving its operations). Pure: the query layer reads the minutes, this decides.
//!
//! A deploy is the first minute a version reports that the service had not reported in its
//! last [`ESTABLISHED_WITHIN`] minutes with data, after an earlier minute of the service: the
//! service's first minute is its start, not a deploy; a version that comes back after being
//! replaced (a rollback) is a deploy again; a canary reporting every few minutes is not a new
//! deploy each time. Its previous version is the one serving most requests in the service's
//! last minute with data before it; the rollout ends with the last minute that previous version
//! reported (`last_seen_previous`): before `first_seen` for a switch, at or after it when the
//! two versions overlapped (a rolling deploy).

use std::collections::VecDeque;

/// A version is established while it reported in one of this many of the service's latest
/// minutes with data.
pub const ESTABLISHED_WITHIN: usize = 5;

/// One minute of one service: the versions that served requests, with how many.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionMinute {
    pub minute: i64,
    pub versions: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub service: String,
    pub version: String,
    /// `None` when the minute before reported no version.
    pub previous_version: Option<String>,
    /// The minute the version first reported.
    pub first_seen: i64,
    /// The last minute the previous version reported (from the minute before `first_seen`
    /// on): the rollout's end.
    pub last_seen_previous: Option<i64>,
}

impl Deploy {
    /// Whether both versions served at once for a while (a rolling deploy, or one in progress).
    pub fn overlapped(&self) -> bool {
        self.last_seen_previous
            .is_some_and(|last| last >= self.first_seen)
    }
}

/// The deploys of `service` among `minutes` (sorted by minute, each with data).
pub fn deploys(service: &str, minutes: &[VersionMinute]) -> Vec<Deploy> {
    let mut recent: VecDeque<&VersionMinute> = VecDeque::with_capacity(ESTABLISHED_WITHIN);
    let mut found = Vec::new();
    for (at, minute) in minutes.iter().enumerate() {
        if let Some(previous) = recent.back() {
            for (version, _) in &minute.versions {
                let established = recent
                    .iter()
                    .any(|earlier| earlier.versions.iter().any(|(known, _)| known == version));
                if established {
                    continue;
                }
                let previous_version = busiest(previous);
                let last_seen_previous =
                    previous_version.and_then(|old| rollout_end(&minutes[at - 1..], old));
                found.push(Deploy {
                    service: service.to_owned(),
                    version: version.clone(),
                    previous_version: previous_version.map(str::to_owned),
                    first_seen: minute.minute,
                    last_seen_previous,
                });
            }
        }
        if recent.len() == ESTABLISHED_WITHIN {
            recent.pop_front();
        }
        recent.push_back(minute);
    }
    found
}

/// The version serving most requests in `minute` (the first by name on a tie).
fn busiest(minute: &VersionMinute) -> Option<&str> {
    minute
        .versions
        .iter()
        .max_by(|(a_name, a), (b_name, b)| a.cmp(b).then(b_name.cmp(a_name)))
        .map(|(name, _)| name.as_str())
}

/// The last minute `version` reported in, going through `minutes` until it has been missing
/// from [`ESTABLISHED_WITHIN`] of them in a row (a later return is a rollback, not the rollout).
fn rollout_end(minutes: &[VersionMinute], version: &str) -> Option<i64> {
    let mut last = None;
    let mut missing = 0;
    for minute in minutes {
        if minute.versions.iter().any(|(known, _)| known == version) {
            last = Some(minute.minute);
            missing = 0;
        } else {
            missing += 1;
            if missing >= ESTABLISHED_WITHIN {
                break;
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(minute: i64, versions: &[(&str, u64)]) -> VersionMinute {
        VersionMinute {
            minute,
            versions: versions
                .iter()
                .map(|(name, requests)| ((*name).to_owned(), *requests))
                .collect(),
        }
    }

    #[test]
    fn a_version_change_is_one_deploy_at_its_first_minute() {
        let minutes: Vec<VersionMinute> = (0..10)
            .map(|at| minute(100 + at, &[(if at < 6 { "1.0" } else { "1.1" }, 50)]))
            .collect();
        assert_eq!(
            deploys("orders", &minutes),
            [Deploy {
                service: "orders".to_owned(),
                version: "1.1".to_owned(),
                previous_version: Some("1.0".to_owned()),
                first_seen: 106,
                last_seen_previous: Some(105),
            }]
        );
        assert!(!deploys("orders", &minutes)[0].overlapped());
    }

    #[test]
    fn a_rolling_deploy_is_one_deploy_with_its_start_and_end() {
        // 2.0 starts at minute 3 beside 1.9, takes over, 1.9's last minute is 6.
        let minutes = [
            minute(0, &[("1.9", 60)]),
            minute(1, &[("1.9", 60)]),
            minute(2, &[("1.9", 60)]),
            minute(3, &[("1.9", 45), ("2.0", 15)]),
            minute(4, &[("1.9", 30), ("2.0", 30)]),
            minute(5, &[("1.9", 15), ("2.0", 45)]),
            minute(6, &[("1.9", 2), ("2.0", 58)]),
            minute(7, &[("2.0", 60)]),
            minute(8, &[("2.0", 60)]),
        ];
        let found = deploys("orders", &minutes);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].version, "2.0");
        assert_eq!(found[0].previous_version.as_deref(), Some("1.9"));
        assert_eq!(
            (found[0].first_seen, found[0].last_seen_previous),
            (3, Some(6))
        );
        assert!(found[0].overlapped());
    }

    #[test]
    fn the_first_minute_is_no_deploy_and_a_canary_is_one() {
        assert!(deploys("orders", &[minute(0, &[("1.0", 5)])]).is_empty());
        // A canary seen every third minute is deployed once.
        let minutes: Vec<VersionMinute> = (0..20)
            .map(|at| {
                if at >= 4 && at % 3 == 0 {
                    minute(at, &[("1.0", 50), ("1.1-canary", 1)])
                } else {
                    minute(at, &[("1.0", 50)])
                }
            })
            .collect();
        let found = deploys("orders", &minutes);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].version.as_str(), found[0].first_seen),
            ("1.1-canary", 6)
        );
        assert_eq!(found[0].last_seen_previous, Some(19), "1.0 kept serving");
    }

    #[test]
    fn a_rollback_is_a_deploy_of_the_old_version() {
        let mut minutes: Vec<VersionMinute> = (0..8).map(|at| minute(at, &[("1.0", 9)])).collect();
        minutes.extend((8..16).map(|at| minute(at, &[("1.1", 9)])));
        minutes.extend((16..20).map(|at| minute(at, &[("1.0", 9)])));
        let found: Vec<(String, i64, Option<i64>)> = deploys("orders", &minutes)
            .into_iter()
            .map(|deploy| (deploy.version, deploy.first_seen, deploy.last_seen_previous))
            .collect();
        assert_eq!(
            found,
            [
                ("1.1".to_owned(), 8, Some(7)),
                ("1.0".to_owned(), 16, Some(15))
            ]
        );
    }

    #[test]
    fn minutes_without_a_version_give_no_previous_version() {
        let minutes = [minute(0, &[]), minute(1, &[("3", 1)])];
        let found = deploys("orders", &minutes);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (
                found[0].previous_version.clone(),
                found[0].last_seen_previous
            ),
            (None, None)
        );
    }
}
