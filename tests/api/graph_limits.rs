//! Live graph state stays bounded: a flood of halves that never pair cannot grow the pending
//! store past `graph.max_pending_spans`; the overflow is counted and still shows on the map
//! (the oldest halves are let go as unpaired calls, not silently dropped).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use crate::fixtures::{encode, span, trace_request};
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
