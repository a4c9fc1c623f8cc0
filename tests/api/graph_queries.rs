//! The rest of the graph API on fixtures: focus ± depth and namespace filters, the DOT and
//! Mermaid renderings (escaping attacker-controlled names), the service endpoints, and strict
//! rejection of bad parameters.

use std::time::Duration;

use serde_json::Value;

use crate::graph_support::{
    LIVE, assert_graph_settles, chain_graph, edge, expect_graph, graph, http_pair_graph,
    load_fixture, post_fixture, post_request, service, settle_time, spawn_graph_app, str_field,
    subgraph,
};
use crate::helpers::TestApp;

const TTL_SECS: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focus_keeps_the_nodes_within_depth_hops_either_way() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "chain").await;
    let whole = chain_graph();
    assert_graph_settles(&app, LIVE, &whole, settle_time(TTL_SECS)).await;

    let s3 = service("s3");
    let around = |names: &[&str]| {
        subgraph(
            &whole,
            &names.iter().map(|n| service(n)).collect::<Vec<_>>(),
        )
    };
    for (depth, expected) in [
        ("0", around(&["s3"])),
        ("1", around(&["s2", "s3", "s4"])),
        ("2", around(&["s1", "s2", "s3", "s4", "s5"])),
    ] {
        let query = format!("{LIVE}&focus={s3}&depth={depth}");
        assert_graph_settles(&app, &query, &expected, Duration::ZERO).await;
    }
    // depth defaults to 1.
    let query = format!("{LIVE}&focus={s3}");
    assert_graph_settles(&app, &query, &around(&["s2", "s3", "s4"]), Duration::ZERO).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_keeps_the_edges_that_touch_it() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "namespaces").await;
    let [web, api, gateway, processor] = ["web", "api", "gateway", "processor"].map(service);
    let whole = expect_graph(
        &[&web, &api, &gateway, &processor].map(String::clone),
        vec![
            edge(&web, &api, "http", 1, 0),
            edge(&api, &gateway, "http", 1, 0),
            edge(&gateway, &processor, "http", 1, 0),
        ],
    );
    let graph = assert_graph_settles(&app, LIVE, &whole, settle_time(TTL_SECS)).await;
    for node in graph["nodes"].as_array().expect("nodes") {
        let expected = if ["gateway", "processor"].contains(&str_field(node, "name")) {
            "pay"
        } else {
            "shop"
        };
        assert_eq!(node["namespace"], expected, "{node}");
    }
    let pay = subgraph(&whole, &[api.clone(), gateway.clone(), processor.clone()]);
    assert_graph_settles(&app, &format!("{LIVE}&namespace=pay"), &pay, Duration::ZERO).await;
    let shop = subgraph(&whole, &[web.clone(), api.clone(), gateway.clone()]);
    assert_graph_settles(
        &app,
        &format!("{LIVE}&namespace=shop"),
        &shop,
        Duration::ZERO,
    )
    .await;
    app.shutdown().await;
}

/// A service name that would break out of a DOT string or a Mermaid label, or inject markup.
const HOSTILE_NAME: &str = "check\"out\\\n<script>#`";

async fn text(app: &TestApp, path: &str) -> (String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.ui))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_owned();
    (content_type, response.text().await.expect("text"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_and_mermaid_render_the_graph_with_names_escaped() {
    let app = spawn_graph_app(TTL_SECS).await;
    for mut request in load_fixture("http_pair") {
        rename_service(&mut request, "checkout", HOSTILE_NAME);
        post_request(&app, &request).await;
    }
    let hostile = service(HOSTILE_NAME);
    let expected = expect_graph(
        &[hostile.clone(), service("payments")],
        vec![edge(&hostile, &service("payments"), "http", 3, 2)],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(TTL_SECS)).await;

    let (content_type, dot) = text(&app, &format!("/api/v1/graph.dot?{LIVE}")).await;
    assert!(
        content_type.starts_with("text/vnd.graphviz"),
        "{content_type}"
    );
    assert!(dot.starts_with("digraph"), "{dot}");
    let escaped = r#""service:check\"out\\\n<script>#`""#;
    assert!(
        dot.contains(&format!("{escaped} -> \"service:payments\"")),
        "no escaped edge in:\n{dot}"
    );
    assert_eq!(dot.matches(" -> ").count(), 1, "{dot}");

    let (content_type, mermaid) = text(&app, &format!("/api/v1/graph.mmd?{LIVE}")).await;
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    assert_eq!(mermaid.matches(" -->").count(), 1, "{mermaid}");
    for raw in ["<script>", "check\"out", "\n<"] {
        assert!(!mermaid.contains(raw), "{raw:?} unescaped in:\n{mermaid}");
    }
    app.shutdown().await;
}

fn rename_service(request: &mut Value, from: &str, to: &str) {
    for resource_spans in request["resourceSpans"]
        .as_array_mut()
        .expect("resourceSpans")
    {
        for attribute in resource_spans["resource"]["attributes"]
            .as_array_mut()
            .expect("attributes")
        {
            if attribute["key"] == "service.name" && attribute["value"]["stringValue"] == from {
                attribute["value"]["stringValue"] = Value::from(to);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_shows_its_operations_callers_and_callees() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "http_pair").await;
    assert_graph_settles(&app, LIVE, &http_pair_graph(), settle_time(TTL_SECS)).await;

    let (status, payments) = app
        .get_json(&format!("/api/v1/services/payments?{LIVE}"))
        .await;
    assert_eq!(status, 200, "{payments}");
    // Its server spans: 3 requests, the one that failed on the server side is its error.
    assert_eq!(payments["service"]["requests"], 3, "{payments:#}");
    assert_eq!(payments["service"]["errors"], 1, "{payments:#}");
    assert_eq!(payments["service"]["namespace"], "shop", "{payments:#}");
    let operations = payments["operations"].as_array().expect("operations");
    assert_eq!(operations.len(), 1, "{payments:#}");
    assert_eq!(operations[0]["name"], "POST /api", "{payments:#}");
    let callers = payments["callers"].as_array().expect("callers");
    assert_eq!(callers.len(), 1, "{payments:#}");
    assert_eq!(callers[0]["source"], service("checkout"), "{payments:#}");
    assert_eq!(callers[0]["requests"], 3, "{payments:#}");
    assert_eq!(
        payments["callees"],
        Value::Array(Vec::new()),
        "{payments:#}"
    );

    let (status, services) = app.get_json(&format!("/api/v1/services?{LIVE}")).await;
    assert_eq!(status, 200, "{services}");
    let listed: Vec<&str> = services["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|entry| str_field(entry, "name"))
        .collect();
    assert!(listed.contains(&"payments"), "{services:#}");

    let (status, missing) = app
        .get_json(&format!("/api/v1/services/nobody?{LIVE}"))
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"].is_string(), "{missing}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_graph_parameters_are_rejected_by_name() {
    let app = spawn_graph_app(TTL_SECS).await;
    for (query, names) in [
        ("window=7m", "window"),
        ("window=5m&from=1&to=2", "window"),
        ("focus=checkout", "focus"),
        ("focus=service:a&depth=11", "depth"),
        ("depth=-1", "depth"),
        ("from=2&to=1", "from"),
        ("colour=blue", "colour"),
    ] {
        for path in ["/api/v1/graph", "/api/v1/insights"] {
            let (status, body) = app.get_json(&format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
            assert!(message.contains(names), "{path}?{query}: {message}");
        }
    }
    // The empty graph is an answer, not an error.
    let empty = graph(&app, LIVE).await;
    assert_eq!(empty["nodes"], Value::Array(Vec::new()), "{empty}");
    assert_eq!(empty["edges"], Value::Array(Vec::new()), "{empty}");
    app.shutdown().await;
}
