//! Model spans for the graph tests: a builder with the attributes instrumentations set.
//! Ids are small numbers (`trace(1)`, `span_id(2)`); times are relative to [`T0`].

use std::sync::Arc;

use crate::model::{
    AttrValue, Event, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId,
};

use super::classify::GraphSpan;

/// 2023-11-14T22:13:20Z, the start of a minute.
pub(crate) const T0: u64 = 1_700_000_000_000_000_000 - 20_000_000_000;
pub(crate) const MILLI: u64 = 1_000_000;
pub(crate) const SECOND: u64 = 1_000_000_000;
pub(crate) const MINUTE: u64 = 60 * SECOND;

pub(crate) fn trace(number: u64) -> TraceId {
    let mut bytes = [0x7a; 16];
    bytes[8..].copy_from_slice(&number.to_be_bytes());
    TraceId::from_bytes(&bytes).expect("valid trace id")
}

pub(crate) fn span_id(number: u64) -> SpanId {
    SpanId::from_bytes(&(number | 1 << 62).to_be_bytes()).expect("valid span id")
}

pub(crate) fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource::from_attributes(
        vec![(
            "service.name".to_owned(),
            AttrValue::Str(service.to_owned()),
        )],
        0,
    ))
}

pub(crate) fn placed_resource(service: &str, namespace: &str, environment: &str) -> Arc<Resource> {
    let text = |value: &str| AttrValue::Str(value.to_owned());
    Arc::new(Resource::from_attributes(
        vec![
            ("service.name".to_owned(), text(service)),
            ("service.namespace".to_owned(), text(namespace)),
            ("deployment.environment.name".to_owned(), text(environment)),
        ],
        0,
    ))
}

pub(crate) struct SpanBuilder {
    span: Span,
}

/// A span of `service` in trace `trace_no`, 10 ms long starting at [`T0`].
pub(crate) fn span(service: &str, kind: SpanKind, trace_no: u64, span_no: u64) -> SpanBuilder {
    SpanBuilder {
        span: Span {
            resource: resource(service),
            scope: Arc::new(Scope::default()),
            trace_id: trace(trace_no),
            span_id: span_id(span_no),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: "GET /orders/{id}".to_owned(),
            kind,
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + 10 * MILLI,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: StatusCode::Unset,
            status_message: String::new(),
        },
    }
}

impl SpanBuilder {
    pub(crate) fn parent(mut self, span_no: u64) -> Self {
        self.span.parent_span_id = Some(span_id(span_no));
        self
    }

    pub(crate) fn resource(mut self, resource: Arc<Resource>) -> Self {
        self.span.resource = resource;
        self
    }

    pub(crate) fn name(mut self, name: &str) -> Self {
        self.span.name = name.to_owned();
        self
    }

    pub(crate) fn attr(mut self, key: &str, value: &str) -> Self {
        let value = AttrValue::Str(value.to_owned());
        self.span.attributes.push((key.to_owned(), value));
        self
    }

    pub(crate) fn int_attr(mut self, key: &str, value: i64) -> Self {
        self.span
            .attributes
            .push((key.to_owned(), AttrValue::Int(value)));
        self
    }

    pub(crate) fn bool_attr(mut self, key: &str, value: bool) -> Self {
        self.span
            .attributes
            .push((key.to_owned(), AttrValue::Bool(value)));
        self
    }

    pub(crate) fn http(self) -> Self {
        self.attr("http.request.method", "GET")
    }

    pub(crate) fn grpc(self) -> Self {
        self.attr("rpc.system", "grpc")
    }

    /// Starts `offset_nanos` after [`T0`] and lasts `duration_nanos`.
    pub(crate) fn timed(mut self, offset_nanos: u64, duration_nanos: u64) -> Self {
        self.span.start_time_unix_nano = T0 + offset_nanos;
        self.span.end_time_unix_nano = T0 + offset_nanos + duration_nanos;
        self
    }

    pub(crate) fn error(mut self, message: &str) -> Self {
        self.span.status_code = StatusCode::Error;
        self.span.status_message = message.to_owned();
        self
    }

    pub(crate) fn exception(mut self, exception_type: &str, message: &str) -> Self {
        let text = |value: &str| AttrValue::Str(value.to_owned());
        self.span.events.push(Event {
            time_unix_nano: self.span.start_time_unix_nano,
            name: "exception".to_owned(),
            attributes: vec![
                ("exception.type".to_owned(), text(exception_type)),
                ("exception.message".to_owned(), text(message)),
            ],
            dropped_attributes_count: 0,
        });
        self
    }

    pub(crate) fn link(mut self, trace_no: u64, span_no: u64) -> Self {
        self.span.links.push(Link {
            trace_id: trace(trace_no),
            span_id: span_id(span_no),
            trace_state: String::new(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
        });
        self
    }

    pub(crate) fn build(self) -> Span {
        self.span
    }

    pub(crate) fn graph(self) -> GraphSpan {
        GraphSpan::from_span(&self.span)
    }
}

/// One shop order: user → gateway → orders (failing with 503) → a statement through an
/// internal span, a message to notifications, a payment its breaker refused and a client
/// span naming no peer.
pub(crate) fn shop_trace(trace_no: u64) -> Vec<Span> {
    vec![
        span("gateway", SpanKind::Server, trace_no, 1)
            .http()
            .name("POST /api/orders")
            .timed(0, 90 * MILLI)
            .build(),
        span("gateway", SpanKind::Client, trace_no, 2)
            .parent(1)
            .http()
            .name("POST")
            .attr("peer.service", "orders")
            .int_attr("http.response.status_code", 503)
            .error("503")
            .timed(MILLI, 80 * MILLI)
            .build(),
        span("orders", SpanKind::Server, trace_no, 3)
            .parent(2)
            .http()
            .name("POST /orders")
            .error("no stock")
            .timed(2 * MILLI, 70 * MILLI)
            .build(),
        span("orders", SpanKind::Internal, trace_no, 4)
            .parent(3)
            .name("validate")
            .build(),
        span("orders", SpanKind::Client, trace_no, 5)
            .parent(4)
            .name("SELECT orders")
            .attr("db.system.name", "postgresql")
            .attr("server.address", "orders-db")
            .attr("db.query.text", "SELECT *\n  FROM orders WHERE id = $1")
            .timed(3 * MILLI, 4 * MILLI)
            .build(),
        span("orders", SpanKind::Producer, trace_no, 6)
            .parent(3)
            .name("send orders.created")
            .attr("messaging.system", "kafka")
            .attr("messaging.destination.name", "orders.created")
            .timed(8 * MILLI, MILLI)
            .build(),
        span("notifications", SpanKind::Consumer, trace_no, 7)
            .parent(6)
            .name("process orders.created")
            .attr("messaging.system", "kafka")
            .attr("messaging.destination.name", "orders.created")
            .timed(30 * MILLI, 5 * MILLI)
            .build(),
        span("orders", SpanKind::Client, trace_no, 8)
            .parent(3)
            .http()
            .name("POST")
            .attr("peer.service", "payments")
            .exception(
                "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
                "CircuitBreaker 'payments' is OPEN",
            )
            .error("refused")
            .timed(10 * MILLI, 0)
            .build(),
        span("orders", SpanKind::Client, trace_no, 9)
            .parent(3)
            .http()
            .name("GET")
            .build(),
    ]
}
