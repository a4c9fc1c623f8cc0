//! The charts of the service, edge, Kafka and breakers pages in headless Chromium: each has
//! time ticks, value ticks, its unit, hover titles with the values of each bucket, the bucket
//! still in progress marked as such, and text that reads at 1280 px; an earlier day's (or
//! week's) traffic is overlaid and named when there is some, and only then.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::{Span, Status, status};
use serde_json::{Value, json};

use crate::dashboards::browse;
use crate::fixtures::{encode, string_attr, trace_request, well_inside_a_minute};
use crate::graph_support::{graph_config, spawn_graph_app};
use crate::helpers::{TestApp, spawn_app_with};
use crate::signals_store::{breaker_at, lag_at, post_metrics};

const MINUTE_NANOS: u64 = 60_000_000_000;
const DAY_MINUTES: u64 = 24 * 60;

/// `count` calls orders → payments started at `start_unix_nano` (the client waits 25 ms, the
/// server spends 20 ms; `num_errors` of them fail on the server), sent as both services.
async fn post_calls(app: &TestApp, callee: &str, start_unix_nano: u64, count: u8, num_errors: u8) {
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for index in 0..count {
        // Unique per call and per minute.
        let tag = (start_unix_nano / MINUTE_NANOS % 251) as u8;
        let trace_id = [[tag, index].as_slice(), &[0x5a; 14]].concat();
        let client_id = vec![tag, index, 1, 0, 0, 0, 0, 1];
        let server_id = vec![tag, index, 2, 0, 0, 0, 0, 2];
        let status = (index < num_errors).then(|| Status {
            code: status::StatusCode::Error as i32,
            ..Status::default()
        });
        clients.push(Span {
            trace_id: trace_id.clone(),
            span_id: client_id.clone(),
            name: "POST".to_owned(),
            kind: 3,
            start_time_unix_nano: start_unix_nano,
            end_time_unix_nano: start_unix_nano + 25_000_000,
            attributes: vec![
                string_attr("http.request.method", "POST"),
                string_attr("peer.service", callee),
            ],
            ..Span::default()
        });
        servers.push(Span {
            trace_id,
            span_id: server_id,
            parent_span_id: client_id,
            name: "POST /pay".to_owned(),
            kind: 2,
            start_time_unix_nano: start_unix_nano + 2_000_000,
            end_time_unix_nano: start_unix_nano + 22_000_000,
            attributes: vec![string_attr("http.request.method", "POST")],
            status,
            ..Span::default()
        });
    }
    for (service, spans) in [("orders", clients), (callee, servers)] {
        let body = encode(&trace_request(Some(service), spans));
        let response = app
            .post_otlp(
                "/v1/traces",
                &[("content-type", "application/x-protobuf")],
                body,
            )
            .await;
        assert_eq!(response.status().as_u16(), 200);
    }
}

/// Lag of group `inventory` on `orders.created` (partition 0; 1 has none) and the state of
/// a resilience4j breaker in orders, at each of `points` (`(unix_nano, lag, breaker state)`).
async fn post_signals(app: &TestApp, points: &[(u64, i64, &str)]) {
    for (at, lag, state) in points {
        post_metrics(app, &lag_at(*at, [*lag, 0])).await;
        post_metrics(app, &breaker_at(*at, state)).await;
    }
}

/// "09:05", as the charts print a minute.
fn clock(minute: u64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(i64::try_from(minute * 60).expect("time"))
        .expect("time");
    format!("{:02}:{:02}", time.hour(), time.minute())
}

async fn wait_for_page(app: &TestApp, path: &str, wanted: &str) {
    let started = Instant::now();
    loop {
        let (_, body) = app.get_text(path).await;
        if body.contains(wanted) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{path} never showed {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn texts(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|text| text.as_str().map(str::to_owned))
        .collect()
}

/// What every line chart has: round time ticks as HH:MM, value ticks from 0, its unit beside
/// the axis, a hover title per bucket, the bucket in progress marked, and text of 11 px at
/// least on screen.
fn assert_reads(chart: &Value) {
    let ticks_x = texts(&chart["ticks_x"]);
    assert!(ticks_x.len() >= 3, "{chart:#}");
    assert!(
        ticks_x
            .iter()
            .all(|tick| tick.len() == 5 && tick.as_bytes()[2] == b':'),
        "{chart:#}"
    );
    let ticks_y = texts(&chart["ticks_y"]);
    assert!(ticks_y.len() >= 2 && ticks_y[0] == "0", "{chart:#}");
    assert!(
        !chart["unit"].as_str().unwrap_or("").is_empty() && chart["unit_label"] == chart["unit"],
        "{chart:#}"
    );
    assert_eq!(
        texts(&chart["hovers"]).len(),
        5,
        "a bucket a minute: {chart:#}"
    );
    assert_eq!(chart["partial"], 1, "the bucket in progress: {chart:#}");
    let min_text = chart["min_text_px"].as_f64().unwrap_or(0.0);
    assert!(min_text >= 11.0, "text at {min_text} px: {chart:#}");
}

fn chart<'a>(page: &'a Value, title: &str) -> &'a Value {
    page["charts"]
        .as_array()
        .and_then(|charts| charts.iter().find(|chart| chart["title"] == title))
        .unwrap_or_else(|| panic!("no chart {title:?}: {page:#}"))
}

fn hover_of(chart: &Value, starts: &str) -> String {
    texts(&chart["hovers"])
        .into_iter()
        .find(|hover| hover.starts_with(starts))
        .unwrap_or_else(|| panic!("no hover starting {starts:?}: {chart:#}"))
}

/// The milliseconds printed after `label` in a hover title ("… p95 20.1 ms …").
fn millis_after(hover: &str, label: &str) -> f64 {
    hover
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in ms in {hover:?}"))
}

/// Within the latency sketches' accuracy.
fn assert_near(millis: f64, expected: f64) {
    assert!(
        (millis - expected).abs() <= expected * 0.03,
        "{millis} ms, expected about {expected} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_edge_kafka_and_breaker_pages_chart_their_range() {
    let app = spawn_graph_app(1).await;
    let now = well_inside_a_minute().await;
    let now_minute = now / MINUTE_NANOS;
    // 6 calls 3 minutes ago (2 failing), 12 two minutes ago, and some now.
    post_calls(
        &app,
        "payments",
        (now_minute - 3) * MINUTE_NANOS + 5_000_000_000,
        6,
        2,
    )
    .await;
    post_calls(
        &app,
        "payments",
        (now_minute - 2) * MINUTE_NANOS + 5_000_000_000,
        12,
        0,
    )
    .await;
    post_calls(&app, "payments", now - 1_000_000_000, 3, 0).await;
    let second = 1_000_000_000;
    post_signals(
        &app,
        &[
            ((now_minute - 4) * MINUTE_NANOS + 10 * second, 40, "closed"),
            ((now_minute - 3) * MINUTE_NANOS + 10 * second, 90, "closed"),
            ((now_minute - 2) * MINUTE_NANOS + 10 * second, 150, "open"),
            (now - second, 120, "open"),
        ],
    )
    .await;
    app.wait_until_stored().await;
    wait_for_page(&app, "/services/payments?window=5m", "requests 0.20/s").await;

    let pages = json!([
        { "name": "chart-service", "path": "/services/payments?window=5m", "charts": true, "width": 1280, "height": 900, "full_page": true },
        { "name": "chart-edge", "path": "/edges/service%3Aorders/service%3Apayments?window=5m", "charts": true, "width": 1280, "height": 900, "full_page": true },
        { "name": "chart-kafka", "path": "/kafka?window=5m", "charts": true, "width": 1280 },
        { "name": "chart-breakers", "path": "/breakers?window=5m", "charts": true, "width": 1280 },
        { "name": "chart-service-1920", "path": "/services/payments?window=5m", "charts": true, "width": 1920, "height": 1000 },
    ]);
    let report = browse(&app, &pages).await;
    for page in &report {
        assert_eq!(page["status"], 200, "{page:#}");
        assert_eq!(page["console_errors"], json!([]), "{page:#}");
    }

    let service = &report[0];
    let minute = |back: u64| clock(now_minute - back);
    let requests = chart(service, "Requests");
    assert_reads(requests);
    assert_eq!(requests["unit"], "req/s");
    // 12 calls in a whole minute; 6 with 2 failing the minute before.
    assert_eq!(
        hover_of(requests, &minute(2)),
        format!(
            "{}–{} UTC · requests 0.20/s · errors 0/s",
            minute(2),
            minute(1)
        )
    );
    assert_eq!(
        hover_of(requests, &minute(3)),
        format!(
            "{}–{} UTC · requests 0.10/s · errors 0.033/s",
            minute(3),
            minute(2)
        )
    );
    assert!(
        hover_of(requests, &minute(0)).starts_with(&format!("{}–now UTC · requests ", minute(0))),
        "{requests:#}"
    );
    assert_eq!(
        texts(&requests["legend"])[0],
        "requests · peak 0.20/s",
        "{requests:#}"
    );
    let error_rate = chart(service, "Error rate");
    assert_reads(error_rate);
    assert_eq!(error_rate["unit"], "%");
    assert!(
        hover_of(error_rate, &minute(3)).ends_with("errors 33.3 %"),
        "{error_rate:#}"
    );
    // A minute without calls has no error rate (a gap, not 0 %).
    assert!(
        hover_of(error_rate, &minute(4)).ends_with("errors –"),
        "{error_rate:#}"
    );
    let latency = chart(service, "Latency");
    assert_reads(latency);
    assert_eq!(latency["unit"], "ms");
    let hover = hover_of(latency, &minute(2));
    assert_near(millis_after(&hover, " p95 "), 20.0);
    assert!(
        hover_of(latency, &minute(1)).ends_with("p99 –"),
        "{latency:#}"
    );
    for chart in service["charts"].as_array().expect("charts") {
        assert_eq!(chart["overlay"], json!([]), "no earlier data: {chart:#}");
    }

    let edge = &report[1];
    assert_eq!(edge["charts"].as_array().map(Vec::len), Some(3), "{edge:#}");
    let calls = chart(edge, "Calls");
    assert_reads(calls);
    assert_eq!(calls["unit"], "calls/s");
    assert!(
        hover_of(calls, &minute(2)).contains("calls 0.20/s · errors 0/s"),
        "{calls:#}"
    );
    let latency = chart(
        edge,
        "Latency: what the caller waited, what the callee spent",
    );
    assert_reads(latency);
    let hover = hover_of(latency, &minute(2));
    assert_near(millis_after(&hover, "client p95 "), 25.0);
    assert_near(millis_after(&hover, "server p95 "), 20.0);
    assert!(chart(edge, "Error rate (refused calls left out)")["hovers"].is_array());

    let lag = chart(&report[2], "Lag per consumer group");
    assert_reads(lag);
    assert_eq!(lag["unit"], "messages");
    assert_eq!(
        texts(&lag["legend"]),
        ["inventory on orders.created · peak 150"],
        "{lag:#}"
    );
    assert!(
        hover_of(lag, &minute(2)).ends_with("inventory on orders.created 150"),
        "{lag:#}"
    );
    // No sample in that minute: the one of the minute before still stands.
    assert!(
        hover_of(lag, &minute(1)).ends_with("inventory on orders.created 150"),
        "{lag:#}"
    );
    assert!(
        hover_of(lag, &minute(0)).ends_with("inventory on orders.created 120"),
        "{lag:#}"
    );

    let timeline = chart(&report[3], "Breaker states");
    assert_eq!(
        texts(&timeline["bands"]),
        ["closed", "open"],
        "{timeline:#}"
    );
    let hovers = texts(&timeline["hovers"]);
    assert!(
        hovers
            .iter()
            .any(|hover| hover.starts_with("orders · payments: open ")
                && hover.ends_with("–now UTC")),
        "{hovers:?}"
    );
    assert!(
        texts(&timeline["legend"]).contains(&"half_open".to_owned()),
        "{timeline:#}"
    );
    assert!(
        timeline["min_text_px"].as_f64().unwrap_or(0.0) >= 11.0,
        "{timeline:#}"
    );

    // Wider screens put the charts side by side rather than blowing them up.
    let wide = &report[4]["charts"][0];
    let width = wide["width_px"].as_f64().unwrap_or(0.0);
    assert!((500.0..800.0).contains(&width), "{wide:#}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_day_or_week_with_traffic_is_overlaid_and_named() {
    let mut config = graph_config(1);
    config.graph.max_lateness_secs = 9 * DAY_MINUTES * 60;
    config.storage.retention_hours = 9 * 24;
    let app = spawn_app_with(config).await;
    let now = well_inside_a_minute().await;
    let now_minute = now / MINUTE_NANOS;
    // Traffic now for both callees; a day earlier for payments, a week earlier for ledger.
    post_calls(&app, "payments", now - 1_000_000_000, 2, 0).await;
    post_calls(&app, "ledger", now - 2_000_000_000, 2, 0).await;
    let day_earlier = (now_minute - 2 - DAY_MINUTES) * MINUTE_NANOS + 5_000_000_000;
    post_calls(&app, "payments", day_earlier, 6, 0).await;
    let week_earlier = (now_minute - 2 - 7 * DAY_MINUTES) * MINUTE_NANOS + 5_000_000_000;
    post_calls(&app, "ledger", week_earlier, 3, 0).await;
    app.wait_until_stored().await;
    // Calls older than memory join the store when the next minute closes.
    wait_for_page(
        &app,
        "/services/payments?window=5m",
        "requests 1 day earlier",
    )
    .await;
    wait_for_page(
        &app,
        "/services/ledger?window=5m",
        "requests 1 week earlier",
    )
    .await;

    let pages = json!([
        { "name": "overlay-service", "path": "/services/payments?window=5m", "charts": true, "width": 1280, "full_page": true },
        { "name": "overlay-edge", "path": "/edges/service%3Aorders/service%3Apayments?window=5m", "charts": true, "width": 1280, "full_page": true },
        { "name": "overlay-week", "path": "/services/ledger?window=5m", "charts": true, "width": 1280 },
    ]);
    let report = browse(&app, &pages).await;
    let minute = |back: u64| clock(now_minute - back);
    let requests = chart(&report[0], "Requests");
    assert_eq!(
        requests["overlay"],
        json!(["requests 1 day earlier"]),
        "{requests:#}"
    );
    assert!(texts(&requests["legend"]).contains(&"requests 1 day earlier".to_owned()));
    // 6 calls in a whole minute a day earlier.
    assert!(
        hover_of(requests, &minute(2)).ends_with("requests 1 day earlier 0.10/s"),
        "{requests:#}"
    );
    assert_eq!(
        chart(&report[0], "Latency")["overlay"],
        json!(["p95 1 day earlier"])
    );
    let calls = chart(&report[1], "Calls");
    assert_eq!(
        calls["overlay"],
        json!(["calls 1 day earlier"]),
        "{calls:#}"
    );
    let week = chart(&report[2], "Requests");
    assert_eq!(
        week["overlay"],
        json!(["requests 1 week earlier"]),
        "{week:#}"
    );
    assert!(
        hover_of(week, &minute(2)).ends_with("requests 1 week earlier 0.050/s"),
        "{week:#}"
    );
    app.shutdown().await;
}
