//! The life of an alert, rule by rule: inactive → pending → firing → resolved, as Prometheus
//! defines it. A rule's evaluation yields the label sets whose condition holds now; an alert
//! is pending while its condition has held for less than `for`, firing once it has held that
//! long, and resolved when its condition stops holding (after `keep_firing_for`, which damps
//! flapping). Pure and clock-injected; bounded (alerts beyond the limit are counted, not kept).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Labels of one alert, sorted: the identity of the alert within its rule.
pub type Labels = BTreeMap<String, String>;

/// Labels a rule's evaluation returns under names starting with this are the alert's details
/// (an anomaly's baseline): kept without the prefix in [`Alert::details`], readable by
/// templates, never part of its identity or sent as labels.
pub const DETAIL_PREFIX: &str = "__";

/// `labels` without the details, and the details without their prefix.
fn split_details(labels: Labels) -> (Labels, Labels) {
    let (details, labels): (Labels, Labels) = labels
        .into_iter()
        .partition(|(name, _)| name.starts_with(DETAIL_PREFIX));
    let details = details
        .into_iter()
        .map(|(name, value)| (name[DETAIL_PREFIX.len()..].to_owned(), value))
        .collect();
    (labels, details)
}

/// A stable 64-bit fingerprint of a label set (FNV-1a over `name\xffvalue\xff`), shown as 16
/// hex digits like Alertmanager's.
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (name, value) in labels {
        for byte in name
            .bytes()
            .chain([0xff])
            .chain(value.bytes())
            .chain([0xff])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Firing,
    /// No longer holds; kept for `keep_resolved` so the resolution can be delivered.
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: Labels,
    pub status: Status,
    /// When the condition started holding (the alert's `startsAt`).
    pub active_since_unix_nano: u64,
    /// When it fired, if it did.
    pub fired_at_unix_nano: Option<u64>,
    /// When it resolved (the alert's `endsAt`).
    pub resolved_at_unix_nano: Option<u64>,
    /// The last time its condition held.
    pub last_held_unix_nano: u64,
    /// The value that made the condition hold, last time it did.
    pub value: f64,
    /// What the last evaluation said besides the value (see [`DETAIL_PREFIX`]).
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub details: Labels,
}

/// What changed in one evaluation, for notifications and the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Pending(u64),
    Firing(u64),
    Resolved(u64),
}

/// Timing of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long the condition must hold before the alert fires.
    pub for_duration: Duration,
    /// How long a firing alert stays firing after its condition stops holding.
    pub keep_firing_for: Duration,
    /// How long a resolved alert is kept (to be delivered and shown).
    pub keep_resolved: Duration,
}

/// The alerts of one rule.
#[derive(Debug)]
pub struct RuleAlerts {
    timing: Timing,
    alerts: HashMap<u64, Alert>,
    max_alerts: usize,
    /// Label sets that held but were not tracked because of the limit.
    pub num_dropped: u64,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl RuleAlerts {
    pub fn new(timing: Timing, max_alerts: usize) -> Self {
        Self {
            timing,
            alerts: HashMap::new(),
            max_alerts,
            num_dropped: 0,
        }
    }

    pub fn alerts(&self) -> impl Iterator<Item = (&u64, &Alert)> {
        self.alerts.iter()
    }

    /// Puts back alerts saved from an earlier run (by fingerprint), within the limit.
    pub fn restore(&mut self, alerts: impl IntoIterator<Item = Alert>) {
        for alert in alerts {
            if self.alerts.len() >= self.max_alerts {
                self.num_dropped += 1;
                continue;
            }
            self.alerts.insert(fingerprint(&alert.labels), alert);
        }
    }

    /// Applies one evaluation at `now`: `holding` are the label sets (with values) whose
    /// condition holds. Returns what changed, by fingerprint.
    pub fn evaluate(&mut self, holding: Vec<(Labels, f64)>, now: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen = Vec::with_capacity(holding.len());
        for (labels, value) in holding {
            let (labels, details) = split_details(labels);
            let id = fingerprint(&labels);
            seen.push(id);
            let is_new = match self.alerts.get(&id) {
                None => true,
                Some(alert) => alert.status == Status::Resolved,
            };
            if is_new {
                if !self.alerts.contains_key(&id) && self.alerts.len() >= self.max_alerts {
                    self.num_dropped += 1;
                    continue;
                }
                self.alerts.insert(
                    id,
                    Alert {
                        labels,
                        status: Status::Pending,
                        active_since_unix_nano: now,
                        fired_at_unix_nano: None,
                        resolved_at_unix_nano: None,
                        last_held_unix_nano: now,
                        value,
                        details: Labels::new(),
                    },
                );
                changes.push(Change::Pending(id));
            }
            let Some(alert) = self.alerts.get_mut(&id) else {
                continue;
            };
            alert.last_held_unix_nano = now;
            alert.value = value;
            alert.details = details;
            let held_for = now.saturating_sub(alert.active_since_unix_nano);
            if alert.status == Status::Pending && held_for >= nanos(self.timing.for_duration) {
                alert.status = Status::Firing;
                alert.fired_at_unix_nano = Some(now);
                changes.push(Change::Firing(id));
            }
        }
        let keep_firing = nanos(self.timing.keep_firing_for);
        let keep_resolved = nanos(self.timing.keep_resolved);
        let mut forget = Vec::new();
        for (id, alert) in &mut self.alerts {
            if seen.contains(id) {
                continue;
            }
            match alert.status {
                // A pending alert whose condition stopped never fired: it just goes away.
                Status::Pending => forget.push(*id),
                Status::Firing if now.saturating_sub(alert.last_held_unix_nano) >= keep_firing => {
                    alert.status = Status::Resolved;
                    alert.resolved_at_unix_nano = Some(now);
                    changes.push(Change::Resolved(*id));
                }
                Status::Firing => {}
                Status::Resolved => {
                    let resolved_at = alert.resolved_at_unix_nano.unwrap_or(now);
                    if now.saturating_sub(resolved_at) >= keep_resolved {
                        forget.push(*id);
                    }
                }
            }
        }
        for id in forget {
            self.alerts.remove(&id);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn edge() -> Labels {
        labels(&[
            ("alertname", "EdgeErrorRate"),
            ("source", "orders"),
            ("target", "payments"),
        ])
    }

    fn rule(for_secs: u64, keep_firing_secs: u64) -> RuleAlerts {
        RuleAlerts::new(
            Timing {
                for_duration: Duration::from_secs(for_secs),
                keep_firing_for: Duration::from_secs(keep_firing_secs),
                keep_resolved: Duration::from_secs(300),
            },
            100,
        )
    }

    fn status(rule: &RuleAlerts) -> Option<Status> {
        rule.alerts().next().map(|(_, alert)| alert.status)
    }

    #[test]
    fn an_alert_fires_only_after_its_condition_held_for_the_whole_for_window() {
        let mut rule = rule(60, 0);
        let id = fingerprint(&edge());
        assert_eq!(
            rule.evaluate(vec![(edge(), 0.09)], 0),
            [Change::Pending(id)]
        );
        assert_eq!(rule.evaluate(vec![(edge(), 0.09)], 30 * SEC), []);
        assert_eq!(status(&rule), Some(Status::Pending));
        assert_eq!(
            rule.evaluate(vec![(edge(), 0.12)], 60 * SEC),
            [Change::Firing(id)]
        );
        let alert = rule.alerts().next().expect("alert").1.clone();
        assert_eq!(
            (
                alert.active_since_unix_nano,
                alert.fired_at_unix_nano,
                alert.value
            ),
            (0, Some(60 * SEC), 0.12)
        );
        assert_eq!(rule.evaluate(vec![], 90 * SEC), [Change::Resolved(id)]);
        assert_eq!(status(&rule), Some(Status::Resolved));
    }

    #[test]
    fn a_condition_that_flaps_inside_the_for_window_never_fires() {
        let mut rule = rule(60, 0);
        for step in 0..20 {
            let holding = if step % 2 == 0 {
                vec![(edge(), 1.0)]
            } else {
                vec![]
            };
            let changes = rule.evaluate(holding, step * 40 * SEC);
            assert!(
                !changes.iter().any(|c| matches!(c, Change::Firing(_))),
                "step {step}: {changes:?}"
            );
        }
    }

    #[test]
    fn keep_firing_for_damps_a_firing_alert_that_flaps() {
        let mut rule = rule(0, 120);
        let id = fingerprint(&edge());
        assert_eq!(
            rule.evaluate(vec![(edge(), 1.0)], 0),
            [Change::Pending(id), Change::Firing(id)]
        );
        assert_eq!(rule.evaluate(vec![], 60 * SEC), []);
        assert_eq!(
            rule.evaluate(vec![(edge(), 1.0)], 90 * SEC),
            [],
            "still the same firing alert"
        );
        assert_eq!(rule.evaluate(vec![], 150 * SEC), []);
        assert_eq!(rule.evaluate(vec![], 210 * SEC), [Change::Resolved(id)]);
    }

    #[test]
    fn a_resolved_alert_that_holds_again_is_a_new_alert_and_old_ones_are_forgotten() {
        let mut rule = rule(0, 0);
        let id = fingerprint(&edge());
        rule.evaluate(vec![(edge(), 1.0)], 0);
        rule.evaluate(vec![], 10 * SEC);
        assert_eq!(
            rule.evaluate(vec![(edge(), 1.0)], 20 * SEC),
            [Change::Pending(id), Change::Firing(id)]
        );
        assert_eq!(
            rule.alerts()
                .next()
                .expect("alert")
                .1
                .active_since_unix_nano,
            20 * SEC
        );
        rule.evaluate(vec![], 30 * SEC);
        rule.evaluate(vec![], 400 * SEC);
        assert_eq!(
            rule.alerts().count(),
            0,
            "resolved alerts are kept only for keep_resolved"
        );
    }

    #[test]
    fn fingerprints_follow_labels_not_their_order_and_alerts_are_bounded() {
        let a = labels(&[("a", "1"), ("b", "2")]);
        let mut b = Labels::new();
        b.insert("b".to_owned(), "2".to_owned());
        b.insert("a".to_owned(), "1".to_owned());
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&labels(&[("a", "1"), ("b", "3")]))
        );
        assert_ne!(
            fingerprint(&labels(&[("ab", "")])),
            fingerprint(&labels(&[("a", "b")]))
        );

        let mut rule = RuleAlerts::new(
            Timing {
                for_duration: Duration::ZERO,
                keep_firing_for: Duration::ZERO,
                keep_resolved: Duration::ZERO,
            },
            3,
        );
        let many: Vec<(Labels, f64)> = (0..10)
            .map(|n| (labels(&[("n", &n.to_string())]), 1.0))
            .collect();
        rule.evaluate(many, 0);
        assert_eq!((rule.alerts().count(), rule.num_dropped), (3, 7));
    }
}
