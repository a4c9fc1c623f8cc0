//! The map read on screen, in headless Chromium: the demo's shop at 1280 × 800 fits the window
//! with every label at 11 px or more, and on it and on a generated 150-node mesh no edge passes
//! through a box that is not its end and no two shown labels overlap (measured from the drawn
//! SVG: paths sampled with `getPointAtLength`, boxes from `getBoundingClientRect`).

use std::time::{Duration, Instant};

use cartograph::demo::{self, DemoSettings};
use serde_json::{Value, json};

use crate::dashboards::browse;
use crate::fixtures::now_nanos;
use crate::graph_support::{post_request, spawn_graph_app};
use crate::helpers::TestApp;

const MAP_DEADLINE: Duration = Duration::from_secs(20);

fn assert_readable(entry: &Value) {
    let geometry = &entry["geometry"];
    assert_eq!(entry["status"], 200, "{entry:#}");
    assert_eq!(
        geometry["crossings"],
        json!([]),
        "edges drawn through nodes: {geometry:#}"
    );
    assert_eq!(
        geometry["label_overlaps"],
        json!([]),
        "labels overlap: {geometry:#}"
    );
    assert_eq!(
        geometry["labels_on_nodes"],
        json!([]),
        "labels cover nodes: {geometry:#}"
    );
    assert!(
        geometry["num_labels"].as_u64().unwrap_or(0) > 0,
        "labels are shown: {geometry:#}"
    );
}

async fn wait_for_nodes(app: &TestApp, num_nodes: usize) {
    let started = Instant::now();
    loop {
        let (_, graph) = app.get_json("/api/v1/graph?window=5m").await;
        let seen = graph["nodes"].as_array().map_or(0, Vec::len);
        if seen >= num_nodes {
            return;
        }
        assert!(
            started.elapsed() < MAP_DEADLINE,
            "{seen} of {num_nodes} nodes after {MAP_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn wait_for_finding(app: &TestApp, kind: &str) {
    let started = Instant::now();
    loop {
        let (_, body) = app
            .get_json(&format!("/api/v1/insights?window=5m&kind={kind}"))
            .await;
        if body["findings"]
            .as_array()
            .is_some_and(|found| !found.is_empty())
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {kind} finding: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The audit's "on the map" link of the shared database opens the map with the database and
/// both callers' edges marked and the rest dimmed.
fn assert_the_finding_is_marked_on_the_map(entry: &Value) {
    let landed = &entry["click_path"][0];
    assert_eq!(landed["path"], "/", "{entry:#}");
    let marked = &landed["marked"];
    assert_eq!(marked["dimming"], true, "{marked:#}");
    let database = "database:postgresql orders-db:5432/orders";
    let nodes: Vec<&str> = marked["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for node in [database, "service:orders", "service:inventory"] {
        assert!(nodes.contains(&node), "{node} is marked: {marked:#}");
    }
    let edges: Vec<&str> = marked["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        edges.len(),
        2,
        "the two callers' edges and nothing else: {marked:#}"
    );
    assert!(
        edges.iter().all(|edge| edge.ends_with(database)),
        "{marked:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_map_fits_a_laptop_screen_readably_with_no_edge_through_a_node() {
    let app = spawn_graph_app(2).await;
    let shop = demo::spawn(DemoSettings {
        endpoint: app.otlp_grpc.clone(),
        orders_per_sec: 20.0,
        duration_opt: Some(Duration::from_secs(40)),
        seed: 7,
        speed: 10.0,
        access: demo::ExporterAccess::default(),
    })
    .expect("demo starts");
    wait_for_nodes(&app, 11).await;
    wait_for_finding(&app, "shared_database").await;
    let report = browse(
        &app,
        &json!([{ "name": "map-demo-1280", "path": "/", "viewport": { "width": 1280, "height": 800 }, "geometry": true, "map": true, "options": "#map-findings",
                   "texts": ["errors ≥ 5 % or p95 over 2× target", "p95 targets: calls 100 ms"] },
                { "name": "audit-demo", "path": "/insights",
                  "click_path": ["h2:has-text('shared database') + p + table a:text-is('on the map')"] }]),
    )
    .await;
    shop.stop().expect("the demo stops");
    assert_the_finding_is_marked_on_the_map(&report[1]);
    let entry = &report[0];
    assert_readable(entry);
    // The Audit select comes after the map, with the findings worst first.
    assert_eq!(entry["parts_loaded"], true, "{entry:#}");
    let options: Vec<&str> = entry["options"]
        .as_array()
        .map(|options| options.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        options.len() > 1 && options[0].ends_with(" found"),
        "{options:?}"
    );
    assert!(
        options.iter().any(|text| text.contains("orders-db")),
        "the shared database is offered: {options:?}"
    );
    assert_eq!(
        entry["texts"],
        json!({"errors ≥ 5 % or p95 over 2× target": true, "p95 targets: calls 100 ms": true}),
        "the legend says what the colours mean: {entry:#}"
    );
    let geometry = &entry["geometry"];
    assert_eq!(
        geometry["fits"], true,
        "the map fits the window: {geometry:#}"
    );
    assert_eq!(
        geometry["all_nodes_in_view"], true,
        "every node is in view: {geometry:#}"
    );
    let smallest = geometry["min_font_px"].as_f64().unwrap_or(0.0);
    assert!(
        smallest >= 11.0,
        "the smallest text shows at {smallest:.1} px: {geometry:#}"
    );
    // Labels never overlap; one that finds no room shows on hover. The demo's figures (and so
    // its labels' widths) change by the second: nearly all of its 13 labels are shown.
    let on_hover = geometry["num_hover_only"].as_u64().unwrap_or(u64::MAX);
    assert!(
        on_hover <= 2,
        "{on_hover} of the demo's labels are left to hover: {geometry:#}"
    );
}

/// One export: for each (caller, callee) a client span in the caller and its server span in
/// the callee (a database when the callee starts with `db-`), services in six namespaces.
fn mesh_request(pairs: &[(u64, u64)]) -> Value {
    let mut by_service: std::collections::BTreeMap<String, Vec<Value>> =
        std::collections::BTreeMap::new();
    let start = now_nanos() - 20_000_000_000;
    let name = |number: u64| format!("svc-{number:03}");
    for (index, &(caller, callee)) in pairs.iter().enumerate() {
        let trace = format!("{:032x}", 0xabc0_0000_u64 + index as u64);
        let client_id = format!("{:016x}", 0x1000_0000_u64 + index as u64 * 2);
        let server_id = format!("{:016x}", 0x1000_0001_u64 + index as u64 * 2);
        let times = |offset: u64, length: u64| {
            (
                (start + offset).to_string(),
                (start + offset + length).to_string(),
            )
        };
        let (client_start, client_end) = times(index as u64 * 1000, 9_000_000);
        let is_database = callee % 19 == 0;
        let mut attributes =
            vec![json!({"key": "http.request.method", "value": {"stringValue": "GET"}})];
        if is_database {
            attributes = vec![
                json!({"key": "db.system.name", "value": {"stringValue": "postgresql"}}),
                json!({"key": "server.address", "value": {"stringValue": format!("db-{}", callee % 5)}}),
            ];
        }
        by_service.entry(name(caller)).or_default().push(json!({
            "traceId": trace, "spanId": client_id, "name": "call", "kind": 3,
            "startTimeUnixNano": client_start, "endTimeUnixNano": client_end,
            "attributes": attributes,
        }));
        if !is_database {
            let (server_start, server_end) = times(index as u64 * 1000 + 1_000_000, 7_000_000);
            by_service.entry(name(callee)).or_default().push(json!({
                "traceId": trace, "spanId": server_id, "parentSpanId": client_id, "name": "GET /", "kind": 2,
                "startTimeUnixNano": server_start, "endTimeUnixNano": server_end,
                "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}],
            }));
        }
    }
    let resource_spans: Vec<Value> = by_service
        .into_iter()
        .map(|(service, spans)| {
            let number: u64 = service[4..].parse().unwrap_or(0);
            json!({
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": service}},
                    {"key": "service.namespace", "value": {"stringValue": format!("ns{}", number % 6)}},
                ]},
                "scopeSpans": [{"scope": {"name": "mesh"}, "spans": spans}],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// Pairs over `num_services` services: mostly downstream calls of up to 25 hops, some back
/// (cycles), every service called or calling.
fn mesh_pairs(num_services: u64, num_edges: usize) -> Vec<(u64, u64)> {
    let mut pairs: Vec<(u64, u64)> = (1..num_services).map(|n| (n / 3, n)).collect();
    let mut seen: std::collections::HashSet<(u64, u64)> = pairs.iter().copied().collect();
    let mut seed = 99u64;
    while pairs.len() < num_edges {
        seed = cartograph::model::split_mix(seed);
        let caller = seed % num_services;
        let hop = cartograph::model::split_mix(seed) % 25;
        let callee = if seed.is_multiple_of(13) {
            caller.saturating_sub(hop + 1)
        } else {
            (caller + 1 + hop).min(num_services - 1)
        };
        if caller != callee && seen.insert((caller, callee)) {
            pairs.push((caller, callee));
        }
    }
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_150_node_map_has_no_edge_through_a_node_and_no_overlapping_labels() {
    let app = spawn_graph_app(1).await;
    let pairs = mesh_pairs(150, 380);
    post_request(&app, &mesh_request(&pairs)).await;
    wait_for_nodes(&app, 150).await;
    let report = browse(
        &app,
        &json!([
            { "name": "map-mesh-150-folded", "path": "/", "viewport": { "width": 1280, "height": 800 }, "geometry": true, "search": "ns3" },
            { "name": "map-mesh-150-open", "path": "/?expand=ns2", "viewport": { "width": 1280, "height": 800 }, "geometry": true },
            { "name": "map-mesh-150-all", "path": "/?expand=all", "viewport": { "width": 1280, "height": 800 }, "geometry": true, "search": "svc-007" },
        ]),
    )
    .await;
    for entry in &report {
        assert_readable(entry);
    }
    let folded = &report[0]["search"];
    assert_eq!(
        folded["groups"], 6,
        "six namespaces, six groups: {folded:#}"
    );
    assert_eq!(
        folded["matches"],
        json!(["service:namespace ns3"]),
        "Find marks the group: {folded:#}"
    );
    assert_eq!(report[0]["texts"], json!({}));
    let opened = &report[1]["geometry"];
    assert!(opened["num_labels"].as_u64().unwrap_or(0) > 0, "{opened:#}");
    let all = &report[2]["search"];
    assert_eq!(
        (
            all["groups"].clone(),
            all["matches"].clone(),
            all["searching"].clone()
        ),
        (json!(0), json!(["service:svc-007"]), json!(true)),
        "every node shown, one found: {all:#}"
    );
}
