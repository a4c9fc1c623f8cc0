//! Services and edges from duration histograms (issue 20, acceptance 3): the Python
//! OpenTelemetry SDK exports `http.server.request.duration` and `http.client.request.duration`
//! (`tests/python/red_metrics.py`) for two services that send no traces; both appear in
//! `/api/v1/services`, the edge between them in `/api/v1/graph` and on the map, marked as
//! derived from metrics, with the recorded calls and errors (rates within 5 %). A second case
//! sends traces and metrics that disagree about one edge: both figures are shown, never added.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

const RED_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/red_metrics.py");
const DEADLINE: Duration = Duration::from_secs(60);

fn send(app: &TestApp, args: &[&str]) -> Value {
    let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON")
        .expect("CARTOGRAPH_TEST_PYTHON is set by scripts/test.sh (the Python SDK's venv)");
    let output = Command::new(python)
        .arg(RED_PY)
        .args(["--endpoint", &app.otlp_grpc])
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run red_metrics.py");
    assert!(
        output.status.success(),
        "red_metrics.py exited with {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("red_metrics.py prints JSON")
}

/// `path`'s JSON once `ready` holds for it.
async fn json_when(app: &TestApp, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 200, "{body}");
        if ready(&body) {
            return body;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{path} after {DEADLINE:?}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn find<'a>(list: &'a Value, field: &str, value: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|item| item[field] == value)
}

fn assert_rate_within_5_percent(figures: &Value, calls: u64, window_secs: f64, what: &str) {
    let expected = calls as f64 / window_secs;
    let rate = figures["rate_per_s"].as_f64().expect("rate_per_s");
    assert!(
        (rate - expected).abs() <= expected * 0.05,
        "{what}: rate {rate}/s, recorded {expected}/s ({calls} calls over {window_secs} s)"
    );
}

async fn metrics_only_services_are_on_the_map(temporality: &str) {
    let app = spawn_app().await;
    let recorded = send(&app, &["--temporality", temporality]);
    let calls = recorded["calls"].as_u64().expect("calls");
    let errors = recorded["errors"].as_u64().expect("errors");
    assert!(errors > 0, "some calls fail: {recorded}");

    let services = json_when(&app, "/api/v1/services?window=5m", |body| {
        ["py-frontend", "py-inventory"].iter().all(|name| {
            find(&body["services"], "name", name)
                .is_some_and(|service| service["requests"] == calls)
        })
    })
    .await;
    let graph = json_when(&app, "/api/v1/graph?window=5m", |body| {
        find(&body["edges"], "source", "service:py-frontend").is_some()
    })
    .await;
    let window_secs = graph["window_secs"].as_f64().expect("window_secs");
    for name in ["py-frontend", "py-inventory"] {
        let service = find(&services["services"], "name", name).expect("service listed");
        assert_eq!(service["derived_from"], "metrics", "{service}");
        assert_eq!(service["errors"], errors, "{service}");
        assert_eq!(service["namespace"], "pyshop", "{service}");
        assert!(
            service["p95_ms"]
                .as_f64()
                .is_some_and(|p95| p95 > 1.0 && p95 < 120.0),
            "{service}"
        );
        let node =
            find(&graph["nodes"], "id", &format!("service:{name}")).expect("node on the map");
        assert_eq!(node["derived_from"], "metrics", "{node}");
        assert_eq!(node["requests"], calls, "{node}");
        assert_rate_within_5_percent(node, calls, window_secs, name);
    }
    let edge = find(&graph["edges"], "source", "service:py-frontend").expect("edge");
    assert_eq!(edge["target"], "service:py-inventory", "{edge}");
    assert_eq!(edge["kind"], "http", "{edge}");
    assert_eq!(edge["derived_from"], "metrics", "{edge}");
    assert_eq!(edge["requests"], calls, "{edge}");
    assert_eq!(edge["errors"], errors, "{edge}");
    assert_rate_within_5_percent(edge, calls, window_secs, "edge");
    assert!(
        edge["client_p95_ms"]
            .as_f64()
            .is_some_and(|p95| p95 > 1.0 && p95 < 120.0),
        "{edge}"
    );

    let (status, page) = app.get_text("/?window=5m").await;
    assert_eq!(status, 200);
    for id in ["service:py-frontend", "service:py-inventory"] {
        let node_at = page
            .find(&format!("data-id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} not on the map"));
        let node = &page[node_at
            ..page[node_at..]
                .find("</g>")
                .map_or(page.len(), |end| node_at + end)];
        assert!(node.contains("from metrics"), "{id} is not marked: {node}");
    }
    assert!(
        page.contains("data-source=\"service:py-frontend\" data-target=\"service:py-inventory\""),
        "the edge is not drawn"
    );
    let (status, metrics) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("cartograph_metric_red_points_total"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_histograms_of_services_without_traces_draw_the_map() {
    metrics_only_services_are_on_the_map("cumulative").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_histograms_of_services_without_traces_draw_the_map() {
    metrics_only_services_are_on_the_map("delta").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_metrics_that_disagree_are_both_shown_and_flagged() {
    let app = spawn_app().await;
    let recorded = send(&app, &["--with-traces"]);
    let traced = recorded["traced_calls"].as_u64().expect("traced calls");
    let measured = recorded["metric_calls"].as_u64().expect("metric calls");
    let graph = json_when(&app, "/api/v1/graph?window=5m", |body| {
        find(&body["edges"], "source", "service:py-web").is_some_and(|edge| {
            edge["requests"] == traced && edge["metrics"]["requests"] == measured
        })
    })
    .await;
    let edge = find(&graph["edges"], "source", "service:py-web").expect("edge");
    assert_eq!(edge["target"], "service:py-api", "{edge}");
    assert_eq!(edge["derived_from"], "traces_and_metrics", "{edge}");
    assert_eq!(edge["metrics"]["disagrees"], true, "{edge}");
    let edges_from_web = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|edge| edge["source"] == "service:py-web")
        .count();
    assert_eq!(
        edges_from_web, 1,
        "one edge, never a second one for the metrics: {graph:#}"
    );
    app.shutdown().await;
}
