//! Anomalies against stored history: `gateway → orders` and `orders → payments` carry 10
//! calls a minute around this time of day yesterday and a week ago (sent now with those span
//! times: late calls the engine merges into the stored minutes), and over the last quarter of
//! an hour `orders → payments` carries five times that. After a restart (everything read from
//! SQLite), `/api/v1/anomalies` lists exactly that edge and the service it calls, by their rate.

use cartograph::config::{Config, StoreKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use crate::fixtures::{encode, now_nanos, string_attr, trace_request};
use crate::graph_support::graph_config;
use crate::helpers::{TestApp, spawn_app_with};

const MINUTE_NANOS: u64 = 60_000_000_000;
const MS: u64 = 1_000_000;
const DAY_MINUTES: u64 = 24 * 60;
const WEEK_MINUTES: u64 = 7 * DAY_MINUTES;
const CALLS_PER_MINUTE: u64 = 10;
const SPIKE: u64 = 5;

/// History of a week and a bit is kept and taken late; every minute on disk.
fn config(data_dir: &std::path::Path) -> Config {
    let mut config = graph_config(1);
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    config.storage.retention_hours = 9 * 24;
    config.graph.max_lateness_secs = 8 * 24 * 3_600;
    config
}

/// A client span of `trace` calling `callee`, and the callee's server span under it.
fn call(trace: u64, callee: &str, start: u64) -> (Span, Span) {
    let ids = |n: u64| (trace << 4 | n).to_be_bytes().to_vec();
    let half = |number: u64, parent: Vec<u8>, kind: i32, millis: u64| Span {
        trace_id: [trace.to_be_bytes(), 9u64.to_be_bytes()].concat(),
        span_id: ids(number),
        parent_span_id: parent,
        name: format!("POST /{callee}"),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + millis * MS,
        attributes: vec![
            string_attr("http.request.method", "POST"),
            string_attr("server.address", callee),
        ],
        status: Some(Status::default()),
        ..Span::default()
    };
    (half(1, Vec::new(), 3, 20), half(2, ids(1), 2, 19))
}

/// One minute's calls: `CALLS_PER_MINUTE` from the gateway to orders, `payments_calls` from
/// orders to payments.
fn minute_request(minute: u64, payments_calls: u64) -> ExportTraceServiceRequest {
    let (mut gateway, mut orders, mut payments) = (Vec::new(), Vec::new(), Vec::new());
    let start = |call: u64, calls: u64| minute * MINUTE_NANOS + call * (59_000 / calls) * MS;
    for index in 0..CALLS_PER_MINUTE {
        let (client, server) = call(
            minute * 1_000 + index,
            "orders",
            start(index, CALLS_PER_MINUTE),
        );
        gateway.push(client);
        orders.push(server);
    }
    for index in 0..payments_calls {
        let trace = minute * 1_000 + 500 + index;
        let (client, server) = call(trace, "payments", start(index, payments_calls));
        orders.push(client);
        payments.push(server);
    }
    let mut request = trace_request(Some("gateway"), gateway);
    for (service, spans) in [("orders", orders), ("payments", payments)] {
        request
            .resource_spans
            .extend(trace_request(Some(service), spans).resource_spans);
    }
    request
}

async fn send_minute(app: &TestApp, minute: u64, payments_calls: u64) {
    let body = encode(&minute_request(minute, payments_calls));
    let response = app
        .post_otlp(
            "/v1/traces",
            &[("content-type", "application/x-protobuf")],
            body,
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// `(subject, kind, figure, direction)` of each anomaly listed, sorted.
fn listed(body: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let text = |anomaly: &serde_json::Value, field: &str| {
        anomaly[field].as_str().unwrap_or_default().to_owned()
    };
    let mut found: Vec<_> = body["anomalies"]
        .as_array()
        .unwrap_or_else(|| panic!("anomalies in {body:#}"))
        .iter()
        .map(|anomaly| {
            (
                text(anomaly, "subject"),
                text(anomaly, "kind"),
                text(anomaly, "figure"),
                text(anomaly, "direction"),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_against_yesterday_and_last_week_is_the_one_anomaly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_with(config(dir.path())).await;
    let (status, body) = app.get_json("/api/v1/anomalies").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed(&body), [], "nothing to judge yet: {body:#}");

    let now_minute = now_nanos() / MINUTE_NANOS;
    // The judged window: the last 15 minutes, the one in progress included. Its history (and
    // a few minutes more, should the clock pass a minute before the query) a day and a week
    // before, at the usual rate.
    let window_from = now_minute - 14;
    for earlier in [DAY_MINUTES, WEEK_MINUTES] {
        for minute in (window_from - earlier - 35)..(now_minute + 1 - earlier + 35) {
            send_minute(&app, minute, CALLS_PER_MINUTE).await;
        }
    }
    for minute in window_from..=now_minute {
        send_minute(&app, minute, CALLS_PER_MINUTE * SPIKE).await;
    }
    // A graceful shutdown closes the open minute: the late minutes merge into the store.
    app.shutdown().await;

    let app = spawn_app_with(config(dir.path())).await;
    let (status, body) = app.get_json("/api/v1/anomalies?window=15m").await;
    assert_eq!(status, 200, "{body}");
    let expected = [
        ("service:orders -> service:payments", "edge", "rate", "up"),
        ("service:payments", "service", "rate", "up"),
    ]
    .map(|(subject, kind, figure, direction)| {
        (
            subject.to_owned(),
            kind.to_owned(),
            figure.to_owned(),
            direction.to_owned(),
        )
    });
    assert_eq!(listed(&body), expected, "{body:#}");
    assert_eq!(body["num_without_baseline"], 0, "{body:#}");
    let edge = &body["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .find(|anomaly| anomaly["kind"] == "edge")
        .expect("the edge");
    let baseline = edge["baseline"].as_f64().expect("baseline");
    let per_second = CALLS_PER_MINUTE as f64 / 60.0;
    assert!(
        (baseline - per_second).abs() < per_second * 0.1,
        "10 calls a minute before: {edge:#}"
    );
    let ratio = edge["ratio"].as_f64().expect("ratio");
    assert!((4.0..6.0).contains(&ratio), "five times the rate: {edge:#}");
    assert_eq!(edge["source"], "service:orders");
    assert_eq!(edge["target"], "service:payments");

    // The map badges the edge.
    let (status, page) = app.get_text("/?window=15m").await;
    assert_eq!(status, 200);
    let badge = page
        .split("rate ×")
        .nth(1)
        .unwrap_or_else(|| panic!("no anomaly badge on the map:\n{page}"));
    assert!(
        badge.starts_with('4') || badge.starts_with('5'),
        "{}",
        &badge[..40]
    );
    let badged: Vec<&str> = page
        .split("<g class=\"edge")
        .skip(1)
        .filter(|edge| edge.contains("rate ×"))
        .collect();
    assert_eq!(badged.len(), 1, "one edge badged");
    assert!(badged[0].contains("payments"), "{}", badged[0]);

    // The insights page lists the edge and the service, linked to their pages, in a section
    // loaded after the page.
    let (status, page) = app.get_text("/insights?window=15m").await;
    assert_eq!(status, 200);
    let fragment = "hx-get=\"/insights/anomalies?window=15m\"";
    assert!(
        page.contains(fragment),
        "no anomalies section to load:\n{page}"
    );
    let (status, page) = app.get_text("/insights/anomalies?window=15m").await;
    assert_eq!(status, 200, "{page}");
    let listed = page
        .split("Departures from the same time yesterday and last week")
        .nth(1)
        .unwrap_or_else(|| panic!("no anomalies section on the insights page:\n{page}"));
    let listed = listed.split("</table>").next().unwrap_or_default();
    assert!(listed.contains("orders → payments"), "{listed}");
    assert!(
        listed.contains("/edges/service%3Aorders/service%3Apayments?window=15m"),
        "{listed}"
    );
    assert!(listed.contains("rate ×"), "{listed}");

    for (query, expected) in [
        ("window=6h", "at most 60 minutes"),
        ("window=5x", "window"),
        ("focus=service:orders", "focus"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/anomalies?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{query}: {body}");
    }
    app.shutdown().await;
}
