//! Every dashboard page in headless Chromium (Debian's, driven by playwright-core from
//! `tests/browser/pages.cjs`), against a Cartograph seeded with a small shop whose names and
//! attributes are hostile: each page answers 200, logs no console error, fails no request,
//! shows its data, executes nothing it was sent; the map has one SVG element per node and edge,
//! the focus control narrows it, and a click opens a node's page. Screenshots land in
//! `$CARGO_TARGET_TMPDIR/screenshots`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};

use crate::fixtures::{encode, now_nanos, string_attr, trace_request, well_inside_a_minute};
use crate::graph_support::spawn_graph_app;
use crate::helpers::TestApp;

const HOSTILE_SERVICE: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_VALUE: &str = "</script><script>alert(2)</script> \"quoted\" 'single' \u{7}bell";
const TRACE_ID: [u8; 16] = [0xab; 16];

fn span(
    trace: [u8; 16],
    id: u8,
    parent: Option<u8>,
    kind: i32,
    name: &str,
    extra: Vec<(&str, &str)>,
) -> Span {
    let end = now_nanos();
    let mut attributes = vec![string_attr("http.request.method", "GET")];
    attributes.extend(
        extra
            .into_iter()
            .map(|(key, value)| string_attr(key, value)),
    );
    Span {
        trace_id: trace.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.to_owned(),
        kind,
        start_time_unix_nano: end - 20_000_000 + u64::from(id) * 1_000_000,
        end_time_unix_nano: end - u64::from(id) * 1_000_000,
        attributes,
        ..Span::default()
    }
}

async fn post(app: &TestApp, service: &str, spans: Vec<Span>) {
    let response = app
        .post_otlp(
            "/v1/traces",
            &[("content-type", "application/x-protobuf")],
            encode(&trace_request(Some(service), spans)),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
}

async fn seed(app: &TestApp) {
    // orders (root) → payments, with a correlation id and a hostile attribute value.
    post(
        app,
        "orders",
        vec![
            span(
                TRACE_ID,
                1,
                None,
                2,
                "POST /orders",
                vec![("x-correlation-id", "corr-42"), ("note", HOSTILE_VALUE)],
            ),
            span(
                TRACE_ID,
                2,
                Some(1),
                3,
                "POST",
                vec![("peer.service", "payments")],
            ),
        ],
    )
    .await;
    post(
        app,
        "payments",
        vec![span(TRACE_ID, 3, Some(2), 2, "POST /pay", vec![])],
    )
    .await;
    // A service with a hostile name calls orders.
    let other = [0xcd; 16];
    post(
        app,
        HOSTILE_SERVICE,
        vec![
            span(other, 1, None, 2, "GET /", vec![]),
            span(other, 2, Some(1), 3, "GET", vec![]),
        ],
    )
    .await;
    post(
        app,
        "orders",
        vec![span(other, 3, Some(2), 2, "GET /orders", vec![])],
    )
    .await;
    // An open resilience4j breaker in orders guarding payments.
    let metrics = json!({ "resourceMetrics": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "orders" } }] },
        "scopeMetrics": [{ "metrics": [{ "name": "resilience4j.circuitbreaker.state", "gauge": { "dataPoints": [
            { "timeUnixNano": now_nanos().to_string(), "asInt": "1", "attributes": [
                { "key": "name", "value": { "stringValue": "payments" } },
                { "key": "state", "value": { "stringValue": "open" } } ] } ] } }] }] }] });
    let response = app
        .post_otlp(
            "/v1/metrics",
            &[("content-type", "application/json")],
            serde_json::to_vec(&metrics).expect("json"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    app.wait_until_stored().await;
}

async fn wait_for_edges(app: &TestApp, count: usize) -> Value {
    let started = Instant::now();
    loop {
        let (_, graph) = app.get_json("/api/v1/graph?window=15m").await;
        if graph["edges"].as_array().map_or(0, Vec::len) >= count {
            return graph;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "graph never filled: {graph:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn node_modules() -> PathBuf {
    std::env::var_os("CARTOGRAPH_TEST_NODE_MODULES").map_or_else(
        || {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/cartograph/node/node_modules")
        },
        PathBuf::from,
    )
}

/// Runs the browser over `pages` and returns its report, one entry per page.
pub async fn browse(app: &TestApp, pages: &Value) -> Vec<Value> {
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is not installed in {}: run the test command (scripts/test.sh), which installs it and Chromium",
        modules.display()
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/pages.cjs");
    let mut command = std::process::Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(script)
        .arg(&app.ui)
        .arg(&shots)
        .arg(pages.to_string());
    let run = tokio::task::spawn_blocking(move || command.output());
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("browser run finished in time")
        .expect("join")
        .expect("node runs");
    assert!(
        output.status.success(),
        "browser run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("browser report is JSON")
}

fn ids(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_in_chromium_with_its_data_and_executes_nothing_hostile() {
    let app = spawn_graph_app(1).await;
    seed(&app).await;
    let graph = wait_for_edges(&app, 4).await;
    let trace_id = hex::encode(TRACE_ID);
    let hostile_path = format!("/services/{}", url_encode(HOSTILE_SERVICE));
    let hour_ago = (now_nanos() / 1_000_000_000) as i64 - 3600;
    let pages = json!([
        { "name": "map", "path": "/?window=15m", "map": true, "texts": ["orders", "payments", HOSTILE_SERVICE], "click_first_node": "service:orders" },
        { "name": "map-focus", "path": "/?window=15m&focus=service%3Apayments&depth=1", "map": true, "texts": ["payments"] },
        { "name": "map-past", "path": format!("/?window=15m&from={}&to={}", rfc3339(hour_ago), rfc3339(hour_ago + 600)), "map": true, "texts": ["No calls yet"] },
        { "name": "services", "path": "/services?sort=errors", "texts": ["orders", "payments", HOSTILE_SERVICE] },
        { "name": "service", "path": "/services/orders", "texts": ["Service orders", "Callers", "Callees", "payments", "open"], "full_page": true },
        { "name": "service-hostile", "path": hostile_path, "texts": [format!("Service {HOSTILE_SERVICE}")] },
        { "name": "edge", "path": "/edges/service%3Aorders/service%3Apayments", "texts": ["orders → payments", "breaker payments"] },
        { "name": "traces", "path": "/traces?service=orders&attr=x-correlation-id%3Dcorr-42&from=", "texts": ["1 traces", "orders POST /orders", "Search"] },
        { "name": "trace", "path": format!("/traces/{trace_id}"), "texts": ["POST /orders", "POST /pay", "</script><script>alert(2)</script>"] },
        { "name": "kafka", "path": "/kafka", "texts": ["Kafka consumer lag"] },
        { "name": "breakers", "path": "/breakers", "texts": ["payments", "open"] },
        { "name": "insights", "path": "/insights", "texts": ["Cycles", "Single points of failure", "No edge or service departs from its baseline"] },
        { "name": "not-found", "path": "/no/such/page", "texts": ["Not found"] },
    ]);
    let report = browse(&app, &pages).await;
    assert_eq!(report.len(), pages.as_array().map_or(0, Vec::len));
    for entry in &report {
        let name = entry["name"].as_str().unwrap_or_default();
        let expected_status = if name == "not-found" { 404 } else { 200 };
        assert_eq!(entry["status"], expected_status, "{entry:#}");
        if name != "not-found" {
            assert_eq!(entry["console_errors"], json!([]), "{entry:#}");
            assert_eq!(entry["failed_requests"], json!([]), "{entry:#}");
        }
        assert_eq!(
            entry["dialogs"],
            json!([]),
            "a dialog opened: hostile data executed: {entry:#}"
        );
        assert_eq!(
            entry["injected_images"], 0,
            "hostile markup became an element: {entry:#}"
        );
        for (text, found) in entry["texts"].as_object().into_iter().flatten() {
            assert_eq!(found, true, "{name}: {text:?} not shown: {entry:#}");
        }
    }

    let map = &report[0]["map"];
    let shown: BTreeSet<String> = map["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(shown, ids(&graph["nodes"], "id"), "one g.node per node");
    assert_eq!(
        map["edges"].as_array().map(Vec::len),
        graph["edges"].as_array().map(Vec::len),
        "one g.edge per edge"
    );
    assert!(
        map["edge_labels"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|label| label
                .as_str()
                .is_some_and(|l| l.contains("/s") && !l.contains("/min"))),
        "{map:#}"
    );
    assert_eq!(report[0]["after_click"], "/services/orders");
    let past = report
        .iter()
        .find(|entry| entry["name"] == "map-past")
        .expect("past map");
    assert_eq!(
        past["map"]["nodes"],
        json!([]),
        "a past range without data shows no node: {past:#}"
    );
    let focused = report[1]["map"]["nodes"].as_array().map_or(0, Vec::len);
    assert!(
        focused < shown.len() && focused >= 2,
        "focus narrows the map: {focused} of {}",
        shown.len()
    );
    app.shutdown().await;
}

fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// One time range across the UI: pages open on the last 5 minutes, the picker shows what the
/// URL says (1m among the choices, a custom range as such), a page with nothing in its range
/// offers longer ones, Focus takes a plain service name, and the range survives a click path map → service → edge → map
/// through map nodes, table links and the navigation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_range_follows_every_click_and_the_picker_shows_it() {
    let app = spawn_graph_app(1).await;
    // "Last 1m" is the minute in progress: seed and browse inside one minute.
    well_inside_a_minute().await;
    seed(&app).await;
    wait_for_edges(&app, 3).await;
    let pages = json!([
        { "name": "range-default", "path": "/services", "picked": true },
        { "name": "range-1m", "path": "/services/orders?window=1m", "picked": true },
        { "name": "range-custom", "path": format!("/kafka?from={}&to={}", rfc3339(1_796_000_000), rfc3339(1_796_000_600)), "picked": true },
        { "name": "range-widen", "path": "/services/nobody?window=1m", "click_path": ["p.widen a:text-is('last 24h')"] },
        { "name": "focus-plain", "path": "/?focus=payments&depth=1", "map": true },
        { "name": "edge-traces", "path": "/edges/service%3Aorders/service%3Apayments?window=15m", "texts": ["failed first, then the slowest", "abababababababab"] },
        { "name": "range-path", "path": "/?window=1h", "picked": true, "click_path": [
            "svg.map g.node[data-id='service:orders']",
            "table a[href^='/edges/']",
            "header nav a:text-is('Map')",
        ] },
    ]);
    let report = Value::Array(browse(&app, &pages).await);
    let picked = |index: usize| report[index]["picked"].as_str().map(str::to_owned);
    assert_eq!(picked(0).as_deref(), Some("last 5m"), "{report:#}");
    assert_eq!(picked(1).as_deref(), Some("last 1m"), "{report:#}");
    assert_eq!(picked(2).as_deref(), Some("custom range"), "{report:#}");
    // Nothing in the range: the page offers longer ones, and the link keeps to the page.
    assert_eq!(report[3]["status"], 404, "{report:#}");
    let widened = &report[3]["click_path"][0];
    assert_eq!(widened["path"], "/services/nobody", "{report:#}");
    assert_eq!(widened["search"], "?window=24h", "{report:#}");
    // A plain service name in Focus is that service.
    assert_eq!(report[4]["status"], 200, "{report:#}");
    let focused = &report[4]["map"]["nodes"];
    assert!(
        focused
            .as_array()
            .is_some_and(|nodes| nodes.contains(&json!("service:payments"))),
        "{report:#}"
    );
    // The edge page lists the traces that cross it.
    for (text, found) in report[5]["texts"].as_object().into_iter().flatten() {
        assert_eq!(found, true, "{text:?} not on the edge page: {report:#}");
    }
    assert_eq!(picked(6).as_deref(), Some("last 1h"), "{report:#}");
    let path = report[6]["click_path"].as_array().expect("click path");
    let paths: Vec<&str> = path
        .iter()
        .map(|step| step["path"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(paths[0], "/services/orders", "{report:#}");
    assert!(paths[1].starts_with("/edges/"), "{report:#}");
    assert_eq!(paths[2], "/", "{report:#}");
    for step in path {
        assert!(
            step["search"].as_str().unwrap_or("").contains("window=1h"),
            "{step}"
        );
        assert_eq!(step["picked"], "last 1h", "{step}");
    }
    app.shutdown().await;
}
