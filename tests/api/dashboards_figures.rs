//! One figure, one text: the demo shop runs (at ten times its schedule) until the payments
//! breaker in orders has refused calls; then, for one closed range, the services' rate and
//! error rate and the orders → payments edge's rate, error rate, refused calls and p95s read
//! from the API must be printed the same on the map (whole and focused), `/services`, both
//! service pages, the edge page and the breakers page. Pages mark their figures
//! (`data-figure`); the API's numbers are printed with the pages' own formatting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cartograph::demo::{self, DemoSettings};
use cartograph::web::format::{millis_text, percent_text, rate_text};
use serde_json::{Value, json};

use crate::dashboards::browse;
use crate::fixtures::now_nanos;
use crate::graph_support::{service, settle_time, spawn_graph_app};
use crate::helpers::TestApp;

const PAIRING_TTL_SECS: u64 = 1;
const BREAKER_DEADLINE: Duration = Duration::from_secs(60);
const NANOS_PER_MINUTE: u64 = 60_000_000_000;
const SERVICES: [&str; 3] = ["gateway", "orders", "payments"];

/// (subject, figure) → the text every page must print for it.
type Expected = BTreeMap<(String, String), String>;

fn edge_subject(source: &str, target: &str, kind: &str) -> String {
    format!("{source} -> {target} ({kind})")
}

/// The orders → payments edge of a graph or edge list.
fn orders_to_payments(edges: &Value) -> Option<&Value> {
    edges.as_array()?.iter().find(|edge| {
        edge["source"] == service("orders").as_str()
            && edge["target"] == service("payments").as_str()
    })
}

/// Runs the demo until the orders → payments edge has calls the breaker refused and payments
/// has failed calls of its own, then stops it.
async fn run_demo_until_the_breaker_refused_calls(app: &TestApp) {
    let shop = demo::spawn(DemoSettings {
        endpoint: app.otlp_grpc.clone(),
        orders_per_sec: 20.0,
        duration_opt: Some(BREAKER_DEADLINE),
        seed: 7,
        speed: 10.0,
        access: demo::ExporterAccess::default(),
    })
    .expect("demo starts");
    let started = Instant::now();
    loop {
        let (_, graph) = app.get_json("/api/v1/graph?window=5m").await;
        let edge = orders_to_payments(&graph["edges"]);
        let refused = edge.and_then(|edge| edge["short_circuited"].as_u64());
        let failed = edge.and_then(|edge| edge["errors"].as_u64());
        if refused.is_some_and(|count| count > 0) && failed.is_some_and(|count| count > 0) {
            break;
        }
        assert!(
            started.elapsed() < BREAKER_DEADLINE,
            "the payments breaker refused no call in {BREAKER_DEADLINE:?}: {edge:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::task::spawn_blocking(move || shop.stop())
        .await
        .expect("join")
        .expect("demo ran");
}

/// Waits until the minute in progress has closed and returns it as the end of a range: a
/// range that ended has fixed counts and a fixed length, so every read of it agrees.
async fn close_the_minute() -> u64 {
    let end = now_nanos().div_ceil(NANOS_PER_MINUTE) * NANOS_PER_MINUTE;
    let wait = end.saturating_sub(now_nanos()) + 500_000_000;
    tokio::time::sleep(Duration::from_nanos(wait)).await;
    end
}

/// The figures the API gives, printed as the pages print them; checks on the way that every
/// API body agrees with the others to the last digit.
async fn expected_from_the_api(app: &TestApp, range: &str) -> Expected {
    let (_, graph) = app.get_json(&format!("/api/v1/graph?{range}")).await;
    let (_, services) = app.get_json(&format!("/api/v1/services?{range}")).await;
    let mut expected = Expected::new();
    for name in SERVICES {
        let id = service(name);
        let listed = services["services"]
            .as_array()
            .and_then(|all| all.iter().find(|entry| entry["name"] == name))
            .unwrap_or_else(|| panic!("{name} is not in /api/v1/services: {services:#}"))
            .clone();
        let (_, own) = app
            .get_json(&format!("/api/v1/services/{name}?{range}"))
            .await;
        assert_eq!(own["service"], listed, "{name}: one service, two answers");
        let node = graph["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|node| node["id"] == id.as_str()))
            .unwrap_or_else(|| panic!("{id} is not on the map: {graph:#}"));
        for field in ["requests", "errors", "error_rate", "rate_per_s"] {
            assert_eq!(
                node[field], listed[field],
                "{id}: the map's node and /api/v1/services differ in {field}"
            );
        }
        let rate = listed["rate_per_s"].as_f64().expect("a rate");
        expected.insert((id.clone(), "rate".to_owned()), rate_text(rate));
        expected.insert(
            (id, "error-rate".to_owned()),
            percent_text(listed["error_rate"].as_f64()),
        );
    }

    let edge = orders_to_payments(&graph["edges"]).expect("orders → payments on the map");
    let (_, payments) = app
        .get_json(&format!("/api/v1/services/payments?{range}"))
        .await;
    let (_, orders) = app
        .get_json(&format!("/api/v1/services/orders?{range}"))
        .await;
    assert_eq!(orders_to_payments(&payments["callers"]), Some(edge));
    assert_eq!(orders_to_payments(&orders["callees"]), Some(edge));
    let refused = edge["short_circuited"].as_u64().expect("a count");
    let attempted = edge["attempted"].as_u64().expect("a count");
    assert!(refused > 0, "the range holds refused calls: {edge:#}");
    assert_eq!(attempted + refused, edge["requests"].as_u64().unwrap_or(0));
    let (client_p95, server_p95) = (
        edge["client_p95_ms"].as_f64().expect("client p95"),
        edge["server_p95_ms"].as_f64().expect("server p95"),
    );
    assert!(
        client_p95 >= server_p95 * 0.98,
        "the caller waits at least as long as the callee works, refused calls aside: {edge:#}"
    );
    let subject = edge_subject(&service("orders"), &service("payments"), "http");
    assert_eq!(edge["kind"], "http", "{edge:#}");
    let edge_figures = [
        (
            "rate",
            rate_text(edge["rate_per_s"].as_f64().expect("a rate")),
        ),
        ("error-rate", percent_text(edge["error_rate"].as_f64())),
        ("refused", refused.to_string()),
        ("client-p95", millis_text(client_p95 * 1e6)),
        ("server-p95", millis_text(server_p95 * 1e6)),
    ];
    for (figure, printed) in edge_figures {
        expected.insert((subject.clone(), figure.to_owned()), printed);
    }
    expected
}

/// What each page must show of the expected figures.
fn pages(range: &str) -> Value {
    let edge = edge_subject(&service("orders"), &service("payments"), "http");
    let node_figures = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .flat_map(|name| ["rate", "error-rate"].map(|figure| json!([service(name), figure])))
            .collect()
    };
    let edge_figures = |figures: &[&str]| -> Vec<Value> {
        figures
            .iter()
            .map(|figure| json!([edge.clone(), figure]))
            .collect()
    };
    let labelled = ["rate", "error-rate", "refused", "client-p95"];
    let everything = ["rate", "error-rate", "refused", "client-p95", "server-p95"];
    let page = |name: &str, path: String, shows: Vec<Value>| json!({ "name": name, "path": path, "figures": true, "shows": shows });
    json!([
        page(
            "figures-map",
            format!("/?{range}"),
            [node_figures(&SERVICES), edge_figures(&labelled)].concat()
        ),
        // gateway's callers are two hops from orders: its figures must not depend on them.
        page(
            "figures-map-focus",
            format!("/?{range}&focus=service%3Aorders&depth=1"),
            [node_figures(&SERVICES), edge_figures(&labelled)].concat()
        ),
        page(
            "figures-services",
            format!("/services?{range}"),
            node_figures(&SERVICES)
        ),
        page(
            "figures-service-payments",
            format!("/services/payments?{range}"),
            [node_figures(&["payments"]), edge_figures(&labelled)].concat()
        ),
        page(
            "figures-service-orders",
            format!("/services/orders?{range}"),
            [node_figures(&["orders"]), edge_figures(&labelled)].concat()
        ),
        page(
            "figures-edge",
            format!("/edges/service%3Aorders/service%3Apayments?{range}"),
            edge_figures(&everything)
        ),
        page(
            "figures-breakers",
            format!("/breakers?{range}"),
            edge_figures(&["refused"])
        ),
    ])
}

/// (subject, figure, text) of every figure a page marked.
fn printed_figures(entry: &Value) -> Vec<(String, String, String)> {
    entry["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|mark| {
            Some((
                mark["subject"].as_str()?.to_owned(),
                mark["figure"].as_str()?.to_owned(),
                mark["text"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Every figure `spec` names is on the page, printed as the API's; every rate says "/s".
fn assert_shows_the_api_figures(
    spec: &Value,
    printed: &[(String, String, String)],
    expected: &Expected,
) {
    let name = spec["name"].as_str().unwrap_or_default();
    for (subject, figure, text) in printed {
        assert!(
            figure != "rate" || text.ends_with("/s"),
            "{name}: a rate without /s: {subject} {text:?}"
        );
    }
    for shown in spec["shows"].as_array().into_iter().flatten() {
        let key = (
            shown[0].as_str().unwrap_or_default().to_owned(),
            shown[1].as_str().unwrap_or_default().to_owned(),
        );
        let want = expected
            .get(&key)
            .unwrap_or_else(|| panic!("no API figure for {key:?}"));
        let found: Vec<&String> = printed
            .iter()
            .filter(|(subject, figure, _)| (subject, figure) == (&key.0, &key.1))
            .map(|(_, _, text)| text)
            .collect();
        assert!(
            !found.is_empty(),
            "{name}: {key:?} is not shown: {printed:#?}"
        );
        assert!(
            found.iter().all(|text| *text == want),
            "{name}: {key:?} printed {found:?}, the API says {want:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_the_api_print_the_same_figures_while_a_breaker_refuses_calls() {
    let app = spawn_graph_app(PAIRING_TTL_SECS).await;
    let from = now_nanos() / NANOS_PER_MINUTE * NANOS_PER_MINUTE;
    run_demo_until_the_breaker_refused_calls(&app).await;
    tokio::time::sleep(settle_time(PAIRING_TTL_SECS)).await;
    let to = close_the_minute().await;
    let range = format!("from={from}&to={to}");

    let expected = expected_from_the_api(&app, &range).await;
    let pages = pages(&range);
    let report = browse(&app, &pages).await;
    for (spec, entry) in pages.as_array().into_iter().flatten().zip(&report) {
        assert_eq!(entry["status"], 200, "{entry:#}");
        assert_eq!(entry["console_errors"], json!([]), "{entry:#}");
        assert_shows_the_api_figures(spec, &printed_figures(entry), &expected);
    }
    app.shutdown().await;
}
