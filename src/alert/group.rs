//! Grouping, as Alertmanager does it: firing alerts with the same values of the `group_by`
//! labels form a group; a new group waits `group_wait` before its first notification, then
//! notifies at most every `group_interval` when its set of firing alerts changed or alerts it
//! reported firing resolved, and re-sends an unchanged notification every `repeat_interval`.
//! Silenced alerts are left out. Pure and clock-injected; its state is serialisable so it
//! survives a restart with the rest of the alert state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::silence::ActiveSilences;
use super::state::{Alert, Labels, Status};

/// Groups kept at most; alerts of further groups are counted, not notified.
const MAX_GROUPS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

/// An alert as notifications carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notifiable {
    pub fingerprint: u64,
    pub alert: Alert,
    pub annotations: Labels,
    pub generator_url: String,
}

/// One notification of one group: its firing alerts and those it had reported firing that
/// have since resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub group_labels: Labels,
    pub alerts: Vec<Notifiable>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    labels: Labels,
    next_flush_at: u64,
    last_sent_at: Option<u64>,
    /// Fingerprints the last notification reported firing.
    notified_firing: BTreeSet<u64>,
    alerts: BTreeMap<u64, Notifiable>,
}

/// Every group and when each notifies next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dispatcher {
    groups: BTreeMap<String, Group>,
    /// Alerts not grouped because of the group limit.
    pub num_dropped: u64,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Dispatcher {
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }

    /// Takes the current firing and resolved alerts of every rule (pending ones are not
    /// notified and are skipped).
    pub fn update(&mut self, settings: &GroupSettings, alerts: Vec<Notifiable>, now: u64) {
        let mut by_group: BTreeMap<String, (Labels, BTreeMap<u64, Notifiable>)> = BTreeMap::new();
        for alert in alerts {
            if alert.alert.status == Status::Pending {
                continue;
            }
            let labels: Labels = settings
                .group_by
                .iter()
                .filter_map(|name| Some((name.clone(), alert.alert.labels.get(name)?.clone())))
                .collect();
            let key = group_key(&labels);
            by_group
                .entry(key)
                .or_insert_with(|| (labels, BTreeMap::new()))
                .1
                .insert(alert.fingerprint, alert);
        }
        for (key, group) in &mut self.groups {
            let mut current = by_group
                .remove(key)
                .map(|(_, alerts)| alerts)
                .unwrap_or_default();
            // An alert reported firing that is gone without resolving (its rule was removed)
            // is reported resolved now.
            for fingerprint in &group.notified_firing {
                if let (false, Some(previous)) = (
                    current.contains_key(fingerprint),
                    group.alerts.get(fingerprint),
                ) {
                    let mut resolved = previous.clone();
                    resolved.alert.status = Status::Resolved;
                    resolved.alert.resolved_at_unix_nano = Some(now);
                    current.insert(*fingerprint, resolved);
                }
            }
            group.alerts = current;
        }
        for (key, (labels, alerts)) in by_group {
            if !alerts
                .values()
                .any(|alert| alert.alert.status == Status::Firing)
            {
                continue;
            }
            if self.groups.len() >= MAX_GROUPS {
                self.num_dropped += alerts.len() as u64;
                continue;
            }
            self.groups.insert(
                key,
                Group {
                    labels,
                    next_flush_at: now.saturating_add(nanos(settings.group_wait)),
                    last_sent_at: None,
                    notified_firing: BTreeSet::new(),
                    alerts,
                },
            );
        }
        self.groups
            .retain(|_, group| !group.alerts.is_empty() || !group.notified_firing.is_empty());
    }

    /// The notifications due at `now`, with silenced alerts left out.
    pub fn flush(
        &mut self,
        settings: &GroupSettings,
        silences: &ActiveSilences,
        now: u64,
    ) -> Vec<Notification> {
        let mut notifications = Vec::new();
        for group in self.groups.values_mut() {
            if now < group.next_flush_at {
                continue;
            }
            group.next_flush_at = now.saturating_add(nanos(settings.group_interval));
            let visible: Vec<&Notifiable> = group
                .alerts
                .values()
                .filter(|alert| !silences.is_silenced(&alert.alert.labels))
                .collect();
            let firing: BTreeSet<u64> = visible
                .iter()
                .filter(|alert| alert.alert.status == Status::Firing)
                .map(|alert| alert.fingerprint)
                .collect();
            let resolved: Vec<&Notifiable> = visible
                .iter()
                .copied()
                .filter(|alert| {
                    alert.alert.status == Status::Resolved
                        && group.notified_firing.contains(&alert.fingerprint)
                })
                .collect();
            let changed = firing != group.notified_firing;
            let repeat_due = !firing.is_empty()
                && group
                    .last_sent_at
                    .is_none_or(|sent| now.saturating_sub(sent) >= nanos(settings.repeat_interval));
            let has_news = changed && (!firing.is_empty() || !resolved.is_empty());
            if has_news || repeat_due {
                let alerts = visible
                    .iter()
                    .filter(|alert| {
                        firing.contains(&alert.fingerprint)
                            || resolved
                                .iter()
                                .any(|done| done.fingerprint == alert.fingerprint)
                    })
                    .map(|alert| (*alert).clone());
                let mut alerts: Vec<Notifiable> = alerts.collect();
                // Firing first, then by labels: a stable, readable order.
                alerts.sort_by(|a, b| {
                    (a.alert.status != Status::Firing, &a.alert.labels)
                        .cmp(&(b.alert.status != Status::Firing, &b.alert.labels))
                });
                notifications.push(Notification {
                    group_labels: group.labels.clone(),
                    alerts,
                });
                group.last_sent_at = Some(now);
            }
            group.notified_firing = firing;
        }
        notifications
    }
}

/// The group's identity as Alertmanager spells it: `{}:{alertname="X", ...}`.
pub fn group_key(labels: &Labels) -> String {
    format!(
        "{{}}:{{{}}}",
        labels
            .iter()
            .map(|(key, value)| format!("{key}={value:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::silence::{Matcher, NewSilence, Silence};

    const SEC: u64 = 1_000_000_000;

    fn settings() -> GroupSettings {
        GroupSettings {
            group_by: vec!["alertname".to_owned()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
        }
    }

    fn alert(name: &str, target: &str, status: Status) -> Notifiable {
        let labels: Labels = [
            ("alertname".to_owned(), name.to_owned()),
            ("target".to_owned(), target.to_owned()),
        ]
        .into();
        Notifiable {
            fingerprint: super::super::state::fingerprint(&labels),
            alert: Alert {
                labels,
                status,
                active_since_unix_nano: 0,
                fired_at_unix_nano: Some(0),
                resolved_at_unix_nano: (status == Status::Resolved).then_some(0),
                last_held_unix_nano: 0,
                value: 1.0,
                details: Labels::new(),
            },
            annotations: Labels::new(),
            generator_url: String::new(),
        }
    }

    fn targets(notification: &Notification) -> Vec<(String, Status)> {
        notification
            .alerts
            .iter()
            .map(|alert| (alert.alert.labels["target"].clone(), alert.alert.status))
            .collect()
    }

    /// Feeds `alerts` at `at` seconds and flushes.
    fn step(dispatcher: &mut Dispatcher, alerts: Vec<Notifiable>, at: u64) -> Vec<Notification> {
        dispatcher.update(&settings(), alerts, at * SEC);
        dispatcher.flush(&settings(), &ActiveSilences::default(), at * SEC)
    }

    #[test]
    fn a_group_waits_then_notifies_changes_once_per_interval() {
        let mut dispatcher = Dispatcher::default();
        let a = || alert("EdgeErrorRateHigh", "a", Status::Firing);
        let b = || alert("EdgeErrorRateHigh", "b", Status::Firing);
        assert!(step(&mut dispatcher, vec![a()], 0).is_empty(), "group_wait");
        assert!(step(&mut dispatcher, vec![a(), b()], 20).is_empty());
        let sent = step(&mut dispatcher, vec![a(), b()], 30);
        assert_eq!(sent.len(), 1);
        assert_eq!(targets(&sent[0]).len(), 2, "both, in one notification");
        assert_eq!(sent[0].group_labels["alertname"], "EdgeErrorRateHigh");
        // Nothing changed: nothing until the repeat interval.
        for at in [60, 330, 630, 3600] {
            assert!(step(&mut dispatcher, vec![a(), b()], at).is_empty(), "{at}");
        }
        // b resolves: reported at the next group interval, with a still firing.
        let resolved_b = alert("EdgeErrorRateHigh", "b", Status::Resolved);
        assert!(step(&mut dispatcher, vec![a(), resolved_b.clone()], 3700).is_empty());
        let sent = step(&mut dispatcher, vec![a(), resolved_b.clone()], 3930);
        assert_eq!(
            targets(&sent[0]),
            [
                ("a".to_owned(), Status::Firing),
                ("b".to_owned(), Status::Resolved)
            ]
        );
        // The resolution is reported once.
        assert!(step(&mut dispatcher, vec![a(), resolved_b], 4230).is_empty());
    }

    #[test]
    fn an_unchanged_firing_group_is_repeated_every_repeat_interval() {
        let mut dispatcher = Dispatcher::default();
        let a = || alert("BreakerOpen", "a", Status::Firing);
        let mut sent_at = Vec::new();
        for minute in 0..=9 * 60 {
            if !step(&mut dispatcher, vec![a()], minute * 60).is_empty() {
                sent_at.push(minute * 60);
            }
        }
        assert_eq!(sent_at, [60, 4 * 3600 + 60, 8 * 3600 + 60]);
    }

    #[test]
    fn an_alert_resolving_within_group_wait_is_never_notified() {
        let mut dispatcher = Dispatcher::default();
        assert!(step(&mut dispatcher, vec![alert("X", "a", Status::Firing)], 0).is_empty());
        assert!(step(&mut dispatcher, vec![alert("X", "a", Status::Resolved)], 10).is_empty());
        assert!(step(&mut dispatcher, vec![alert("X", "a", Status::Resolved)], 40).is_empty());
        assert!(step(&mut dispatcher, vec![], 400).is_empty());
        assert_eq!(dispatcher.num_groups(), 0);
    }

    #[test]
    fn silenced_alerts_are_left_out_until_the_silence_expires() {
        let mut dispatcher = Dispatcher::default();
        let silence = Silence::create(
            NewSilence {
                matchers: vec![Matcher {
                    name: "target".to_owned(),
                    value: "a".to_owned(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at: None,
                ends_at: crate::model::rfc3339(1000 * SEC).expect("time"),
                created_by: "ana".to_owned(),
                comment: "maintenance".to_owned(),
            },
            "s".to_owned(),
            0,
        )
        .expect("silence");
        let a = || alert("X", "a", Status::Firing);
        let mut sent = Vec::new();
        for at in (0..2000).step_by(100) {
            dispatcher.update(&settings(), vec![a()], at * SEC);
            let silences = ActiveSilences::new(std::slice::from_ref(&silence), at * SEC);
            if !dispatcher
                .flush(&settings(), &silences, at * SEC)
                .is_empty()
            {
                sent.push(at);
            }
        }
        assert_eq!(sent, [1000], "first flush after the silence ended");
    }

    #[test]
    fn groups_split_by_the_group_by_labels_and_survive_serialisation() {
        let mut dispatcher = Dispatcher::default();
        step(
            &mut dispatcher,
            vec![
                alert("X", "a", Status::Firing),
                alert("Y", "a", Status::Firing),
            ],
            0,
        );
        let restored: Dispatcher =
            serde_json::from_str(&serde_json::to_string(&dispatcher).expect("json"))
                .expect("parses");
        assert_eq!(restored, dispatcher);
        let mut restored = restored;
        let sent = step(
            &mut restored,
            vec![
                alert("X", "a", Status::Firing),
                alert("Y", "a", Status::Firing),
            ],
            30,
        );
        assert_eq!(sent.len(), 2);
        assert_eq!(group_key(&sent[0].group_labels), "{}:{alertname=\"X\"}");
    }
}
