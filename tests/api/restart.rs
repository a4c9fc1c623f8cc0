//! Durability across restarts (in-process and through a real SIGTERM) and retention by age.

use std::time::{Duration, Instant};

use crate::fixtures::{encode, now_nanos, span, trace_request};
use crate::helpers::{spawn_app_on_disk, spawn_app_with, test_config};
use crate::process::{self, Options};

const PROTOBUF: [(&str, &str); 1] = [("content-type", "application/x-protobuf")];
const HOUR_NANOS: u64 = 3_600_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_accepted_before_shutdown_is_readable_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_on_disk(dir.path()).await;
    app.app().writer_gate().pause();
    for seed in 1..=30 {
        let body = encode(&trace_request(
            Some("durable"),
            vec![span(seed, "GET /keep")],
        ));
        let response = app.post_otlp("/v1/traces", &PROTOBUF, body).await;
        assert_eq!(response.status().as_u16(), 200);
    }
    // Nothing is committed yet: shutdown must drain the queue into the store.
    app.shutdown().await;

    let app = spawn_app_on_disk(dir.path()).await;
    for seed in 1..=30_u8 {
        let (status, trace) = app.trace(&format!("{seed:02x}").repeat(16)).await;
        assert_eq!(status, 200, "trace {seed} after restart: {trace}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_accepted_data_before_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = process::start(Options {
        data_dir: Some(dir.path()),
        ..Options::default()
    })
    .await;
    for seed in 1..=20 {
        let body = encode(&trace_request(
            Some("sigterm"),
            vec![span(seed, "POST /pay")],
        ));
        assert_eq!(server.post_traces(body).await, 200);
    }
    let exit = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("join");
    assert!(exit.success(), "cartograph exited with {exit}");

    let app = spawn_app_on_disk(dir.path()).await;
    for seed in 1..=20_u8 {
        let (status, _) = app.trace(&format!("{seed:02x}").repeat(16)).await;
        assert_eq!(status, 200, "trace {seed} after SIGTERM");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_data_older_than_the_limit_and_nothing_newer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config();
    config.storage.store = cartograph::config::StoreKind::Sqlite;
    config.storage.data_dir = dir.path().to_path_buf();
    config.storage.retention_hours = 2;
    config.storage.retention_interval_secs = 1;
    let app = spawn_app_with(config).await;
    let now = now_nanos();
    let aged = |seed: u8, age_nanos: u64| {
        let mut aged = span(seed, "GET /aged");
        aged.start_time_unix_nano = now - age_nanos;
        aged.end_time_unix_nano = now - age_nanos + 1_000_000;
        aged
    };
    let spans = vec![
        aged(1, 5 * HOUR_NANOS),
        aged(2, 2 * HOUR_NANOS + 60_000_000_000),
        aged(3, 2 * HOUR_NANOS - 60_000_000_000),
        aged(4, 0),
    ];
    let body = encode(&trace_request(Some("aging"), spans));
    assert_eq!(
        app.post_otlp("/v1/traces", &PROTOBUF, body)
            .await
            .status()
            .as_u16(),
        200
    );
    app.wait_until_stored().await;

    let deleted = "cartograph_retention_deleted_items_total{signal=\"traces\"}";
    let started = Instant::now();
    while app.prometheus_value(deleted).await < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "retention did not run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (seed, expected) in [(1_u8, 404), (2, 404), (3, 200), (4, 200)] {
        let (status, _) = app.trace(&format!("{seed:02x}").repeat(16)).await;
        assert_eq!(status, expected, "span {seed}");
    }
    assert_eq!(app.prometheus_value(deleted).await, 2.0);
    app.shutdown().await;
}
