//! What the API, the pages and /metrics read of alerting: each rule with its current value,
//! the alerts with their annotations and silences, and the counters.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Alerting, AlertingError};
use crate::alert::silence::ActiveSilences;
use crate::alert::state::{Labels, Status};
use crate::model::now_unix_nano;

/// A rule as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleView {
    pub name: String,
    pub kind: serde_json::Value,
    #[serde(rename = "for")]
    pub for_duration: String,
    pub window: String,
    pub severity: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// Label sets the condition holds for now, and the largest value among them.
    pub num_holding: usize,
    pub value: Option<f64>,
    /// `value` with its unit, e.g. `8.3 %`.
    pub value_text: Option<String>,
    pub num_pending: usize,
    pub num_firing: usize,
    pub last_error: Option<String>,
    pub last_evaluated: Option<String>,
}

/// An alert as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertView {
    pub rule: String,
    pub fingerprint: String,
    pub status: &'static str,
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
    pub value_text: String,
    pub starts_at: Option<String>,
    /// When it started firing, if it did.
    pub fired_at: Option<String>,
    #[serde(skip)]
    pub starts_at_unix_nano: u64,
    pub ends_at: Option<String>,
    pub generator_url: String,
    /// Ids of the active silences that silence it.
    pub silenced_by: Vec<String>,
}

impl Alerting {
    /// How many receivers notifications can go to (none: firing alerts reach nobody).
    pub fn num_receivers(&self) -> usize {
        self.engine().receivers().len()
    }

    /// Every rule with its current state.
    pub fn rules(&self) -> Vec<RuleView> {
        let engine = self.engine();
        engine
            .rules
            .iter()
            .map(|rule| {
                let count = |status| {
                    rule.alerts
                        .alerts()
                        .filter(|(_, alert)| alert.status == status)
                        .count()
                };
                RuleView {
                    name: rule.spec.name.clone(),
                    kind: serde_json::to_value(&rule.spec.kind).unwrap_or_default(),
                    for_duration: rule.spec.for_duration.to_string(),
                    window: rule.spec.window.to_string(),
                    severity: rule.spec.severity.clone(),
                    labels: rule.spec.labels.clone(),
                    annotations: rule.spec.annotations.clone(),
                    num_holding: rule.num_holding,
                    value: rule.max_value,
                    value_text: rule.max_value.map(|value| {
                        crate::alert::template::format_value(rule.spec.kind.value_format(), value)
                    }),
                    num_pending: count(Status::Pending),
                    num_firing: count(Status::Firing),
                    last_error: rule.last_error.clone(),
                    last_evaluated: rule
                        .last_evaluated_unix_nano
                        .and_then(crate::model::rfc3339),
                }
            })
            .collect()
    }

    /// Pending, firing and recently resolved alerts, firing first.
    pub async fn alerts(&self) -> Result<Vec<AlertView>, AlertingError> {
        let silences = self.silences().await?;
        let active = ActiveSilences::new(&silences, now_unix_nano());
        let engine = self.engine();
        let mut views: Vec<AlertView> = engine
            .rules
            .iter()
            .flat_map(|rule| {
                let engine = &engine;
                let active = &active;
                rule.alerts.alerts().map(move |(id, alert)| {
                    let described = engine.describe(&rule.spec, *id, alert);
                    AlertView {
                        rule: rule.spec.name.clone(),
                        fingerprint: format!("{id:016x}"),
                        status: alert.status.as_str(),
                        silenced_by: active.silenced_by(&alert.labels),
                        labels: described.alert.labels,
                        annotations: described.annotations,
                        value: alert.value,
                        value_text: crate::alert::template::format_value(
                            rule.spec.kind.value_format(),
                            alert.value,
                        ),
                        starts_at: crate::model::rfc3339(alert.active_since_unix_nano),
                        starts_at_unix_nano: alert.active_since_unix_nano,
                        fired_at: alert.fired_at_unix_nano.and_then(crate::model::rfc3339),
                        ends_at: alert.resolved_at_unix_nano.and_then(crate::model::rfc3339),
                        generator_url: described.generator_url,
                    }
                })
            })
            .collect();
        let order = |status: &str| match status {
            "firing" => 0,
            "pending" => 1,
            _ => 2,
        };
        views.sort_by(|a, b| {
            (order(a.status), &a.rule, &a.labels).cmp(&(order(b.status), &b.rule, &b.labels))
        });
        Ok(views)
    }

    /// Alerting's counters as Prometheus text.
    pub fn render_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let counters = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        let (mut pending, mut firing, mut dropped) = (0, 0, 0);
        {
            let engine = self.engine();
            for rule in &engine.rules {
                dropped += rule.alerts.num_dropped;
                for (_, alert) in rule.alerts.alerts() {
                    match alert.status {
                        Status::Pending => pending += 1,
                        Status::Firing => firing += 1,
                        Status::Resolved => {}
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP cartograph_alerts Alerts by state.\n# TYPE cartograph_alerts gauge\n\
             cartograph_alerts{{state=\"pending\"}} {pending}\ncartograph_alerts{{state=\"firing\"}} {firing}"
        );
        for (name, help, value) in [
            (
                "cartograph_alert_evaluations_total",
                "Rule evaluation rounds.",
                load(&counters.evaluations),
            ),
            (
                "cartograph_alert_evaluation_failures_total",
                "Evaluation rounds or windows that could not be read or saved.",
                load(&counters.evaluation_failures),
            ),
            (
                "cartograph_alert_notifications_total",
                "Notifications queued in the outbox.",
                load(&counters.notifications_queued),
            ),
            (
                "cartograph_alert_deliveries_delivered_total",
                "Delivery attempts that succeeded.",
                load(&counters.delivered),
            ),
            (
                "cartograph_alert_deliveries_retried_total",
                "Delivery attempts that failed and will be retried.",
                load(&counters.retried),
            ),
            (
                "cartograph_alert_deliveries_failed_total",
                "Notifications given up.",
                load(&counters.failed),
            ),
            (
                "cartograph_alert_outbox_overflow_total",
                "Notifications given up because the outbox was full.",
                load(&counters.outbox_overflow),
            ),
            (
                "cartograph_alert_dropped_total",
                "Alerts not tracked because a rule hit max_alerts_per_rule.",
                dropped,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cartograph_alert_evaluation_seconds Duration of the last evaluation round.\n\
             # TYPE cartograph_alert_evaluation_seconds gauge\ncartograph_alert_evaluation_seconds {}",
            load(&counters.last_evaluation_micros) as f64 / 1e6
        );
        out
    }
}
