//! JSON views of model types for the API. Attribute values use the OTLP/JSON `AnyValue` form
//! (`{"stringValue": ..}`, `{"intValue": "42"}`, ...) so types survive the trip and 64-bit
//! numbers and nanosecond times (as strings) are exact in every JSON reader.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::{
    AttrValue, Attributes, Event, Link, MetricPoint, Resource, Scope, Span, SpanKind, StatusCode,
};
use crate::store::TraceSummary;

pub fn attributes(attributes: &Attributes) -> Value {
    let map: Map<String, Value> = attributes
        .iter()
        .map(|(key, value)| (key.clone(), any_value(value)))
        .collect();
    Value::Object(map)
}

fn any_value(value: &AttrValue) -> Value {
    match value {
        AttrValue::Str(text) => json!({ "stringValue": text }),
        AttrValue::Bool(flag) => json!({ "boolValue": flag }),
        AttrValue::Int(number) => json!({ "intValue": number.to_string() }),
        AttrValue::Double(number) => json!({ "doubleValue": double(*number) }),
        AttrValue::Bytes(bytes) => {
            json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
        AttrValue::Array(values) => {
            json!({ "arrayValue": { "values": values.iter().map(any_value).collect::<Vec<_>>() } })
        }
        AttrValue::Map(entries) => {
            let values: Vec<Value> = entries
                .iter()
                .map(|(key, value)| json!({ "key": key, "value": any_value(value) }))
                .collect();
            json!({ "kvlistValue": { "values": values } })
        }
        AttrValue::Empty => json!({}),
    }
}

/// Doubles as JSON numbers, and the non-finite ones as OTLP/JSON's strings.
fn double(number: f64) -> Value {
    if number.is_nan() {
        Value::from("NaN")
    } else if number.is_infinite() {
        Value::from(if number > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        Value::from(number)
    }
}

fn nanos(value: u64) -> Value {
    Value::from(value.to_string())
}

#[allow(clippy::cast_precision_loss)]
fn millis(duration_nanos: u64) -> f64 {
    duration_nanos as f64 / 1e6
}

pub fn resource(resource: &Resource) -> Value {
    json!({
        "service_name": resource.service_name,
        "service_namespace": resource.service_namespace,
        "service_version": resource.service_version,
        "deployment_environment": resource.deployment_environment,
        "attributes": attributes(&resource.attributes),
        "dropped_attributes_count": resource.dropped_attributes_count,
    })
}

fn scope(scope: &Scope) -> Value {
    json!({
        "name": scope.name,
        "version": scope.version,
        "attributes": attributes(&scope.attributes),
        "dropped_attributes_count": scope.dropped_attributes_count,
    })
}

fn event(event: &Event) -> Value {
    json!({
        "time_unix_nano": nanos(event.time_unix_nano),
        "name": event.name,
        "attributes": attributes(&event.attributes),
        "dropped_attributes_count": event.dropped_attributes_count,
    })
}

fn link(link: &Link) -> Value {
    json!({
        "trace_id": link.trace_id,
        "span_id": link.span_id,
        "trace_state": link.trace_state,
        "flags": link.flags,
        "attributes": attributes(&link.attributes),
        "dropped_attributes_count": link.dropped_attributes_count,
    })
}

fn kind_name(kind: SpanKind) -> Value {
    serde_json::to_value(kind).unwrap_or(Value::Null)
}

fn status_name(code: StatusCode) -> Value {
    serde_json::to_value(code).unwrap_or(Value::Null)
}

pub fn span(span: &Span) -> Value {
    json!({
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "trace_state": span.trace_state,
        "flags": span.flags,
        "name": span.name,
        "kind": kind_name(span.kind),
        "start_time_unix_nano": nanos(span.start_time_unix_nano),
        "end_time_unix_nano": nanos(span.end_time_unix_nano),
        "duration_ms": millis(span.duration_nanos()),
        "status": { "code": status_name(span.status_code), "message": span.status_message },
        "attributes": attributes(&span.attributes),
        "dropped_attributes_count": span.dropped_attributes_count,
        "events": span.events.iter().map(event).collect::<Vec<_>>(),
        "dropped_events_count": span.dropped_events_count,
        "links": span.links.iter().map(link).collect::<Vec<_>>(),
        "dropped_links_count": span.dropped_links_count,
        "resource": resource(&span.resource),
        "scope": scope(&span.scope),
    })
}

pub fn trace_summary(summary: &TraceSummary) -> Value {
    json!({
        "trace_id": summary.trace_id,
        "root_service": summary.root_service,
        "root_name": summary.root_name,
        "start_time_unix_nano": nanos(summary.start_time_unix_nano),
        "duration_ms": millis(summary.duration_nanos),
        "num_spans": summary.num_spans,
        "num_errors": summary.num_errors,
        "services": summary.services,
    })
}

pub fn metric_point(point: &MetricPoint) -> Value {
    json!({
        "name": point.name,
        "description": point.description,
        "unit": point.unit,
        "type": serde_json::to_value(point.value.kind()).unwrap_or(Value::Null),
        "start_time_unix_nano": nanos(point.start_time_unix_nano),
        "time_unix_nano": nanos(point.time_unix_nano),
        "attributes": attributes(&point.attributes),
        "flags": point.flags,
        "value": point_value(point),
        "resource": resource(&point.resource),
        "scope": scope(&point.scope),
    })
}

fn point_value(point: &MetricPoint) -> Value {
    #[derive(Serialize)]
    struct Wrapper<'a>(&'a crate::model::PointValue);
    serde_json::to_value(Wrapper(&point.value)).unwrap_or(Value::Null)
}
