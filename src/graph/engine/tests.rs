//! The engine's rules, one test each, through the public API.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::*;
use crate::graph::fixtures::{MILLI, MINUTE, SECOND, SpanBuilder, T0, placed_resource, span};
use crate::graph::window::{WindowEdge, WindowOperation};
use crate::model::graph::{EdgeKind, MAX_OPERATION_SPLITS, NodeKey, OTHER_OPERATIONS};
use crate::model::{MinuteRange, SpanKind, UnixMinute};

/// Processing time of the first batch: one second into the minute of [`T0`].
const NOW: u64 = T0 + SECOND;
/// Long enough for every pending half to expire.
const AFTER_TTL: u64 = NOW + 11 * SECOND;

fn engine() -> GraphEngine {
    GraphEngine::new(GraphSettings::default())
}

fn ingest(engine: &mut GraphEngine, spans: Vec<SpanBuilder>, now_unix_nano: u64) {
    let spans = spans.into_iter().map(SpanBuilder::graph).collect();
    engine.ingest(spans, now_unix_nano);
}

fn all_edges(engine: &GraphEngine) -> Vec<WindowEdge> {
    engine.edges(MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)))
}

/// The one edge from `source` to `target` (API ids), over every minute in memory.
fn edge(engine: &GraphEngine, source: &str, target: &str) -> WindowEdge {
    let matching: Vec<WindowEdge> = all_edges(engine)
        .into_iter()
        .filter(|edge| edge.key.source.id() == source && edge.key.target.id() == target)
        .collect();
    let ids: Vec<String> = all_edges(engine)
        .iter()
        .map(|edge| format!("{} -> {}", edge.key.source.id(), edge.key.target.id()))
        .collect();
    assert_eq!(matching.len(), 1, "edge {source} -> {target} among {ids:?}");
    matching.into_iter().next().expect("one edge")
}

fn http_client(service: &str, trace_no: u64, span_no: u64) -> SpanBuilder {
    span(service, SpanKind::Client, trace_no, span_no)
        .http()
        .timed(0, 30 * MILLI)
}

fn http_server(service: &str, trace_no: u64, span_no: u64, parent_no: u64) -> SpanBuilder {
    span(service, SpanKind::Server, trace_no, span_no)
        .parent(parent_no)
        .http()
        .timed(5 * MILLI, 20 * MILLI)
}

#[test]
fn http_client_and_server_pair_into_one_call_with_both_latencies() {
    let mut engine = engine();
    ingest(
        &mut engine,
        vec![http_client("web", 1, 1), http_server("orders", 1, 2, 1)],
        NOW,
    );

    let call = edge(&engine, "service:web", "service:orders");
    assert_eq!(call.key.kind, EdgeKind::Http);
    assert_eq!(call.stats.num_requests, 1);
    assert_eq!(call.stats.num_errors, 0);
    assert_eq!(call.stats.num_client_only + call.stats.num_server_only, 0);
    assert_eq!(call.stats.client_latency.max_nanos(), 30 * MILLI);
    assert_eq!(call.stats.server_latency.max_nanos(), 20 * MILLI);
    assert_eq!(engine.counters().pairing.num_paired, 1);
    assert_eq!(engine.counters().pairing.num_pending, 0);
}

#[test]
fn grpc_pairs_and_the_server_kind_fills_in_for_an_unknown_client_kind() {
    let mut engine = engine();
    let client = span("web", SpanKind::Client, 1, 1).grpc();
    let server = span("cart", SpanKind::Server, 1, 2).parent(1).grpc();
    let bare_client = span("web", SpanKind::Client, 2, 1);
    let grpc_server = span("cart", SpanKind::Server, 2, 2).parent(1).grpc();
    ingest(
        &mut engine,
        vec![client, server, bare_client, grpc_server],
        NOW,
    );

    let call = edge(&engine, "service:web", "service:cart");
    assert_eq!(call.key.kind, EdgeKind::Grpc);
    assert_eq!(call.stats.num_requests, 2);
}

#[test]
fn a_server_arriving_first_waits_for_its_client_across_batches() {
    let mut engine = engine();
    ingest(&mut engine, vec![http_server("orders", 1, 2, 1)], NOW);
    assert!(
        all_edges(&engine).is_empty(),
        "nothing until the pair completes"
    );
    assert_eq!(engine.counters().pairing.num_pending, 1);

    ingest(
        &mut engine,
        vec![http_client("web", 1, 1)],
        NOW + 2 * SECOND,
    );
    assert_eq!(
        edge(&engine, "service:web", "service:orders")
            .stats
            .num_requests,
        1
    );

    ingest(
        &mut engine,
        vec![http_client("web", 2, 1)],
        NOW + 3 * SECOND,
    );
    ingest(
        &mut engine,
        vec![http_server("orders", 2, 2, 1)],
        NOW + 4 * SECOND,
    );
    assert_eq!(
        edge(&engine, "service:web", "service:orders")
            .stats
            .num_requests,
        2
    );
    assert_eq!(engine.counters().pairing.num_paired, 2);
}

#[test]
fn an_unanswered_client_becomes_a_client_only_call_to_its_peer_service() {
    let mut engine = engine();
    let client = http_client("web", 1, 1).attr("peer.service", "stripe");
    ingest(&mut engine, vec![client], NOW);
    assert!(all_edges(&engine).is_empty(), "waits for the TTL");

    engine.tick(AFTER_TTL);
    let call = edge(&engine, "service:web", "external:stripe");
    assert_eq!(call.stats.num_requests, 1);
    assert_eq!(call.stats.num_client_only, 1);
    assert_eq!(call.stats.client_latency.count(), 1);
    assert_eq!(call.stats.server_latency.count(), 0);
    assert_eq!(engine.counters().pairing.num_expired, 1);
}

#[test]
fn an_unanswered_client_becomes_a_call_to_its_server_address() {
    let mut engine = engine();
    let client = http_client("web", 1, 1)
        .attr("server.address", "api.maps.example")
        .int_attr("server.port", 443);
    let unnamed = http_client("web", 2, 1);
    ingest(&mut engine, vec![client, unnamed], NOW);
    engine.tick(AFTER_TTL);

    let call = edge(&engine, "service:web", "external:api.maps.example:443");
    assert_eq!(call.stats.num_client_only, 1);
    assert_eq!(
        all_edges(&engine).len(),
        1,
        "a client naming no peer draws nothing"
    );
    assert_eq!(engine.counters().pairing.num_dropped_unnamed, 1);
}

#[test]
fn a_peer_service_naming_an_instrumented_service_points_at_that_service() {
    let mut engine = engine();
    let root = span("payments", SpanKind::Server, 9, 1).http();
    let client = http_client("web", 1, 1).attr("peer.service", "payments");
    ingest(&mut engine, vec![root, client], NOW);
    engine.tick(AFTER_TTL);

    let call = edge(&engine, "service:web", "service:payments");
    assert_eq!(call.stats.num_client_only, 1);
}

#[test]
fn database_calls_are_counted_at_once_and_two_postgres_databases_are_two_nodes() {
    let mut engine = engine();
    let query = |span_no: u64, host: &str, namespace: &str| {
        span("orders", SpanKind::Client, 1, span_no)
            .attr("db.system.name", "postgresql")
            .attr("server.address", host)
            .int_attr("server.port", 5432)
            .attr("db.namespace", namespace)
            .timed(0, 2 * MILLI)
    };
    ingest(
        &mut engine,
        vec![
            query(1, "orders-db", "orders"),
            query(2, "orders-db", "orders"),
            query(3, "users-db", "users"),
        ],
        NOW,
    );

    let orders = edge(
        &engine,
        "service:orders",
        "database:postgresql orders-db:5432/orders",
    );
    assert_eq!(orders.key.kind, EdgeKind::Database);
    assert_eq!(orders.stats.num_requests, 2);
    assert_eq!(orders.stats.num_client_only, 0, "no server is expected");
    let users = edge(
        &engine,
        "service:orders",
        "database:postgresql users-db:5432/users",
    );
    assert_eq!(users.stats.num_requests, 1);
    assert_eq!(engine.counters().pairing.num_pending, 0);
}

fn kafka(builder: SpanBuilder) -> SpanBuilder {
    builder
        .attr("messaging.system", "kafka")
        .attr("messaging.destination.name", "orders")
}

#[test]
fn producer_to_topic_to_two_consumer_groups_by_parent_and_by_link() {
    let mut engine = engine();
    let producer = kafka(span("checkout", SpanKind::Producer, 1, 1)).timed(0, 2 * MILLI);
    let by_parent = kafka(span("billing", SpanKind::Consumer, 1, 2))
        .parent(1)
        .attr("messaging.consumer.group.name", "billing")
        .timed(50 * MILLI, 5 * MILLI);
    let by_link = kafka(span("shipping", SpanKind::Consumer, 7, 3))
        .link(1, 1)
        .attr("messaging.kafka.consumer.group", "shipping")
        .timed(102 * MILLI, 5 * MILLI);
    ingest(&mut engine, vec![producer, by_parent, by_link], NOW);

    let published = edge(&engine, "service:checkout", "topic:kafka orders");
    assert_eq!(published.key.kind, EdgeKind::Messaging);
    assert_eq!(published.stats.num_requests, 1);
    let billing = edge(&engine, "topic:kafka orders", "service:billing");
    assert_eq!(billing.stats.num_requests, 1);
    assert_eq!(billing.stats.consumer_groups, vec!["billing".to_owned()]);
    assert_eq!(
        billing.stats.publish_consume_latency.max_nanos(),
        48 * MILLI
    );
    let shipping = edge(&engine, "topic:kafka orders", "service:shipping");
    assert_eq!(shipping.stats.consumer_groups, vec!["shipping".to_owned()]);
    assert_eq!(
        shipping.stats.publish_consume_latency.max_nanos(),
        100 * MILLI
    );
    assert_eq!(engine.counters().pairing.num_consumers_matched, 2);

    engine.tick(AFTER_TTL);
    assert_eq!(engine.counters().pairing.num_producers_unconsumed, 0);
    assert_eq!(
        engine.counters().pairing.num_expired,
        0,
        "a producer's TTL is no loss"
    );
}

#[test]
fn a_consumer_before_its_producer_waits_and_clock_skew_is_clamped() {
    let mut engine = engine();
    // The consumer's clock is behind: it "starts" before the producer ended.
    let consumer = kafka(span("billing", SpanKind::Consumer, 1, 2))
        .parent(1)
        .timed(0, 5 * MILLI);
    ingest(&mut engine, vec![consumer], NOW);
    assert!(all_edges(&engine).is_empty());

    let producer = kafka(span("checkout", SpanKind::Producer, 1, 1)).timed(10 * MILLI, MILLI);
    ingest(&mut engine, vec![producer], NOW + SECOND);
    let billing = edge(&engine, "topic:kafka orders", "service:billing");
    assert_eq!(billing.stats.num_server_only, 0);
    assert_eq!(billing.stats.publish_consume_latency.count(), 1);
    assert_eq!(billing.stats.publish_consume_latency.max_nanos(), 0);
}

#[test]
fn a_consumer_whose_producer_never_reports_is_counted_server_only() {
    let mut engine = engine();
    let consumer = kafka(span("billing", SpanKind::Consumer, 1, 2)).parent(1);
    let unconsumed = kafka(span("checkout", SpanKind::Producer, 2, 1));
    ingest(&mut engine, vec![consumer, unconsumed], NOW);
    engine.tick(AFTER_TTL);

    let billing = edge(&engine, "topic:kafka orders", "service:billing");
    assert_eq!(billing.stats.num_server_only, 1);
    assert_eq!(billing.stats.publish_consume_latency.count(), 0);
    assert_eq!(engine.counters().pairing.num_producers_remembered, 1);
    engine.tick(AFTER_TTL + 10 * SECOND);
    let counters = engine.counters().pairing;
    assert_eq!(
        counters.num_producers_unconsumed, 1,
        "forgotten within two TTLs"
    );
    assert_eq!(counters.num_producers_remembered, 0);
}

#[test]
fn root_server_spans_hang_off_the_user_client_at_once() {
    let mut engine = engine();
    let root = span("gateway", SpanKind::Server, 1, 1)
        .http()
        .resource(placed_resource("gateway", "edge", "prod"));
    ingest(&mut engine, vec![root], NOW);

    let call = edge(&engine, "client:user", "service:gateway");
    assert_eq!(call.stats.num_requests, 1);
    assert_eq!(
        call.stats.num_server_only, 0,
        "a root has no caller to wait for"
    );
    assert_eq!(call.source_placement.namespace.as_deref(), Some("edge"));
    assert_eq!(engine.counters().pairing.num_pending, 0);
}

/// The OpenTelemetry Collector's `extra-dimensions-queue-db` fixture: a CLIENT span carrying
/// `messaging.system` as an extra dimension, and its SERVER child.
#[test]
fn a_client_span_with_messaging_attributes_pairs_with_its_server_child() {
    let mut engine = engine();
    let client = http_client("web", 1, 1).attr("messaging.system", "rabbitmq");
    ingest(
        &mut engine,
        vec![client, http_server("orders", 1, 2, 1)],
        NOW,
    );

    let call = edge(&engine, "service:web", "service:orders");
    assert_eq!(call.stats.num_requests, 1);
    assert_eq!(call.stats.num_server_only, 0);
    assert!(
        all_edges(&engine)
            .iter()
            .all(|edge| edge.key.source
                != NodeKey::new(crate::model::graph::NodeKind::Client, "user")),
        "no server-only call from client:user"
    );
}

#[test]
fn an_orphan_server_span_is_a_server_only_call_from_the_user_client() {
    let mut engine = engine();
    ingest(&mut engine, vec![http_server("orders", 1, 2, 1)], NOW);
    engine.tick(AFTER_TTL);

    let call = edge(&engine, "client:user", "service:orders");
    assert_eq!(call.stats.num_server_only, 1);
    assert_eq!(call.stats.server_latency.count(), 1);
    assert_eq!(engine.counters().pairing.num_expired, 1);
}

#[test]
fn retries_errors_and_short_circuits_are_counted_on_their_edge() {
    let mut engine = engine();
    let retry = http_client("web", 1, 1).int_attr("http.request.resend_count", 1);
    let failing_server = http_server("orders", 2, 2, 1).error("boom");
    let rejected = http_client("web", 3, 1)
        .attr("peer.service", "orders")
        .exception(
            "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
            "CircuitBreaker 'orders' is OPEN and does not permit further calls",
        )
        .error("CallNotPermittedException");
    ingest(
        &mut engine,
        vec![
            retry,
            http_server("orders", 1, 2, 1),
            http_client("web", 2, 1),
            failing_server,
            rejected,
        ],
        NOW,
    );

    let call = edge(&engine, "service:web", "service:orders");
    assert_eq!(
        call.stats.num_requests, 3,
        "the rejected call counts at once"
    );
    assert_eq!(call.stats.num_retries, 1);
    assert_eq!(call.stats.num_errors, 2);
    assert_eq!(call.stats.num_short_circuited, 1);
    assert_eq!(
        (call.stats.num_failed(), call.stats.error_rate()),
        (1, Some(0.5)),
        "the refused call is beside the error rate, not in it"
    );
    assert_eq!(
        call.stats.client_latency.count(),
        2,
        "the refused call never waited for orders: no client latency"
    );
    assert_eq!(engine.counters().pairing.num_pending, 0);
}

#[test]
fn a_flood_of_unpaired_spans_never_exceeds_the_pending_bound() {
    let settings = GraphSettings {
        max_pending_items: NonZeroUsize::new(100).expect("not zero"),
        ..GraphSettings::default()
    };
    let mut engine = GraphEngine::new(settings);
    for batch in 0..10u64 {
        let clients = (0..100)
            .map(|number| http_client("web", batch * 100 + number, 1).attr("peer.service", "api"))
            .collect();
        ingest(&mut engine, clients, NOW + batch * MILLI);
        assert!(engine.counters().pairing.num_pending <= 100);
    }
    let counters = engine.counters().pairing;
    assert_eq!(counters.num_pending, 100);
    assert_eq!(
        counters.num_evicted, 900,
        "the oldest went first, as unpaired calls"
    );
    let call = edge(&engine, "service:web", "external:api");
    assert_eq!(
        call.stats.num_client_only, 900,
        "evicted halves still count"
    );
}

#[test]
fn calls_per_trace_feed_the_chatty_pair_fields() {
    let mut engine = engine();
    let mut spans = Vec::new();
    for call_no in 0..5 {
        spans.push(http_client("web", 1, 10 + call_no));
        spans.push(http_server("orders", 1, 20 + call_no, 10 + call_no));
    }
    spans.push(http_client("web", 2, 1));
    spans.push(http_server("orders", 2, 2, 1));
    ingest(&mut engine, spans, NOW);

    let call = edge(&engine, "service:web", "service:orders");
    assert_eq!(call.stats.num_requests, 6);
    assert_eq!(call.stats.num_traces, 2);
    assert_eq!(call.stats.max_calls_per_trace, 5);
}

#[test]
fn operations_and_placements_are_recorded_per_service() {
    let mut engine = engine();
    let resource = placed_resource("orders", "shop", "prod");
    let server = |trace_no, name: &str| {
        span("orders", SpanKind::Server, trace_no, 1)
            .resource(resource.clone())
            .name(name)
    };
    let failed = server(3, "POST /orders").error("boom");
    ingest(
        &mut engine,
        vec![server(1, "GET /orders"), server(2, "GET /orders"), failed],
        NOW,
    );

    let operations =
        engine.operations(MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)));
    let summary: Vec<(&str, u64, u64)> = operations
        .iter()
        .map(|op| {
            (
                op.operation.as_str(),
                op.stats.num_requests,
                op.stats.num_errors,
            )
        })
        .collect();
    assert_eq!(summary, vec![("GET /orders", 2, 0), ("POST /orders", 1, 1)]);
    assert_eq!(operations[0].placement.namespace.as_deref(), Some("shop"));
    let nodes = engine.nodes(MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)));
    let orders = nodes
        .iter()
        .find(|node| node.key.id() == "service:orders")
        .expect("the service is a node");
    assert_eq!(orders.placement.environment.as_deref(), Some("prod"));
}

#[test]
fn edges_beyond_the_per_minute_limit_are_counted_not_recorded() {
    let settings = GraphSettings {
        max_edges_per_minute: NonZeroUsize::new(2).expect("not zero"),
        max_operations_per_minute: NonZeroUsize::new(1).expect("not zero"),
        ..GraphSettings::default()
    };
    let mut engine = GraphEngine::new(settings);
    let roots = ["a", "b", "c", "a"]
        .into_iter()
        .enumerate()
        .map(|(number, service)| span(service, SpanKind::Server, number as u64, 1).http())
        .collect();
    ingest(&mut engine, roots, NOW);

    assert_eq!(all_edges(&engine).len(), 2);
    let counters = engine.counters().window;
    assert_eq!(counters.num_calls_over_edge_limit, 1);
    assert_eq!(counters.num_spans_over_operation_limit, 2);
}

#[test]
fn the_longest_synchronous_chain_of_an_idle_trace_is_kept() {
    let settings = GraphSettings {
        trace_idle_ttl: Duration::from_secs(5),
        ..GraphSettings::default()
    };
    let mut engine = GraphEngine::new(settings);
    let spans = vec![
        span("gateway", SpanKind::Server, 1, 1).http(),
        http_client("gateway", 1, 2).parent(1),
        http_server("orders", 1, 3, 2),
        span("orders", SpanKind::Internal, 1, 4).parent(3),
        span("orders", SpanKind::Client, 1, 5).parent(4).grpc(),
        span("pricing", SpanKind::Server, 1, 6).parent(5).grpc(),
        http_client("pricing", 1, 7)
            .parent(6)
            .attr("server.address", "fx.example"),
    ];
    ingest(&mut engine, spans, NOW);
    assert!(engine.chains().is_empty(), "the trace is still active");

    engine.tick(NOW + 6 * SECOND);
    let chains = engine.chains();
    assert_eq!(chains.len(), 1);
    let ids: Vec<String> = chains[0].nodes.iter().map(NodeKey::id).collect();
    assert_eq!(
        ids,
        [
            "service:gateway",
            "service:orders",
            "service:pricing",
            "external:fx.example"
        ]
    );
    assert_eq!(chains[0].trace_id, crate::graph::fixtures::trace(1));
    assert_eq!(engine.counters().chains.num_traces_analysed, 1);
}

mod minutes;
mod operations;

#[test]
fn instances_serving_an_operation_are_counted_once_per_minute_up_to_the_limit() {
    let mut engine = engine();
    let on = |instance: &str, trace_no| {
        let mut resource = (*crate::graph::fixtures::resource("orders")).clone();
        let id = crate::model::AttrValue::Str(instance.to_owned());
        resource
            .attributes
            .push(("service.instance.id".to_owned(), id));
        span("orders", SpanKind::Server, trace_no, 1)
            .resource(std::sync::Arc::new(resource))
            .name("GET /orders")
    };
    // 257 instances, one of them twice, and a span naming none.
    let mut spans: Vec<SpanBuilder> = (0..257).map(|n| on(&format!("pod-{n}"), n)).collect();
    spans.push(on("pod-0", 300));
    spans.push(span("orders", SpanKind::Server, 301, 1).name("GET /orders"));
    ingest(&mut engine, spans, NOW);

    let operations =
        engine.operations(MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX)));
    assert_eq!(operations[0].stats.num_requests, 259);
    assert_eq!(
        operations[0].stats.instance_minutes, 256,
        "capped per operation"
    );
    assert_eq!(
        operations[0].stats.instance_requests, 257,
        "the counted instances' requests: not the 257th's, not the one naming none"
    );
    assert_eq!(engine.counters().window.num_instances_over_limit, 1);
}
