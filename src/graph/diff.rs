//! What changed on the map between two periods, by rules that tell change from noise. Pure.
//!
//! - **new**: no call in the base period, at least [`MIN_CALLS_PRESENT`] now, and the base
//!   period long enough to have expected that many at today's rate;
//! - **vanished**: the reverse;
//! - **changed**: at least [`MIN_CALLS_COMPARED`] calls in each period and one of
//!   - rate: ×[`RATE_RATIO`] or more either way, and a Poisson z-score of [`MIN_Z`] or more;
//!   - error rate: [`ERROR_RATE_POINTS`] or more apart, and a two-proportion z-score of
//!     [`MIN_Z`] or more;
//!   - p95 (the caller's, else the callee's): ×[`P95_RATIO`] either way and [`P95_MIN_MS`] apart,
//!     with [`MIN_CALLS_COMPARED`] timed calls in each period (the sketches' 0.5 % error is far
//!     below the ratio);
//! - **unchanged**: everything else, edges with too few calls to tell included (`reasons`
//!   says "too few calls").

use std::collections::HashMap;

use serde::Serialize;

use crate::model::figures::p95_ms;
use crate::model::graph::{EdgeKey, EdgeStats};

/// Calls that make an edge present in a period (and expected calls that make its absence
/// telling: 5 expected and none seen happens by chance 0.7 % of the time).
pub const MIN_CALLS_PRESENT: f64 = 5.0;
/// Calls in each period before figures are compared.
pub const MIN_CALLS_COMPARED: u64 = 20;
pub const RATE_RATIO: f64 = 1.5;
/// Error rates this far apart (2 percentage points) or more.
pub const ERROR_RATE_POINTS: f64 = 0.02;
pub const P95_RATIO: f64 = 1.5;
pub const P95_MIN_MS: f64 = 2.0;
/// How unlikely by chance a difference must be (3 standard errors).
pub const MIN_Z: f64 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    New,
    Vanished,
    Changed,
    Unchanged,
}

/// An edge in two periods.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeDiff {
    pub key: EdgeKey,
    pub change: Change,
    pub base: EdgeStats,
    pub now: EdgeStats,
    /// Why it changed ("p95 ×5.2"), or why it could not tell.
    pub reasons: Vec<String>,
}

/// One period: its edges and the seconds they cover.
pub struct Period<'a> {
    pub edges: &'a [(EdgeKey, EdgeStats)],
    pub secs: f64,
}

/// Every edge of either period, sorted by key, with its change.
pub fn diff<'a>(base: &Period<'a>, now: &Period<'a>) -> Vec<EdgeDiff> {
    let mut keys: Vec<&EdgeKey> = base
        .edges
        .iter()
        .chain(now.edges)
        .map(|(key, _)| key)
        .collect();
    keys.sort();
    keys.dedup();
    let by_key = |period: &Period<'a>| -> HashMap<&'a EdgeKey, &'a EdgeStats> {
        period
            .edges
            .iter()
            .map(|(key, stats)| (key, stats))
            .collect()
    };
    let (base_edges, now_edges) = (by_key(base), by_key(now));
    let stats_in = |edges: &HashMap<&EdgeKey, &EdgeStats>, key: &EdgeKey| {
        edges
            .get(key)
            .map(|stats| (*stats).clone())
            .unwrap_or_default()
    };
    keys.into_iter()
        .map(|key| {
            let (before, after) = (stats_in(&base_edges, key), stats_in(&now_edges, key));
            let (change, reasons) = judge(&before, base.secs, &after, now.secs);
            EdgeDiff {
                key: key.clone(),
                change,
                base: before,
                now: after,
                reasons,
            }
        })
        .collect()
}

fn judge(
    base: &EdgeStats,
    base_secs: f64,
    now: &EdgeStats,
    now_secs: f64,
) -> (Change, Vec<String>) {
    let (before, after) = (base.num_requests as f64, now.num_requests as f64);
    if before == 0.0 && after == 0.0 {
        return (Change::Unchanged, vec!["no calls".to_owned()]);
    }
    if before == 0.0 || after == 0.0 {
        let (seen, seen_secs, other_secs, change) = if before == 0.0 {
            (after, now_secs, base_secs, Change::New)
        } else {
            (before, base_secs, now_secs, Change::Vanished)
        };
        let expected_in_other = seen / seen_secs.max(1.0) * other_secs;
        if seen >= MIN_CALLS_PRESENT && expected_in_other >= MIN_CALLS_PRESENT {
            return (change, Vec::new());
        }
        return (Change::Unchanged, vec!["too few calls".to_owned()]);
    }
    if base.num_requests < MIN_CALLS_COMPARED || now.num_requests < MIN_CALLS_COMPARED {
        return (Change::Unchanged, vec!["too few calls".to_owned()]);
    }
    let reasons: Vec<String> = [
        rate_change(
            before / base_secs,
            after / now_secs,
            before,
            after,
            base_secs,
            now_secs,
        ),
        error_rate_change(base, now),
        p95_change(base, now),
    ]
    .into_iter()
    .flatten()
    .collect();
    let change = if reasons.is_empty() {
        Change::Unchanged
    } else {
        Change::Changed
    };
    (change, reasons)
}

fn rate_change(
    base_rate: f64,
    now_rate: f64,
    base_calls: f64,
    now_calls: f64,
    base_secs: f64,
    now_secs: f64,
) -> Option<String> {
    let ratio = now_rate / base_rate;
    let standard_error =
        (base_calls / (base_secs * base_secs) + now_calls / (now_secs * now_secs)).sqrt();
    let z = (now_rate - base_rate).abs() / standard_error;
    let far = !(1.0 / RATE_RATIO..RATE_RATIO).contains(&ratio);
    (far && z >= MIN_Z).then(|| format!("rate ×{ratio:.2}"))
}

fn error_rate_change(base: &EdgeStats, now: &EdgeStats) -> Option<String> {
    let (base_attempted, now_attempted) = (base.num_attempted(), now.num_attempted());
    let (base_rate, now_rate) = (base.error_rate()?, now.error_rate()?);
    if (now_rate - base_rate).abs() < ERROR_RATE_POINTS {
        return None;
    }
    let (n0, n1) = (base_attempted as f64, now_attempted as f64);
    let pooled = (base.num_failed() + now.num_failed()) as f64 / (n0 + n1);
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1)).sqrt();
    let z = (now_rate - base_rate).abs() / standard_error.max(f64::MIN_POSITIVE);
    (z >= MIN_Z).then(|| {
        format!(
            "errors {:.1} % → {:.1} %",
            base_rate * 100.0,
            now_rate * 100.0
        )
    })
}

/// The p95 an edge's change is judged by: the caller's wait, else the callee's time.
pub fn judged_sketch(stats: &EdgeStats) -> &crate::model::LatencySketch {
    if stats.client_latency.count() > 0 {
        &stats.client_latency
    } else {
        &stats.server_latency
    }
}

fn p95_change(base: &EdgeStats, now: &EdgeStats) -> Option<String> {
    let (before, after) = (judged_sketch(base), judged_sketch(now));
    if before.count() < MIN_CALLS_COMPARED || after.count() < MIN_CALLS_COMPARED {
        return None;
    }
    let (base_ms, now_ms) = (p95_ms(before)?, p95_ms(after)?);
    let ratio = now_ms / base_ms.max(1e-6);
    let far = !(1.0 / P95_RATIO..P95_RATIO).contains(&ratio);
    if !far || (now_ms - base_ms).abs() < P95_MIN_MS {
        return None;
    }
    Some(match most_changed_split(base, now) {
        Some((operation, split_ratio)) => {
            format!("p95 ×{ratio:.1} ({operation} ×{split_ratio:.1})")
        }
        None => format!("p95 ×{ratio:.1}"),
    })
}

/// The operation pair whose p95 moved most (by ratio, either way), among those with enough
/// timed calls in both periods: "GET /cart → SELECT orders", or the callee's alone.
fn most_changed_split(base: &EdgeStats, now: &EdgeStats) -> Option<(String, f64)> {
    let p95 = |sketch: &crate::model::LatencySketch| {
        (sketch.count() >= MIN_CALLS_COMPARED)
            .then(|| sketch.quantile_nanos(0.95))
            .flatten()
    };
    now.operations
        .iter()
        .filter_map(|after| {
            let before = base
                .operations
                .iter()
                .find(|split| split.caller == after.caller && split.callee == after.callee)?;
            let ratio = p95(&after.latency)? / p95(&before.latency)?.max(1.0);
            let name = match (after.caller.as_str(), after.callee.as_str()) {
                ("", "") => return None,
                ("", callee) => callee.to_owned(),
                (caller, "") => format!("from {caller}"),
                (caller, callee) => format!("{caller} → {callee}"),
            };
            Some((name, ratio))
        })
        .max_by(|(_, a), (_, b)| a.max(1.0 / a).total_cmp(&b.max(1.0 / b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{EdgeKind, NodeKey};

    fn key(target: &str) -> EdgeKey {
        EdgeKey {
            source: NodeKey::service("orders"),
            target: NodeKey::service(target),
            kind: EdgeKind::Http,
        }
    }

    /// `calls` calls, `failed` of them failed, each taking `millis` (give or take 10 %).
    fn stats(calls: u64, failed: u64, millis: u64) -> EdgeStats {
        let mut stats = EdgeStats {
            num_requests: calls,
            num_errors: failed,
            ..EdgeStats::default()
        };
        for call in 0..calls {
            let jitter = 0.9 + (call % 21) as f64 / 100.0;
            stats
                .client_latency
                .record((millis as f64 * 1e6 * jitter) as u64);
        }
        stats
    }

    fn judged(base: EdgeStats, now: EdgeStats) -> (Change, Vec<String>) {
        let base_edges = [(key("x"), base)];
        let now_edges = [(key("x"), now)];
        let found = diff(
            &Period {
                edges: &base_edges,
                secs: 300.0,
            },
            &Period {
                edges: &now_edges,
                secs: 300.0,
            },
        );
        (found[0].change, found[0].reasons.clone())
    }

    #[test]
    fn steady_traffic_with_noise_is_unchanged() {
        assert_eq!(
            judged(stats(600, 6, 10), stats(630, 9, 11)).0,
            Change::Unchanged
        );
        // Double the rate on four calls is chance, not change.
        assert_eq!(
            judged(stats(4, 0, 10), stats(8, 0, 10)).0,
            Change::Unchanged
        );
        // 1 % → 2.5 % errors on 100 calls is within chance.
        assert_eq!(
            judged(stats(100, 1, 10), stats(100, 3, 10)).0,
            Change::Unchanged
        );
    }

    #[test]
    fn a_slower_edge_changed_by_its_p95() {
        let (change, reasons) = judged(stats(600, 0, 10), stats(600, 0, 50));
        assert_eq!(change, Change::Changed);
        assert_eq!(reasons, ["p95 ×5.0"]);
        // Sub-millisecond p95s doubling are within the absolute floor.
        assert_eq!(
            judged(stats(600, 0, 0), stats(600, 0, 1)).0,
            Change::Unchanged
        );
    }

    #[test]
    fn rate_and_errors_change_beyond_chance() {
        let (change, reasons) = judged(stats(300, 3, 10), stats(900, 90, 10));
        assert_eq!(change, Change::Changed);
        assert_eq!(reasons, ["rate ×3.00", "errors 1.0 % → 10.0 %"]);
    }

    #[test]
    fn new_and_vanished_need_enough_calls_to_tell() {
        let base = [
            (key("gone"), stats(50, 0, 5)),
            (key("rare"), stats(1, 0, 5)),
        ];
        let now = [
            (key("fresh"), stats(40, 0, 5)),
            (key("rare-new"), stats(2, 0, 5)),
        ];
        let found = diff(
            &Period {
                edges: &base,
                secs: 300.0,
            },
            &Period {
                edges: &now,
                secs: 300.0,
            },
        );
        let changes: Vec<(&str, Change)> = found
            .iter()
            .map(|edge| (edge.key.target.name.as_str(), edge.change))
            .collect();
        assert_eq!(
            changes,
            [
                ("fresh", Change::New),
                ("gone", Change::Vanished),
                ("rare", Change::Unchanged),
                ("rare-new", Change::Unchanged),
            ]
        );
        // A new edge's 40 calls in 5 minutes say little about a 10-second base period.
        let short = diff(
            &Period {
                edges: &[],
                secs: 10.0,
            },
            &Period {
                edges: &now[..1],
                secs: 300.0,
            },
        );
        assert_eq!(short[0].change, Change::Unchanged);
    }
}
