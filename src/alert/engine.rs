//! The alerting core, without I/O: the active rules with their alert states, the notification
//! groups, and what one evaluation turns into (webhook bodies for every receiver, Alertmanager
//! pushes). The loop in `service` feeds it rule results and the silences, and stores what it
//! returns together with its snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::{AlertsConfig, ReceiverConfig, RuleSpec};
use super::group::{Dispatcher, GroupSettings, Notifiable, Notification, group_key};
use super::payload::{webhook_alert, webhook_message};
use super::silence::{ActiveSilences, Silence};
use super::state::{Alert, Labels, RuleAlerts, Status, Timing, fingerprint};
use super::store::NewDelivery;
use super::template;
use crate::links;

/// Receiver name of Alertmanager pushes in the outbox.
pub const ALERTMANAGER_RECEIVER: &str = "alertmanager";
/// How long resolved alerts are kept so their resolution can be delivered and shown.
const KEEP_RESOLVED: Duration = Duration::from_secs(15 * 60);
/// Firing alerts are pushed to Alertmanager again at least this often (it resolves alerts
/// that are not re-sent before their `endsAt`).
const ALERTMANAGER_RESEND: Duration = Duration::from_secs(60);

/// One rule with its alerts and what its last evaluation found.
#[derive(Debug)]
pub struct RuleRuntime {
    pub spec: RuleSpec,
    pub alerts: RuleAlerts,
    /// Label sets the condition held for last time, and the largest value among them.
    pub num_holding: usize,
    pub max_value: Option<f64>,
    /// Why the last evaluation could not run, if it could not.
    pub last_error: Option<String>,
    pub last_evaluated_unix_nano: Option<u64>,
}

/// What is saved across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    rules: BTreeMap<String, Vec<Alert>>,
    dispatcher: Dispatcher,
    last_push: Option<(u64, BTreeSet<(u64, bool)>)>,
}

#[derive(Debug)]
pub struct Engine {
    pub rules: Vec<RuleRuntime>,
    dispatcher: Dispatcher,
    groups: GroupSettings,
    receivers: Vec<ReceiverConfig>,
    alertmanager_urls: Vec<String>,
    external_url: String,
    /// `external_url` came from the config (else it follows [`Engine::set_ui_url`]).
    external_url_is_set: bool,
    max_alerts_per_notification: usize,
    /// Firing alert re-push deadline for Alertmanager: `endsAt` = now + this.
    alertmanager_ends_after: Duration,
    /// When Alertmanager was last sent what (fingerprint, resolved).
    last_push: Option<(u64, BTreeSet<(u64, bool)>)>,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Engine {
    pub fn new(config: &AlertsConfig) -> Self {
        let rules = config
            .active_rules()
            .into_iter()
            .map(|spec| RuleRuntime {
                alerts: RuleAlerts::new(
                    Timing {
                        for_duration: spec.for_duration.0,
                        keep_firing_for: spec.keep_firing_for.0,
                        keep_resolved: KEEP_RESOLVED,
                    },
                    config.max_alerts_per_rule,
                ),
                spec,
                num_holding: 0,
                max_value: None,
                last_error: None,
                last_evaluated_unix_nano: None,
            })
            .collect();
        Self {
            rules,
            dispatcher: Dispatcher::default(),
            groups: GroupSettings {
                group_by: config.group_by.clone(),
                group_wait: config.group_wait.0,
                group_interval: config.group_interval.0,
                repeat_interval: config.repeat_interval.0,
            },
            receivers: config.receivers.clone(),
            alertmanager_urls: config.alertmanager.urls.clone(),
            external_url: config.external_url.trim_end_matches('/').to_owned(),
            external_url_is_set: !config.external_url.is_empty(),
            max_alerts_per_notification: config.max_alerts_per_notification,
            alertmanager_ends_after: (config.evaluation_interval.0 * 4)
                .max(Duration::from_secs(240)),
            last_push: None,
        }
    }

    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// The UI's address, the base of links unless the config sets `external_url`.
    pub fn set_ui_url(&mut self, url: &str) {
        if !self.external_url_is_set {
            self.external_url = url.trim_end_matches('/').to_owned();
        }
    }

    pub fn receivers(&self) -> &[ReceiverConfig] {
        &self.receivers
    }

    /// The state to save (see [`Engine::restore`]).
    pub fn snapshot(&self) -> String {
        let snapshot = Snapshot {
            rules: self
                .rules
                .iter()
                .map(|rule| {
                    let alerts = rule
                        .alerts
                        .alerts()
                        .map(|(_, alert)| alert.clone())
                        .collect();
                    (rule.spec.name.clone(), alerts)
                })
                .collect(),
            dispatcher: self.dispatcher.clone(),
            last_push: self.last_push.clone(),
        };
        serde_json::to_string(&snapshot).unwrap_or_default()
    }

    /// Puts back a saved state. Alerts of rules no longer configured are dropped (their
    /// groups report them resolved).
    pub fn restore(&mut self, saved: &str) -> Result<(), String> {
        let snapshot: Snapshot =
            serde_json::from_str(saved).map_err(|err| format!("saved alert state: {err}"))?;
        let mut by_rule = snapshot.rules;
        for rule in &mut self.rules {
            if let Some(alerts) = by_rule.remove(&rule.spec.name) {
                rule.alerts.restore(alerts);
            }
        }
        self.dispatcher = snapshot.dispatcher;
        self.last_push = snapshot.last_push;
        Ok(())
    }

    /// Applies one evaluation: `results[i]` is what rule `i` found (or why it could not be
    /// evaluated: its alerts then stay as they are). Returns the notifications to queue.
    pub fn step(
        &mut self,
        results: Vec<Result<Vec<(Labels, f64)>, String>>,
        silences: &[Silence],
        now: u64,
    ) -> Vec<NewDelivery> {
        for (rule, result) in self.rules.iter_mut().zip(results) {
            rule.last_evaluated_unix_nano = Some(now);
            let holding = match result {
                Ok(holding) => holding,
                Err(err) => {
                    rule.last_error = Some(err);
                    continue;
                }
            };
            rule.last_error = None;
            rule.num_holding = holding.len();
            rule.max_value = holding.iter().map(|(_, value)| *value).reduce(f64::max);
            let labelled = holding
                .into_iter()
                .map(|(labels, value)| (alert_labels(&rule.spec, labels), value))
                .collect();
            rule.alerts.evaluate(labelled, now);
        }
        let notifiable = self.notifiable();
        let silences = ActiveSilences::new(silences, now);
        let mut deliveries = self.alertmanager_push(&notifiable, now);
        self.dispatcher.update(&self.groups, notifiable, now);
        for notification in self.dispatcher.flush(&self.groups, &silences, now) {
            deliveries.extend(self.webhooks(&notification, now));
        }
        deliveries
    }

    /// Every firing and resolved alert with its annotations and link.
    pub fn notifiable(&self) -> Vec<Notifiable> {
        self.rules
            .iter()
            .flat_map(|rule| {
                rule.alerts
                    .alerts()
                    .filter(|(_, alert)| alert.status != Status::Pending)
                    .map(|(id, alert)| self.describe(&rule.spec, *id, alert))
            })
            .collect()
    }

    /// `alert` as notifications and pages show it.
    pub fn describe(&self, spec: &RuleSpec, id: u64, alert: &Alert) -> Notifiable {
        // Templates read the details like labels; a label of the same name wins.
        let mut fields = alert.details.clone();
        fields.extend(alert.labels.clone());
        Notifiable {
            fingerprint: id,
            alert: alert.clone(),
            annotations: spec
                .annotations
                .iter()
                .map(|(name, text)| (name.clone(), template::render(text, &fields, alert.value)))
                .collect(),
            generator_url: format!("{}{}", self.external_url, page_of(&alert.labels)),
        }
    }

    fn webhooks(&self, notification: &Notification, now: u64) -> Vec<NewDelivery> {
        self.receivers
            .iter()
            .filter_map(|receiver| {
                let alerts: Vec<_> = notification
                    .alerts
                    .iter()
                    .filter(|alert| {
                        receiver.send_resolved || alert.alert.status != Status::Resolved
                    })
                    .map(|alert| {
                        webhook_alert(
                            &alert.alert,
                            alert.fingerprint,
                            alert.annotations.clone(),
                            alert.generator_url.clone(),
                        )
                    })
                    .collect();
                if alerts.is_empty() {
                    return None;
                }
                let message = webhook_message(
                    &receiver.name,
                    notification.group_labels.clone(),
                    alerts,
                    &self.external_url,
                    self.max_alerts_per_notification,
                );
                let body = serde_json::to_string(&message).ok()?;
                Some(NewDelivery {
                    receiver: receiver.name.clone(),
                    url: receiver.url.clone(),
                    idempotency_key: idempotency_key(&[
                        &receiver.name,
                        &group_key(&notification.group_labels),
                        &body,
                        &now.to_string(),
                    ]),
                    body,
                })
            })
            .collect()
    }

    /// Alertmanager wants every active alert re-sent before its `endsAt`, and resolutions
    /// once: pushes when the set changed or the resend interval passed.
    fn alertmanager_push(&mut self, alerts: &[Notifiable], now: u64) -> Vec<NewDelivery> {
        if self.alertmanager_urls.is_empty() {
            return Vec::new();
        }
        let current: BTreeSet<(u64, bool)> = alerts
            .iter()
            .map(|alert| (alert.fingerprint, alert.alert.status == Status::Resolved))
            .collect();
        let any_firing = current.iter().any(|(_, resolved)| !resolved);
        let due = match &self.last_push {
            None => !current.is_empty(),
            Some((at, sent)) => {
                *sent != current
                    || (any_firing && now.saturating_sub(*at) >= nanos(ALERTMANAGER_RESEND))
            }
        };
        if !due {
            return Vec::new();
        }
        self.last_push = Some((now, current));
        let ends_after = nanos(self.alertmanager_ends_after);
        let postable: Vec<serde_json::Value> = alerts
            .iter()
            .map(|alert| {
                let ends_at = match alert.alert.resolved_at_unix_nano {
                    Some(at) if alert.alert.status == Status::Resolved => at,
                    _ => now.saturating_add(ends_after),
                };
                serde_json::json!({
                    "labels": alert.alert.labels,
                    "annotations": alert.annotations,
                    "startsAt": crate::model::rfc3339(alert.alert.active_since_unix_nano),
                    "endsAt": crate::model::rfc3339(ends_at),
                    "generatorURL": alert.generator_url,
                })
            })
            .collect();
        let body = serde_json::Value::Array(postable).to_string();
        self.alertmanager_urls
            .iter()
            .map(|url| NewDelivery {
                receiver: format!("{ALERTMANAGER_RECEIVER} {url}"),
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                idempotency_key: idempotency_key(&[url, &body, &now.to_string()]),
                body: body.clone(),
            })
            .collect()
    }
}

/// The rule's labels over what the evaluation found, `alertname` and `severity` last.
fn alert_labels(spec: &RuleSpec, mut labels: Labels) -> Labels {
    for (name, value) in &spec.labels {
        labels.insert(name.clone(), value.clone());
    }
    labels.insert("alertname".to_owned(), spec.name.clone());
    labels
        .entry("severity".to_owned())
        .or_insert_with(|| spec.severity.clone());
    labels
}

/// The Cartograph page an alert is about, from its labels.
fn page_of(labels: &Labels) -> String {
    if let (Some(source), Some(target)) = (labels.get("source"), labels.get("target")) {
        return links::edge_between(source, target);
    }
    if labels.contains_key("breaker") {
        return links::BREAKERS.to_owned();
    }
    if labels.contains_key("cycle") {
        return links::INSIGHTS.to_owned();
    }
    if let Some(metric) = labels.get("metric") {
        return links::metric_points_api(metric);
    }
    if let Some(service) = labels.get("service") {
        return links::service(service);
    }
    links::ALERTS.to_owned()
}

/// A key unique to one notification: 32 hex digits of two FNV-1a passes over `parts`.
fn idempotency_key(parts: &[&str]) -> String {
    let labels: Labels = parts
        .iter()
        .enumerate()
        .map(|(index, part)| (index.to_string(), (*part).to_owned()))
        .collect();
    let first = fingerprint(&labels);
    let mut salted = labels;
    salted.insert("salt".to_owned(), first.to_string());
    format!("{first:016x}{:016x}", fingerprint(&salted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::config::AlertsConfig;

    const SEC: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * SEC;

    fn config(extra: &str) -> AlertsConfig {
        toml::from_str(&format!(
            "builtin_rules = false\ngroup_wait = \"0s\"\ngroup_interval = \"10s\"\n{extra}\n\
             [[receivers]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/ops\"\n\
             [[receivers]]\nname = \"pager\"\nurl = \"http://127.0.0.1:9/pager\"\nsend_resolved = false\n\
             [[rules]]\nname = \"Errors\"\nkind = \"edge_error_rate\"\nthreshold = 0.05\n\
             for = \"10s\"\nlabels = {{ team = \"pay\", severity = \"page\" }}\n\
             annotations = {{ summary = \"{{{{ $value | percent }}}} on {{{{ $labels.target | name }}}}\" }}\n"
        ))
        .expect("config")
    }

    fn holding(target: &str, value: f64) -> Vec<Result<Vec<(Labels, f64)>, String>> {
        let labels: Labels = [
            ("source".to_owned(), "service:orders".to_owned()),
            ("target".to_owned(), format!("service:{target}")),
        ]
        .into();
        vec![Ok(vec![(labels, value)])]
    }

    fn bodies(deliveries: &[NewDelivery]) -> Vec<(String, serde_json::Value)> {
        deliveries
            .iter()
            .map(|delivery| {
                (
                    delivery.receiver.clone(),
                    serde_json::from_str(&delivery.body).expect("json"),
                )
            })
            .collect()
    }

    #[test]
    fn a_rule_fires_after_for_notifies_every_receiver_and_resolves_where_wanted() {
        let mut engine = Engine::new(&config(""));
        engine.set_ui_url("http://cartograph:8080/");
        assert!(engine.step(holding("payments", 0.2), &[], T0).is_empty());
        let fired = bodies(&engine.step(holding("payments", 0.25), &[], T0 + 10 * SEC));
        assert_eq!(fired.len(), 2, "one per receiver");
        let (receiver, body) = &fired[0];
        assert_eq!(receiver, "ops");
        let alert = &body["alerts"][0];
        assert_eq!(alert["labels"]["alertname"], "Errors");
        assert_eq!(alert["labels"]["team"], "pay");
        assert_eq!(alert["labels"]["severity"], "page", "rule labels win");
        assert_eq!(alert["annotations"]["summary"], "25 % on payments");
        assert_eq!(
            alert["generatorURL"],
            "http://cartograph:8080/edges/service%3Aorders/service%3Apayments"
        );
        assert_eq!(body["externalURL"], "http://cartograph:8080");
        assert!(
            engine
                .step(holding("payments", 0.3), &[], T0 + 20 * SEC)
                .is_empty()
        );

        let resolved = bodies(&engine.step(vec![Ok(vec![])], &[], T0 + 30 * SEC));
        assert_eq!(resolved.len(), 1, "pager does not want resolutions");
        assert_eq!(resolved[0].0, "ops");
        assert_eq!(resolved[0].1["status"], "resolved");
    }

    #[test]
    fn a_failed_evaluation_keeps_alerts_as_they_were() {
        let mut engine = Engine::new(&config(""));
        engine.step(holding("payments", 0.2), &[], T0);
        engine.step(holding("payments", 0.2), &[], T0 + 10 * SEC);
        let deliveries = engine.step(vec![Err("store unreadable".to_owned())], &[], T0 + 20 * SEC);
        assert!(deliveries.is_empty(), "no resolution from a failed read");
        let rule = &engine.rules[0];
        assert_eq!(rule.last_error.as_deref(), Some("store unreadable"));
        assert_eq!(
            rule.alerts.alerts().next().expect("alert").1.status,
            Status::Firing
        );
    }

    #[test]
    fn the_state_survives_a_restart_without_notifying_again() {
        let mut engine = Engine::new(&config(""));
        engine.step(holding("payments", 0.2), &[], T0);
        assert_eq!(
            engine
                .step(holding("payments", 0.2), &[], T0 + 10 * SEC)
                .len(),
            2
        );
        let saved = engine.snapshot();
        let mut restarted = Engine::new(&config(""));
        restarted.restore(&saved).expect("restores");
        assert!(
            restarted
                .step(holding("payments", 0.2), &[], T0 + 20 * SEC)
                .is_empty(),
            "already notified before the restart"
        );
        assert_eq!(
            restarted.step(vec![Ok(vec![])], &[], T0 + 30 * SEC).len(),
            1,
            "its resolution still comes"
        );
        assert!(restarted.restore("not json").is_err());
    }

    #[test]
    fn alertmanager_gets_every_alert_again_before_it_would_expire() {
        let mut engine = Engine::new(&config(
            "[alertmanager]\nurls = [\"http://127.0.0.1:9093/\"]\n",
        ));
        engine.step(holding("payments", 0.2), &[], T0);
        let pushes = |deliveries: Vec<NewDelivery>| -> Vec<serde_json::Value> {
            deliveries
                .into_iter()
                .filter(|delivery| delivery.receiver.starts_with(ALERTMANAGER_RECEIVER))
                .map(|delivery| {
                    assert_eq!(delivery.url, "http://127.0.0.1:9093/api/v2/alerts");
                    serde_json::from_str(&delivery.body).expect("json")
                })
                .collect()
        };
        let first = pushes(engine.step(holding("payments", 0.2), &[], T0 + 10 * SEC));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0][0]["labels"]["alertname"], "Errors");
        assert!(
            first[0][0]["endsAt"].as_str().expect("endsAt")
                > first[0][0]["startsAt"].as_str().expect("startsAt")
        );
        assert!(pushes(engine.step(holding("payments", 0.2), &[], T0 + 40 * SEC)).is_empty());
        assert_eq!(
            pushes(engine.step(holding("payments", 0.2), &[], T0 + 70 * SEC)).len(),
            1,
            "re-sent after a minute"
        );
        let resolved = pushes(engine.step(vec![Ok(vec![])], &[], T0 + 75 * SEC));
        assert_eq!(resolved.len(), 1, "the resolution at once");
    }
}
