//! The demo shop at ten times its schedule against an in-memory Cartograph: within 10 s the
//! map shows every service, both databases, the topic with both consumer groups and the
//! payment provider; within the next minute the payments breaker has opened and closed again
//! and consumer lag has grown and drained — all read from the APIs a user's browser reads.
//! The audit finds the shared database, the orphaned audit topic, the old API version and more.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cartograph::demo::{self, DemoSettings, SERVICES};
use serde_json::Value;

use crate::graph_support::{database, external, service, spawn_graph_app, topic};
use crate::helpers::TestApp;

const MAP_DEADLINE: Duration = Duration::from_secs(10);
/// Two minutes of schedule at ten times speed is 12 s; the rest is margin for a loaded machine.
const TROUBLE_DEADLINE: Duration = Duration::from_secs(60);

fn expected_nodes() -> BTreeSet<String> {
    let mut nodes: BTreeSet<String> = SERVICES.iter().map(|name| service(name)).collect();
    nodes.insert(database(
        "postgresql",
        Some(("orders-db", 5432)),
        Some("orders"),
    ));
    nodes.insert(database("redis", Some(("users-cache", 6379)), Some("0")));
    nodes.insert(topic("kafka", demo::TOPIC));
    nodes.insert(topic("kafka", demo::AUDIT_TOPIC));
    nodes.insert(external("payment-provider"));
    nodes
}

fn ids(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_whole_shop_then_a_breaker_cycle_and_lag_that_drains() {
    let app = spawn_graph_app(2).await;
    let started = Instant::now();
    let shop = demo::spawn(DemoSettings {
        endpoint: app.otlp_grpc.clone(),
        orders_per_sec: 20.0,
        duration_opt: Some(TROUBLE_DEADLINE),
        seed: 7,
        speed: 10.0,
        access: demo::ExporterAccess::default(),
    })
    .expect("demo starts");

    let expected = expected_nodes();
    let topic_id = topic("kafka", demo::TOPIC);
    loop {
        let (_, graph) = app.get_json("/api/v1/graph?window=5m").await;
        let nodes = ids(&graph["nodes"], "id");
        let consumers: BTreeSet<String> = graph["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|edge| edge["source"] == topic_id.as_str())
            .filter_map(|edge| edge["target"].as_str().map(str::to_owned))
            .collect();
        let (_, kafka) = app.get_json("/api/v1/kafka?window=5m").await;
        let groups = ids(&kafka["groups"], "group");
        if expected.is_subset(&nodes)
            && consumers == BTreeSet::from([service("inventory"), service("notifications")])
            && groups == BTreeSet::from(["inventory".to_owned(), "notifications".to_owned()])
        {
            break;
        }
        assert!(
            started.elapsed() < MAP_DEADLINE,
            "after {MAP_DEADLINE:?}: missing nodes {:?}, consumers {consumers:?}, lag groups {groups:?}",
            expected.difference(&nodes).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    assert_the_audit_finds_what_the_shop_does_wrong(&app).await;

    let mut peak_lag = 0.0_f64;
    let mut has_drained = false;
    let mut breaker_cycled = false;
    while !(has_drained && breaker_cycled) {
        assert!(
            started.elapsed() < TROUBLE_DEADLINE,
            "after {TROUBLE_DEADLINE:?}: peak lag {peak_lag}, drained {has_drained}, breaker cycled {breaker_cycled}"
        );
        let (_, kafka) = app.get_json("/api/v1/kafka?window=5m").await;
        let lag: f64 = kafka["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|group| group["lag"].as_f64())
            .sum();
        peak_lag = peak_lag.max(lag);
        has_drained |= peak_lag >= 20.0 && lag <= peak_lag / 4.0;

        let (_, breakers) = app.get_json("/api/v1/breakers?window=5m").await;
        let payments = breakers["breakers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|breaker| breaker["service"] == "orders" && breaker["name"] == "payments");
        if let Some(breaker) = payments {
            assert_eq!(
                breaker["edge"]["target"],
                service("payments").as_str(),
                "{breaker:#}"
            );
            let states: Vec<&str> = breaker["transitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|transition| transition["to"].as_str())
                .collect();
            let opened = states.iter().position(|state| *state == "open");
            breaker_cycled = opened.is_some_and(|at| states[at..].contains(&"closed"))
                && breaker["short_circuited"]
                    .as_u64()
                    .is_some_and(|count| count > 0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let orders = tokio::task::spawn_blocking(move || shop.stop())
        .await
        .expect("join")
        .expect("demo ran");
    assert!(orders > 0);
    app.shutdown().await;
}

/// The shop shares orders' database with inventory, writes an audit topic nobody reads, keeps
/// notifications on v1 of the users API the gateway left for v2, and misses latency targets: at least four kinds of findings, in the API and on the audit page.
async fn assert_the_audit_finds_what_the_shop_does_wrong(app: &TestApp) {
    let started = Instant::now();
    let orders_db = database("postgresql", Some(("orders-db", 5432)), Some("orders"));
    let audit_topic = topic("kafka", demo::AUDIT_TOPIC);
    loop {
        let (status, insights) = app.get_json("/api/v1/insights?window=5m").await;
        assert_eq!(status, 200, "{insights}");
        let findings = insights["findings"].as_array().cloned().unwrap_or_default();
        let about = |kind: &str, subject: &str| {
            findings.iter().any(|finding| {
                finding["kind"] == kind
                    && finding["subjects"]
                        .as_array()
                        .is_some_and(|subjects| subjects.iter().any(|s| s == subject))
            })
        };
        let kinds: BTreeSet<&str> = findings
            .iter()
            .filter_map(|finding| finding["kind"].as_str())
            .collect();
        if about("shared_database", &orders_db)
            && about("orphan_topic", &audit_topic)
            && about("deprecated_api_version", &service("users"))
            && kinds.len() >= 4
        {
            let (status, page) = app.get_text("/insights?window=5m").await;
            assert_eq!(status, 200);
            for heading in ["shared database", "orphan topic", "Scorecard"] {
                assert!(page.contains(heading), "the audit page shows {heading}");
            }
            return;
        }
        assert!(
            started.elapsed() < MAP_DEADLINE,
            "after {MAP_DEADLINE:?} the audit found {kinds:?}: {findings:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_reaches_an_instance_with_tls_and_a_token() {
    let ca = crate::tls_support::TestCa::new();
    let mut config = crate::helpers::test_config();
    config.tls.cert_file = ca.cert_file.clone();
    config.tls.key_file = ca.key_file.clone();
    config.tls.ui = false;
    config.security.ingest_tokens = vec!["demo-token".to_owned()];
    config.alerts.enabled = false;
    let app = crate::helpers::spawn_app_with(config).await;
    let shop = demo::spawn(DemoSettings {
        endpoint: app.otlp_grpc.clone(),
        orders_per_sec: 20.0,
        duration_opt: Some(Duration::from_secs(2)),
        seed: 7,
        speed: 10.0,
        access: demo::ExporterAccess {
            token: Some(cartograph::auth::Secret("demo-token".to_owned())),
            ca_pem: Some(ca.ca_pem.clone().into_bytes()),
            tls_domain: Some("localhost".to_owned()),
        },
    })
    .expect("demo starts");
    let orders = tokio::task::spawn_blocking(move || shop.wait())
        .await
        .expect("join")
        .expect("the demo ran");
    assert!(orders > 0);
    app.wait_until_stored().await;
    let (_, found) = app.search_traces("service=gateway&limit=5").await;
    assert!(
        found["traces"]
            .as_array()
            .is_some_and(|traces| !traces.is_empty()),
        "the demo's traces arrived over TLS with the token: {found}"
    );
    assert_eq!(
        app.prometheus_value("cartograph_unauthenticated_requests_total")
            .await,
        0.0
    );
    app.shutdown().await;
}
