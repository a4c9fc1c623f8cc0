//! Drill-downs and search that forgives, in headless Chromium over a seeded shop: the edge page
//! splits an edge by operation and status code with the right counts, the topic → consumer
//! edge shows publish → consume latency as the API does, the service page links to its map
//! focus, its traces and each operation's traces with the range kept, the trace search takes
//! errors as a checkbox and sorts by duration, and the navigation's trace-id box opens a
//! trace, explains an id that is not one, and says where an unknown one may be.

use std::time::{Duration, Instant};

use cartograph::web::format::millis_text;
use serde_json::{Value, json};

use crate::dashboards::browse;
use crate::fixtures::now_nanos;
use crate::graph_support::{graph, post_request, spawn_graph_app};
use crate::helpers::TestApp;

const MILLI: u64 = 1_000_000;
/// Failing orders (gateway → orders answered 503) and good ones (200).
const FAILING: [u8; 3] = [0x11, 0x12, 0x13];
const GOOD: [u8; 2] = [0x21, 0x22];

fn text(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn int(key: &str, value: i64) -> Value {
    json!({ "key": key, "value": { "intValue": value.to_string() } })
}

/// One span of trace `trace` (every byte the same), `id` likewise, `start_ms` after `base`.
#[allow(clippy::too_many_arguments)]
fn span(
    base: u64,
    trace: u8,
    (id, parent): (u8, Option<u8>),
    kind: i32,
    name: &str,
    (start_ms, millis): (u64, u64),
    attributes: Vec<Value>,
    is_error: bool,
) -> Value {
    let start = base + start_ms * MILLI;
    json!({
        "traceId": hex::encode([trace; 16]),
        "spanId": hex::encode([id; 8]),
        "parentSpanId": parent.map(|parent| hex::encode([parent; 8])).unwrap_or_default(),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + millis * MILLI).to_string(),
        "attributes": attributes,
        "status": { "code": if is_error { 2 } else { 0 } },
    })
}

fn request(service: &str, spans: Vec<Value>) -> Value {
    json!({ "resourceSpans": [{
        "resource": { "attributes": [text("service.name", service)] },
        "scopeSpans": [{ "spans": spans }],
    }] })
}

/// Three failing orders (110, 120, 130 ms; orders reads stock and publishes orders.created,
/// which notifications consumes 40 ms later) and two good ones.
async fn seed(app: &TestApp) {
    let base = now_nanos() - 20_000_000_000;
    let messaging = || {
        vec![
            text("messaging.system", "kafka"),
            text("messaging.destination.name", "orders.created"),
        ]
    };
    let (mut gateway, mut orders, mut notifications) = (Vec::new(), Vec::new(), Vec::new());
    for (no, trace) in (1..).zip(FAILING) {
        let method = |method: &str| text("http.request.method", method);
        gateway.push(span(
            base,
            trace,
            (1, None),
            2,
            "POST /api/orders",
            (0, 100 + 10 * no),
            vec![method("POST")],
            false,
        ));
        gateway.push(span(
            base,
            trace,
            (2, Some(1)),
            3,
            "POST",
            (5, 80),
            vec![
                method("POST"),
                text("peer.service", "orders"),
                int("http.response.status_code", 503),
            ],
            true,
        ));
        orders.push(span(
            base,
            trace,
            (3, Some(2)),
            2,
            "POST /orders",
            (10, 70),
            vec![method("POST")],
            true,
        ));
        orders.push(span(
            base,
            trace,
            (4, Some(3)),
            3,
            "SELECT stock",
            (12, 8),
            vec![
                text("db.system.name", "postgresql"),
                text("server.address", "stock-db"),
                text("db.query.text", "SELECT * FROM stock WHERE id = $1"),
            ],
            false,
        ));
        orders.push(span(
            base,
            trace,
            (5, Some(3)),
            4,
            "send orders.created",
            (20, 2),
            messaging(),
            false,
        ));
        notifications.push(span(
            base,
            trace,
            (6, Some(5)),
            5,
            "process orders.created",
            (62, 8),
            messaging(),
            false,
        ));
    }
    for trace in GOOD {
        let method = || text("http.request.method", "GET");
        gateway.push(span(
            base,
            trace,
            (1, None),
            2,
            "GET /api/orders",
            (0, 50),
            vec![method()],
            false,
        ));
        gateway.push(span(
            base,
            trace,
            (2, Some(1)),
            3,
            "GET",
            (5, 40),
            vec![
                method(),
                text("peer.service", "orders"),
                int("http.response.status_code", 200),
            ],
            false,
        ));
        orders.push(span(
            base,
            trace,
            (3, Some(2)),
            2,
            "GET /orders",
            (10, 30),
            vec![method()],
            false,
        ));
    }
    for (service, spans) in [
        ("gateway", gateway),
        ("orders", orders),
        ("notifications", notifications),
    ] {
        post_request(app, &request(service, spans)).await;
    }
    app.wait_until_stored().await;
}

/// The graph once the gateway → orders calls and the consumed messages are counted.
async fn settled_graph(app: &TestApp) -> Value {
    let started = Instant::now();
    loop {
        let graph = graph(app, "window=15m").await;
        let edges = graph["edges"].as_array().cloned().unwrap_or_default();
        let find = |source: &str, target: &str| {
            edges
                .iter()
                .find(|edge| edge["source"] == source && edge["target"] == target)
                .cloned()
        };
        let calls = find("service:gateway", "service:orders").map(|edge| edge["requests"].clone());
        let consumed = find("topic:kafka orders.created", "service:notifications");
        if calls == Some(json!(5))
            && consumed.is_some_and(|edge| edge["publish_consume_p95_ms"].is_number())
        {
            return graph;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the graph never settled: {graph:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(text, href)` of the cells of the table titled `title` (its start) on a page's report.
pub fn table<'a>(tables: &'a Value, title: &str) -> Vec<Vec<(&'a str, Option<&'a str>)>> {
    let found = tables
        .as_array()
        .into_iter()
        .flatten()
        .find(|table| {
            table["title"]
                .as_str()
                .is_some_and(|t| t.starts_with(title))
        })
        .unwrap_or_else(|| panic!("no table {title:?}: {tables:#}"));
    found["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|cell| (cell["text"].as_str().unwrap_or(""), cell["href"].as_str()))
                .collect()
        })
        .collect()
}

fn texts_shown(entry: &Value) {
    for (text, found) in entry["texts"].as_object().into_iter().flatten() {
        assert_eq!(found, true, "{text:?} not shown: {entry:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_split_by_operation_and_status_and_pages_link_to_the_traces_behind_them() {
    let app = spawn_graph_app(1).await;
    seed(&app).await;
    let graph = settled_graph(&app).await;
    let pages = json!([
        { "name": "drill-edge-split", "path": "/edges/service%3Agateway/service%3Aorders?window=15m", "tables": true,
          "click_path": ["table a:text-is('POST /orders')"] },
        { "name": "drill-edge-db", "path": "/edges/service%3Aorders/database%3Apostgresql%20stock-db?window=15m", "tables": true },
        { "name": "drill-edge-topic", "path": "/edges/topic%3Akafka%20orders.created/service%3Anotifications?window=15m", "figures": true, "tables": true },
        { "name": "drill-service-map", "path": "/services/orders?window=15m", "click_path": ["p.related a:text-is('On the map')"] },
        { "name": "drill-service-traces", "path": "/services/orders?window=15m", "click_path": ["p.related a:text-is('Traces')"] },
        { "name": "drill-operation-traces", "path": "/services/orders?window=15m", "click_path": ["table a:text-is('POST /orders')"] },
    ]);
    let report = Value::Array(browse(&app, &pages).await);
    for entry in report.as_array().into_iter().flatten() {
        assert_eq!(entry["status"], 200, "{entry:#}");
        assert_eq!(entry["console_errors"], json!([]), "{entry:#}");
        assert_eq!(entry["failed_requests"], json!([]), "{entry:#}");
    }

    // gateway → orders: one row per caller operation, callee operation and status code.
    let split = table(&report[0]["tables"], "By operation and status");
    let cells: Vec<Vec<&str>> = split
        .iter()
        .map(|row| row[..5].iter().map(|(text, _)| *text).collect())
        .collect();
    assert_eq!(
        cells,
        [
            ["POST /api/orders", "POST /orders", "HTTP 503", "3", "3"],
            ["GET /api/orders", "GET /orders", "HTTP 200", "2", "0"],
        ],
        "{report:#}"
    );
    assert_eq!(
        split[0][1].1,
        Some("/traces?service=orders&operation=POST%20%2Forders&window=15m"),
        "an operation links to its traces, the range kept"
    );
    assert_eq!(
        split[0][0].1,
        Some("/traces?service=gateway&operation=POST%20%2Fapi%2Forders&window=15m")
    );
    let step = &report[0]["click_path"][0];
    assert_eq!(step["path"], "/traces", "{step}");
    assert_eq!(step["heading"], "3 traces, newest first", "{step}");
    assert_eq!(step["picked"], "last 15m", "{step}");

    // A database edge splits by statement.
    let statements = table(&report[1]["tables"], "By operation and status");
    assert_eq!(statements.len(), 1, "{report:#}");
    assert_eq!(statements[0][1].0, "SELECT * FROM stock WHERE id = $1");
    assert_eq!(statements[0][3].0, "3");

    // topic → notifications: publish → consume latency, printed as the API's.
    let consumed = graph["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|edge| edge["source"] == "topic:kafka orders.created")
        .expect("topic edge");
    let subject = "topic:kafka orders.created -> service:notifications (messaging)";
    let printed = |figure: &str| {
        report[2]["figures"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|mark| mark["figure"] == figure && mark["subject"] == subject)
            .and_then(|mark| mark["text"].as_str())
            .unwrap_or_else(|| panic!("no {figure} on the topic edge page: {:#}", report[2]))
            .to_owned()
    };
    let p95_ms = consumed["publish_consume_p95_ms"].as_f64().expect("p95");
    assert_eq!(printed("publish-consume-p95"), millis_text(p95_ms * 1e6));
    assert!(
        (35.0..=45.0).contains(&p95_ms),
        "40 ms from publish to consume: {p95_ms}"
    );
    let consumers = table(&report[2]["tables"], "By operation and status");
    assert_eq!(consumers[0][1].0, "process orders.created");
    assert_eq!(consumers[0][3].0, "3");
    // Its traces, found from the consumer's side (the topic reports nothing), link to theirs.
    let crossing = table(
        &report[2]["tables"],
        "Traces through kafka orders.created → notifications",
    );
    assert_eq!(crossing.len(), 3, "{:#}", report[2]["tables"]);
    assert!(
        crossing
            .iter()
            .all(|row| row[0].1.is_some_and(|href| href.starts_with("/traces/"))),
        "{crossing:?}"
    );

    // The service page: its map focus, its traces and an operation's, the range kept.
    let map = &report[3]["click_path"][0];
    assert_eq!(map["path"], "/", "{map}");
    let search = map["search"].as_str().unwrap_or("");
    assert!(
        search.contains("focus=service%3Aorders") && search.contains("window=15m"),
        "{map}"
    );
    let traces = &report[4]["click_path"][0];
    assert_eq!(traces["path"], "/traces", "{traces}");
    assert_eq!(traces["search"], "?service=orders&window=15m", "{traces}");
    assert_eq!(traces["heading"], "5 traces, newest first", "{traces}");
    assert_eq!(traces["picked"], "last 15m", "{traces}");
    let operation = &report[5]["click_path"][0];
    assert_eq!(
        operation["search"], "?service=orders&operation=POST%20%2Forders&window=15m",
        "{operation}"
    );
    assert_eq!(
        operation["heading"], "3 traces, newest first",
        "{operation}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_search_forgives_and_the_trace_id_box_opens_a_trace_or_says_why_not() {
    let app = spawn_graph_app(1).await;
    seed(&app).await;
    let failing = hex::encode([FAILING[0]; 16]);
    let trace_box = "header form.trace-open input[name=id]";
    let open = "header form.trace-open button";
    let pages = json!([
        { "name": "drill-search-sorted", "path": "/traces?service=gateway&window=15m", "tables": true,
          "check": ["input[name=error]"], "select": { "select[name=sort]": "duration" }, "fill": {},
          "submit": "button:text-is('Search')" },
        { "name": "drill-search-yes", "path": "/traces?service=gateway&error=yes&window=15m", "texts": ["3 traces, newest first"] },
        { "name": "drill-search-maybe", "path": "/traces?service=gateway&error=maybe", "texts": ["tick the box", "Errors only"] },
        { "name": "drill-trace-open", "path": "/services?window=15m", "fill": { (trace_box): format!("  {}\n", failing.to_uppercase()) },
          "submit": open, "after_texts": ["POST /api/orders", "process orders.created"] },
        { "name": "drill-trace-invalid", "path": "/services", "fill": { (trace_box): "<b>not-a-trace</b>" },
          "submit": open, "after_texts": ["is not a trace id", "32 hexadecimal digits"] },
        { "name": "drill-trace-unknown", "path": "/services", "fill": { (trace_box): "ab".repeat(16) },
          "submit": open, "after_texts": ["not arrived yet", "last 24h"] },
    ]);
    let report = Value::Array(browse(&app, &pages).await);
    for entry in report.as_array().into_iter().flatten() {
        assert_eq!(entry["dialogs"], json!([]), "{entry:#}");
        assert_eq!(entry["injected_images"], 0, "{entry:#}");
        texts_shown(entry);
        for (text, found) in entry["after_submit"]["texts"]
            .as_object()
            .into_iter()
            .flatten()
        {
            assert_eq!(
                found, true,
                "{text:?} not shown after submitting: {entry:#}"
            );
        }
    }

    // Errors ticked, sorted by duration: the failing traces, slowest first, the sort and
    // the range kept; durations say whose they are.
    let sorted = &report[0]["after_submit"];
    let search = sorted["search"].as_str().unwrap_or("");
    for part in [
        "service=gateway",
        "error=true",
        "sort=duration",
        "window=15m",
    ] {
        assert!(search.contains(part), "{part} not in {search}");
    }
    let tables = &sorted["tables"];
    let rows = table(tables, "3 traces, slowest first");
    let ids: Vec<&str> = rows.iter().map(|row| row[0].0).collect();
    let id = |byte: u8| hex::encode([byte; 8]);
    assert_eq!(ids, [id(0x13), id(0x12), id(0x11)], "{tables:#}");
    let head: Vec<&str> = tables[0]["head"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|th| th["text"].as_str())
        .collect();
    assert_eq!(
        head,
        [
            "Trace",
            "Root",
            "Start",
            "Trace duration",
            "Matched span",
            "Spans",
            "Errors"
        ]
    );
    assert_eq!(rows[0][3].0, millis_text(130.0 * 1e6), "the whole trace");
    assert_eq!(
        rows[0][4].0,
        millis_text(80.0 * 1e6),
        "the matching client span"
    );
    let sort_link = tables[0]["head"][4]["href"].as_str().unwrap_or("");
    for part in ["sort=span", "error=true", "window=15m", "service=gateway"] {
        assert!(sort_link.contains(part), "{part} not in {sort_link}");
    }
    // "yes" is a ticked box, not an error page; what cannot be read is said above the form.
    assert_eq!(report[1]["status"], 200, "{:#}", report[1]);
    assert_eq!(report[2]["status"], 400, "{:#}", report[2]);

    // The trace-id box: a pasted id (spaces, upper case) opens the trace.
    let opened = &report[3]["after_submit"];
    assert_eq!(opened["path"], format!("/traces/{failing}"), "{opened:#}");
    assert_eq!(opened["status"], 200, "{opened:#}");
    let invalid = &report[4]["after_submit"];
    assert_eq!(invalid["status"], 400, "{invalid:#}");
    let unknown = &report[5]["after_submit"];
    assert_eq!(unknown["status"], 404, "{unknown:#}");
    assert_eq!(unknown["path"], format!("/traces/{}", "ab".repeat(16)));
    app.shutdown().await;
}
