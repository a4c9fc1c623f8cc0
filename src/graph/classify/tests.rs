use super::*;
use crate::graph::fixtures::{placed_resource, span};
use crate::model::SpanKind;
use crate::model::graph::EdgeKind;

fn peer_id(span: &GraphSpan) -> Option<String> {
    span.peer.as_ref().map(|peer| peer.node.to_key().id())
}

#[test]
fn edge_kinds_follow_the_semantic_conventions() {
    let kind = |builder: crate::graph::fixtures::SpanBuilder| builder.graph().edge_kind;
    let client = || span("web", SpanKind::Client, 1, 1);
    assert_eq!(kind(client().grpc()), EdgeKind::Grpc);
    assert_eq!(kind(client().http()), EdgeKind::Http);
    assert_eq!(kind(client().attr("http.method", "POST")), EdgeKind::Http);
    assert_eq!(
        kind(client().http().attr("db.system", "elasticsearch")),
        EdgeKind::Database
    );
    assert_eq!(
        kind(client().grpc().attr("db.system.name", "spanner")),
        EdgeKind::Database
    );
    assert_eq!(
        kind(client().http().attr("messaging.system", "aws_sqs")),
        EdgeKind::Messaging
    );
    assert_eq!(
        kind(span("web", SpanKind::Producer, 1, 1)),
        EdgeKind::Messaging
    );
    assert_eq!(kind(client()), EdgeKind::Other);
}

#[test]
fn roles_refine_span_kinds() {
    let role = |builder: crate::graph::fixtures::SpanBuilder| builder.graph().role;
    assert_eq!(role(span("a", SpanKind::Server, 1, 1)), SpanRole::Server);
    assert_eq!(role(span("a", SpanKind::Client, 1, 1)), SpanRole::Client);
    assert_eq!(
        role(span("a", SpanKind::Internal, 1, 1)),
        SpanRole::Internal
    );
    let messaging_client = || span("a", SpanKind::Client, 1, 1).attr("messaging.system", "kafka");
    assert_eq!(
        role(messaging_client()),
        SpanRole::Client,
        "the span kind decides when no messaging operation says otherwise"
    );
    assert_eq!(
        role(messaging_client().attr("messaging.operation", "publish")),
        SpanRole::Producer
    );
    assert_eq!(
        role(messaging_client().attr("messaging.operation.type", "send")),
        SpanRole::Producer
    );
    assert_eq!(
        role(messaging_client().attr("messaging.operation.type", "receive")),
        SpanRole::Internal,
        "a poll is no call"
    );
    assert_eq!(
        role(messaging_client().attr("messaging.operation", "receive")),
        SpanRole::Internal
    );
}

#[test]
fn service_placement_and_operation_name_come_along() {
    let server = span("orders", SpanKind::Server, 1, 1)
        .resource(placed_resource("orders", "shop", "prod"))
        .name("GET /orders")
        .graph();
    assert_eq!(&*server.service, "orders");
    assert_eq!(server.placement.namespace.as_deref(), Some("shop"));
    assert_eq!(server.placement.environment.as_deref(), Some("prod"));
    assert_eq!(&*server.name, "GET /orders");
    let client = span("orders", SpanKind::Client, 1, 2).graph();
    assert_eq!(&*client.name, "", "clients need no operation name");
}

#[test]
fn external_peers_prefer_logical_names_then_addresses() {
    let client = || span("web", SpanKind::Client, 1, 1).http();
    let logical = client()
        .attr("peer.service", "payments")
        .attr("server.address", "pay.internal")
        .graph();
    assert_eq!(peer_id(&logical).as_deref(), Some("external:payments"));
    assert!(
        logical
            .peer
            .as_ref()
            .is_some_and(|peer| peer.is_logical_name)
    );
    let new_name = client().attr("service.peer.name", "billing").graph();
    assert_eq!(peer_id(&new_name).as_deref(), Some("external:billing"));
    let address = client()
        .attr("server.address", "api.stripe.com")
        .int_attr("server.port", 443)
        .graph();
    assert_eq!(
        peer_id(&address).as_deref(),
        Some("external:api.stripe.com:443")
    );
    assert!(
        address
            .peer
            .as_ref()
            .is_some_and(|peer| !peer.is_logical_name)
    );
    let legacy = client().attr("net.peer.name", "legacy.example").graph();
    assert_eq!(peer_id(&legacy).as_deref(), Some("external:legacy.example"));
    let url = client()
        .attr("http.url", "https://maps.example/api?q=1")
        .graph();
    assert_eq!(peer_id(&url).as_deref(), Some("external:maps.example"));
    let ip_only = client().attr("network.peer.address", "10.0.0.7").graph();
    assert_eq!(peer_id(&ip_only), None, "pod IPs are not nodes");
}

#[test]
fn databases_are_named_by_system_address_and_namespace() {
    let db = |address: &str, namespace: &str| {
        span("orders", SpanKind::Client, 1, 1)
            .attr("db.system.name", "postgresql")
            .attr("server.address", address)
            .int_attr("server.port", 5432)
            .attr("db.namespace", namespace)
            .graph()
    };
    assert_eq!(
        peer_id(&db("orders-db", "orders")).as_deref(),
        Some("database:postgresql orders-db:5432/orders")
    );
    assert_ne!(
        peer_id(&db("orders-db", "orders")),
        peer_id(&db("users-db", "users"))
    );
    let legacy = span("orders", SpanKind::Client, 1, 1)
        .attr("db.system", "mysql")
        .attr("db.name", "inventory")
        .graph();
    assert_eq!(
        peer_id(&legacy).as_deref(),
        Some("database:mysql inventory")
    );
}

#[test]
fn messaging_spans_name_their_topic_and_group() {
    let consumer = span("billing", SpanKind::Consumer, 1, 1)
        .attr("messaging.system", "kafka")
        .attr("messaging.destination.name", "orders.created")
        .attr("messaging.kafka.consumer.group", "billing-group")
        .link(9, 9)
        .graph();
    assert_eq!(
        peer_id(&consumer).as_deref(),
        Some("topic:kafka orders.created")
    );
    assert_eq!(consumer.consumer_group.as_deref(), Some("billing-group"));
    assert_eq!(consumer.links.len(), 1);
    let newer = span("billing", SpanKind::Consumer, 1, 1)
        .attr("messaging.system", "kafka")
        .attr("messaging.consumer.group.name", "new-group")
        .attr("messaging.kafka.consumer.group", "old-group")
        .graph();
    assert_eq!(newer.consumer_group.as_deref(), Some("new-group"));
    assert_eq!(peer_id(&newer).as_deref(), Some("topic:kafka (unknown)"));
    let temporary = span("web", SpanKind::Producer, 1, 1)
        .attr("messaging.system", "rabbitmq")
        .attr("messaging.destination.name", "amq.gen-JzTY20BRgKO")
        .bool_attr("messaging.destination.temporary", true)
        .graph();
    assert_eq!(
        peer_id(&temporary).as_deref(),
        Some("topic:rabbitmq (temporary)")
    );
}

#[test]
fn retries_errors_and_short_circuits() {
    let retry = span("web", SpanKind::Client, 1, 1)
        .int_attr("http.request.resend_count", 2)
        .graph();
    assert!(retry.is_retry);
    assert!(!span("web", SpanKind::Client, 1, 1).graph().is_retry);
    let failed = span("web", SpanKind::Client, 1, 1).error("boom").graph();
    assert!(failed.is_error && !failed.is_short_circuited);
    let resilience4j = span("web", SpanKind::Client, 1, 1)
        .exception(
            "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
            "CircuitBreaker 'payments' is OPEN and does not permit further calls",
        )
        .graph();
    assert!(resilience4j.is_short_circuited);
    assert_eq!(
        peer_id(&resilience4j).as_deref(),
        Some("external:payments"),
        "the breaker names the peer"
    );
    let polly = span("web", SpanKind::Client, 1, 1)
        .error("Polly.CircuitBreaker.BrokenCircuitException: The circuit is now open")
        .graph();
    assert!(polly.is_short_circuited);
    let opossum = span("web", SpanKind::Client, 1, 1)
        .exception("Error", "Breaker is open")
        .graph();
    assert!(opossum.is_short_circuited);
}

#[test]
fn batch_conversion_shares_the_resource_parts() {
    let resource = placed_resource("orders", "shop", "prod");
    let spans: Vec<_> = (1..=3)
        .map(|number| {
            span("orders", SpanKind::Server, 1, number)
                .resource(resource.clone())
                .build()
        })
        .collect();
    let converted =
        GraphSpan::from_spans(&spans, &crate::graph::sampling::SamplingRules::default());
    assert_eq!(converted.len(), 3);
    assert!(Arc::ptr_eq(&converted[0].service, &converted[2].service));
    assert!(Arc::ptr_eq(
        &converted[0].placement,
        &converted[1].placement
    ));
    assert_eq!(converted[1], GraphSpan::from_span(&spans[1]));
}
