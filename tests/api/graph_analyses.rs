//! `/api/v1/insights` and the blast radius on fixtures whose structure is known: a synchronous
//! cycle and one through a topic, a 5-hop synchronous chain, a chatty pair, a leaf's callers.
//! Each test first waits for the exact graph, so a failure here is the analysis, not pairing.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::graph_support::{
    LIVE, assert_graph_settles, chain_graph, edge, expect_graph, find_edge, post_fixture, service,
    settle_time, spawn_graph_app, str_field, topic,
};
use crate::helpers::TestApp;

const TTL_SECS: u64 = 1;

/// Chains are computed once a trace has been idle for the engine's trace idle TTL.
const CHAIN_WAIT: Duration = Duration::from_secs(60);

async fn insights(app: &TestApp) -> Value {
    let (status, body) = app.get_json(&format!("/api/v1/insights?{LIVE}")).await;
    assert_eq!(status, 200, "/api/v1/insights?{LIVE}: {body}");
    body
}

/// Insights once `ready` holds for them, waiting at most `limit`.
async fn insights_when(app: &TestApp, limit: Duration, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let insights = insights(app).await;
        if ready(&insights) {
            return insights;
        }
        assert!(
            started.elapsed() < limit,
            "insights not ready within {limit:?}: {insights:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What fails with `node` (a node id).
async fn blast_radius(app: &TestApp, node: &str) -> Value {
    let name = node.strip_prefix("service:").expect("a service node");
    let (status, body) = app
        .get_json(&format!("/api/v1/services/{name}?{LIVE}"))
        .await;
    assert_eq!(status, 200, "/api/v1/services/{name}: {body}");
    body["blast_radius"].clone()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|item| {
            item.as_str()
                .unwrap_or_else(|| panic!("not a string: {item}"))
        })
        .collect()
}

fn list<'a>(insights: &'a Value, field: &str) -> &'a Vec<Value> {
    insights[field]
        .as_array()
        .unwrap_or_else(|| panic!("insights has no list {field}: {insights:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_synchronous_cycle_and_one_through_a_topic() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "cycles").await;
    let [a, b, c, d, x, y] = ["a", "b", "c", "d", "x", "y"].map(service);
    let jobs = topic("kafka", "jobs");
    let expected = expect_graph(
        &[&a, &b, &c, &d, &x, &y, &jobs].map(String::clone),
        vec![
            edge(&a, &b, "http", 1, 0),
            edge(&b, &c, "http", 1, 0),
            edge(&c, &a, "http", 1, 0),
            edge(&d, &a, "http", 1, 0),
            edge(&x, &jobs, "messaging", 1, 0),
            edge(&jobs, &y, "messaging", 1, 0),
            edge(&y, &x, "http", 1, 0),
        ],
    );
    let graph = assert_graph_settles(&app, LIVE, &expected, settle_time(TTL_SECS)).await;

    let insights = insights(&app).await;
    let cycles = list(&insights, "cycles");
    assert_eq!(cycles.len(), 2, "{insights:#}");
    // Synchronous cycles come first.
    let (sync, through_topic) = (&cycles[0], &cycles[1]);
    assert_eq!(strings(&sync["component"]), [&a, &b, &c], "{sync}");
    assert_eq!(sync["synchronous"], true, "{sync}");
    assert_eq!(sync["through_topic"], false, "{sync}");
    assert_eq!(strings(&through_topic["component"]), [&x, &y, &jobs]);
    assert_eq!(through_topic["synchronous"], false, "{through_topic}");
    assert_eq!(through_topic["through_topic"], true, "{through_topic}");
    for cycle in cycles {
        assert_path_is_a_cycle_of_edges(&graph, cycle);
    }
    // The audit lists both as findings: the synchronous one critical, with its edges.
    let (status, only_cycles) = app
        .get_json(&format!("/api/v1/insights?{LIVE}&kind=cycle"))
        .await;
    assert_eq!(status, 200, "{only_cycles}");
    let findings = list(&only_cycles, "findings");
    let severities: Vec<&str> = findings
        .iter()
        .map(|finding| finding["severity"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(severities, ["critical", "info"], "{only_cycles:#}");
    assert!(
        strings(&findings[0]["subjects"]).contains(&format!("{a} -> {b}").as_str()),
        "{only_cycles:#}"
    );
    assert!(
        findings[0]["rule"]
            .as_str()
            .unwrap_or_default()
            .contains("no cycles"),
        "{only_cycles:#}"
    );
    let (status, body) = app
        .get_json(&format!("/api/v1/insights?{LIVE}&kind=cycle,loops"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("`loops`"),
        "{body}"
    );
    app.shutdown().await;
}

/// `path` closes on itself, visits its whole component once, and each hop is an edge.
fn assert_path_is_a_cycle_of_edges(graph: &Value, cycle: &Value) {
    let path = strings(&cycle["path"]);
    let component = strings(&cycle["component"]);
    assert_eq!(path.first(), path.last(), "{cycle}");
    let mut visited = path[1..].to_vec();
    visited.sort_unstable();
    assert_eq!(visited, component, "{cycle}");
    for hop in path.windows(2) {
        find_edge(graph, hop[0], hop[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_synchronous_chain_has_five_hops_and_stops_at_a_topic() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "chain").await;
    let names = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let expected = chain_graph();
    assert_graph_settles(&app, LIVE, &expected, settle_time(TTL_SECS)).await;

    let insights = insights_when(&app, CHAIN_WAIT, |insights| {
        !list(insights, "longest_chains").is_empty()
    })
    .await;
    let longest = &list(&insights, "longest_chains")[0];
    assert_eq!(strings(&longest["services"]), names, "{insights:#}");
    assert_eq!(longest["num_hops"], 5, "{longest}");
    assert_eq!(longest["num_occurrences"], 1, "{longest}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_calls_per_trace_on_one_edge_is_a_chatty_pair() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "chatty").await;
    let [cart, pricing, inventory] = ["cart", "pricing", "inventory"].map(service);
    let expected = expect_graph(
        &[&cart, &pricing, &inventory].map(String::clone),
        vec![
            edge(&cart, &pricing, "http", 24, 0),
            edge(&cart, &inventory, "http", 2, 0),
        ],
    );
    let graph = assert_graph_settles(&app, LIVE, &expected, settle_time(TTL_SECS)).await;
    assert_eq!(find_edge(&graph, &cart, &pricing)["calls_per_trace"], 12.0);
    assert_eq!(find_edge(&graph, &cart, &inventory)["calls_per_trace"], 1.0);

    let insights = insights(&app).await;
    // One call per trace to inventory is below the threshold: only pricing is chatty.
    let chatty = list(&insights, "chatty_pairs");
    assert_eq!(chatty.len(), 1, "{insights:#}");
    let pair = &chatty[0];
    assert_eq!(
        (str_field(pair, "source"), str_field(pair, "target")),
        (cart.as_str(), pricing.as_str())
    );
    assert_eq!(pair["calls_per_trace"], 12.0, "{pair}");
    assert_eq!(pair["max_calls_per_trace"], 12, "{pair}");
    assert_eq!(pair["num_requests"], 24, "{pair}");
    assert_eq!(pair["num_traces"], 2, "{pair}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blast_radius_of_a_leaf_is_its_transitive_callers() {
    let app = spawn_graph_app(TTL_SECS).await;
    post_fixture(&app, "blast_radius").await;
    let [web, mobile, api, auth, ledger, batch, search, index] = [
        "web",
        "mobile-bff",
        "api",
        "auth",
        "ledger",
        "batch",
        "search",
        "index",
    ]
    .map(service);
    let expected = expect_graph(
        &[&web, &mobile, &api, &auth, &ledger, &batch, &search, &index].map(String::clone),
        vec![
            edge(&web, &api, "http", 4, 0),
            edge(&mobile, &api, "http", 2, 0),
            edge(&api, &auth, "http", 6, 0),
            edge(&api, &ledger, "http", 6, 0),
            edge(&batch, &ledger, "http", 3, 0),
            edge(&search, &index, "http", 1, 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(TTL_SECS)).await;

    let radius = blast_radius(&app, &ledger).await;
    assert_eq!(radius["node"], ledger.as_str(), "{radius:#}");
    // Nearest first, then the most traffic into the failing set: api (6 calls to ledger) and
    // batch (3) call it directly; web (4 calls to api) and mobile-bff (2) through api. auth,
    // search and index do not depend on ledger.
    let affected: Vec<(&str, u64)> = radius["affected"]
        .as_array()
        .unwrap_or_else(|| panic!("no affected list: {radius:#}"))
        .iter()
        .map(|node| {
            (
                str_field(node, "node"),
                node["num_hops"].as_u64().expect("hops"),
            )
        })
        .collect();
    assert_eq!(
        affected,
        [(&api, 1), (&batch, 1), (&web, 2), (&mobile, 2)].map(|(id, hops)| (id.as_str(), hops)),
        "{radius:#}"
    );
    assert_eq!(radius["num_affected"], 4, "{radius:#}");
    // Affected traffic: 6 + 3 + 4 + 2 of the map's 22 calls, whatever the window length.
    let share = radius["affected_traffic_share"].as_f64().expect("share");
    assert!((share - 15.0 / 22.0).abs() < 1e-9, "{radius:#}");
    app.shutdown().await;
}
