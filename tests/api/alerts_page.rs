//! The alerts page in Chromium: a firing alert with its summary and a link to the edge, the
//! rules with their values, and a silence added through the form (hostile text in it shown,
//! not executed) that then silences the alert; form posts need the page's CSRF token.

use serde_json::{Value, json};

use crate::alert_support::{Calls, RULE, Receiver, alert_config, alerts_until, has_status};
use crate::dashboards::browse;
use crate::helpers::spawn_app_with;

const HOSTILE: &str = "<img src=x onerror=alert(1)> deploy";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_shows_firing_alerts_and_silences_one_from_its_form() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(alert_config(&receiver.url, "")).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;
    let alerts = alerts_until(&app, "firing", |alerts| has_status(alerts, "firing")).await;
    let fingerprint = alerts[0]["fingerprint"].as_str().expect("fingerprint");
    let badge = reqwest::get(format!("{}/alerts/badge", app.ui))
        .await
        .expect("badge")
        .text()
        .await
        .expect("badge text");
    assert!(
        badge.contains(">1 firing</a>"),
        "the navigation's badge: {badge}"
    );

    let pages = json!([
        {
            "name": "alerts",
            "path": "/alerts",
            "texts": [RULE, "firing", "50 % of calls checkout → payments fail", "Rules", "Delivery log", "New silence"],
            "full_page": true
        },
        {
            "name": "alerts-silence",
            "path": format!("/alerts?silence={fingerprint}"),
            "texts": ["New silence"],
            "fill": { "input[name=created_by]": "ana", "input[name=comment]": HOSTILE, "input[name=duration]": "1h" },
            "submit": "form.silence button[type=submit]",
            "after_texts": ["active", HOSTILE, "alertname=\"CheckoutErrors\"", "firing · silenced"]
        }
    ]);
    let report = browse(&app, &pages).await;
    for entry in &report {
        assert_eq!(entry["status"], 200, "{entry:#}");
        assert_eq!(entry["console_errors"], json!([]), "{entry:#}");
        assert_eq!(entry["failed_requests"], json!([]), "{entry:#}");
        assert_eq!(
            entry["dialogs"],
            json!([]),
            "hostile text executed: {entry:#}"
        );
        for (text, found) in entry["texts"].as_object().into_iter().flatten() {
            assert_eq!(found, true, "{text:?} not shown: {entry:#}");
        }
    }
    let after = &report[1]["after_submit"];
    assert_eq!(after["path"], "/alerts", "{after:#}");
    assert_eq!(
        after["injected_images"], 0,
        "hostile markup became an element"
    );
    for (text, found) in after["texts"].as_object().into_iter().flatten() {
        assert_eq!(
            found, true,
            "{text:?} not shown after the silence: {after:#}"
        );
    }
    let (_, silences) = app.get_json("/api/v1/silences").await;
    let silence: &Value = &silences["silences"][0];
    assert_eq!(silence["createdBy"], "ana");
    assert_eq!(silence["comment"], HOSTILE);

    // A form post without the page's CSRF token, or from another site, is refused.
    for (origin, body) in [
        (
            None,
            "name0=alertname&op0=%3D&value0=x&duration=1h&created_by=a&comment=c",
        ),
        (
            None,
            "csrf=guess&name0=alertname&op0=%3D&value0=x&duration=1h&created_by=a&comment=c",
        ),
        (
            Some("http://evil.example"),
            "name0=alertname&op0=%3D&value0=x&duration=1h&created_by=a&comment=c",
        ),
    ] {
        let mut request = app
            .client
            .post(format!("{}/alerts/silences", app.ui))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status(), 403, "{origin:?} {body}");
    }
    let id = silence["id"].as_str().expect("id");
    let response = app
        .client
        .post(format!("{}/alerts/silences/{id}/expire", app.ui))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403, "expiring needs the token too");
    // The page's own Expire button carries the token and works.
    let page = app
        .client
        .get(format!("{}/alerts", app.ui))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let prefix = format!("/alerts/silences/{id}/expire?csrf=");
    let start = page.find(&prefix).expect("an Expire button");
    let action: String = page[start..].chars().take_while(|c| *c != '"').collect();
    let response = app
        .client
        .post(format!("{}{action}", app.ui))
        .send()
        .await
        .expect("post");
    assert_eq!(
        (response.status().as_u16(), response.url().path()),
        (200, "/alerts"),
        "redirected back to the page: {action}"
    );
    let (_, silences) = app.get_json("/api/v1/silences").await;
    assert_eq!(silences["silences"][0]["status"]["state"], "expired");
    calls.stop().await;
    app.shutdown().await;
    receiver.stop().await;
}
