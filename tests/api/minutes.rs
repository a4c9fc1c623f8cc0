//! Calls count in the minute they started, not the minute they arrived; a range `[from, to)`
//! counts the minutes from `from` up to, not including, `to`; and memory and the store answer
//! the same for every range between the same minute boundaries (before and after a restart).

use std::time::{Duration, Instant};

use cartograph::config::{Config, StoreKind};
use serde_json::Value;

use crate::fixtures::{encode, now_nanos, span, trace_request};
use crate::helpers::{TestApp, spawn_app_with, test_config};

const MINUTE_NANOS: u64 = 60_000_000_000;
const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

fn on_disk(data_dir: &std::path::Path) -> Config {
    let mut config = test_config();
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    config
}

/// Root SERVER spans of `gateway` (calls from `client:user`, counted without waiting for a
/// client half) that started 10 s into each of `minutes`, sent in one export now.
async fn post_calls_started_in(app: &TestApp, minutes: &[u64]) {
    let spans = minutes
        .iter()
        .enumerate()
        .map(|(index, minute)| {
            let mut call = span(u8::try_from(index + 1).expect("few calls"), "GET /");
            call.start_time_unix_nano = minute * MINUTE_NANOS + 10_000_000_000;
            call.end_time_unix_nano = call.start_time_unix_nano + 5_000_000;
            call
        })
        .collect();
    let body = encode(&trace_request(Some("gateway"), spans));
    let response = app.post_otlp("/v1/traces", &[PROTOBUF], body).await;
    assert_eq!(response.status(), 200);
}

/// Requests over `[from, to)` (minutes) on the map and on the services list.
async fn counts(app: &TestApp, from: u64, to: u64) -> (u64, u64) {
    let range = format!("from={}&to={}", from * MINUTE_NANOS, to * MINUTE_NANOS);
    let (status, graph) = app.get_json(&format!("/api/v1/graph?{range}")).await;
    assert_eq!(status, 200, "{graph}");
    let (status, services) = app.get_json(&format!("/api/v1/services?{range}")).await;
    assert_eq!(status, 200, "{services}");
    let sum = |items: &Value| -> u64 {
        items
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| item["requests"].as_u64().expect("requests"))
            .sum()
    };
    (sum(&graph["edges"]), sum(&services["services"]))
}

/// Every range between the boundaries of `first..last`, with the calls it must count.
fn expected_ranges(started: &[u64], first: u64, last: u64) -> Vec<(u64, u64, u64)> {
    let mut ranges = Vec::new();
    for from in first..last {
        for to in from + 1..=last {
            let num = started.iter().filter(|m| (from..to).contains(m)).count();
            ranges.push((from, to, num as u64));
        }
    }
    ranges
}

async fn assert_every_range(app: &TestApp, started: &[u64], first: u64, last: u64, what: &str) {
    for (from, to, expected) in expected_ranges(started, first, last) {
        let (on_map, in_services) = counts(app, from, to).await;
        assert_eq!(
            (on_map, in_services),
            (expected, expected),
            "{what}: [{from}, {to}) on the map and the services list"
        );
    }
}

async fn wait_for_calls(app: &TestApp, from: u64, to: u64, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts(app, from, to).await.0 < expected {
        assert!(Instant::now() < deadline, "calls never reached the map");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_count_in_the_minute_they_started_from_memory_and_from_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_with(on_disk(dir.path())).await;
    let now_minute = now_nanos() / MINUTE_NANOS;
    let m0 = now_minute - 4;
    // Made 4 and 3 minutes ago, sent together now; and one from an hour and a half ago,
    // older than the hour the engine holds.
    let long_ago = now_minute - 90;
    post_calls_started_in(&app, &[m0, m0 + 1, long_ago]).await;
    wait_for_calls(&app, m0, m0 + 2, 2).await;

    assert_eq!(counts(&app, m0, m0 + 1).await, (1, 1), "[m0, m0+1)");
    assert_eq!(counts(&app, m0, m0 + 2).await, (2, 2), "[m0, m0+2)");
    assert_eq!(
        counts(&app, now_minute, now_minute + 1).await,
        (0, 0),
        "not now"
    );
    assert_every_range(&app, &[m0, m0 + 1], m0 - 1, m0 + 3, "from memory").await;
    assert_eq!(
        app.prometheus_value("cartograph_graph_late_merged_total")
            .await,
        2.0,
        "the old call and its operation go to the store"
    );

    app.shutdown().await;
    let app = spawn_app_with(on_disk(dir.path())).await;
    assert_every_range(&app, &[m0, m0 + 1], m0 - 1, m0 + 3, "after a restart").await;
    assert_eq!(counts(&app, long_ago, long_ago + 1).await, (1, 1), "merged");
    assert_eq!(counts(&app, long_ago - 1, long_ago).await, (0, 0));
    app.shutdown().await;
}
