//! Cartograph on ClickHouse (the real engine: a server named by
//! `CARTOGRAPH_TEST_CLICKHOUSE_URL`, else the chDB bridge the test command starts): migrations
//! once and concurrently, two instances sharing one database and each showing the merged map,
//! and ClickHouse going away under load and coming back with every acknowledged span stored.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cartograph::config::{ClickHouseCompression, Config, StoreKind};
use cartograph::store::clickhouse::migrate::MIGRATIONS;
use cartograph::store::clickhouse::{ClickHouseOptions, run_migrations};
use serde_json::{Value, json};

use crate::graph_support::{assert_close, find_edge, service};
use crate::helpers::{TestApp, free_port, spawn_app_with, test_config};

/// The test server's URL and whether it is a real server (LZ4) or the bridge (no compression).
fn server() -> (String, bool) {
    if let Ok(url) = std::env::var("CARTOGRAPH_TEST_CLICKHOUSE_URL") {
        return (url, true);
    }
    let url = std::env::var("CARTOGRAPH_TEST_CHDB_URL").unwrap_or_else(|_| {
        panic!(
            "neither CARTOGRAPH_TEST_CLICKHOUSE_URL nor CARTOGRAPH_TEST_CHDB_URL is set: run the \
             tests through scripts/test.sh, which starts the chDB bridge"
        )
    });
    (url, false)
}

fn unique_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "cartograph_api_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn clickhouse_config(url: &str, compress: bool, database: &str, data_dir: &Path) -> Config {
    let mut config = test_config();
    config.storage.store = StoreKind::Clickhouse;
    config.storage.clickhouse_url = url.to_owned();
    config.storage.data_dir = data_dir.to_path_buf();
    config.clickhouse.database = database.to_owned();
    config.clickhouse.compression = if compress {
        ClickHouseCompression::Lz4
    } else {
        ClickHouseCompression::None
    };
    config.graph.pairing_ttl_secs = 1;
    config.alerts.enabled = false;
    config
}

/// A config on the test server, in a database of its own (shared by the instances given it).
pub fn shared_config(data_dir: &Path) -> Config {
    let (url, compress) = server();
    clickhouse_config(&url, compress, &unique_database(), data_dir)
}

/// Runs one SQL statement over ClickHouse's HTTP interface; returns the TabSeparated answer.
async fn sql(url: &str, statement: &str) -> String {
    let response = crate::helpers::http_client()
        .post(url)
        .body(statement.to_owned())
        .send()
        .await
        .expect("clickhouse answers");
    let status = response.status();
    let text = response.text().await.expect("text");
    assert!(status.is_success(), "{statement}: {status} {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_survive_two_processes_at_once() {
    let (url, compress) = server();
    let options = ClickHouseOptions {
        url: url.clone(),
        database: unique_database(),
        user: None,
        password: None,
        compress,
        cluster: None,
        migrate: true,
    };
    let (first, second) = (options.clone(), options.clone());
    let both = tokio::task::spawn_blocking(move || {
        std::thread::scope(|threads| {
            let one = threads.spawn(|| run_migrations(&first));
            let two = threads.spawn(|| run_migrations(&second));
            (one.join().expect("thread"), two.join().expect("thread"))
        })
    })
    .await
    .expect("join");
    let (one, two) = (both.0.expect("first"), both.1.expect("second"));
    let every: Vec<u32> = MIGRATIONS
        .iter()
        .map(|migration| migration.version)
        .collect();
    assert!(
        one == every || two == every,
        "one of them applied every migration: {one:?} {two:?}"
    );
    let database = options.database.clone();
    let again = tokio::task::spawn_blocking(move || run_migrations(&options))
        .await
        .expect("join")
        .expect("migrates");
    assert!(again.is_empty(), "a second run is a no-op: {again:?}");
    let tables = sql(
        &url,
        &format!("SELECT name FROM system.tables WHERE database = '{database}' ORDER BY name"),
    )
    .await;
    assert_eq!(
        tables.lines().collect::<Vec<_>>(),
        [
            "edge_rollup_buckets",
            "edge_rollups",
            "metric_points",
            "operation_rollups",
            "schema_migrations",
            "spans",
            "trace_times"
        ]
    );
    let recorded = sql(
        &url,
        &format!("SELECT DISTINCT version FROM `{database}`.schema_migrations ORDER BY version"),
    )
    .await;
    let versions: Vec<String> = every.iter().map(u32::to_string).collect();
    assert_eq!(recorded.trim(), versions.join("\n"));
}

/// OTLP/JSON for checkout → payments calls, one trace each: a client span in checkout and its
/// server span in payments, the call taking `millis`.
fn calls(trace_numbers: &[(u64, u64)]) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let span = |trace: u64, span: u64, parent: Option<u64>, kind: u32, millis: u64| {
        let start = now - 5_000_000_000 - millis * 1_000_000;
        let mut value = json!({
            "traceId": format!("{trace:032x}"),
            "spanId": format!("{span:016x}"),
            "name": "POST /pay",
            "kind": kind,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + millis * 1_000_000).to_string(),
            "attributes": [{ "key": "http.request.method", "value": { "stringValue": "POST" } }],
        });
        if let Some(parent) = parent {
            value["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        value
    };
    let resource = |name: &str, spans: Vec<Value>| {
        json!({
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": name } }] },
            "scopeSpans": [{ "scope": { "name": "test" }, "spans": spans }]
        })
    };
    let clients = trace_numbers
        .iter()
        .map(|(trace, millis)| span(*trace, trace * 2, None, 3, *millis))
        .collect();
    let servers = trace_numbers
        .iter()
        .map(|(trace, millis)| span(*trace, trace * 2 + 1, Some(trace * 2), 2, *millis))
        .collect();
    json!({ "resourceSpans": [resource("checkout", clients), resource("payments", servers)] })
}

async fn post_json(app: &TestApp, body: &Value) -> u16 {
    app.post_otlp(
        "/v1/traces",
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_clickhouse_each_show_the_merged_map() {
    let (url, compress) = server();
    let database = unique_database();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let first = spawn_app_with(clickhouse_config(&url, compress, &database, dirs[0].path())).await;
    let second = spawn_app_with(clickhouse_config(&url, compress, &database, dirs[1].path())).await;
    // Split by trace id, as a trace-aware load balancer would: each instance sees every
    // duration 1..=100 ms once, so the merged 200 calls have p50 50, p95 95, p99 99 ms.
    let mut halves = [Vec::new(), Vec::new()];
    for trace in 1..=200_u64 {
        halves[(trace % 2) as usize].push((trace, (trace - 1) / 2 % 100 + 1));
    }
    assert_eq!(post_json(&first, &calls(&halves[0])).await, 200);
    assert_eq!(post_json(&second, &calls(&halves[1])).await, 200);

    // Each instance holds its own calls in memory and reads the other's from ClickHouse once
    // that instance closes the minute (within about a minute).
    let (checkout, payments) = (service("checkout"), service("payments"));
    for app in [&first, &second] {
        let started = Instant::now();
        let edge = loop {
            let (_, graph) = app.get_json("/api/v1/graph?window=15m").await;
            let requests = graph["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|edge| {
                    edge["source"] == checkout.as_str() && edge["target"] == payments.as_str()
                })
                .and_then(|edge| edge["requests"].as_u64());
            if requests == Some(200) {
                break find_edge(&graph, &checkout, &payments).clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(110),
                "merged edge not shown: {requests:?} of 200 requests"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        for (percentile, millis) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
            assert_close(&edge, &format!("client_{percentile}_ms"), millis, 0.01);
        }
    }
    first.shutdown().await;
    second.shutdown().await;
}

/// A chDB bridge of this test's own, on `port`, over the data in `path`.
fn start_bridge(port: u16, path: &Path) -> Child {
    let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON").unwrap_or_else(|| {
        panic!("CARTOGRAPH_TEST_PYTHON is not set: run the tests through scripts/test.sh")
    });
    Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/chdb_bridge.py"))
        .args(["--port", &port.to_string(), "--path"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bridge starts")
}

async fn wait_ready(url: &str) {
    let started = Instant::now();
    let client = crate::helpers::http_client();
    while client.get(format!("{url}/ping")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "bridge not up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_down_under_load_pushes_back_and_loses_nothing_acknowledged() {
    if std::env::var_os("CARTOGRAPH_TEST_CLICKHOUSE_URL").is_some() {
        // Stopping a real server is not this test's to do; the bridge case covers the path.
        return;
    }
    let store_dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut bridge = start_bridge(port, &store_dir.path().join("chdb"));
    wait_ready(&url).await;
    let data_dir = tempfile::tempdir().expect("dir");
    let mut config = clickhouse_config(&url, false, &unique_database(), data_dir.path());
    config.pipeline.queue_capacity_items = std::num::NonZeroUsize::new(4_000).expect("non-zero");
    config.pipeline.writer_batch_items = std::num::NonZeroUsize::new(1_000).expect("non-zero");
    let database = config.clickhouse.database.clone();
    let app = spawn_app_with(config).await;

    // Six seconds down in the suite; CARTOGRAPH_TEST_OUTAGE_SECS=30 for the long run.
    let outage = Duration::from_secs(
        std::env::var("CARTOGRAPH_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(6),
    );
    let mut next_trace = 1_u64;
    let mut accepted_spans = 0_u64;
    let mut refused = 0_u64;
    let mut saw_not_ready = false;
    let started = Instant::now();
    let mut restarted = false;
    let mut stopped = false;
    while started.elapsed() < outage + Duration::from_secs(6) {
        let elapsed = started.elapsed();
        if !stopped && elapsed > Duration::from_secs(1) {
            bridge.kill().expect("stop clickhouse");
            bridge.wait().expect("stopped");
            stopped = true;
        }
        if stopped && !restarted && elapsed > outage + Duration::from_secs(1) {
            bridge = start_bridge(port, &store_dir.path().join("chdb"));
            wait_ready(&url).await;
            restarted = true;
        }
        let batch: Vec<(u64, u64)> = (next_trace..next_trace + 50).map(|t| (t, 5)).collect();
        match post_json(&app, &calls(&batch)).await {
            200 => {
                accepted_spans += 100;
                next_trace += 50;
            }
            429 | 503 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
        if stopped && !restarted {
            let (status, _) = app.get_json("/health/ready").await;
            saw_not_ready |= status == 503;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused > 0, "ingest pushed back while ClickHouse was down");
    assert!(saw_not_ready, "/health/ready said so");
    app.wait_until_stored().await;
    let stored: u64 = sql(
        &url,
        &format!("SELECT count() FROM `{database}`.spans FINAL"),
    )
    .await
    .trim()
    .parse()
    .expect("count");
    assert_eq!(
        stored, accepted_spans,
        "every acknowledged span is in ClickHouse"
    );
    eprintln!(
        "outage of {outage:?}: {accepted_spans} spans acknowledged, all stored; {refused} requests refused"
    );
    app.shutdown().await;
    let _ = bridge.kill();
    let _ = bridge.wait();
}
