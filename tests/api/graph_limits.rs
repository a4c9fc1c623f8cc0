//! Live graph state stays bounded: a flood of halves that never pair cannot grow the pending
//! store past `graph.max_pending_spans`; the overflow is counted and still shows on the map
//! (the oldest halves are let go as unpaired calls, not silently dropped); a flood of unique
//! operation names is capped per minute and the overflow counted, every span still stored; a
//! flood of unique Kafka lag series and breaker names (label cardinality) is capped at the
//! configured counts, the rest counted, every point still stored.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use crate::fixtures::{encode, span, string_attr, trace_request};
use crate::graph_support::{
    LIVE, assert_graph_settles, edge, expect_graph, graph_config, service, unknown_caller,
};
use crate::helpers::spawn_app_with;

const MAX_PENDING: usize = 100;
const NUM_BATCHES: u64 = 10;
const SPANS_PER_BATCH: u64 = 100;
/// Long enough that nothing expires during the test: only the size limit lets halves go.
const TTL_SECS: u64 = 600;
const FEED_WAIT: Duration = Duration::from_secs(20);

/// Server spans whose callers never report: each waits for a client span that never comes.
fn orphan_servers(batch: u64) -> Vec<u8> {
    let spans = (0..SPANS_PER_BATCH)
        .map(|i| {
            let number = batch * SPANS_PER_BATCH + i + 1;
            let mut orphan = span(1, "GET /flood");
            orphan.trace_id = u128::from(number).to_be_bytes().to_vec();
            orphan.span_id = (number << 1).to_be_bytes().to_vec();
            orphan.parent_span_id = ((number << 1) | 1).to_be_bytes().to_vec();
            orphan
        })
        .collect();
    encode(&trace_request(Some("flood"), spans))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unpaired_spans_never_exceeds_the_pending_limit() {
    let mut config = graph_config(TTL_SECS);
    config.graph.max_pending_spans = NonZeroUsize::new(MAX_PENDING).expect("non-zero");
    let app = spawn_app_with(config).await;
    let protobuf = [("content-type", "application/x-protobuf")];
    for batch in 0..NUM_BATCHES {
        let response = app
            .post_otlp("/v1/traces", &protobuf, orphan_servers(batch))
            .await;
        assert_eq!(response.status().as_u16(), 200, "batch {batch}");
        let pending = app.prometheus_value("cartograph_graph_pending_spans").await;
        assert!(
            pending <= MAX_PENDING as f64,
            "{pending} pending after batch {batch}"
        );
    }

    let num_spans = (NUM_BATCHES * SPANS_PER_BATCH) as f64;
    let started = Instant::now();
    while app.prometheus_value("cartograph_graph_spans_total").await < num_spans {
        assert!(
            started.elapsed() < FEED_WAIT,
            "the engine did not see every span"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let num_evicted = num_spans - MAX_PENDING as f64;
    assert_eq!(
        app.prometheus_value("cartograph_graph_pending_spans").await,
        MAX_PENDING as f64
    );
    assert_eq!(
        app.prometheus_value("cartograph_graph_evicted_total").await,
        num_evicted
    );
    assert_eq!(
        app.prometheus_value("cartograph_graph_expired_total").await,
        0.0
    );

    // Every evicted half is on the map as a server-only call from the unknown caller.
    let num_evicted = num_evicted as u64;
    let expected = expect_graph(
        &[unknown_caller(), service("flood")],
        vec![
            edge(&unknown_caller(), &service("flood"), "http", num_evicted, 0)
                .with("server_only", num_evicted),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, Duration::ZERO).await;
    app.shutdown().await;
}

/// Root server spans of one service, each with an operation name never seen before.
fn unique_operations(batch: u64, per_batch: u64) -> Vec<u8> {
    let spans = (0..per_batch)
        .map(|i| {
            let number = batch * per_batch + i + 1;
            let mut root = span(1, &format!("GET /item/{number}"));
            root.trace_id = u128::from(number).to_be_bytes().to_vec();
            root.span_id = (number << 1).to_be_bytes().to_vec();
            root.parent_span_id = Vec::new();
            root
        })
        .collect();
    encode(&trace_request(Some("cardinality"), spans))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unique_operation_names_is_bounded_and_counted() {
    const BATCHES: u64 = 25;
    const PER_BATCH: u64 = 1_000;
    /// The engine's per-minute limit of (service, operation) pairs.
    const PER_MINUTE: u64 = 10_000;
    let app = spawn_app_with(graph_config(1)).await;
    let protobuf = [("content-type", "application/x-protobuf")];
    for batch in 0..BATCHES {
        let response = app
            .post_otlp("/v1/traces", &protobuf, unique_operations(batch, PER_BATCH))
            .await;
        assert_eq!(response.status().as_u16(), 200, "batch {batch}");
    }
    let total = (BATCHES * PER_BATCH) as f64;
    let started = Instant::now();
    while app.prometheus_value("cartograph_graph_spans_total").await < total {
        assert!(started.elapsed() < FEED_WAIT, "the engine saw every span");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 25,000 names cannot fit in at most two minutes of 10,000 each: some are counted only.
    let over = app
        .prometheus_value("cartograph_graph_spans_over_operation_limit_total")
        .await;
    assert!(over > 0.0, "the overflow is counted");
    app.wait_until_stored().await;
    let (status, body) = app.get_json("/api/v1/services/cardinality").await;
    assert_eq!(status, 200, "{body}");
    let operations = body["operations"].as_array().map_or(0, Vec::len) as u64;
    assert!(
        operations <= 2 * PER_MINUTE
            && operations + over as u64 >= BATCHES * PER_BATCH - PER_MINUTE,
        "{operations} operations kept, {over} counted over the limit"
    );
    let (_, found) = app.search_traces("service=cardinality&limit=5").await;
    assert_eq!(
        found["traces"].as_array().map(Vec::len),
        Some(5),
        "every span is stored"
    );
    app.shutdown().await;
}

/// Lag points for `count` consumer groups never seen before, and as many breaker states with
/// new names.
fn unique_signal_series(batch: u64, count: u64) -> Vec<u8> {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, metric, number_data_point,
    };
    use prost::Message as _;
    let now = crate::fixtures::now_nanos();
    let points = |attributes: &dyn Fn(u64) -> Vec<KeyValue>| -> Vec<NumberDataPoint> {
        (0..count)
            .map(|i| NumberDataPoint {
                time_unix_nano: now,
                value: Some(number_data_point::Value::AsDouble(1.0)),
                attributes: attributes(batch * count + i),
                ..NumberDataPoint::default()
            })
            .collect()
    };
    let gauge = |name: &str, data_points| Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Gauge(Gauge { data_points })),
        ..Metric::default()
    };
    let mut request = crate::fixtures::gauge_request("flood", "unused", &[]);
    request.resource_metrics[0].scope_metrics[0].metrics = vec![
        gauge(
            "kafka.consumer_group.lag",
            points(&|n| {
                vec![
                    string_attr("group", &format!("group-{n}")),
                    string_attr("topic", "orders"),
                    string_attr("partition", "0"),
                ]
            }),
        ),
        gauge(
            "circuit_breaker.state",
            points(&|n| vec![string_attr("name", &format!("breaker-{n}"))]),
        ),
    ];
    request.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unique_lag_and_breaker_series_is_bounded_and_counted() {
    const BATCHES: u64 = 20;
    const PER_BATCH: u64 = 1_000;
    const MAX_LAG_SERIES: usize = 500;
    const MAX_BREAKERS: usize = 50;
    let mut config = graph_config(1);
    config.signals.max_lag_series = NonZeroUsize::new(MAX_LAG_SERIES).expect("non-zero");
    config.signals.max_breakers = NonZeroUsize::new(MAX_BREAKERS).expect("non-zero");
    let app = spawn_app_with(config).await;
    let protobuf = [("content-type", "application/x-protobuf")];
    for batch in 0..BATCHES {
        let response = app
            .post_otlp(
                "/v1/metrics",
                &protobuf,
                unique_signal_series(batch, PER_BATCH),
            )
            .await;
        assert_eq!(response.status().as_u16(), 200, "batch {batch}");
    }
    let sent = (BATCHES * PER_BATCH) as f64;
    assert_eq!(
        app.prometheus_value("cartograph_signal_lag_series").await,
        MAX_LAG_SERIES as f64
    );
    assert_eq!(
        app.prometheus_value("cartograph_signal_breakers").await,
        MAX_BREAKERS as f64
    );
    let over = app
        .prometheus_value("cartograph_signal_points_rejected_total{reason=\"too_many_series\"}")
        .await;
    assert_eq!(
        over,
        2.0 * sent - (MAX_LAG_SERIES + MAX_BREAKERS) as f64,
        "every point beyond the limits is counted"
    );
    let (status, kafka) = app.get_json("/api/v1/kafka").await;
    assert_eq!(status, 200);
    assert!(
        kafka["groups"].as_array().map_or(0, Vec::len) <= MAX_LAG_SERIES,
        "the Kafka view is bounded too"
    );
    app.wait_until_stored().await;
    assert_eq!(
        app.prometheus_value("cartograph_stored_items_total{signal=\"metrics\"}")
            .await,
        2.0 * sent,
        "every point is stored all the same"
    );
    app.shutdown().await;
}
