//! OTLP requests for tests: a span using every field and attribute type, and one metric of
//! every type. Times are relative to [`NOW`].

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

/// 2023-11-14T22:13:20Z.
pub(crate) const NOW: u64 = 1_700_000_000_000_000_000;
pub(crate) const START: u64 = NOW - 5_000_000_000;
pub(crate) const END: u64 = START + 1_500_000;
pub(crate) const TRACE_ID: [u8; 16] = [
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
];
pub(crate) const SPAN_ID: [u8; 8] = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];
pub(crate) const PARENT_SPAN_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

pub(crate) fn key_value(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn text(key: &str, value: &str) -> KeyValue {
    key_value(key, Value::StringValue(value.to_owned()))
}

/// One attribute of each `AnyValue` kind, including nesting and the empty value.
pub(crate) fn every_attribute_type() -> Vec<KeyValue> {
    let array = ArrayValue {
        values: vec![
            AnyValue {
                value: Some(Value::StringValue("a".into())),
            },
            AnyValue {
                value: Some(Value::IntValue(2)),
            },
        ],
    };
    let map = KeyValueList {
        values: vec![key_value("nested", Value::BoolValue(true))],
    };
    vec![
        text("http.request.method", "GET"),
        key_value("http.response.status_code", Value::IntValue(200)),
        key_value("sampled", Value::BoolValue(false)),
        key_value("ratio", Value::DoubleValue(0.5)),
        key_value("payload", Value::BytesValue(vec![1, 2, 255])),
        key_value("tags", Value::ArrayValue(array)),
        key_value("headers", Value::KvlistValue(map)),
        KeyValue {
            key: "empty".into(),
            value: Some(AnyValue { value: None }),
            ..Default::default()
        },
    ]
}

pub(crate) fn resource(service_name_opt: Option<&str>) -> Resource {
    let mut attributes = vec![
        text("service.namespace", "shop"),
        text("service.version", "1.4.2"),
        text("deployment.environment", "prod"),
        text("host.name", "node-7"),
    ];
    if let Some(service_name) = service_name_opt {
        attributes.insert(0, text("service.name", service_name));
    }
    Resource {
        attributes,
        dropped_attributes_count: 2,
        entity_refs: Vec::new(),
    }
}

pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "io.opentelemetry.http".into(),
        version: "2.1.0".into(),
        attributes: vec![text("scope.kind", "library")],
        dropped_attributes_count: 1,
    }
}

/// A client span with every field set: events, links (one with an invalid id), status.
pub(crate) fn full_span() -> Span {
    let valid_link = span::Link {
        trace_id: vec![7; 16],
        span_id: vec![8; 8],
        trace_state: "vendor=link".into(),
        attributes: vec![text("link.kind", "follows")],
        dropped_attributes_count: 4,
        flags: 0x301,
    };
    let invalid_link = span::Link {
        trace_id: vec![7; 3],
        span_id: vec![8; 8],
        ..Default::default()
    };
    Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        trace_state: "vendor=span".into(),
        parent_span_id: PARENT_SPAN_ID.to_vec(),
        flags: 0x101,
        name: "GET /cart".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: START,
        end_time_unix_nano: END,
        attributes: every_attribute_type(),
        dropped_attributes_count: 3,
        events: vec![span::Event {
            time_unix_nano: START + 10,
            name: "exception".into(),
            attributes: vec![text("exception.type", "Timeout")],
            dropped_attributes_count: 5,
        }],
        dropped_events_count: 6,
        links: vec![valid_link, invalid_link],
        dropped_links_count: 1,
        status: Some(Status {
            message: "upstream timed out".into(),
            code: 2,
        }),
    }
}

pub(crate) fn traces_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(Some("cart"))),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(Some("cart"))),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} description"),
        unit: "1".into(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

pub(crate) fn number_point(value: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![text("route", "/cart")],
        start_time_unix_nano: START,
        time_unix_nano: END,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(value),
    }
}

pub(crate) fn histogram_point(bucket_counts: Vec<u64>, bounds: Vec<f64>) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![text("route", "/cart")],
        start_time_unix_nano: START,
        time_unix_nano: END,
        count: bucket_counts.iter().sum(),
        sum: Some(12.5),
        bucket_counts,
        explicit_bounds: bounds,
        exemplars: Vec::new(),
        flags: 0,
        min: Some(0.5),
        max: Some(9.0),
    }
}

/// Gauge (int), sum (double, monotonic, delta), histogram, exponential histogram, summary.
pub(crate) fn every_metric_type() -> Vec<Metric> {
    let gauge = Gauge {
        data_points: vec![number_point(number_data_point::Value::AsInt(-3))],
    };
    let sum = Sum {
        data_points: vec![number_point(number_data_point::Value::AsDouble(2.5))],
        aggregation_temporality: AggregationTemporality::Delta as i32,
        is_monotonic: true,
    };
    let histogram = Histogram {
        data_points: vec![histogram_point(vec![1, 2, 3], vec![1.0, 5.0])],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    };
    vec![
        metric("queue.depth", Data::Gauge(gauge)),
        metric("bytes.sent", Data::Sum(sum)),
        metric("http.server.duration", Data::Histogram(histogram)),
        metric("rpc.duration", Data::ExponentialHistogram(exponential())),
        metric("gc.pause", Data::Summary(summary())),
    ]
}

fn exponential() -> ExponentialHistogram {
    ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint {
            attributes: vec![text("route", "/cart")],
            start_time_unix_nano: START,
            time_unix_nano: END,
            count: 6,
            sum: Some(30.0),
            scale: 3,
            zero_count: 1,
            positive: Some(Buckets {
                offset: -2,
                bucket_counts: vec![1, 2],
            }),
            negative: Some(Buckets {
                offset: 4,
                bucket_counts: vec![2],
            }),
            flags: 0,
            exemplars: Vec::new(),
            min: Some(-9.0),
            max: Some(11.0),
            zero_threshold: 0.001,
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    }
}

fn summary() -> Summary {
    Summary {
        data_points: vec![SummaryDataPoint {
            attributes: vec![text("gc", "young")],
            start_time_unix_nano: START,
            time_unix_nano: END,
            count: 4,
            sum: 10.0,
            quantile_values: vec![
                ValueAtQuantile {
                    quantile: 0.5,
                    value: 2.0,
                },
                ValueAtQuantile {
                    quantile: 0.99,
                    value: 4.0,
                },
            ],
            flags: 0,
        }],
    }
}
