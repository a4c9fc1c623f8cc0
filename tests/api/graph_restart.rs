//! The graph of a past range comes from the per-minute rollups in the store: after a restart on
//! the same data directory, `/api/v1/graph?from=&to=` must answer exactly what the live graph
//! answered for that range before.

use std::path::Path;
use std::time::Duration;

use cartograph::config::{Config, StoreKind};
use serde_json::{Value, json};

use crate::fixtures::now_nanos;
use crate::graph_support::{
    assert_graph_settles, graph, graph_config, http_pair_graph, kafka_graph, post_fixture,
    str_field,
};
use crate::helpers::spawn_app_with;

const TTL_SECS: u64 = 1;
const MINUTE_NANOS: u64 = 60_000_000_000;
/// After a minute ends the engine may wait for late halves (the pairing TTL) and for its next
/// rollup tick before it writes that minute.
const ROLLUP_GRACE: Duration = Duration::from_secs(8);
/// Fixture spans end a few milliseconds after they are posted; stay this far from a boundary.
const BOUNDARY_MARGIN_NANOS: u64 = 5_000_000_000;

fn on_disk(data_dir: &Path) -> Config {
    let mut config = graph_config(TTL_SECS);
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    config
}

async fn sleep_until_unix_nanos(deadline: u64) {
    let now = now_nanos();
    if deadline > now {
        tokio::time::sleep(Duration::from_nanos(deadline - now)).await;
    }
}

/// Nodes and edges in a fixed order, so two answers compare whole.
/// Rates are left out: over a range whose last minute is in progress they divide by the
/// seconds elapsed so far, which move on between two reads.
fn comparable(graph: &Value) -> Value {
    let sorted = |field: &str, key: &dyn Fn(&Value) -> String| {
        let mut items = graph[field].as_array().expect(field).clone();
        items.sort_by_key(|item| key(item));
        for item in &mut items {
            if let Some(fields) = item.as_object_mut() {
                fields.remove("rate_per_s");
            }
        }
        items
    };
    json!({
        "nodes": sorted("nodes", &|node| str_field(node, "id").to_owned()),
        "edges": sorted("edges", &|e| format!(
            "{} {} {}",
            str_field(e, "source"),
            str_field(e, "target"),
            str_field(e, "kind")
        )),
    })
}

/// Waits for a real minute to close, so this test takes up to about 70 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_minute_reads_the_same_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_with(on_disk(dir.path())).await;
    // Post well inside one minute, whichever clock (span times or arrival) the engine uses.
    if now_nanos() % MINUTE_NANOS > MINUTE_NANOS - BOUNDARY_MARGIN_NANOS {
        sleep_until_unix_nanos((now_nanos() / MINUTE_NANOS + 1) * MINUTE_NANOS + 1_000_000_000)
            .await;
    }
    let minute_start = now_nanos() / MINUTE_NANOS * MINUTE_NANOS;
    post_fixture(&app, "http_pair").await;
    post_fixture(&app, "kafka_by_parent").await;

    // Wait for that minute to close and be rolled up; the range spans the minutes on both sides.
    let minute_end = minute_start + MINUTE_NANOS;
    sleep_until_unix_nanos(minute_end).await;
    tokio::time::sleep(ROLLUP_GRACE).await;
    let range = format!("from={}&to={minute_end}", minute_start - MINUTE_NANOS);
    let expected = http_pair_graph().and(kafka_graph());
    let live = assert_graph_settles(&app, &range, &expected, Duration::ZERO).await;
    app.shutdown().await;

    let app = spawn_app_with(on_disk(dir.path())).await;
    let restored = graph(&app, &range).await;
    assert_eq!(
        comparable(&restored),
        comparable(&live),
        "/api/v1/graph?{range} after the restart (left) differs from before it (right)"
    );
    app.shutdown().await;
}

/// The minute still open at a graceful shutdown is not lost either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_minute_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_with(on_disk(dir.path())).await;
    let from = now_nanos() / MINUTE_NANOS * MINUTE_NANOS - MINUTE_NANOS;
    post_fixture(&app, "http_pair").await;
    let expected = http_pair_graph();
    assert_graph_settles(&app, "window=5m", &expected, Duration::ZERO).await;
    // Fixture spans end up to 220 ms after they were posted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let range = format!("from={from}&to={}", now_nanos());
    let live = assert_graph_settles(&app, &range, &expected, Duration::ZERO).await;
    app.shutdown().await;

    let app = spawn_app_with(on_disk(dir.path())).await;
    let restored = graph(&app, &range).await;
    assert_eq!(
        comparable(&restored),
        comparable(&live),
        "/api/v1/graph?{range} after the restart (left) differs from before it (right)"
    );
    app.shutdown().await;
}
