//! The body of a webhook notification: Alertmanager's webhook format, version 4, so receivers
//! built for Alertmanager accept Cartograph's alerts unchanged. Pure: alerts and group in, JSON
//! out. Times are RFC 3339; an alert still firing ends at the zero time, as Alertmanager sends.

use serde::Serialize;

use super::state::{Alert, Labels, Status};

/// Alertmanager's "not ended yet".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: &'static str,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub version: &'static str,
    pub group_key: String,
    pub truncated_alerts: u64,
    pub status: &'static str,
    pub receiver: String,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

fn rfc3339(unix_nano: u64) -> String {
    crate::model::rfc3339(unix_nano).unwrap_or_else(|| ZERO_TIME.to_owned())
}

/// One alert as the webhook carries it.
pub fn webhook_alert(
    alert: &Alert,
    fingerprint: u64,
    annotations: Labels,
    generator_url: String,
) -> WebhookAlert {
    let is_resolved = alert.status == Status::Resolved;
    WebhookAlert {
        status: if is_resolved { "resolved" } else { "firing" },
        labels: alert.labels.clone(),
        annotations,
        starts_at: rfc3339(alert.active_since_unix_nano),
        ends_at: match alert.resolved_at_unix_nano {
            Some(at) if is_resolved => rfc3339(at),
            _ => ZERO_TIME.to_owned(),
        },
        generator_url,
        fingerprint: format!("{fingerprint:016x}"),
    }
}

/// Labels (or annotations) every one of `sets` has with the same value.
fn common(sets: &[&Labels]) -> Labels {
    let Some((first, rest)) = sets.split_first() else {
        return Labels::new();
    };
    first
        .iter()
        .filter(|(key, value)| rest.iter().all(|set| set.get(*key) == Some(*value)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A group's notification. `max_alerts` bounds the list (the rest is `truncatedAlerts`).
pub fn webhook_message(
    receiver: &str,
    group_labels: Labels,
    mut alerts: Vec<WebhookAlert>,
    external_url: &str,
    max_alerts: usize,
) -> WebhookMessage {
    let status = if alerts.iter().any(|alert| alert.status == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let common_labels = common(&alerts.iter().map(|alert| &alert.labels).collect::<Vec<_>>());
    let common_annotations = common(
        &alerts
            .iter()
            .map(|alert| &alert.annotations)
            .collect::<Vec<_>>(),
    );
    let group_key = super::group::group_key(&group_labels);
    let truncated = alerts.len().saturating_sub(max_alerts) as u64;
    alerts.truncate(max_alerts);
    WebhookMessage {
        version: "4",
        group_key,
        truncated_alerts: truncated,
        status,
        receiver: receiver.to_owned(),
        group_labels,
        common_labels,
        common_annotations,
        external_url: external_url.to_owned(),
        alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn alert(target: &str, status: Status) -> Alert {
        Alert {
            labels: labels(&[
                ("alertname", "EdgeErrorRate"),
                ("severity", "page"),
                ("target", target),
            ]),
            status,
            active_since_unix_nano: T0,
            fired_at_unix_nano: Some(T0 + 60_000_000_000),
            resolved_at_unix_nano: (status == Status::Resolved).then_some(T0 + 120_000_000_000),
            last_held_unix_nano: T0 + 60_000_000_000,
            value: 0.08,
            details: Labels::new(),
        }
    }

    #[test]
    fn the_body_has_exactly_alertmanagers_v4_fields() {
        let firing = webhook_alert(
            &alert("payments", Status::Firing),
            0xab,
            labels(&[("summary", "errors 8 %")]),
            "http://cartograph/edges/a/b".to_owned(),
        );
        let resolved = webhook_alert(
            &alert("stock", Status::Resolved),
            0xcd,
            labels(&[("summary", "errors 8 %")]),
            "http://cartograph/edges/a/c".to_owned(),
        );
        let message = webhook_message(
            "ops",
            labels(&[("alertname", "EdgeErrorRate")]),
            vec![firing, resolved],
            "http://cartograph",
            10,
        );
        let body = serde_json::to_value(&message).expect("json");
        let keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "alerts",
                "commonAnnotations",
                "commonLabels",
                "externalURL",
                "groupKey",
                "groupLabels",
                "receiver",
                "status",
                "truncatedAlerts",
                "version"
            ]
        );
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["groupKey"], "{}:{alertname=\"EdgeErrorRate\"}");
        assert_eq!(
            body["commonLabels"],
            serde_json::json!({ "alertname": "EdgeErrorRate", "severity": "page" })
        );
        assert_eq!(
            body["commonAnnotations"],
            serde_json::json!({ "summary": "errors 8 %" })
        );
        let alert_keys: Vec<&str> = body["alerts"][0]
            .as_object()
            .expect("alert")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            alert_keys,
            [
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status"
            ]
        );
        assert_eq!(body["alerts"][0]["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(body["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(body["alerts"][0]["fingerprint"], "00000000000000ab");
        assert_eq!(body["alerts"][1]["status"], "resolved");
        assert_eq!(body["alerts"][1]["endsAt"], "2023-11-14T22:15:20Z");
    }

    #[test]
    fn long_groups_are_truncated_and_counted() {
        let alerts: Vec<WebhookAlert> = (0..5)
            .map(|n| {
                webhook_alert(
                    &alert(&n.to_string(), Status::Resolved),
                    n,
                    Labels::new(),
                    String::new(),
                )
            })
            .collect();
        let message = webhook_message("ops", Labels::new(), alerts, "", 2);
        assert_eq!(
            (
                message.alerts.len(),
                message.truncated_alerts,
                message.status
            ),
            (2, 3, "resolved")
        );
    }
}
