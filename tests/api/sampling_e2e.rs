//! End to end: the Python OpenTelemetry SDK sends traces sampled at 25 % by a consistent
//! probability sampler that writes `ot=th:c` into tracestate (`tests/python/sampled.py`). The
//! edge and the called service count 4 calls for each received one (`requests`), keep the
//! received number (`observed_requests`), and the pages say the figures are estimates.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::graph_support::graph_config;
use crate::helpers::{TestApp, spawn_app_with};

const SAMPLED_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sampled.py");
/// Both halves of every call arrive; unpaired halves would only add waiting.
const PAIRING_TTL_SECS: u64 = 2;
/// Interpreter start-up, SDK import and the exports, with a wide margin.
const DEADLINE: Duration = Duration::from_secs(90);
/// `th:c`: 75 % of traces rejected, each kept one stands for 4.
const ADJUSTED_COUNT: u64 = 4;

/// What the script reports having sent.
struct Sent {
    calls: u64,
    sampled: u64,
    sampled_failed: u64,
}

fn send_sampled_traces(app: &TestApp) -> Sent {
    let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON")
        .expect("CARTOGRAPH_TEST_PYTHON is set by scripts/test.sh (the Python SDK's venv)");
    let output = Command::new(python)
        .arg(SAMPLED_PY)
        .args(["--otlp-endpoint", &app.otlp_http])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run sampled.py");
    assert!(
        output.status.success(),
        "sampled.py exited with {}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("sampled.py prints JSON");
    let count = |field: &str| report[field].as_u64().expect(field);
    Sent {
        calls: count("calls"),
        sampled: count("sampled"),
        sampled_failed: count("sampled_failed"),
    }
}

/// The web → pay edge once every sampled call has been counted on it.
async fn edge_when_counted(app: &TestApp, sampled: u64) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = app.get_json("/api/v1/graph?window=15m").await;
        assert_eq!(status, 200, "{body}");
        let edge = body["edges"].as_array().and_then(|edges| {
            edges
                .iter()
                .find(|edge| {
                    edge["source"] == "service:sampled-web"
                        && edge["target"] == "service:sampled-pay"
                })
                .cloned()
        });
        if let Some(edge) = edge.filter(|edge| edge["observed_requests"] == sampled) {
            return edge;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "after {DEADLINE:?} the edge has not counted {sampled} calls: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_sampled_at_a_quarter_count_four_times_what_arrived() {
    let app = spawn_app_with(graph_config(PAIRING_TTL_SECS)).await;
    let sent = send_sampled_traces(&app);
    assert!(
        sent.sampled > 0 && sent.sampled < sent.calls,
        "the sampler kept {} of {}",
        sent.sampled,
        sent.calls
    );

    let edge = edge_when_counted(&app, sent.sampled).await;
    assert_eq!(edge["requests"], ADJUSTED_COUNT * sent.sampled, "{edge:#}");
    assert_eq!(
        edge["errors"],
        ADJUSTED_COUNT * sent.sampled_failed,
        "{edge:#}"
    );
    assert_eq!(edge["observed_share"], 0.25, "{edge:#}");
    // The estimate is near what was really called: a quarter kept, give or take chance.
    let estimate = edge["requests"].as_u64().expect("requests") as f64;
    let calls = sent.calls as f64;
    assert!(
        (estimate - calls).abs() / calls < 0.3,
        "{estimate} for {calls} calls"
    );

    let (status, services) = app.get_json("/api/v1/services?window=15m").await;
    assert_eq!(status, 200, "{services}");
    let pay = services["services"]
        .as_array()
        .and_then(|all| all.iter().find(|service| service["name"] == "sampled-pay"))
        .unwrap_or_else(|| panic!("sampled-pay in {services:#}"));
    assert_eq!(pay["requests"], ADJUSTED_COUNT * sent.sampled, "{pay:#}");
    assert_eq!(pay["observed_requests"], sent.sampled, "{pay:#}");
    assert_eq!(
        pay["errors"],
        ADJUSTED_COUNT * sent.sampled_failed,
        "{pay:#}"
    );

    // Both spans of every kept call were weighed; none had a malformed threshold.
    let weighted = app
        .prometheus_value("cartograph_graph_sampled_spans_total")
        .await;
    assert_eq!(weighted, (2 * sent.sampled) as f64);
    let malformed = app
        .prometheus_value("cartograph_graph_malformed_tracestate_total")
        .await;
    assert_eq!(malformed, 0.0);

    // The pages say the counts are estimates, and from how much of the traffic.
    let note = "≈ estimated from 25 % of traces";
    let (status, page) = app
        .get_text("/edges/service%3Asampled-web/service%3Asampled-pay?window=15m")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains(note), "edge page: {page}");
    assert!(
        page.contains(&format!(
            "≈ {} ({} received)",
            ADJUSTED_COUNT * sent.sampled,
            sent.sampled
        )),
        "edge page: {page}"
    );
    let (status, page) = app.get_text("/services/sampled-pay?window=15m").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(note), "service page: {page}");
    let (status, map) = app.get_text("/?window=15m").await;
    assert_eq!(status, 200);
    assert!(
        map.contains(note),
        "the edge's and node's hover text on the map: {map}"
    );
    assert!(map.contains("≈ "), "estimated rates marked on the map");
}
