//! With the store writer held back, ingest pushes back (429 / RESOURCE_EXHAUSTED with retry
//! hints), says so at /metrics and /health/ready, and stores every acknowledged span once the
//! writer is released.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic_types::StatusExt as _;

use crate::fixtures::{encode, span, trace_request};
use crate::helpers::{spawn_app_with, test_config};

fn spans_from(first_seed: u8, num_spans: u8) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    (first_seed..first_seed + num_spans)
        .map(|seed| span(seed, "GET /orders"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_pushes_back_and_acknowledged_spans_are_all_stored() {
    let mut config = test_config();
    config.pipeline.queue_capacity_items = 100.try_into().expect("non-zero");
    config.pipeline.writer_batch_items = 50.try_into().expect("non-zero");
    config.ingest.retry_after_secs = 3;
    let app = spawn_app_with(config).await;
    let gate = app.app().writer_gate();
    gate.pause();

    let protobuf = [("content-type", "application/x-protobuf")];
    let mut acknowledged = Vec::new();
    for first_seed in [1, 41] {
        let body = encode(&trace_request(Some("orders"), spans_from(first_seed, 40)));
        let response = app.post_otlp("/v1/traces", &protobuf, body).await;
        assert_eq!(response.status().as_u16(), 200);
        acknowledged.extend(first_seed..first_seed + 40);
    }

    let body = encode(&trace_request(Some("orders"), spans_from(81, 40)));
    let response = app.post_otlp("/v1/traces", &protobuf, body).await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");

    let mut client = TraceServiceClient::connect(app.otlp_grpc.clone())
        .await
        .expect("connect");
    let status = client
        .export(trace_request(Some("orders"), spans_from(121, 40)))
        .await
        .expect_err("queue is full");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("queue is full"),
        "{}",
        status.message()
    );
    let retry = status
        .get_details_retry_info()
        .expect("RetryInfo for OTLP exporters");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));

    client
        .export(trace_request(Some("orders"), spans_from(161, 20)))
        .await
        .expect("20 more fit exactly");
    acknowledged.extend(161..181);

    let rejected = "cartograph_rejected_requests_total{signal=\"traces\",reason=\"backpressure\"}";
    assert_eq!(app.prometheus_value(rejected).await, 2.0);
    assert_eq!(
        app.prometheus_value("cartograph_pipeline_queue_items")
            .await,
        100.0
    );
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(status, 503);
    assert!(
        ready["failing"][0]
            .as_str()
            .expect("reason")
            .contains("queue"),
        "{ready}"
    );

    gate.resume();
    app.wait_until_stored().await;
    for seed in &acknowledged {
        let (status, _) = app.trace(&format!("{seed:02x}").repeat(16)).await;
        assert_eq!(status, 200, "acknowledged span {seed} was stored");
    }
    let (status, _) = app.trace(&format!("{:02x}", 81).repeat(16)).await;
    assert_eq!(status, 404, "refused spans are not stored");
    let stored = app
        .prometheus_value("cartograph_stored_items_total{signal=\"traces\"}")
        .await;
    assert_eq!(
        stored,
        acknowledged.len() as f64,
        "each acknowledged span stored once"
    );
    let (status, _) = app.get_json("/health/ready").await;
    assert_eq!(status, 200);
}
