//! The dependency map built from OTLP/JSON fixtures (`tests/fixtures/graph/`, described in its
//! README): exact nodes, edges, request and error counts for each way two spans can (or cannot)
//! pair, and latency percentiles against exactly known durations.

use std::time::Duration;

use crate::graph_support::{
    LIVE, assert_close, assert_graph_settles, database, edge, expect_graph, external, external_at,
    find_edge, http_pair_graph, kafka_graph, load_fixture, post_fixture, post_request, service,
    settle_time, spawn_graph_app, topic, unknown_caller, user,
};

/// Short, so the tests that need unpaired halves to expire finish quickly.
const SHORT_TTL_SECS: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_client_and_server_span_make_one_http_edge() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "http_pair").await;
    let expected = http_pair_graph();
    assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_client_and_server_span_make_one_grpc_edge() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "grpc_pair").await;
    let expected = expect_graph(
        &[service("cart"), service("pricing")],
        vec![
            edge(&service("cart"), &service("pricing"), "grpc", 2, 1)
                .with("client_only", 0)
                .with("server_only", 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_of_a_call_pair_across_requests_seconds_apart_in_either_order() {
    // Longer than the gap between the two requests, shorter than the default to keep this quick.
    const TTL_SECS: u64 = 5;
    let app = spawn_graph_app(TTL_SECS).await;
    let [first, second] = <[_; 2]>::try_from(load_fixture("reverse_order")).expect("two parts");
    // Call A's server span and call B's client span; then, 2 s later, the other halves.
    post_request(&app, &first).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    post_request(&app, &second).await;
    let expected = expect_graph(
        &[service("checkout"), service("payments")],
        vec![
            edge(&service("checkout"), &service("payments"), "http", 2, 0)
                .with("client_only", 0)
                .with("server_only", 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_spans_whose_server_never_reports_become_edges_to_external_peers() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "uninstrumented_peers").await;
    let checkout = service("checkout");
    let stripe = external_at("api.stripe.com", 443);
    let expected = expect_graph(
        &[
            checkout.clone(),
            external("fraud-check"),
            stripe.clone(),
            external("geo"),
        ],
        vec![
            // peer.service wins over the server.address the same spans carry.
            edge(&checkout, &external("fraud-check"), "http", 2, 0).with("client_only", 2),
            edge(&checkout, &stripe, "http", 1, 1).with("client_only", 1),
            // service.peer.name (the newer name of peer.service) wins over server.address too.
            edge(&checkout, &external("geo"), "grpc", 1, 0).with("client_only", 1),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_database_is_its_own_node() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "databases").await;
    let orders_db = database("postgresql", Some(("orders-db", 5432)), Some("orders"));
    // db.name is the older name of db.namespace.
    let users_db = database("postgresql", Some(("users-db", 5432)), Some("users"));
    let catalog_db = database("sqlite", None, Some("catalog.db"));
    let expected = expect_graph(
        &[
            service("orders"),
            service("users"),
            service("catalog"),
            orders_db.clone(),
            users_db.clone(),
            catalog_db.clone(),
        ],
        vec![
            // db.system.name (current semantic conventions) ...
            edge(&service("orders"), &orders_db, "database", 3, 1),
            // ... and db.system (older ones) name the same kind of node.
            edge(&service("users"), &users_db, "database", 2, 0),
            edge(&service("catalog"), &catalog_db, "database", 1, 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_topic_sits_between_producer_and_each_consumer_group_by_parent() {
    kafka_topic_sits_between_producer_and_consumers("kafka_by_parent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_topic_sits_between_producer_and_each_consumer_group_by_links() {
    kafka_topic_sits_between_producer_and_consumers("kafka_by_links").await;
}

async fn kafka_topic_sits_between_producer_and_consumers(fixture: &str) {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, fixture).await;
    let expected = kafka_graph();
    let graph = assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    let orders_created = topic("kafka", "order-created");
    // Consumers start 10 ms (billing) and 30 ms (shipping) after the publish ends.
    for (consumer, delay_ms) in [("billing", 10.0), ("shipping", 30.0)] {
        let delivery = find_edge(&graph, &orders_created, &service(consumer));
        assert_close(delivery, "publish_consume_p95_ms", delay_ms, 0.01);
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_server_spans_hang_off_the_user_client_node() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "root_span").await;
    let expected = expect_graph(
        &[user(), service("frontend"), service("catalog")],
        vec![
            edge(&user(), &service("frontend"), "http", 4, 1),
            // catalog's server spans have a parent: they are not roots.
            edge(&service("frontend"), &service("catalog"), "http", 4, 0)
                .with("client_only", 0)
                .with("server_only", 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_whose_parent_never_arrives_still_counts() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "missing_parent").await;
    let expected = expect_graph(
        &[
            unknown_caller(),
            service("payments"),
            service("orders"),
            service("stock"),
        ],
        vec![
            // The caller never reported: the call is counted once the server half expires.
            edge(&unknown_caller(), &service("payments"), "http", 1, 0).with("server_only", 1),
            // The client's own parent never reported; its call to stock is complete regardless.
            edge(&service("orders"), &service("stock"), "http", 1, 0)
                .with("client_only", 0)
                .with("server_only", 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_percentiles_are_within_one_percent_and_error_rate_is_exact() {
    let app = spawn_graph_app(SHORT_TTL_SECS).await;
    post_fixture(&app, "percentiles").await;
    let (checkout, payments) = (service("checkout"), service("payments"));
    let expected = expect_graph(
        &[checkout.clone(), payments.clone()],
        vec![
            edge(&checkout, &payments, "http", 100, 7)
                .with("retries", 3)
                .with("client_only", 0)
                .with("server_only", 0),
        ],
    );
    let graph = assert_graph_settles(&app, LIVE, &expected, settle_time(SHORT_TTL_SECS)).await;
    let calls = find_edge(&graph, &checkout, &payments);
    assert_eq!(calls["error_rate"].as_f64(), Some(0.07), "{calls}");
    assert_eq!(calls["calls_per_trace"].as_f64(), Some(1.0), "{calls}");
    // Durations are 1..100 ms with ties at each percentile's rank (see make_graph_fixtures.py);
    // server spans are 0.5 ms shorter than their client spans.
    for (percentile, client_ms) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
        assert_close(calls, &format!("client_{percentile}_ms"), client_ms, 0.01);
        assert_close(
            calls,
            &format!("server_{percentile}_ms"),
            client_ms - 0.5,
            0.01,
        );
    }
    app.shutdown().await;
}
