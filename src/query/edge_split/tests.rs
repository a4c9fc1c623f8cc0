use super::*;
use crate::graph::fixtures::{MILLI, MINUTE, T0, shop_trace, span};
use crate::model::SpanKind;

const RANGE: (u64, u64) = (T0, T0 + MINUTE);

fn node(id: &str) -> NodeKey {
    NodeKey::parse_id(id).expect("node id")
}

/// (caller operation, operation, status, calls, errors) of each row.
fn rows(split: &EdgeSplit) -> Vec<(&str, &str, &str, u64, u64)> {
    split
        .rows
        .iter()
        .map(|row| {
            (
                row.caller_operation.as_str(),
                row.operation.as_str(),
                row.status.as_str(),
                row.num_calls,
                row.num_errors,
            )
        })
        .collect()
}

/// A gateway → orders call answered 200 over gRPC-less HTTP, in its own trace.
fn good_call(trace_no: u64) -> Vec<Span> {
    vec![
        span("gateway", SpanKind::Server, trace_no, 1)
            .http()
            .name("GET /api/orders")
            .build(),
        span("gateway", SpanKind::Client, trace_no, 2)
            .parent(1)
            .http()
            .attr("peer.service", "orders")
            .int_attr("http.response.status_code", 200)
            .timed(MILLI, 20 * MILLI)
            .build(),
        span("orders", SpanKind::Server, trace_no, 3)
            .parent(2)
            .http()
            .name("GET /orders")
            .build(),
    ]
}

#[test]
fn an_edge_splits_by_caller_operation_operation_and_status_code() {
    let mut traces: Vec<Vec<Span>> = (1..=3).map(shop_trace).collect();
    traces.extend((10..12).map(good_call));
    // The newest trace, its server span not arrived yet.
    let mut arriving = good_call(12);
    arriving.pop();
    traces.push(arriving);
    let split = EdgeSplit::of(
        &traces,
        &node("service:gateway"),
        &node("service:orders"),
        RANGE,
    );
    assert_eq!(
        rows(&split),
        [
            ("POST /api/orders", "POST /orders", "HTTP 503", 3, 3),
            ("GET /api/orders", "GET /orders", "HTTP 200", 2, 0),
            (
                "GET /api/orders",
                "GET /orders/{id} (no server span)",
                "HTTP 200",
                1,
                0
            ),
        ]
    );
    assert_eq!(split.num_calls, 6);
    assert_eq!(split.rows[0].latency.count(), 3);
    // The rows link to the traces of each side's operation.
    let search = |service: &str, name: &str| Some((service.to_owned(), name.to_owned()));
    assert_eq!(
        split.rows[0].caller_search,
        search("gateway", "POST /api/orders")
    );
    assert_eq!(
        split.rows[0].operation_search,
        search("orders", "POST /orders")
    );
    // Calls outside the range are not counted.
    let later = (T0 + MINUTE, T0 + 2 * MINUTE);
    let split = EdgeSplit::of(
        &traces,
        &node("service:gateway"),
        &node("service:orders"),
        later,
    );
    assert_eq!(split.num_calls, 0);
}

#[test]
fn databases_split_by_statement_topics_by_operation_and_refused_calls_stand_apart() {
    let traces: Vec<Vec<Span>> = (1..=2).map(shop_trace).collect();
    let orders = node("service:orders");
    let split =
        |source: &NodeKey, target: &str| EdgeSplit::of(&traces, source, &node(target), RANGE);
    let database = split(&orders, "database:postgresql orders-db");
    assert_eq!(
        rows(&database),
        [(
            "POST /orders",
            "SELECT * FROM orders WHERE id = $1",
            "ok",
            2,
            0
        )]
    );
    // The search finds the client span by its name, not by the statement.
    assert_eq!(
        database.rows[0].operation_search,
        Some(("orders".to_owned(), "SELECT orders".to_owned()))
    );
    let topic = node("topic:kafka orders.created");
    assert_eq!(
        rows(&split(&orders, "topic:kafka orders.created")),
        [("POST /orders", "send orders.created", "ok", 2, 0)]
    );
    assert_eq!(
        rows(&split(&topic, "service:notifications")),
        [("POST /orders", "process orders.created", "ok", 2, 0)]
    );
    let refused = split(&orders, "service:payments");
    assert_eq!(
        rows(&refused),
        [("POST /orders", "POST", "refused by breaker", 2, 0)]
    );
    assert!(
        refused.rows[0].latency.is_empty(),
        "refused calls waited for nothing"
    );
    assert_eq!(
        rows(&split(&node("client:user"), "service:gateway")),
        [("", "POST /api/orders", "ok", 2, 0)]
    );
}

#[test]
fn grpc_codes_are_named_and_rows_are_bounded() {
    let grpc = vec![
        span("gateway", SpanKind::Client, 1, 1)
            .grpc()
            .attr("rpc.service", "shop.Orders")
            .int_attr("rpc.grpc.status_code", 14)
            .error("unavailable")
            .build(),
        span("gateway", SpanKind::Client, 1, 2)
            .grpc()
            .attr("rpc.service", "shop.Orders")
            .int_attr("rpc.grpc.status_code", 99)
            .build(),
    ];
    let split = EdgeSplit::of(
        &[grpc],
        &node("service:gateway"),
        &node("external:shop.Orders"),
        RANGE,
    );
    let statuses: Vec<&str> = split.rows.iter().map(|row| row.status.as_str()).collect();
    assert_eq!(statuses, ["gRPC 14 UNAVAILABLE", "gRPC 99"]);
    // Every statement its own row: the most frequent are kept.
    let statements: Vec<Span> = (0..MAX_ROWS as u64 + 10)
        .map(|no| {
            span("orders", SpanKind::Client, 2, no + 1)
                .attr("db.system.name", "redis")
                .attr("db.query.text", &format!("GET key:{no}"))
                .build()
        })
        .collect();
    let split = EdgeSplit::of(
        &[statements],
        &node("service:orders"),
        &node("database:redis"),
        RANGE,
    );
    assert_eq!(split.rows.len(), MAX_ROWS);
    assert_eq!(split.num_rows_left_out, 10);
    assert_eq!(split.num_calls, MAX_ROWS as u64 + 10);
}

#[test]
fn long_statements_are_cut_on_a_character_boundary() {
    assert_eq!(cut_short("SELECT  1\n", 60), "SELECT 1");
    assert_eq!(cut_short("ééééé", 3), "ééé…");
    assert_eq!(cut_short("abc", 3), "abc");
}

#[test]
fn traces_crossing_an_edge_come_failed_first_then_slowest_each_once() {
    let failed: Vec<Vec<Span>> = (1..=3).map(shop_trace).collect();
    let mut newest: Vec<Vec<Span>> = (10..10 + MAX_CROSSING_TRACES as u64)
        .map(good_call)
        .collect();
    // A failed trace is among the newest too; a trace without the edge is not listed.
    newest.push(shop_trace(2));
    newest.push(vec![
        span("gateway", SpanKind::Server, 99, 1)
            .http()
            .name("GET /health")
            .build(),
    ]);
    let (gateway, orders) = (node("service:gateway"), node("service:orders"));
    let crossing = crossing_traces(failed.iter().chain(&newest), &gateway, &orders, RANGE);
    assert_eq!(crossing.len(), MAX_CROSSING_TRACES);
    let failed_ids: Vec<_> = failed.iter().map(|spans| spans[0].trace_id).collect();
    let listed_failed: Vec<bool> = crossing
        .iter()
        .map(|trace| failed_ids.contains(&trace.trace_id))
        .collect();
    assert_eq!(listed_failed[..3], [true; 3], "failed first: {crossing:#?}");
    assert!(
        !listed_failed[3..].contains(&true),
        "each once: {crossing:#?}"
    );
    assert!(crossing[..3].iter().all(|trace| trace.num_errors > 0));
    for pair in crossing[3..].windows(2) {
        assert!(
            pair[0].duration_nanos >= pair[1].duration_nanos,
            "slowest first"
        );
    }
    // The matched duration is the trace's longest call on the edge: what the caller waited.
    assert_eq!(crossing[3].matched_duration_nanos, 20 * MILLI);
    // Calls outside the range do not count.
    let later = (T0 + MINUTE, T0 + 2 * MINUTE);
    assert!(crossing_traces(failed.iter().chain(&newest), &gateway, &orders, later).is_empty());
}
