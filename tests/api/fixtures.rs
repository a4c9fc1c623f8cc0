//! Hand-built OTLP requests for the cases real exporters never produce (bad input, load).

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

const MINUTE_NANOS: u64 = 60_000_000_000;

/// Now, once it is at least 3 s into a minute and 30 s from its end: tests that name minutes
/// by the clock, or read "the last minute" (the minute in progress), must not seed "now" in
/// the minute before nor load their pages (Chromium's start included, on a loaded machine)
/// in the next.
pub async fn well_inside_a_minute() -> u64 {
    loop {
        let now = now_nanos();
        let into = now % MINUTE_NANOS;
        if (3_000_000_000..MINUTE_NANOS - 30_000_000_000).contains(&into) {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

pub fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// A valid server span ending now, 5 ms long, with ids derived from `seed`.
pub fn span(seed: u8, name: &str) -> Span {
    let end = now_nanos();
    Span {
        trace_id: vec![seed; 16],
        span_id: vec![seed; 8],
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: end - 5_000_000,
        end_time_unix_nano: end,
        attributes: vec![string_attr("http.request.method", "GET")],
        status: Some(Status::default()),
        ..Span::default()
    }
}

/// One resource (with `service.name` when given) holding `spans`.
pub fn trace_request(service_opt: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    let attributes = service_opt
        .map(|service| vec![string_attr("service.name", service)])
        .unwrap_or_default();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn encode(request: &ExportTraceServiceRequest) -> Vec<u8> {
    request.encode_to_vec()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A gauge with one point per value.
pub fn gauge_request(service: &str, name: &str, values: &[f64]) -> ExportMetricsServiceRequest {
    let now = now_nanos();
    let data_points = values
        .iter()
        .map(|value| NumberDataPoint {
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsDouble(*value)),
            ..NumberDataPoint::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", service)],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.to_owned(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            schema_url: String::new(),
        }],
    }
}
