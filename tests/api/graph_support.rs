//! Shared by the graph tests: the OTLP/JSON fixtures of `tests/fixtures/graph/` (made by
//! `tests/python/make_graph_fixtures.py`), the node ids the API must use, and assertions on
//! `/api/v1/graph` that wait (boundedly) for the engine and then check the exact graph.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use cartograph::config::Config;
use serde_json::{Map, Value, json};

use crate::fixtures::now_nanos;
use crate::helpers::{TestApp, spawn_app_with, test_config};

/// The time every fixture is written relative to (see make_graph_fixtures.py).
const FIXTURE_BASE_NANOS: i128 = 1_700_000_000_000_000_000;
const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graph");
/// How long the graph may take to show what was sent, pairing TTL included: the freshness
/// target is 2 s; the rest is margin for a loaded 2-core machine.
const GRAPH_WAIT: Duration = Duration::from_secs(20);
/// The live window every fixture test reads (fixture spans end within the last 30 s).
pub const LIVE: &str = "window=5m";

// --- node ids: every expectation names nodes through these, so a naming change is one line ---

pub fn service(name: &str) -> String {
    format!("service:{name}")
}

/// The caller of root server spans.
pub fn user() -> String {
    "client:user".to_owned()
}

/// The caller of a server span whose client span never arrived (its parent is not a root).
pub fn unknown_caller() -> String {
    user()
}

/// A peer named by `peer.service` / `service.peer.name`.
pub fn external(peer_service: &str) -> String {
    format!("external:{peer_service}")
}

/// A peer named by `server.address` and `server.port`.
pub fn external_at(address: &str, port: u16) -> String {
    format!("external:{address}:{port}")
}

/// A database named by `db.system(.name)`, then its address and/or `db.namespace`.
pub fn database(system: &str, address: Option<(&str, u16)>, namespace: Option<&str>) -> String {
    match (address, namespace) {
        (Some((host, port)), Some(namespace)) => {
            format!("database:{system} {host}:{port}/{namespace}")
        }
        (Some((host, port)), None) => format!("database:{system} {host}:{port}"),
        (None, Some(namespace)) => format!("database:{system} {namespace}"),
        (None, None) => format!("database:{system}"),
    }
}

pub fn topic(system: &str, destination: &str) -> String {
    format!("topic:{system} {destination}")
}

// --- apps and fixtures ---

/// The test config (in-memory store) with unpaired spans expiring after `pairing_ttl_secs`.
pub fn graph_config(pairing_ttl_secs: u64) -> Config {
    let mut config = test_config();
    config.graph.pairing_ttl_secs = pairing_ttl_secs;
    config
}

pub async fn spawn_graph_app(pairing_ttl_secs: u64) -> TestApp {
    spawn_app_with(graph_config(pairing_ttl_secs)).await
}

/// Long enough after the last span for every unpaired half to have expired (and been swept).
pub fn settle_time(pairing_ttl_secs: u64) -> Duration {
    Duration::from_secs(pairing_ttl_secs + 2)
}

/// The export requests of one fixture, times shifted so the fixture's base is now.
pub fn load_fixture(name: &str) -> Vec<Value> {
    let path = Path::new(FIXTURE_DIR).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let mut body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    shift_times(&mut body, i128::from(now_nanos()) - FIXTURE_BASE_NANOS);
    match body {
        Value::Array(requests) => requests,
        request => vec![request],
    }
}

fn shift_times(value: &mut Value, shift_nanos: i128) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if key.ends_with("TimeUnixNano") {
                    let nanos: i128 = match field {
                        Value::String(text) => text.parse().ok(),
                        Value::Number(number) => number.as_u64().map(i128::from),
                        _ => None,
                    }
                    .unwrap_or_else(|| panic!("{key} is not a time: {field}"));
                    *field = Value::String((nanos + shift_nanos).to_string());
                } else {
                    shift_times(field, shift_nanos);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| shift_times(item, shift_nanos)),
        _ => {}
    }
}

/// Posts one export request as OTLP/HTTP JSON; it must be accepted whole.
pub async fn post_request(app: &TestApp, request: &Value) {
    let body = serde_json::to_vec(request).expect("serialize");
    let response = app
        .post_otlp("/v1/traces", &[("content-type", "application/json")], body)
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "export rejected: {text}");
    let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(
        reply.get("partialSuccess").is_none_or(|partial| partial
            .get("rejectedSpans")
            .is_none_or(|n| n == 0 || n == "0")),
        "export partly rejected: {text}"
    );
}

/// Loads a fixture and posts all its requests back to back.
pub async fn post_fixture(app: &TestApp, name: &str) {
    for request in load_fixture(name) {
        post_request(app, &request).await;
    }
}

// --- the graph API ---

pub async fn graph(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get_json(&format!("/api/v1/graph?{query}")).await;
    assert_eq!(status, 200, "/api/v1/graph?{query}: {body}");
    body
}

/// One expected edge: always its kind, requests and errors; other fields when named by `with`.
#[derive(Debug, Clone)]
pub struct ExpectedEdge {
    source: String,
    target: String,
    fields: Map<String, Value>,
}

pub fn edge(source: &str, target: &str, kind: &str, requests: u64, errors: u64) -> ExpectedEdge {
    let fields = json!({ "kind": kind, "requests": requests, "errors": errors });
    ExpectedEdge {
        source: source.to_owned(),
        target: target.to_owned(),
        fields: fields.as_object().expect("object").clone(),
    }
}

impl ExpectedEdge {
    /// Also expect `field` (e.g. `client_only`, `server_only`, `retries`) to be exactly `value`.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(field.to_owned(), value.into());
        self
    }
}

/// Exactly these nodes and edges (edges keyed by source, target and kind).
#[derive(Debug, Clone)]
pub struct ExpectedGraph {
    pub nodes: BTreeSet<String>,
    pub edges: Vec<ExpectedEdge>,
}

pub fn expect_graph(nodes: &[String], edges: Vec<ExpectedEdge>) -> ExpectedGraph {
    ExpectedGraph {
        nodes: nodes.iter().cloned().collect(),
        edges,
    }
}

impl ExpectedGraph {
    /// Both graphs' nodes and edges (for fixtures posted to one app).
    pub fn and(mut self, other: ExpectedGraph) -> Self {
        self.nodes.extend(other.nodes);
        self.edges.extend(other.edges);
        self
    }
}

// --- what the fixtures that several tests post must produce ---

/// `http_pair`: three calls, one failed on the client only, one on both sides: 2 failed calls.
pub fn http_pair_graph() -> ExpectedGraph {
    expect_graph(
        &[service("checkout"), service("payments")],
        vec![
            edge(&service("checkout"), &service("payments"), "http", 3, 2)
                .with("client_only", 0)
                .with("server_only", 0),
        ],
    )
}

/// `kafka_by_parent` and `kafka_by_links`: two messages, each consumed by two groups: two
/// publishes (not four) and two deliveries per group; billing failed once.
pub fn kafka_graph() -> ExpectedGraph {
    let order_created = topic("kafka", "order-created");
    expect_graph(
        &[
            service("orders"),
            order_created.clone(),
            service("billing"),
            service("shipping"),
        ],
        vec![
            edge(&service("orders"), &order_created, "messaging", 2, 0),
            edge(&order_created, &service("billing"), "messaging", 2, 1),
            edge(&order_created, &service("shipping"), "messaging", 2, 0),
        ],
    )
}

/// `chain`: s1 → … → s6 synchronously (s3 → s4 over gRPC), then s6 → topic audit → s7 → s8.
pub fn chain_graph() -> ExpectedGraph {
    let [s1, s2, s3, s4, s5, s6, s7, s8] =
        ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"].map(service);
    let audit = topic("kafka", "audit");
    expect_graph(
        &[&s1, &s2, &s3, &s4, &s5, &s6, &s7, &s8, &audit].map(String::clone),
        vec![
            edge(&s1, &s2, "http", 1, 0),
            edge(&s2, &s3, "http", 1, 0),
            edge(&s3, &s4, "grpc", 1, 0),
            edge(&s4, &s5, "http", 1, 0),
            edge(&s5, &s6, "http", 1, 0),
            edge(&s6, &audit, "messaging", 1, 0),
            edge(&audit, &s7, "messaging", 1, 0),
            edge(&s7, &s8, "http", 1, 0),
        ],
    )
}

/// The expected graph restricted to `nodes` and the edges between them.
pub fn subgraph(expected: &ExpectedGraph, nodes: &[String]) -> ExpectedGraph {
    let kept = |id: &String| nodes.contains(id);
    ExpectedGraph {
        nodes: expected
            .nodes
            .iter()
            .filter(|id| kept(id))
            .cloned()
            .collect(),
        edges: expected
            .edges
            .iter()
            .filter(|e| kept(&e.source) && kept(&e.target))
            .cloned()
            .collect(),
    }
}

type EdgeView = BTreeMap<String, Map<String, Value>>;

fn edge_key(source: &str, target: &str, kind: &Value) -> String {
    format!("{source} -> {target} ({})", kind.as_str().unwrap_or("?"))
}

/// The parts of `actual` that `expected` speaks about, in the same shape as `expected`'s own.
fn views(actual: &Value, expected: &ExpectedGraph) -> [(BTreeSet<String>, EdgeView); 2] {
    let wanted: BTreeMap<String, &ExpectedEdge> = expected
        .edges
        .iter()
        .map(|e| (edge_key(&e.source, &e.target, &e.fields["kind"]), e))
        .collect();
    let mut actual_edges = EdgeView::new();
    for e in actual["edges"].as_array().expect("edges array") {
        let (source, target) = (str_field(e, "source"), str_field(e, "target"));
        let key = edge_key(source, target, &e["kind"]);
        let field_names: Vec<String> = match wanted.get(&key) {
            Some(expected_edge) => expected_edge.fields.keys().cloned().collect(),
            None => ["kind", "requests", "errors"].map(str::to_owned).to_vec(),
        };
        let fields = field_names
            .into_iter()
            .map(|name| {
                let field = e.get(&name).cloned().unwrap_or(Value::Null);
                (name, field)
            })
            .collect();
        let duplicate = actual_edges.insert(key.clone(), fields);
        assert!(duplicate.is_none(), "edge {key} listed twice: {actual:#}");
    }
    let expected_edges = wanted
        .into_iter()
        .map(|(key, e)| (key, e.fields.clone()))
        .collect();
    [
        (node_ids(actual), actual_edges),
        (expected.nodes.clone(), expected_edges),
    ]
}

/// Node ids, checking that each node's `id` is `kind:name`.
pub fn node_ids(graph: &Value) -> BTreeSet<String> {
    let nodes = graph["nodes"].as_array().expect("nodes array");
    let ids: BTreeSet<String> = nodes
        .iter()
        .map(|node| {
            let (id, kind, name) = (
                str_field(node, "id"),
                str_field(node, "kind"),
                str_field(node, "name"),
            );
            assert_eq!(
                id,
                format!("{kind}:{name}"),
                "node id is not kind:name: {node}"
            );
            id.to_owned()
        })
        .collect();
    assert_eq!(ids.len(), nodes.len(), "a node is listed twice: {graph:#}");
    ids
}

pub fn str_field<'a>(object: &'a Value, field: &str) -> &'a str {
    object[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {object}"))
}

fn matches(actual: &Value, expected: &ExpectedGraph) -> bool {
    let [seen, wanted] = views(actual, expected);
    seen == wanted
}

fn mismatch(actual: &Value, expected: &ExpectedGraph) -> String {
    let [seen, wanted] = views(actual, expected);
    format!(
        "expected nodes {:#?}\n  actual nodes {:#?}\nexpected edges {:#}\n  actual edges {:#}\nfull graph: {actual:#}",
        wanted.0,
        seen.0,
        json!(wanted.1),
        json!(seen.1)
    )
}

/// Waits (bounded) until `/api/v1/graph?{query}` is exactly `expected`, then waits `settle` more
/// (late expiries must not add anything) and checks again. Returns the final graph.
pub async fn assert_graph_settles(
    app: &TestApp,
    query: &str,
    expected: &ExpectedGraph,
    settle: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let actual = graph(app, query).await;
        if matches(&actual, expected) {
            break;
        }
        assert!(
            started.elapsed() < GRAPH_WAIT,
            "/api/v1/graph?{query} did not become the expected graph within {GRAPH_WAIT:?}\n{}",
            mismatch(&actual, expected)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(settle).await;
    let actual = graph(app, query).await;
    assert!(
        matches(&actual, expected),
        "/api/v1/graph?{query} changed after it was right (waited {settle:?})\n{}",
        mismatch(&actual, expected)
    );
    actual
}

/// The one edge from `source` to `target`.
pub fn find_edge<'a>(graph: &'a Value, source: &str, target: &str) -> &'a Value {
    let mut found = graph["edges"]
        .as_array()
        .expect("edges array")
        .iter()
        .filter(|e| e["source"] == source && e["target"] == target);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no edge {source} -> {target} in {graph:#}"));
    assert!(found.next().is_none(), "several edges {source} -> {target}");
    first
}

/// `field` of `object` as a number, within `relative` of `expected`.
pub fn assert_close(object: &Value, field: &str, expected: f64, relative: f64) {
    let actual = object[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {object}"));
    let error = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        error <= relative,
        "{field} = {actual}, expected {expected} within {:.2} % (off by {:.3} %) in {object}",
        relative * 100.0,
        error * 100.0
    );
}
