//! Alerts end to end: errors sent through the real SDK make the edge-error-rate rule fire, a
//! real HTTP receiver gets one Alertmanager v4 webhook (signed, with an idempotency key), one
//! resolved webhook follows when errors stop; a receiver that is down, and a restart with a
//! notification pending, still get it exactly once; silences hold back notifications until
//! they expire; a bad rule stops startup naming the rule and the field.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::alert_support::{
    Calls, EVALUATION_INTERVAL, FOR, RULE, Receiver, WAIT, alert_config, alerts_until, has_status,
    schema_errors,
};
use crate::helpers::{TestApp, free_port, spawn_app_with};

fn firing(received: &[crate::alert_support::Received]) -> usize {
    received
        .iter()
        .filter(|request| request.body["status"] == "firing")
        .count()
}

fn time_of(alert: &Value, field: &str) -> time::OffsetDateTime {
    let text = alert[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {alert}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339")
}

/// Waits until the outbox shows a delivery with at least `attempts` failed attempts.
async fn failed_attempts(app: &TestApp, attempts: u64) -> Value {
    let started = Instant::now();
    loop {
        let (_, body) = app.get_json("/api/v1/alerts/deliveries").await;
        let delivery = body["deliveries"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["state"] == "pending").cloned());
        if let Some(delivery) = delivery
            && delivery["attempts"].as_u64().unwrap_or(0) >= attempts
        {
            return delivery;
        }
        assert!(started.elapsed() < WAIT, "no retried delivery: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_errors_fire_one_webhook_then_one_resolved_when_errors_stop() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(alert_config(&receiver.url, "")).await;
    let calls = Calls::start(&app);

    calls.send(10, 10).await;
    let alerts = alerts_until(&app, "the alert fires", |alerts| {
        has_status(alerts, "firing")
    })
    .await;
    let alert = &alerts[0];
    let held = time_of(alert, "fired_at") - time_of(alert, "starts_at");
    assert!(
        held >= FOR && held <= FOR + EVALUATION_INTERVAL + Duration::from_secs(1),
        "fired {held:?} after the condition first held (for {FOR:?}, interval {EVALUATION_INTERVAL:?})"
    );
    assert_eq!(alert["labels"]["source"], "service:checkout");
    assert_eq!(alert["labels"]["target"], "service:payments");

    let received = receiver.wait_for(1, "the firing webhook").await;
    let webhook = &received[0];
    let body = &webhook.body;
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "ops");
    assert_eq!(body["groupKey"], format!("{{}}:{{alertname=\"{RULE}\"}}"));
    assert_eq!(body["groupLabels"], json!({ "alertname": RULE }));
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["externalURL"], app.ui);
    let sent = &body["alerts"][0];
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1), "{body:#}");
    assert_eq!(sent["status"], "firing");
    assert_eq!(sent["labels"]["alertname"], RULE);
    assert_eq!(sent["labels"]["team"], "payments");
    assert_eq!(sent["labels"]["severity"], "warning");
    assert_eq!(sent["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(sent["fingerprint"], alert["fingerprint"]);
    assert_eq!(
        sent["generatorURL"],
        format!("{}/edges/service%3Acheckout/service%3Apayments", app.ui)
    );
    assert_eq!(
        sent["annotations"]["summary"],
        "50 % of calls checkout → payments fail"
    );
    let page = app
        .client
        .get(sent["generatorURL"].as_str().expect("url"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200, "the link opens the edge page");

    let headers = &webhook.headers;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["authorization"], "Bearer receiver-token");
    assert_eq!(headers["idempotency-key"].len(), 32);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"test-secret").expect("key");
    mac.update(&webhook.raw);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        headers["x-cartograph-signature"], expected,
        "HMAC of the exact body"
    );

    // Errors stop: good calls bring the rate under 5 %.
    calls.send(200, 0).await;
    let received = receiver.wait_for(2, "the resolved webhook").await;
    let resolved = &received[1].body;
    assert_eq!(resolved["status"], "resolved", "{resolved:#}");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["fingerprint"], sent["fingerprint"]);
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_ne!(
        received[1].headers["idempotency-key"], headers["idempotency-key"],
        "each notification has its own key"
    );
    // Several more evaluations and group intervals: nothing else is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "exactly one firing and one resolved"
    );
    let complaints = schema_errors(&[&received[0].body, &received[1].body]);
    assert!(complaints.is_empty(), "strict v4 schema: {complaints}");

    let (status, rules) = app.get_json("/api/v1/alerts/rules").await;
    assert_eq!(status, 200);
    assert_eq!(rules["rules"][0]["name"], RULE);
    let (_, deliveries) = app.get_json("/api/v1/alerts/deliveries").await;
    let delivered: Vec<&Value> = deliveries["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|delivery| delivery["state"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 2, "{deliveries:#}");
    assert_eq!(delivered[0]["lastStatus"], 200);
    let metrics = app.prometheus().await;
    assert!(
        metrics.contains("cartograph_alert_deliveries_delivered_total 2"),
        "{metrics}"
    );
    calls.stop().await;
    app.shutdown().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_the_notification_once_it_is_back() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = spawn_app_with(alert_config(&url, "")).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let delivery = failed_attempts(&app, 3).await;
    assert!(
        delivery["lastError"]
            .as_str()
            .is_some_and(|error| error.contains("connection")),
        "{delivery:#}"
    );
    let receiver = Receiver::start_on(port).await;
    let received = receiver
        .wait_for(1, "delivery after the receiver returned")
        .await;
    assert_eq!(received[0].body["status"], "firing");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "delivered once");

    // A receiver that answers 500 is retried; one that answers 400 is not.
    receiver.respond_with(500);
    calls.send(400, 0).await;
    let retried = receiver.wait_for(3, "retries after 500").await;
    assert!(
        retried
            .iter()
            .skip(1)
            .all(|r| r.body["status"] == "resolved")
    );
    let key = &retried[1].headers["idempotency-key"];
    assert!(
        retried
            .iter()
            .skip(1)
            .all(|r| &r.headers["idempotency-key"] == key),
        "every retry of a notification carries its key"
    );
    receiver.respond_with(400);
    let count = receiver
        .wait_for(retried.len() + 1, "the next retry")
        .await
        .len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), count, "a 400 is not retried");
    let (_, deliveries) = app.get_json("/api/v1/alerts/deliveries").await;
    assert_eq!(
        deliveries["deliveries"][0]["state"], "failed",
        "{deliveries:#}"
    );
    assert_eq!(deliveries["deliveries"][0]["lastStatus"], 400);
    calls.stop().await;
    app.shutdown().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_receiver_is_reached_only_when_its_ca_is_trusted() {
    let ca = crate::tls_support::TestCa::new();
    let receiver = Receiver::start_tls(&ca).await;

    // Not trusted: every attempt fails the handshake and says so.
    let app = spawn_app_with(alert_config(&receiver.url, "")).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let delivery = failed_attempts(&app, 2).await;
    let error = delivery["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("certificate"),
        "the cause is shown: {delivery:#}"
    );
    assert!(receiver.received().is_empty());
    calls.stop().await;
    app.shutdown().await;

    // Trusted through `ca_file`: delivered once, signed as over http.
    let mut config = alert_config(&receiver.url, "");
    config.alerts.delivery.ca_file = ca.ca_file.clone();
    let app = spawn_app_with(config).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let received = receiver.wait_for(1, "delivery over https").await;
    assert_eq!(received[0].body["status"], "firing");
    assert!(received[0].headers.contains_key("x-cartograph-signature"));
    calls.stop().await;
    app.shutdown().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_pending_at_restart_is_delivered_once_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let config = || {
        let mut config = alert_config(&url, "");
        config.storage.store = cartograph::config::StoreKind::Sqlite;
        config.storage.data_dir = dir.path().to_path_buf();
        config
    };
    let app = spawn_app_with(config()).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let pending = failed_attempts(&app, 1).await;
    calls.stop().await;
    app.shutdown().await;

    let receiver = Receiver::start_on(port).await;
    let app = spawn_app_with(config()).await;
    let received = receiver.wait_for(1, "delivery after the restart").await;
    assert_eq!(received[0].body["status"], "firing");
    assert_eq!(
        received[0].headers["idempotency-key"], pending["idempotencyKey"],
        "the notification queued before the restart"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        firing(&receiver.received()),
        1,
        "delivered once, not re-notified"
    );
    app.shutdown().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_notifications_back_until_it_expires() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(alert_config(&receiver.url, "")).await;
    let silence_for = Duration::from_secs(12);
    let ends_at = time::OffsetDateTime::now_utc() + silence_for;
    let ends_text = ends_at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = app
        .client
        .post(format!("{}/api/v1/silences", app.ui))
        .json(&json!({
            "matchers": [
                { "name": "alertname", "value": RULE, "isRegex": false, "isEqual": true },
                { "name": "target", "value": "service:pay.*", "isRegex": true }
            ],
            "endsAt": ends_text,
            "createdBy": "ana",
            "comment": "payments deploy"
        }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let id = response.json::<Value>().await.expect("json")["silenceID"]
        .as_str()
        .expect("id")
        .to_owned();

    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let alerts = alerts_until(&app, "firing while silenced", |alerts| {
        has_status(alerts, "firing")
    })
    .await;
    assert_eq!(alerts[0]["silenced_by"], json!([id]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = time::OffsetDateTime::now_utc();
    assert!(now < ends_at, "the test ran slower than the silence lasts");
    assert!(receiver.received().is_empty(), "silenced: nothing sent");

    let received = receiver.wait_for(1, "the notification after expiry").await;
    assert!(
        time::OffsetDateTime::now_utc() >= ends_at,
        "sent only after the silence ended"
    );
    assert_eq!(received[0].body["status"], "firing");
    let (_, silences) = app.get_json("/api/v1/silences").await;
    assert_eq!(silences["silences"][0]["status"]["state"], "expired");

    // The API refuses what is wrong, saying what.
    for (body, expected) in [
        (
            json!({ "matchers": [], "endsAt": ends_text, "createdBy": "a", "comment": "c" }),
            "matchers",
        ),
        (
            json!({ "matchers": [{ "name": "a", "value": "b" }], "endsAt": "soon", "createdBy": "a", "comment": "c" }),
            "RFC 3339",
        ),
        (
            json!({ "matchers": [{ "name": "a", "value": "(" , "isRegex": true }], "endsAt": ends_text, "createdBy": "a", "comment": "c" }),
            "regex",
        ),
        (json!({ "matchers": "everything" }), "invalid silence"),
    ] {
        let response = app
            .client
            .post(format!("{}/api/v1/silences", app.ui))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 400, "{body}");
        let error = response.json::<Value>().await.expect("json")["error"].to_string();
        assert!(error.contains(expected), "{body} → {error}");
    }
    let response = app
        .client
        .post(format!("{}/api/v1/silences", app.ui))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 415);
    let response = app
        .client
        .delete(format!("{}/api/v1/silences/no-such-id", app.ui))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 404);
    let response = app
        .client
        .delete(format!("{}/api/v1/silences/{id}", app.ui))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 200);
    calls.stop().await;
    app.shutdown().await;
    receiver.stop().await;
}

#[test]
fn a_bad_rule_stops_startup_naming_the_rule_and_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rule, expected) in [
        (
            "name = \"PaymentsErrors\"\nkind = \"edge_error_rate\"\nthreshhold = 0.05\n",
            ["alert rule `PaymentsErrors`", "unknown field `threshhold`"],
        ),
        (
            "name = \"PaymentsErrors\"\nkind = \"edge_error_rate\"\nthreshold = 5.0\n",
            ["alert rule `PaymentsErrors`", "field `threshold`"],
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, format!("[[alerts.rules]]\n{rule}")).expect("write");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cartograph"))
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--store", "memory", "--otlp-grpc", "127.0.0.1:0"])
            .args(["--otlp-http", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
            .output()
            .expect("runs");
        assert!(!output.status.success(), "a bad rule must stop startup");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for text in expected {
            assert!(stderr.contains(text), "{text:?} not in: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_is_retried_and_gets_the_same_key() {
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_secs(3));
    let app = spawn_app_with(alert_config(&receiver.url, "")).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let delivery = failed_attempts(&app, 1).await;
    assert_eq!(delivery["lastError"], "timed out", "{delivery:#}");
    receiver.delay(Duration::ZERO);
    let started = Instant::now();
    loop {
        let (_, body) = app.get_json("/api/v1/alerts/deliveries").await;
        if body["deliveries"][0]["state"] == "delivered" {
            break;
        }
        assert!(started.elapsed() < WAIT, "never delivered: {body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = receiver.received();
    let key = &received[0].headers["idempotency-key"];
    assert!(
        received
            .iter()
            .all(|request| &request.headers["idempotency-key"] == key),
        "a timed-out attempt may have arrived; its retry carries the same key to deduplicate on"
    );
    assert!(firing(&received) >= 1);
    calls.stop().await;
    app.shutdown().await;
    receiver.stop().await;
}
