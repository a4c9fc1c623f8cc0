//! Each edge's calls by the caller's operation and the operation called.

use super::*;

/// orders serves POST /orders (span 2) and GET /cart (span 6); under each it calls payments,
/// and under the first it runs a query; a third call's caller span never came. The client
/// spans come first in the batch, as exported.
fn orders_calling_payments_and_its_database() -> Vec<SpanBuilder> {
    vec![
        http_client("orders", 1, 3).parent(2),
        http_server("payments", 1, 4, 3).name("POST /pay"),
        span("orders", SpanKind::Client, 1, 5)
            .parent(2)
            .name("SELECT orders")
            .attr("db.system", "postgresql")
            .timed(0, 4 * MILLI),
        span("orders", SpanKind::Server, 1, 2)
            .name("POST /orders")
            .http(),
        http_client("orders", 2, 7).parent(6),
        http_server("payments", 2, 8, 7).name("POST /pay"),
        span("orders", SpanKind::Server, 2, 6)
            .name("GET /cart")
            .http(),
        http_client("orders", 3, 9).parent(99),
        http_server("payments", 3, 10, 9).name("POST /refund"),
    ]
}

#[test]
fn calls_are_split_by_the_callers_operation_and_the_operation_called() {
    let mut engine = engine();
    ingest(&mut engine, orders_calling_payments_and_its_database(), NOW);
    let pairs = |edge: WindowEdge| -> Vec<(String, String, u64)> {
        edge.stats
            .operations
            .iter()
            .map(|split| {
                (
                    split.caller.clone(),
                    split.callee.clone(),
                    split.num_requests,
                )
            })
            .collect()
    };
    assert_eq!(
        pairs(edge(&engine, "service:orders", "service:payments")),
        [
            (String::new(), "POST /refund".to_owned(), 1),
            ("GET /cart".to_owned(), "POST /pay".to_owned(), 1),
            ("POST /orders".to_owned(), "POST /pay".to_owned(), 1),
        ]
    );
    assert_eq!(
        pairs(edge(&engine, "service:orders", "database:postgresql")),
        [("POST /orders".to_owned(), "SELECT orders".to_owned(), 1)]
    );
}

#[test]
fn operation_pairs_beyond_the_limit_are_added_up_and_counted() {
    let mut engine = engine();
    let batch: Vec<SpanBuilder> = (1..=12)
        .flat_map(|trace_no| {
            [
                http_client("orders", trace_no, 1),
                http_server("payments", trace_no, 2, 1).name(&format!("POST /op-{trace_no:02}")),
            ]
        })
        .collect();
    ingest(&mut engine, batch, NOW);
    let stats = edge(&engine, "service:orders", "service:payments").stats;
    assert_eq!(stats.operations.len(), MAX_OPERATION_SPLITS + 1);
    let other = stats
        .operations
        .iter()
        .find(|split| split.callee == OTHER_OPERATIONS)
        .expect("the other operations");
    assert_eq!(other.num_requests, 4);
    assert_eq!(
        engine
            .counters()
            .window
            .num_calls_over_operation_split_limit,
        4
    );
}

#[test]
fn one_edges_and_one_services_reads_are_the_whole_reads_filtered() {
    let mut engine = engine();
    ingest(&mut engine, orders_calling_payments_and_its_database(), NOW);
    let range = MinuteRange::new(UnixMinute(i64::MIN), UnixMinute(i64::MAX));
    let (orders, payments) = (NodeKey::service("orders"), NodeKey::service("payments"));
    for (source, target) in [(&orders, &payments), (&payments, &orders)] {
        let filtered: Vec<WindowEdge> = engine
            .edges(range)
            .into_iter()
            .filter(|edge| edge.key.source == *source && edge.key.target == *target)
            .collect();
        assert_eq!(engine.edges_between(range, source, target), filtered);
    }
    assert_eq!(engine.edges_between(range, &orders, &payments).len(), 1);
    for service in ["orders", "payments", "nobody"] {
        let filtered: Vec<WindowOperation> = engine
            .operations(range)
            .into_iter()
            .filter(|operation| operation.service == service)
            .collect();
        assert_eq!(engine.operations_of(range, service), filtered, "{service}");
    }
    assert_eq!(engine.operations_of(range, "orders").len(), 2);
}
