//! The SQLite store misbehaving under a real `cartograph` process:
//!
//! - **full**: the process may not write its files any further (RLIMIT_FSIZE lowered on the
//!   running process, so every write fails with EFBIG as on a full disk); ingest keeps taking
//!   what fits in the queue, then pushes back; /health/ready and /metrics say why; once space
//!   returns, everything acknowledged is stored and the process is ready again.
//! - **slow**: another process holds SQLite's write lock for a while (a backup, a curious
//!   operator); writes wait, the queue fills, ingest pushes back, and nothing acknowledged is
//!   lost once the lock is released.
//!
//! Each ends with the process running, its memory bounded and its counters adding up.

use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;

use crate::fixtures::{encode, span, string_attr, trace_request};
use crate::process::{Options, Server, start};

const SPANS_PER_EXPORT: u32 = 100;
/// Queue room for this many exports: the rest are refused while the store cannot write.
const QUEUE_EXPORTS: u32 = 10;
const MAX_RSS_BYTES: u64 = 300 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(60);

const ACCEPTED: &str = "cartograph_accepted_items_total{signal=\"traces\"}";
const STORED: &str = "cartograph_stored_items_total{signal=\"traces\"}";
const REFUSED: &str =
    "cartograph_rejected_requests_total{signal=\"traces\",reason=\"backpressure\"}";

fn config_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("cartograph.toml");
    let queue = SPANS_PER_EXPORT * QUEUE_EXPORTS;
    std::fs::write(
        &path,
        format!(
            "[pipeline]\nqueue_capacity_items = {queue}\nwriter_batch_items = {SPANS_PER_EXPORT}\n\
             [ingest]\nretry_after_secs = 1\n"
        ),
    )
    .expect("config");
    path
}

/// Export number `export` as one trace of [`SPANS_PER_EXPORT`] spans with a 1 KiB attribute.
fn export_body(export: u32) -> Vec<u8> {
    let mut trace_id = [0xfa_u8; 16];
    trace_id[12..].copy_from_slice(&export.to_be_bytes());
    let spans: Vec<Span> = (0..SPANS_PER_EXPORT)
        .map(|index| {
            let mut span = span(1, "POST /orders");
            span.trace_id = trace_id.to_vec();
            span.span_id = [export.to_be_bytes(), (index + 1).to_be_bytes()].concat();
            span.attributes
                .push(string_attr("order.note", &"n".repeat(1024)));
            span
        })
        .collect();
    encode(&trace_request(Some("orders"), spans))
}

fn trace_id(export: u32) -> String {
    format!("{}{export:08x}", "fa".repeat(12))
}

fn set_file_size_limit(server: &Server, limit: &str) {
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &server.pid().to_string(),
            &format!("--fsize={limit}:"),
        ])
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit --fsize={limit}");
}

async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < WAIT, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends exports until one is refused (429: queue full; 503: the write-ahead log cannot
/// write); returns the acknowledged ones.
async fn send_until_refused(server: &Server, first: u32) -> Vec<u32> {
    let mut acknowledged = Vec::new();
    for export in first..first + 3 * QUEUE_EXPORTS {
        match server.post_traces(export_body(export)).await {
            200 => acknowledged.push(export),
            429 | 503 => return acknowledged,
            other => panic!("export {export}: unexpected status {other}"),
        }
    }
    panic!(
        "never pushed back after {} acknowledged exports",
        acknowledged.len()
    );
}

/// Every acknowledged export is stored whole, exactly once, and the counters agree.
async fn assert_all_stored(server: &Server, acknowledged: &[u32]) {
    wait_for("every accepted span stored", async || {
        server.metric(STORED).await >= server.metric(ACCEPTED).await
    })
    .await;
    let num_spans = f64::from(SPANS_PER_EXPORT) * acknowledged.len() as f64;
    assert_eq!(server.metric(ACCEPTED).await, num_spans);
    assert_eq!(server.metric(STORED).await, num_spans, "stored once each");
    for export in acknowledged {
        let trace: serde_json::Value = server
            .client
            .get(format!("{}/api/v1/traces/{}", server.ui, trace_id(*export)))
            .send()
            .await
            .expect("trace")
            .json()
            .await
            .expect("json");
        assert_eq!(
            trace["spans"].as_array().map(Vec::len),
            Some(SPANS_PER_EXPORT as usize),
            "acknowledged export {export} stored whole"
        );
    }
}

/// A SQLite server on `dir/data` (ignoring SIGXFSZ if asked) that has stored export 0.
async fn start_with_one_export_stored(
    dir: &std::path::Path,
    ignore_file_size_signal: bool,
) -> (Server, Vec<u32>) {
    let config = config_file(dir);
    let data = dir.join("data");
    let server = start(Options {
        data_dir: Some(&data),
        config: Some(&config),
        ignore_file_size_signal,
        ..Options::default()
    })
    .await;
    assert_eq!(server.post_traces(export_body(0)).await, 200);
    wait_for("the first export stored", async || {
        server.metric(STORED).await >= f64::from(SPANS_PER_EXPORT)
    })
    .await;
    (server, vec![0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pushes_back_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, mut acknowledged) = start_with_one_export_stored(dir.path(), true).await;

    // The disk is full: not one more byte may be written. The write-ahead log cannot take
    // an export, so none is acknowledged (503 with a retry hint) and the process says why.
    set_file_size_limit(&server, "1");
    acknowledged.extend(send_until_refused(&server, 1).await);
    assert!(acknowledged.len() <= 1, "{acknowledged:?}");
    let (status, ready) = server.ready().await;
    assert_eq!(status, 503, "{ready}");
    let failing = ready["failing"].to_string();
    assert!(failing.contains("log"), "{failing}");
    assert!(server.metric(REFUSED).await >= 1.0);
    assert!(server.is_running(), "a full disk does not stop the process");
    let rss = server.rss_bytes();
    assert!(
        rss < MAX_RSS_BYTES,
        "RSS {rss} bytes while the disk is full"
    );

    // Space again: the writer's retries succeed and everything acknowledged arrives.
    set_file_size_limit(&server, "unlimited");
    assert_all_stored(&server, &acknowledged).await;
    wait_for("ready again", async || server.ready().await.0 == 200).await;
    assert_eq!(server.post_traces(export_body(999)).await, 200);
    assert!(
        server.terminate().success(),
        "graceful stop after the fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_locked_by_another_process_pushes_back_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, mut acknowledged) = start_with_one_export_stored(dir.path(), false).await;
    let data = dir.path().join("data");

    // Another process takes SQLite's write lock and keeps it.
    let locker = rusqlite::Connection::open(data.join("cartograph.sqlite3")).expect("open");
    locker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    acknowledged.extend(send_until_refused(&server, 1).await);
    let (status, ready) = server.ready().await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready["failing"].to_string().contains("queue"), "{ready}");
    assert!(server.metric(REFUSED).await >= 1.0);
    assert!(server.is_running());
    let rss = server.rss_bytes();
    assert!(
        rss < MAX_RSS_BYTES,
        "RSS {rss} bytes while the store is locked"
    );

    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);
    assert_all_stored(&server, &acknowledged).await;
    wait_for("ready again", async || server.ready().await.0 == 200).await;
    assert!(
        server.terminate().success(),
        "graceful stop after the fault"
    );
}
