//! What changed on the map: ten minutes in the past where, in the second half, `orders` runs a
//! new version (1.1) that calls `fraud` (new), no longer calls `payments` (vanished) and waits
//! five times longer on its database (changed), while `gateway → orders` and
//! `orders → inventory` stay as they were. `/api/v1/graph/diff` marks exactly those three
//! edges, against explicit base times and against the deploy; `/api/v1/deploys` lists 1.1.
//! The same from the store after a restart, and on ClickHouse.

use cartograph::config::{Config, StoreKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;

use crate::fixtures::{encode, now_nanos, string_attr};
use crate::graph_support::graph_config;
use crate::helpers::{TestApp, spawn_app_with};

const MINUTE_NANOS: u64 = 60_000_000_000;
const MS: u64 = 1_000_000;
const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
/// Calls from the gateway per minute (each makes one call on every edge of orders).
const CALLS_PER_MINUTE: u64 = 30;
const MINUTES: u64 = 10;
/// The first minute of 1.1.
const DEPLOY_AT: u64 = 5;

/// The scenario's first minute: ending a quarter of an hour ago.
fn first_minute() -> u64 {
    now_nanos() / MINUTE_NANOS - MINUTES - 15
}

fn span(
    trace: u64,
    number: u64,
    parent: Option<u64>,
    name: &str,
    kind: i32,
    start: u64,
    millis: u64,
) -> Span {
    let id = |n: u64| (trace << 8 | n).to_be_bytes().to_vec();
    Span {
        trace_id: [trace.to_be_bytes(), 7u64.to_be_bytes()].concat(),
        span_id: id(number),
        parent_span_id: parent.map(id).unwrap_or_default(),
        name: name.to_owned(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + millis * MS,
        status: Some(Status::default()),
        ..Span::default()
    }
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// One call of `caller` (span `number`, under `parent`) to `callee` served by its server span
/// `number + 1`.
fn http_call(
    trace: u64,
    number: u64,
    parent: Option<u64>,
    callee: &str,
    start: u64,
    millis: u64,
) -> (Span, Span) {
    let mut client = span(trace, number, parent, "POST", CLIENT, start, millis);
    client.attributes = vec![
        string_attr("http.request.method", "POST"),
        string_attr("server.address", callee),
    ];
    let mut server = span(
        trace,
        number + 1,
        Some(number),
        &format!("POST /{callee}"),
        SERVER,
        start,
        millis - 1,
    );
    server.attributes = vec![string_attr("http.request.method", "POST")];
    (client, server)
}

/// The spans of each service (and its version) for one minute's calls.
fn minute_spans(minute_index: u64, first: u64) -> Vec<(String, Option<&'static str>, Vec<Span>)> {
    let after = minute_index >= DEPLOY_AT;
    let version = if after { "1.1" } else { "1.0" };
    let mut by_service: Vec<(String, Option<&'static str>, Vec<Span>)> = Vec::new();
    let mut add = |service: &str, version: Option<&'static str>, span: Span| match by_service
        .iter_mut()
        .find(|(name, _, _)| name == service)
    {
        Some((_, _, spans)) => spans.push(span),
        None => by_service.push((service.to_owned(), version, vec![span])),
    };
    for call in 0..CALLS_PER_MINUTE {
        let trace = (first + minute_index) * 1_000 + call + 1;
        let start = (first + minute_index) * MINUTE_NANOS + call * 1_500 * MS;
        let (client, server) = http_call(trace, 1, None, "orders", start, 60);
        add("gateway", None, client);
        add("orders", Some(version), server);
        let (client, server) = http_call(trace, 3, Some(2), "inventory", start + MS, 5);
        add("orders", Some(version), client);
        add("inventory", None, server);
        let (partner, partner_millis) = if after { ("fraud", 8) } else { ("payments", 8) };
        let (client, server) =
            http_call(trace, 5, Some(2), partner, start + 7 * MS, partner_millis);
        add("orders", Some(version), client);
        add(partner, None, server);
        let query_millis = if after { 20 } else { 4 };
        let mut query = span(
            trace,
            7,
            Some(2),
            "SELECT orders",
            CLIENT,
            start + 20 * MS,
            query_millis,
        );
        query.attributes = vec![
            string_attr("db.system", "postgresql"),
            string_attr("server.address", "shop-db"),
        ];
        add("orders", Some(version), query);
    }
    by_service
}

fn request(services: Vec<(String, Option<&'static str>, Vec<Span>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: services
            .into_iter()
            .map(|(service, version, spans)| {
                let mut attributes = vec![string_attr("service.name", &service)];
                attributes.extend(version.map(|version| string_attr("service.version", version)));
                ResourceSpans {
                    resource: Some(Resource {
                        attributes,
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    schema_url: String::new(),
                }
            })
            .collect(),
    }
}

async fn send_scenario(app: &TestApp, first: u64) {
    for minute_index in 0..MINUTES {
        let body = encode(&request(minute_spans(minute_index, first)));
        let response = app.post_otlp("/v1/traces", &[PROTOBUF], body).await;
        assert_eq!(response.status(), 200);
    }
}

fn range(first: u64, from: u64, to: u64) -> String {
    format!("{}", (first + from) * MINUTE_NANOS).to_owned()
        + "&to="
        + &format!("{}", (first + to) * MINUTE_NANOS)
}

/// `edge id → change` of a diff, every edge listed once.
fn changes(diff: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = diff["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("edges in {diff:#}"))
        .iter()
        .map(|edge| {
            let target = edge["target"].as_str().expect("target");
            let source = edge["source"].as_str().expect("source");
            (
                format!("{source} → {target}"),
                edge["change"].as_str().expect("change").to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn expected_changes() -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = [
        ("service:gateway → service:orders", "unchanged"),
        ("service:orders → service:inventory", "unchanged"),
        ("service:orders → service:payments", "vanished"),
        ("service:orders → service:fraud", "new"),
        ("service:orders → database:postgresql shop-db", "changed"),
    ]
    .into_iter()
    .map(|(edge, change)| (edge.to_owned(), change.to_owned()))
    .collect();
    expected.sort();
    expected
}

/// The diff and the deploys answer as the scenario says.
async fn assert_changes(app: &TestApp, first: u64) {
    let explicit = format!(
        "/api/v1/graph/diff?base_from={}&from={}",
        range(first, 0, DEPLOY_AT).replace("&to=", "&base_to="),
        range(first, DEPLOY_AT, MINUTES)
    );
    let by_deploy = format!(
        "/api/v1/graph/diff?deploy=orders%401.1&from={}",
        range(first, 0, MINUTES)
    );
    for path in [explicit, by_deploy] {
        let (status, diff) = app.get_json(&path).await;
        assert_eq!(status, 200, "{path}: {diff:#}");
        assert_eq!(changes(&diff), expected_changes(), "{path}: {diff:#}");
        let database = diff["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .find(|edge| edge["change"] == "changed")
            .expect("the changed edge");
        let ratio = database["delta"]["p95_ratio"].as_f64().expect("p95 ratio");
        assert!((4.0..6.0).contains(&ratio), "5x slower: {database:#}");
        let fraud = diff["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|node| node["id"] == "service:fraud")
            .expect("fraud");
        assert_eq!(fraud["change"], "new");
    }

    let (status, body) = app
        .get_json(&format!(
            "/api/v1/deploys?from={}",
            range(first, 0, MINUTES)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let deploys = body["deploys"].as_array().expect("deploys");
    assert_eq!(deploys.len(), 1, "{body:#}");
    assert_eq!(deploys[0]["service"], "orders");
    assert_eq!(deploys[0]["version"], "1.1");
    assert_eq!(deploys[0]["previous_version"], "1.0");
    let first_seen = cartograph::model::rfc3339((first + DEPLOY_AT) * MINUTE_NANOS).expect("time");
    assert_eq!(deploys[0]["first_seen"], first_seen.as_str());
    assert_eq!(deploys[0]["rolling"], false);

    let (status, graph) = app
        .get_json(&format!("/api/v1/graph?from={}", range(first, 0, MINUTES)))
        .await;
    assert_eq!(status, 200);
    let orders = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|node| node["id"] == "service:orders")
        .expect("orders");
    assert_eq!(orders["versions"], serde_json::json!(["1.0", "1.1"]));
}

/// Waits until every call of the scenario is on the map (they are late, counted on arrival).
async fn wait_counted(app: &TestApp, first: u64) {
    let path = format!("/api/v1/graph?from={}", range(first, 0, MINUTES));
    for _ in 0..100 {
        let (_, graph) = app.get_json(&path).await;
        let total: u64 = graph["edges"]
            .as_array()
            .map(|edges| {
                edges
                    .iter()
                    .filter_map(|edge| edge["requests"].as_u64())
                    .sum()
            })
            .unwrap_or(0);
        if total == 4 * CALLS_PER_MINUTE * MINUTES {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the scenario's calls never all reached the map");
}

fn on_disk(data_dir: &std::path::Path) -> Config {
    let mut config = graph_config(1);
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_adds_drops_and_slows_edges_is_what_the_diff_shows_before_and_after_restart()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_with(on_disk(dir.path())).await;
    let first = first_minute();
    send_scenario(&app, first).await;
    wait_counted(&app, first).await;
    assert_changes(&app, first).await;
    app.shutdown().await;

    let app = spawn_app_with(on_disk(dir.path())).await;
    assert_changes(&app, first).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_and_deploys_read_the_same_from_clickhouse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = crate::clickhouse::shared_config(dir.path());
    let app = spawn_app_with(config.clone()).await;
    let first = first_minute();
    send_scenario(&app, first).await;
    wait_counted(&app, first).await;
    app.shutdown().await;
    // A second instance reads it all from ClickHouse's rollups.
    let app = spawn_app_with(config).await;
    assert_changes(&app, first).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_diff_and_deploy_queries_say_what_is_wrong() {
    let app = spawn_app_with(graph_config(1)).await;
    for (query, expected) in [
        ("compare=month", "invalid compare \"month\""),
        ("deploy=orders", "expected SERVICE@VERSION"),
        ("deploy=@1.1", "expected SERVICE@VERSION"),
        ("base_from=0", "base_from and base_to go together"),
        ("compare=day&deploy=a%40b", "give one of"),
        ("base_from=x&base_to=y", "invalid base_to \"y\""),
        (
            "base_from=9&base_to=8",
            "base_from (9) must be before base_to (8)",
        ),
        ("nonsense=1", "nonsense"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/graph/diff?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{query}: {body}");
    }
    let (status, body) = app.get_json("/api/v1/graph/diff?deploy=orders%402.0").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.get_json("/api/v1/deploys?service=").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get_json("/api/v1/deploys?window=5x").await;
    assert_eq!(status, 400, "{body}");
}

/// The elements `selector` matched on the page of report `entry`, as text.
fn selected<'a>(entry: &'a Value, selector: &str) -> Vec<&'a str> {
    entry["selected"][selector]
        .as_array()
        .unwrap_or_else(|| panic!("{selector} in {entry:#}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_view_and_the_deploy_marker_read_in_chromium() {
    let app = spawn_app_with(graph_config(1)).await;
    let first = first_minute();
    send_scenario(&app, first).await;
    wait_counted(&app, first).await;
    let whole = format!("from={}", range(first, 0, MINUTES));
    let edges = [
        "svg.map g.edge.diff-new",
        "svg.map g.edge.diff-vanished",
        "svg.map g.edge.diff-changed",
    ];
    let mut map_selectors: Vec<&str> = edges.to_vec();
    map_selectors.extend([
        "#diff-note",
        "#deploys a",
        "svg.map g.node.diff-new",
        "select[name=compare] option:checked",
    ]);
    let pages = serde_json::json!([
        {
            "name": "map-diff-deploy",
            "path": format!("/?{whole}&compare=deploy%3Aorders%401.1"),
            "width": 1280, "height": 800,
            "selected": map_selectors,
        },
        {
            "name": "service-deploy-marker",
            "path": format!("/services/orders?{whole}"),
            "width": 1280, "height": 800,
            "full_page": true,
            "texts": ["Versions", "1.0", "1.1"],
            "selected": ["svg.chart .deploy-marker text", "svg.chart .deploy-marker title"],
        },
    ]);
    let report = crate::dashboards::browse(&app, &pages).await;
    let map = &report[0];
    assert_eq!(map["status"], 200, "{map:#}");
    assert_eq!(map["console_errors"], serde_json::json!([]), "{map:#}");
    let one = |selector: &str, wanted: &str| {
        let found = selected(map, selector);
        assert_eq!(found.len(), 1, "{selector}: {found:?}");
        assert!(
            found[0].contains(wanted),
            "{selector}: {found:?} lacks {wanted:?}"
        );
    };
    one("svg.map g.edge.diff-new", "orders → fraud");
    one("svg.map g.edge.diff-vanished", "orders → payments");
    one("svg.map g.edge.diff-changed", "p95 ×5");
    one("svg.map g.node.diff-new", "service:fraud");
    let note = selected(map, "#diff-note").join(" ");
    assert!(note.contains("1 new, 1 gone, 1 changed"), "{note}");
    let compare = selected(map, "select[name=compare] option:checked");
    assert_eq!(compare, ["before and after orders@1.1"]);
    let deploys = selected(map, "#deploys a");
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert!(
        deploys[0].starts_with("orders 1.0 → 1.1 at "),
        "{deploys:?}"
    );

    let service = &report[1];
    assert_eq!(service["status"], 200, "{service:#}");
    for (text, found) in service["texts"].as_object().expect("texts") {
        assert_eq!(found, true, "{text} on the service page");
    }
    let markers = selected(service, "svg.chart .deploy-marker text");
    assert_eq!(
        markers, ["orders 1.1"; 3],
        "one marker on each of the three charts"
    );
    let titles = selected(service, "svg.chart .deploy-marker title");
    assert!(titles[0].starts_with("orders 1.0 → 1.1 at "), "{titles:?}");
}
