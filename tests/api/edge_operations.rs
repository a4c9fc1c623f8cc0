//! The edge page's calls by operation pair come from that edge's rollups alone (the map around
//! it is read without anyone's splits): minutes written to the store before a restart and
//! minutes in memory after it add up per pair, calls that left no span at the callee are named
//! so, and another edge's pairs never show.

use cartograph::config::{Config, StoreKind};
use cartograph::web::format::rate_of;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

use crate::dashboards::browse;
use crate::dashboards_drill::table;
use crate::fixtures::{encode, now_nanos, span, string_attr, trace_request};
use crate::graph_support::graph_config;
use crate::helpers::{TestApp, spawn_app_with};

const MINUTE_NANOS: u64 = 60_000_000_000;
const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

fn on_disk(data_dir: &std::path::Path) -> Config {
    let mut config = graph_config(1);
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    config
}

/// `calls` calls from `caller`'s operation `caller_op` to `callee`'s `callee_op`, started 10 s
/// into `minute`: the caller's server span, its client span, the callee's server span (none
/// when `callee_op` is empty: a call that never reached the callee).
async fn post_calls(
    app: &TestApp,
    (caller, caller_op): (&str, &str),
    (callee, callee_op): (&str, &str),
    minute: u64,
    calls: u8,
) {
    let (mut caller_spans, mut callee_spans) = (Vec::new(), Vec::new());
    for call in 0..calls {
        let unique = std::hash::BuildHasher::hash_one(
            &std::hash::RandomState::new(),
            (caller_op, callee_op, minute, call),
        );
        let trace = [unique.to_le_bytes(), unique.to_be_bytes()].concat();
        let start = minute * MINUTE_NANOS + 10_000_000_000 + u64::from(call) * 1_000_000;
        let at = |id: u8, parent: Option<u8>, kind: i32, name: &str| Span {
            trace_id: trace.clone(),
            span_id: vec![id; 8],
            parent_span_id: parent.map(|parent| vec![parent; 8]).unwrap_or_default(),
            kind,
            start_time_unix_nano: start + u64::from(id) * 100_000,
            end_time_unix_nano: start + 5_000_000 - u64::from(id) * 100_000,
            ..span(id, name)
        };
        caller_spans.push(at(1, None, 2, caller_op));
        let mut client = at(2, Some(1), 3, "POST");
        client.attributes.push(string_attr("peer.service", callee));
        caller_spans.push(client);
        if !callee_op.is_empty() {
            callee_spans.push(at(3, Some(2), 2, callee_op));
        }
    }
    for (service, spans) in [(caller, caller_spans), (callee, callee_spans)] {
        let body = encode(&trace_request(Some(service), spans));
        let response = app.post_otlp("/v1/traces", &[PROTOBUF], body).await;
        assert_eq!(response.status(), 200);
    }
}

async fn wait_for_requests(app: &TestApp, range: &str, expected: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, graph) = app.get_json(&format!("/api/v1/graph?{range}")).await;
        assert_eq!(status, 200, "{graph}");
        let requests: u64 = graph["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|edge| {
                edge["source"] == "service:orders" && edge["target"] == "service:payments"
            })
            .filter_map(|edge| edge["requests"].as_u64())
            .sum();
        if requests >= expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{requests} of {expected} calls: {graph}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_page_sums_its_own_operation_pairs_from_the_store_and_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now_minute = now_nanos() / MINUTE_NANOS;
    let (stored, live) = (now_minute - 3, now_minute - 2);
    let range = format!(
        "from={}&to={}",
        stored * MINUTE_NANOS,
        (live + 1) * MINUTE_NANOS
    );
    let orders = |operation| ("orders", operation);
    let payments = |operation| ("payments", operation);

    // Written to the store by one run...
    let app = spawn_app_with(on_disk(dir.path())).await;
    post_calls(
        &app,
        orders("POST /orders"),
        payments("POST /pay"),
        stored,
        3,
    )
    .await;
    post_calls(
        &app,
        orders("GET /orders"),
        payments("GET /status"),
        stored,
        2,
    )
    .await;
    post_calls(
        &app,
        orders("POST /orders"),
        ("stock", "PUT /reserve"),
        stored,
        4,
    )
    .await;
    wait_for_requests(&app, &range, 5).await;
    app.shutdown().await;

    // ...and held in memory by the next, one pair in both.
    let app = spawn_app_with(on_disk(dir.path())).await;
    post_calls(&app, orders("POST /orders"), payments("POST /pay"), live, 4).await;
    post_calls(
        &app,
        orders("DELETE /orders"),
        payments("POST /refund"),
        live,
        1,
    )
    .await;
    // One that never reached payments (counted once its pairing wait is over).
    post_calls(&app, orders("POST /orders"), payments(""), live, 1).await;
    wait_for_requests(&app, &range, 11).await;

    let path = format!("/edges/service%3Aorders/service%3Apayments?{range}");
    let pages = json!([{ "name": "edge-operations", "path": path, "tables": true }]);
    let report = browse(&app, &pages).await;
    assert_eq!(report[0]["status"], 200, "{:#}", report[0]);
    let rows: Vec<Vec<String>> = table(&report[0]["tables"], "By operation")
        .iter()
        .map(|row| {
            row[..3]
                .iter()
                .map(|(text, _)| (*text).to_owned())
                .collect()
        })
        .collect();
    let window_secs = 120.0;
    let row = |caller: &str, callee: &str, calls: u64| {
        vec![
            caller.to_owned(),
            callee.to_owned(),
            rate_of(calls, window_secs),
        ]
    };
    assert_eq!(
        rows,
        vec![
            row("POST /orders", "POST /pay", 7),
            row("GET /orders", "GET /status", 2),
            row("DELETE /orders", "POST /refund", 1),
            row(
                "POST /orders",
                "none: no span from the callee (refused or unanswered)",
                1
            ),
        ],
        "{:#}",
        report[0]["tables"]
    );
    app.shutdown().await;
}
