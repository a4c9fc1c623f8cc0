//! End to end: the Python OpenTelemetry SDK sends a system that breaks every rule the audit
//! checks (`tests/python/audit_system.py`: one provider and resource per service, spans
//! parented through contexts, exported over OTLP/HTTP), and `/api/v1/insights` lists a finding
//! of every kind about the services and edges that break it; `?kind=` narrows the list.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::graph_support::graph_config;
use crate::helpers::TestApp;
use crate::helpers::spawn_app_with;

const SYSTEM_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/audit_system.py");
/// Unpaired halves (notify's calls) count once they have waited this long.
const PAIRING_TTL_SECS: u64 = 1;
/// Interpreter start-up, SDK import, export, and the chains' idle time, with a wide margin.
const DEADLINE: Duration = Duration::from_secs(90);

fn send_the_system(app: &TestApp) {
    let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON")
        .expect("CARTOGRAPH_TEST_PYTHON is set by scripts/test.sh (the Python SDK's venv)");
    let status = Command::new(python)
        .arg(SYSTEM_PY)
        .args(["--otlp-endpoint", &app.otlp_http])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run audit_system.py");
    assert!(status.success(), "audit_system.py exited with {status}");
}

/// The findings once every kind in `kinds` is among them.
async fn findings_when_all(app: &TestApp, kinds: &[&str]) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (status, body) = app.get_json("/api/v1/insights?window=5m").await;
        assert_eq!(status, 200, "{body}");
        let findings = body["findings"].as_array().cloned().unwrap_or_default();
        let seen: BTreeSet<&str> = findings
            .iter()
            .filter_map(|finding| finding["kind"].as_str())
            .collect();
        if kinds.iter().all(|kind| seen.contains(kind)) {
            return findings;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "after {DEADLINE:?} missing {:?}: {findings:#?}",
            kinds
                .iter()
                .filter(|kind| !seen.contains(*kind))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn subjects_of<'a>(findings: &'a [Value], kind: &str) -> Vec<Vec<&'a str>> {
    findings
        .iter()
        .filter(|finding| finding["kind"] == kind)
        .map(|finding| {
            finding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_breaking_every_rule_shows_every_finding() {
    let mut config = graph_config(PAIRING_TTL_SECS);
    config.insights.endpoint_patterns = vec!["*.corp.example".to_owned()];
    // The SDK names one instance per service: catalog's 480 calls in a minute or two are over
    // a target of 1/s per instance, the gateway's 40 are not.
    config.insights.max_requests_per_instance = 1.0;
    let app = spawn_app_with(config).await;
    send_the_system(&app);
    let kinds = [
        "shared_database",
        "gateway_bypass",
        "hardcoded_endpoint",
        "deprecated_api_version",
        "unprotected_dependency",
        "retry_storm",
        "timeout_mismatch",
        "orphan_topic",
        "correlation_id_gap",
        "broken_propagation",
        "target_missed",
        "cycle",
        "long_chain",
        "chatty_pair",
        "fan_out",
        "single_point_of_failure",
    ];
    let findings = findings_when_all(&app, &kinds).await;
    let first_subjects = |kind: &str| -> Vec<&str> {
        subjects_of(&findings, kind)
            .into_iter()
            .map(|subjects| subjects[0])
            .collect()
    };
    let has = |kind: &str, subject: &str| {
        subjects_of(&findings, kind)
            .iter()
            .any(|subjects| subjects.contains(&subject))
    };
    assert_eq!(
        first_subjects("shared_database"),
        ["database:postgresql shop-db:5432/shop"]
    );
    assert!(has(
        "shared_database",
        "service:reports -> database:postgresql shop-db:5432/shop"
    ));
    assert_eq!(first_subjects("gateway_bypass"), ["service:reports"]);
    assert_eq!(
        first_subjects("hardcoded_endpoint"),
        [
            "external:10.0.0.7:8080",
            "external:inventory.corp.example:443"
        ]
    );
    assert!(has(
        "deprecated_api_version",
        "service:orders -> service:items"
    ));
    assert!(!has(
        "deprecated_api_version",
        "service:gateway -> service:items"
    ));
    assert!(has(
        "unprotected_dependency",
        "service:gateway -> service:orders"
    ));
    // Each storming edge (critical), then the chain through both (6×, a warning).
    assert_eq!(
        first_subjects("retry_storm"),
        [
            "service:gateway -> service:stock",
            "service:stock -> service:warehouse",
            "service:gateway -> service:stock"
        ]
    );
    assert_eq!(
        first_subjects("timeout_mismatch"),
        ["service:orders -> service:payments"]
    );
    assert_eq!(first_subjects("orphan_topic"), ["topic:kafka orders.audit"]);
    assert_eq!(first_subjects("correlation_id_gap"), ["service:orders"]);
    assert!(has(
        "broken_propagation",
        "service:orders -> service:notify"
    ));
    assert!(has("target_missed", "service:orders -> service:payments"));
    let per_instance: Vec<&Value> = findings
        .iter()
        .filter(|finding| finding["evidence"]["target"] == "requests_per_instance")
        .collect();
    let busiest = per_instance
        .iter()
        .max_by(|a, b| {
            let rate = |finding: &Value| finding["evidence"]["ratio"].as_f64().unwrap_or(0.0);
            rate(a).total_cmp(&rate(b))
        })
        .expect("services over the per-instance target");
    assert_eq!(busiest["subjects"], serde_json::json!(["service:catalog"]));
    assert!(
        !has("target_missed", "service:gateway"),
        "40 calls: under 1/s"
    );
    // Retries along gateway -> stock (3x) -> warehouse (2x): 6x per first try of the gateway.
    let chain = findings
        .iter()
        .find(|finding| finding["kind"] == "retry_storm" && finding["evidence"]["path"].is_array())
        .expect("an amplified chain");
    assert_eq!(
        chain["evidence"]["path"],
        serde_json::json!(["service:gateway", "service:stock", "service:warehouse"])
    );
    assert_eq!(chain["evidence"]["amplification"], 6.0);
    assert!(has("cycle", "service:items -> service:pricing"));
    assert!(has("chatty_pair", "service:gateway -> service:catalog"));
    assert_eq!(first_subjects("fan_out"), ["service:home"]);
    let long = findings
        .iter()
        .find(|finding| finding["kind"] == "long_chain")
        .expect("a long chain");
    assert_eq!(long["example_trace_ids"].as_array().map(Vec::len), Some(1));
    // A finding drawn from the map names stored traces that cross its edges.
    let shared = findings
        .iter()
        .find(|finding| finding["kind"] == "shared_database")
        .expect("a shared database");
    let examples = shared["example_trace_ids"].as_array().expect("examples");
    assert!((1..=3).contains(&examples.len()), "{shared:#}");
    for id in examples {
        let (status, trace) = app.trace(id.as_str().expect("id")).await;
        assert_eq!(status, 200, "{trace}");
        assert!(trace.to_string().contains("shop-db"), "{trace}");
    }
    // Every finding says which rule it breaks and why, in numbers.
    for finding in &findings {
        for field in ["summary", "rule"] {
            assert!(
                finding[field].as_str().is_some_and(|text| !text.is_empty()),
                "{field} of {finding:#}"
            );
        }
    }
    // ?kind= narrows the list to those kinds.
    let (_, narrowed) = app
        .get_json("/api/v1/insights?window=5m&kind=orphan_topic,retry_storm")
        .await;
    let narrowed_kinds: BTreeSet<&str> = narrowed["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|finding| finding["kind"].as_str())
        .collect();
    assert_eq!(
        narrowed_kinds,
        BTreeSet::from(["orphan_topic", "retry_storm"]),
        "{narrowed:#}"
    );
    app.shutdown().await;
}
