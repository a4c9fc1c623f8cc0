//! The Rust SDK's span and metric data in the API's JSON shape (`src/web/json.rs`), encoded the
//! way the OTLP exporter encodes it, for the comparisons in `tests/api/compare.rs`.

use std::time::SystemTime;

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceFlags};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Value as Json, json};

fn any_value(value: &Value) -> Json {
    fn array<T>(values: &[T], item: impl Fn(&T) -> Json) -> Json {
        json!({ "arrayValue": { "values": values.iter().map(item).collect::<Vec<_>>() } })
    }
    match value {
        Value::Bool(flag) => json!({ "boolValue": flag }),
        Value::I64(number) => json!({ "intValue": number.to_string() }),
        Value::F64(number) => json!({ "doubleValue": number }),
        Value::String(text) => json!({ "stringValue": text.as_str() }),
        Value::Array(Array::Bool(values)) => array(values, |flag| json!({ "boolValue": flag })),
        Value::Array(Array::I64(values)) => {
            array(values, |number| json!({ "intValue": number.to_string() }))
        }
        Value::Array(Array::F64(values)) => {
            array(values, |number| json!({ "doubleValue": number }))
        }
        Value::Array(Array::String(values)) => {
            array(values, |text| json!({ "stringValue": text.as_str() }))
        }
        other => panic!("attribute value {other:?} not used by these tests"),
    }
}

fn attributes<'a>(pairs: impl IntoIterator<Item = &'a KeyValue>) -> Json {
    Json::Object(
        pairs
            .into_iter()
            .map(|pair| (pair.key.to_string(), any_value(&pair.value)))
            .collect(),
    )
}

fn unix_nanos(time: SystemTime) -> u64 {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time after the epoch");
    u64::try_from(since_epoch.as_nanos()).expect("time fits in u64 nanoseconds")
}

fn nanos_text(time: SystemTime) -> Json {
    json!(unix_nanos(time).to_string())
}

/// OTLP span flags as the exporter builds them: the W3C trace flags plus whether the parent
/// (or linked span) is remote.
fn span_flags(context_flags: TraceFlags, is_remote: bool) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    u32::from(context_flags.to_u8()) | HAS_IS_REMOTE | if is_remote { IS_REMOTE } else { 0 }
}

fn resource_json(resource: &Resource) -> Json {
    let attributes: Vec<KeyValue> = resource
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect();
    json!({ "attributes": self::attributes(&attributes), "dropped_attributes_count": 0 })
}

fn scope_json(scope: &InstrumentationScope) -> Json {
    json!({
        "name": scope.name(),
        "version": scope.version().unwrap_or_default(),
        "attributes": attributes(scope.attributes()),
        "dropped_attributes_count": 0,
    })
}

pub fn span_json(span: &SpanData, resource: &Resource) -> Json {
    let context = &span.span_context;
    let parent_span_id =
        (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_string());
    let (code, message) = match &span.status {
        Status::Unset => ("unset", String::new()),
        Status::Ok => ("ok", String::new()),
        Status::Error { description } => ("error", description.to_string()),
    };
    let kind = match span.span_kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    };
    let events: Vec<Json> = span
        .events
        .iter()
        .map(|event| {
            json!({
                "time_unix_nano": nanos_text(event.timestamp),
                "name": event.name,
                "attributes": attributes(&event.attributes),
                "dropped_attributes_count": event.dropped_attributes_count,
            })
        })
        .collect();
    let links: Vec<Json> = span
        .links
        .iter()
        .map(|link| {
            let linked = &link.span_context;
            json!({
                "trace_id": linked.trace_id().to_string(),
                "span_id": linked.span_id().to_string(),
                "trace_state": linked.trace_state().header(),
                "flags": span_flags(linked.trace_flags(), linked.is_remote()),
                "attributes": attributes(&link.attributes),
                "dropped_attributes_count": link.dropped_attributes_count,
            })
        })
        .collect();
    json!({
        "trace_id": context.trace_id().to_string(),
        "span_id": context.span_id().to_string(),
        "parent_span_id": parent_span_id,
        "trace_state": context.trace_state().header(),
        "flags": span_flags(context.trace_flags(), span.parent_span_is_remote),
        "name": span.name,
        "kind": kind,
        "start_time_unix_nano": nanos_text(span.start_time),
        "end_time_unix_nano": nanos_text(span.end_time),
        "status": { "code": code, "message": message },
        "attributes": attributes(&span.attributes),
        "dropped_attributes_count": span.dropped_attributes_count,
        "events": events,
        "dropped_events_count": span.events.dropped_count,
        "links": links,
        "dropped_links_count": span.links.dropped_count,
        "resource": resource_json(resource),
        "scope": scope_json(&span.instrumentation_scope),
    })
}

/// A measurement type of the SDK, as the OTLP exporter encodes it.
trait Number: Copy {
    /// A gauge or sum value: `{"int": ..}` or `{"double": ..}`.
    fn number(self) -> Json;
    /// Histogram sum, min and max are doubles on the wire.
    fn double(self) -> f64;
}

impl Number for u64 {
    fn number(self) -> Json {
        json!({ "int": self })
    }
    fn double(self) -> f64 {
        self as f64
    }
}

impl Number for i64 {
    fn number(self) -> Json {
        json!({ "int": self })
    }
    fn double(self) -> f64 {
        self as f64
    }
}

impl Number for f64 {
    fn number(self) -> Json {
        json!({ "double": self })
    }
    fn double(self) -> f64 {
        self
    }
}

fn temporality_name(temporality: Temporality) -> &'static str {
    match temporality {
        Temporality::Cumulative => "cumulative",
        Temporality::Delta => "delta",
        other => panic!("{other:?} is a preference, not the temporality of exported data"),
    }
}

/// `(start, time, attributes, value)` of every data point of one metric.
fn data_points<T: Number>(data: &MetricData<T>) -> Vec<(u64, u64, Json, Json)> {
    match data {
        MetricData::Gauge(gauge) => {
            let start = gauge.start_time().map_or(0, unix_nanos);
            let time = unix_nanos(gauge.time());
            gauge
                .data_points()
                .map(|point| {
                    let value = json!({ "type": "gauge", "value": point.value().number() });
                    (start, time, attributes(point.attributes()), value)
                })
                .collect()
        }
        MetricData::Sum(sum) => sum
            .data_points()
            .map(|point| {
                let value = json!({
                    "type": "sum",
                    "value": point.value().number(),
                    "temporality": temporality_name(sum.temporality()),
                    "is_monotonic": sum.is_monotonic(),
                });
                let (start, time) = (unix_nanos(sum.start_time()), unix_nanos(sum.time()));
                (start, time, attributes(point.attributes()), value)
            })
            .collect(),
        MetricData::Histogram(histogram) => histogram
            .data_points()
            .map(|point| {
                let value = json!({
                    "type": "histogram",
                    "count": point.count(),
                    "sum": point.sum().double(),
                    "min": point.min().map(Number::double),
                    "max": point.max().map(Number::double),
                    "bucket_counts": point.bucket_counts().collect::<Vec<_>>(),
                    "explicit_bounds": point.bounds().collect::<Vec<_>>(),
                    "temporality": temporality_name(histogram.temporality()),
                });
                let start = unix_nanos(histogram.start_time());
                let time = unix_nanos(histogram.time());
                (start, time, attributes(point.attributes()), value)
            })
            .collect(),
        MetricData::ExponentialHistogram(_) => {
            panic!("exponential histograms are covered by the Python exporter test")
        }
    }
}

pub fn points_json(exported: &ResourceMetrics) -> Vec<Json> {
    let resource = resource_json(exported.resource());
    let mut points = Vec::new();
    for scope_metrics in exported.scope_metrics() {
        let scope = scope_json(scope_metrics.scope());
        for metric in scope_metrics.metrics() {
            let data_points = match metric.data() {
                AggregatedMetrics::F64(data) => data_points(data),
                AggregatedMetrics::U64(data) => data_points(data),
                AggregatedMetrics::I64(data) => data_points(data),
            };
            for (start, time, attributes, value) in data_points {
                points.push(json!({
                    "name": metric.name(),
                    "description": metric.description(),
                    "unit": metric.unit(),
                    "type": value["type"],
                    "start_time_unix_nano": start.to_string(),
                    "time_unix_nano": time.to_string(),
                    "attributes": attributes,
                    "flags": 0,
                    "value": value,
                    "resource": resource,
                    "scope": scope,
                }));
            }
        }
    }
    points
}
