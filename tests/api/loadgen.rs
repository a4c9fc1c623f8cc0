//! `cartograph loadgen` against a running Cartograph whose writer is held back part of the
//! time, so some requests are refused: what loadgen counts must reconcile with `/metrics`
//! (requests sent = counted, refused requests = counted refusals, accepted spans = counted),
//! and every accepted span is stored. A full queue refuses a request before decoding it, so
//! the server counts refused requests, not the spans in them.

use std::time::Duration;

use cartograph::loadgen::{self, LoadReport, LoadSettings, Protocol, Shape};

use crate::helpers::{TestApp, spawn_app_with, test_config};

async fn run_load(app: &TestApp, protocol: Protocol) -> LoadReport {
    let endpoint = match protocol {
        Protocol::Grpc => app.otlp_grpc.clone(),
        Protocol::Http => app.otlp_http.clone(),
    };
    loadgen::run(LoadSettings {
        endpoint,
        protocol,
        rate_spans_per_sec: 40_000,
        duration: Duration::from_millis(1500),
        concurrency: 2,
        shape: Shape {
            num_services: 5,
            spans_per_trace: 6,
            spans_per_request: 120,
            seed: 3,
        },
    })
    .await
    .expect("load runs")
}

/// What both runs sent, as loadgen counted it.
#[derive(Default)]
struct Totals {
    num_requests: u64,
    num_spans_sent: u64,
    num_spans_accepted: u64,
    num_spans_refused: u64,
    num_requests_refused: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_counts_reconcile_with_metrics_over_grpc_and_http() {
    let mut config = test_config();
    config.pipeline.queue_capacity_items = 6_000.try_into().expect("non-zero");
    config.pipeline.writer_batch_items = 1_000.try_into().expect("non-zero");
    let app = spawn_app_with(config).await;
    let gate = app.app().writer_gate();

    let mut total = Totals::default();
    for protocol in [Protocol::Grpc, Protocol::Http] {
        // Held back for the whole run: the queue fills and the rest is refused.
        gate.pause();
        let report = run_load(&app, protocol).await;
        gate.resume();
        assert_eq!(report.num_requests_failed, 0, "{}", report.render());
        assert!(report.num_spans_accepted > 0, "{}", report.render());
        assert!(report.num_spans_refused > 0, "{}", report.render());
        let refusal = match protocol {
            Protocol::Grpc => "ResourceExhausted",
            Protocol::Http => "429",
        };
        assert_eq!(
            report.refused_requests.keys().collect::<Vec<_>>(),
            [refusal],
            "{}",
            report.render()
        );
        assert_eq!(
            report.num_spans_sent,
            report.num_spans_accepted + report.num_spans_refused,
            "{}",
            report.render()
        );
        total.num_requests += report.num_requests;
        total.num_spans_sent += report.num_spans_sent;
        total.num_spans_accepted += report.num_spans_accepted;
        total.num_spans_refused += report.num_spans_refused;
        total.num_requests_refused += report.refused_requests.values().sum::<u64>();
        app.wait_until_stored().await;
    }

    let metric = |name: &str| format!("cartograph_{name}{{signal=\"traces\"}}");
    let backpressure =
        "cartograph_rejected_requests_total{signal=\"traces\",reason=\"backpressure\"}";
    assert_eq!(
        app.prometheus_value(&metric("otlp_requests_total")).await as u64,
        total.num_requests
    );
    let received = app.prometheus_value(&metric("received_items_total")).await as u64;
    assert!(received >= total.num_spans_accepted, "{received}");
    assert!(received <= total.num_spans_sent, "{received}");
    assert_eq!(
        app.prometheus_value(&metric("accepted_items_total")).await as u64,
        total.num_spans_accepted
    );
    assert_eq!(
        app.prometheus_value(backpressure).await as u64,
        total.num_requests_refused
    );
    assert_eq!(
        app.prometheus_value(&metric("stored_items_total")).await as u64,
        total.num_spans_accepted
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_span_storage_off_the_map_fills_and_no_span_is_stored() {
    let mut config = crate::graph_support::graph_config(1);
    config.storage.store_spans = false;
    let app = spawn_app_with(config).await;
    let report = run_load(&app, Protocol::Grpc).await;
    assert_eq!(
        report.num_spans_accepted,
        report.num_spans_sent,
        "{}",
        report.render()
    );
    let started = std::time::Instant::now();
    loop {
        let (_, graph) = app.get_json("/api/v1/graph?window=5m").await;
        let calls: u64 = graph["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter(|edge| {
                edge["source"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("service:"))
            })
            .filter_map(|edge| edge["requests"].as_u64())
            .sum();
        if calls > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no calls mapped: {graph:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, found) = app.search_traces("service=load-service-000").await;
    assert_eq!(
        found["traces"].as_array().map(Vec::len),
        Some(0),
        "{found:#}"
    );
    assert_eq!(
        app.prometheus_value("cartograph_stored_items_total{signal=\"traces\"}")
            .await,
        0.0
    );
    app.shutdown().await;
}
