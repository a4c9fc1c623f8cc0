//! Shared test data for every backend and the benchmarks: ids from numbers, resources, typical
//! and rich spans, metric points of every type, and all-matching queries.

use std::sync::Arc;

use crate::model::{
    AggregationTemporality, AttrValue, Attributes, Batch, Event, ExponentialBuckets,
    ExponentialHistogramValue, HistogramValue, Link, MetricPoint, NumberValue, PointValue,
    QuantileValue, Resource, Scope, Span, SpanId, SpanKind, StatusCode, SummaryValue, TraceId,
};
use crate::store::{MetricQuery, TraceQuery};

pub const SECOND_NANOS: u64 = 1_000_000_000;
pub const MINUTE_NANOS: u64 = 60 * SECOND_NANOS;
pub const HOUR_NANOS: u64 = 60 * MINUTE_NANOS;
/// 2023-11-14T21:00:00Z, on an hour boundary so fixtures can place data in known hours.
pub const BASE_NANOS: u64 = 472_222 * HOUR_NANOS;

/// A valid trace id made from `number` (never all zeroes).
pub fn trace_id(number: u64) -> TraceId {
    let mut bytes = [0_u8; 16];
    bytes[0] = 0xca;
    bytes[8..].copy_from_slice(&number.to_be_bytes());
    TraceId::from_bytes(&bytes).expect("fixture trace id has a non-zero byte")
}

/// A valid span id made from `number` (never all zeroes).
pub fn span_id(number: u64) -> SpanId {
    let mut bytes = number.to_be_bytes();
    bytes[0] ^= 0x5a;
    SpanId::from_bytes(&bytes).expect("fixture span id has a non-zero byte")
}

fn text(value: &str) -> AttrValue {
    AttrValue::Str(value.to_owned())
}

fn attr(key: &str, value: AttrValue) -> (String, AttrValue) {
    (key.to_owned(), value)
}

/// A resource of `service` with the usual semantic-convention attributes.
pub fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource::from_attributes(
        vec![
            attr("service.name", text(service)),
            attr("service.namespace", text("shop")),
            attr("service.version", text("1.4.2")),
            attr("deployment.environment.name", text("prod")),
            attr("host.name", text(&format!("{service}-host"))),
            attr("process.pid", AttrValue::Int(4242)),
            attr("telemetry.sdk.language", text("rust")),
        ],
        0,
    ))
}

pub fn scope() -> Arc<Scope> {
    Arc::new(Scope {
        name: "cartograph.fixtures".to_owned(),
        version: "0.1.0".to_owned(),
        attributes: vec![attr("scope.kind", text("test"))],
        dropped_attributes_count: 0,
    })
}

/// One attribute of every value type, with edge values.
pub fn every_attribute_type() -> Attributes {
    vec![
        attr("str", text("plain")),
        attr("str.empty", text("")),
        attr("bool.true", AttrValue::Bool(true)),
        attr("bool.false", AttrValue::Bool(false)),
        attr("int.min", AttrValue::Int(i64::MIN)),
        attr("int.max", AttrValue::Int(i64::MAX)),
        attr("int.negative", AttrValue::Int(-7)),
        attr("double", AttrValue::Double(0.25)),
        attr("double.inf", AttrValue::Double(f64::INFINITY)),
        attr("double.tiny", AttrValue::Double(f64::MIN_POSITIVE)),
        attr("bytes", AttrValue::Bytes(vec![0, 1, 0xfe, 0xff])),
        attr("bytes.empty", AttrValue::Bytes(Vec::new())),
        attr("empty", AttrValue::Empty),
        attr(
            "array",
            AttrValue::Array(vec![
                text("a"),
                AttrValue::Int(1),
                AttrValue::Array(vec![AttrValue::Bool(true)]),
                AttrValue::Map(vec![attr("nested", AttrValue::Double(-1.5))]),
            ]),
        ),
        attr(
            "map",
            AttrValue::Map(vec![
                attr("inner", text("value")),
                attr("deeper", AttrValue::Map(vec![attr("x", AttrValue::Empty)])),
            ]),
        ),
    ]
}

/// A span as an instrumented HTTP server emits it: nine attributes, no events or links.
pub fn typical_span(
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    trace_no: u64,
    span_no: u64,
    start_nanos: u64,
) -> Span {
    Span {
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
        trace_id: trace_id(trace_no),
        span_id: span_id(span_no),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 1,
        name: "GET /api/orders/{id}".to_owned(),
        kind: SpanKind::Server,
        start_time_unix_nano: start_nanos,
        end_time_unix_nano: start_nanos.saturating_add(12_345_678),
        attributes: vec![
            attr("http.request.method", text("GET")),
            attr("http.route", text("/api/orders/{id}")),
            attr("http.response.status_code", AttrValue::Int(200)),
            attr("url.path", text(&format!("/api/orders/{span_no}"))),
            attr("url.scheme", text("https")),
            attr("server.address", text("orders.internal")),
            attr("server.port", AttrValue::Int(8443)),
            attr("network.protocol.version", text("1.1")),
            attr("user_agent.original", text("okhttp/4.12.0")),
        ],
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status_code: StatusCode::Unset,
        status_message: String::new(),
    }
}

/// A batch of `num_spans` typical spans of one resource, 8 spans per trace, starting at
/// `start_nanos` one microsecond apart; `first_no` numbers the spans (and their traces).
pub fn typical_batch(
    resource: &Arc<Resource>,
    first_no: u64,
    num_spans: u64,
    start_nanos: u64,
) -> Batch {
    let scope = scope();
    let spans = (first_no..first_no + num_spans)
        .map(|no| {
            let mut span = typical_span(
                resource,
                &scope,
                no / 8 + 1,
                no + 1,
                start_nanos + (no - first_no) * 1_000,
            );
            if no % 8 != 0 {
                span.parent_span_id = Some(span_id(no - no % 8 + 1));
                span.kind = SpanKind::Client;
            }
            span
        })
        .collect();
    Batch {
        spans,
        metric_points: Vec::new(),
    }
}

/// A span using every field: all attribute types, events, links, error status, trace state,
/// flags and dropped counts.
pub fn rich_span(resource: &Arc<Resource>, trace_no: u64, span_no: u64, start_nanos: u64) -> Span {
    let mut span = typical_span(resource, &scope(), trace_no, span_no, start_nanos);
    span.attributes = every_attribute_type();
    span.trace_state = "vendor=a:b,other=1".to_owned();
    span.flags = 0x301;
    span.kind = SpanKind::Consumer;
    span.dropped_attributes_count = 3;
    span.dropped_events_count = 4;
    span.dropped_links_count = 5;
    span.status_code = StatusCode::Error;
    span.status_message = "upstream said no".to_owned();
    span.events = vec![
        Event {
            time_unix_nano: start_nanos + 5,
            name: "exception".to_owned(),
            attributes: vec![
                attr("exception.type", text("java.io.IOException")),
                attr("exception.escaped", AttrValue::Bool(false)),
            ],
            dropped_attributes_count: 1,
        },
        Event {
            time_unix_nano: start_nanos + 6,
            name: String::new(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
        },
    ];
    span.links = vec![Link {
        trace_id: trace_id(trace_no + 1000),
        span_id: span_id(span_no + 1000),
        trace_state: "k=v".to_owned(),
        attributes: vec![attr("messaging.operation.type", text("process"))],
        dropped_attributes_count: 2,
        flags: 0x100,
    }];
    span
}

/// One point of every type (and both number kinds), at `time_nanos`, named `{prefix}.{type}`.
pub fn points_of_every_type(
    resource: &Arc<Resource>,
    prefix: &str,
    time_nanos: u64,
) -> Vec<MetricPoint> {
    let point = |suffix: &str, value: PointValue| MetricPoint {
        resource: Arc::clone(resource),
        scope: scope(),
        name: format!("{prefix}.{suffix}"),
        description: format!("the {suffix} fixture"),
        unit: "ms".to_owned(),
        start_time_unix_nano: time_nanos.saturating_sub(MINUTE_NANOS),
        time_unix_nano: time_nanos,
        attributes: vec![
            attr("topic", text("orders")),
            attr("partition", AttrValue::Int(3)),
        ],
        flags: 0,
        value,
    };
    let mut no_value = point(
        "gauge_no_value",
        PointValue::Gauge {
            value: NumberValue::Double(0.0),
        },
    );
    no_value.flags = 1;
    vec![
        point(
            "gauge_int",
            PointValue::Gauge {
                value: NumberValue::Int(i64::MIN),
            },
        ),
        point(
            "gauge_double",
            PointValue::Gauge {
                value: NumberValue::Double(-2.5e300),
            },
        ),
        no_value,
        point(
            "sum",
            PointValue::Sum {
                value: NumberValue::Int(17),
                temporality: AggregationTemporality::Unspecified,
                is_monotonic: true,
            },
        ),
        point("histogram", PointValue::Histogram(histogram())),
        point(
            "exponential_histogram",
            PointValue::ExponentialHistogram(exponential_histogram()),
        ),
        point("summary", PointValue::Summary(summary())),
    ]
}

/// A delta histogram with a sum and a minimum but no maximum.
fn histogram() -> HistogramValue {
    HistogramValue {
        count: 6,
        sum: Some(123.5),
        min: Some(0.5),
        max: None,
        bucket_counts: vec![1, 0, 5],
        explicit_bounds: vec![1.0, 10.0],
        temporality: AggregationTemporality::Delta,
    }
}

/// A cumulative exponential histogram at a negative scale, without a sum, with an infinite
/// maximum and only positive buckets.
fn exponential_histogram() -> ExponentialHistogramValue {
    ExponentialHistogramValue {
        count: 9,
        sum: None,
        min: Some(-4.0),
        max: Some(f64::INFINITY),
        scale: -3,
        zero_count: 2,
        zero_threshold: 1e-9,
        positive: ExponentialBuckets {
            offset: -2,
            bucket_counts: vec![1, 2, 3],
        },
        negative: ExponentialBuckets::default(),
        temporality: AggregationTemporality::Cumulative,
    }
}

/// A summary with the largest count, a negative sum and two quantiles.
fn summary() -> SummaryValue {
    SummaryValue {
        count: u64::MAX,
        sum: -0.125,
        quantile_values: vec![
            QuantileValue {
                quantile: 0.5,
                value: 3.0,
            },
            QuantileValue {
                quantile: 0.99,
                value: 42.0,
            },
        ],
    }
}

/// Matches every trace, at most `limit`.
pub fn all_traces(limit: usize) -> TraceQuery {
    TraceQuery {
        service: None,
        operation: None,
        from_unix_nano: 0,
        to_unix_nano: u64::MAX,
        min_duration_nanos: None,
        max_duration_nanos: None,
        error: None,
        attribute: None,
        limit,
        max_scanned_spans: None,
    }
}

/// Matches every metric point, at most `limit`.
pub fn all_points(limit: usize) -> MetricQuery {
    MetricQuery {
        name: None,
        service: None,
        from_unix_nano: 0,
        to_unix_nano: u64::MAX,
        limit,
    }
}

/// A batch holding only `spans`.
pub fn span_batch(spans: Vec<Span>) -> Batch {
    Batch {
        spans,
        metric_points: Vec::new(),
    }
}

/// A batch holding only `points`.
pub fn point_batch(points: Vec<MetricPoint>) -> Batch {
    Batch {
        spans: Vec::new(),
        metric_points: points,
    }
}
