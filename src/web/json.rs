//! JSON views of model types for the API. Attribute values use the OTLP/JSON `AnyValue` form
//! (`{"stringValue": ..}`, `{"intValue": "42"}`, ...) so types survive the trip and 64-bit
//! numbers and nanosecond times (as strings) are exact in every JSON reader.

use base64::Engine as _;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::model::{
    AttrValue, Attributes, Event, Link, MetricPoint, Resource, Scope, Span, SpanKind, StatusCode,
    TraceId,
};
use crate::query::TracePage;
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

/// Spans as a JSON array of [`span`]s, each built while the array is written: one span's
/// `Value` exists at a time, never a tree of them all.
struct Spans<'a>(&'a [Span]);

impl Serialize for Spans<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(span))
    }
}

/// The answer of `/api/v1/traces/{trace_id}`: one page of the trace's spans.
#[derive(Serialize)]
pub struct TracePageView<'a> {
    trace_id: TraceId,
    /// Spans in the whole trace.
    num_spans: usize,
    offset: usize,
    /// Whether spans follow this page.
    truncated: bool,
    /// Path and query of the next page, when one follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    spans: Spans<'a>,
}

/// `page` of `trace_id`; `next_url` gives the next page's address from its offset.
pub fn trace_page(
    trace_id: TraceId,
    page: &TracePage,
    next_url: impl FnOnce(usize) -> String,
) -> TracePageView<'_> {
    TracePageView {
        trace_id,
        num_spans: page.num_spans,
        offset: page.offset,
        truncated: page.is_truncated(),
        next: page.next_offset().map(next_url),
        spans: Spans(&page.spans),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::fixtures::{resource, rich_span, trace_id};

    #[test]
    fn a_trace_page_writes_each_span_as_span_shapes_it() {
        let checkout = resource("checkout");
        let spans: Vec<Span> = (1..=3)
            .map(|span_no| rich_span(&checkout, 1, span_no, 1_000 * span_no))
            .collect();
        let page = TracePage::cut(spans.clone(), 1, 1);
        let view = trace_page(trace_id(1), &page, |offset| {
            format!("/next?offset={offset}")
        });
        let written: Value =
            serde_json::from_slice(&serde_json::to_vec(&view).expect("json")).expect("parses");
        assert_eq!(
            written,
            json!({
                "trace_id": trace_id(1),
                "num_spans": 3,
                "offset": 1,
                "truncated": true,
                "next": "/next?offset=2",
                "spans": [span(&spans[1])],
            })
        );

        let last = TracePage::cut(spans, 2, 5);
        let written =
            serde_json::to_value(trace_page(trace_id(1), &last, |_| unreachable!())).expect("json");
        assert_eq!(written["truncated"], false);
        assert!(written.get("next").is_none(), "{written}");
    }
}
