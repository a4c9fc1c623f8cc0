use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};

use super::*;
use crate::ingest::convert::fixtures::{self, NOW};
use crate::ingest::convert::{ConvertLimits, convert_metrics, convert_traces};
use crate::model::{AttrValue, NumberValue, PointValue, SpanKind, StatusCode, attr_get};

const PYTHON_TRACES: &str = include_str!("testdata/python_sdk_traces.json");
const PYTHON_TRACES_NON_FINITE: &str = include_str!("testdata/python_sdk_traces_non_finite.json");
const PYTHON_METRICS: &str = include_str!("testdata/python_sdk_metrics.json");
/// The default `ingest.max_decoded_bytes`.
const LIMIT: usize = 256 * 1024 * 1024;
/// Later than every fixture's timestamps (the Python ones were captured in 2026).
const FAR_FUTURE_NOW: u64 = 4_000_000_000_000_000_000;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn attribute_value(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<Value> {
    attributes
        .iter()
        .find(|key_value| key_value.key == key)
        .and_then(|key_value| key_value.value.clone())
        .and_then(|value| value.value)
}

#[test]
fn protobuf_round_trips() {
    let traces = fixtures::traces_request(vec![fixtures::full_span()]);
    let decoded = decode_traces(&traces.encode_to_vec(), Encoding::Protobuf, LIMIT).unwrap();
    assert_eq!(decoded, traces);
    let metrics = fixtures::metrics_request(fixtures::every_metric_type());
    let decoded = decode_metrics(&metrics.encode_to_vec(), Encoding::Protobuf, LIMIT).unwrap();
    assert_eq!(decoded, metrics);
}

#[test]
fn invalid_protobuf_says_so_without_prost_prefix() {
    let err = decode_traces(&[0x0a, 0xff, 0x01], Encoding::Protobuf, LIMIT).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("invalid protobuf: "), "{message}");
    assert!(
        !message.contains("failed to decode Protobuf message"),
        "{message}"
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let err = decode_traces(br#"{"resourceSpans": 5}"#, Encoding::Json, LIMIT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid OTLP/JSON at line 1 column 19: invalid type: integer `5`, expected a sequence"
    );
    let err = decode_metrics(b"{\n  \"resourceMetrics\": [", Encoding::Json, LIMIT).unwrap_err();
    assert!(matches!(err, DecodeError::Json { line: 2, .. }), "{err}");
}

/// Every OTLP/JSON form the spec requires receivers to accept, in one trace request.
const SPEC_TRACES: &str = r#"{
  "resourceSpans": [{
    "resource": {
      "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}],
      "droppedAttributesCount": 1,
      "someFutureField": {"x": [1, 2]}
    },
    "scopeSpans": [{
      "scope": {"name": "lib", "version": "1.0", "unknown": true},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "",
        "name": "POST /pay",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": 1700000000500000000,
        "attributes": [
          {"key": "int_as_string", "value": {"intValue": "42"}},
          {"key": "int_as_number", "value": {"intValue": -42}},
          {"key": "double", "value": {"doubleValue": 2.5}},
          {"key": "double_integral", "value": {"doubleValue": 3}},
          {"key": "bool", "value": {"boolValue": true}},
          {"key": "bytes", "value": {"bytesValue": "AQL/"}},
          {"key": "array", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
          {"key": "empty_array", "value": {"arrayValue": {}}},
          {"key": "kvlist", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": false}}]}}},
          {"key": "empty_kvlist", "value": {"kvlistValue": { }}},
          {"key": "empty", "value": {}},
          {"key": "unknown_value_kind", "value": {"futureValue": 1}}
        ],
        "events": [{"timeUnixNano": "1700000000100000000", "name": "retry", "newField": 1}],
        "links": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000001"}],
        "status": {"code": 2, "message": "declined"},
        "flags": 1,
        "notInTheSpec": "ignored"
      }]
    }]
  }],
  "topLevelUnknown": null
}"#;

#[test]
fn json_accepts_every_spec_form() {
    let request = decode_traces(SPEC_TRACES.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let resource_spans = &request.resource_spans[0];
    assert_eq!(
        resource_spans
            .resource
            .as_ref()
            .unwrap()
            .dropped_attributes_count,
        1
    );
    let span = &resource_spans.scope_spans[0].spans[0];
    assert_eq!(
        hex::encode(&span.trace_id),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(hex::encode(&span.span_id), "eee19b7ec3c1b174");
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_500_000_000);
    assert_eq!(span.events[0].time_unix_nano, 1_700_000_000_100_000_000);
    assert_eq!(span.links[0].span_id, [0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(span.flags, 1);
    let status = span.status.as_ref().unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "declined"));

    let attributes = &span.attributes;
    assert_eq!(
        attribute_value(attributes, "int_as_string"),
        Some(Value::IntValue(42))
    );
    assert_eq!(
        attribute_value(attributes, "int_as_number"),
        Some(Value::IntValue(-42))
    );
    assert_eq!(
        attribute_value(attributes, "double"),
        Some(Value::DoubleValue(2.5))
    );
    assert_eq!(
        attribute_value(attributes, "double_integral"),
        Some(Value::DoubleValue(3.0))
    );
    assert_eq!(
        attribute_value(attributes, "bool"),
        Some(Value::BoolValue(true))
    );
    assert_eq!(
        attribute_value(attributes, "bytes"),
        Some(Value::BytesValue(vec![1, 2, 255]))
    );
    assert_eq!(attribute_value(attributes, "empty"), None);
    assert_eq!(attribute_value(attributes, "unknown_value_kind"), None);

    let converted = convert_traces(request, NOW + 1_000_000_000, &ConvertLimits::default());
    assert_eq!(
        converted.num_rejected, 0,
        "{:?}",
        converted.rejection_message
    );
    let span = &converted.items[0];
    let attr = |key| attr_get(&span.attributes, key).cloned();
    assert_eq!(
        attr("array"),
        Some(AttrValue::Array(vec![
            AttrValue::Str("a".into()),
            AttrValue::Int(1)
        ]))
    );
    assert_eq!(attr("empty_array"), Some(AttrValue::Array(Vec::new())));
    assert_eq!(
        attr("kvlist"),
        Some(AttrValue::Map(vec![(
            "k".to_owned(),
            AttrValue::Bool(false)
        )]))
    );
    assert_eq!(attr("empty_kvlist"), Some(AttrValue::Map(Vec::new())));
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.status_code, StatusCode::Error);
}

/// Every metric type with int64 fields both as strings and as numbers.
const SPEC_METRICS: &str = r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [
  {"name": "g", "gauge": {"dataPoints": [
    {"timeUnixNano": "1700000000000000000", "asInt": "7"},
    {"timeUnixNano": 1700000000000000000, "asInt": 8},
    {"timeUnixNano": "1700000000000000000", "asDouble": 1.25}]}},
  {"name": "s", "unit": "By", "sum": {"aggregationTemporality": 1, "isMonotonic": true,
    "dataPoints": [{"startTimeUnixNano": "1690000000000000000", "timeUnixNano": "1700000000000000000", "asInt": "9007199254740993"}]}},
  {"name": "h", "histogram": {"aggregationTemporality": 2, "dataPoints": [
    {"timeUnixNano": "1700000000000000000", "count": "3", "sum": 4.5, "min": 0.5, "max": 3,
     "bucketCounts": ["1", 2], "explicitBounds": [1]}]}},
  {"name": "e", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
    {"timeUnixNano": "1700000000000000000", "count": 3, "scale": -2, "zeroCount": "1", "zeroThreshold": 0,
     "positive": {"offset": -1, "bucketCounts": ["2"]}, "negative": {}}]}},
  {"name": "q", "summary": {"dataPoints": [
    {"timeUnixNano": "1700000000000000000", "count": "2", "sum": 3,
     "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 1, "value": "NaN"}]}]}}
]}]}]}"#;

#[test]
fn json_accepts_every_metric_type_with_string_or_number_int64s() {
    let request = decode_metrics(SPEC_METRICS.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let converted = convert_metrics(request, NOW + 1_000_000_000, &ConvertLimits::default());
    assert_eq!(
        converted.num_rejected, 0,
        "{:?}",
        converted.rejection_message
    );
    let values: Vec<&PointValue> = converted.items.iter().map(|point| &point.value).collect();
    assert_eq!(values.len(), 7);
    assert_eq!(
        *values[0],
        PointValue::Gauge {
            value: NumberValue::Int(7)
        }
    );
    assert_eq!(
        *values[1],
        PointValue::Gauge {
            value: NumberValue::Int(8)
        }
    );
    assert_eq!(
        *values[2],
        PointValue::Gauge {
            value: NumberValue::Double(1.25)
        }
    );
    assert!(matches!(
        values[3],
        PointValue::Sum {
            value: NumberValue::Int(9_007_199_254_740_993),
            is_monotonic: true,
            ..
        }
    ));
    let PointValue::Histogram(histogram) = values[4] else {
        panic!("histogram")
    };
    assert_eq!(histogram.bucket_counts, [1, 2]);
    assert_eq!((histogram.count, histogram.max), (3, Some(3.0)));
    let PointValue::ExponentialHistogram(exponential) = values[5] else {
        panic!("exponential")
    };
    assert_eq!((exponential.scale, exponential.zero_count), (-2, 1));
    assert_eq!(exponential.positive.bucket_counts, [2]);
    let PointValue::Summary(summary) = values[6] else {
        panic!("summary")
    };
    assert!(summary.quantile_values[1].value.is_nan());
}

#[test]
fn json_accepts_what_the_python_sdk_sends() {
    let request = decode_traces(PYTHON_TRACES.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let converted = convert_traces(request, FAR_FUTURE_NOW, &ConvertLimits::default());
    assert_eq!(
        converted.num_rejected, 0,
        "{:?}",
        converted.rejection_message
    );
    let child = converted
        .items
        .iter()
        .find(|span| span.name == "child")
        .unwrap();
    assert_eq!(child.service_name(), "py-svc");
    assert_eq!(
        child.resource.deployment_environment.as_deref(),
        Some("prod")
    );
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.status_code, StatusCode::Error);
    assert!(child.parent_span_id.is_some());
    assert_eq!(child.links.len(), 1);
    assert_eq!(child.events[0].name, "ev");
    let attr = |key| attr_get(&child.attributes, key).cloned();
    assert_eq!(attr("i"), Some(AttrValue::Int(42)));
    assert_eq!(attr("big"), Some(AttrValue::Int(9_007_199_254_740_993)));
    assert_eq!(attr("d"), Some(AttrValue::Double(1.5)));
    assert_eq!(attr("empty_arr"), Some(AttrValue::Array(Vec::new())));

    let request = decode_metrics(PYTHON_METRICS.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let converted = convert_metrics(request, FAR_FUTURE_NOW, &ConvertLimits::default());
    assert_eq!(
        converted.num_rejected, 0,
        "{:?}",
        converted.rejection_message
    );
    let names: Vec<&str> = converted
        .items
        .iter()
        .map(|point| point.name.as_str())
        .collect();
    assert_eq!(names, ["ctr", "udc", "hist", "exph", "g", "fctr"]);
}

#[test]
fn json_restores_non_finite_doubles_from_the_python_sdk() {
    let request =
        decode_traces(PYTHON_TRACES_NON_FINITE.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let attributes = &request.resource_spans[0].scope_spans[0].spans[0].attributes;
    let double = |key| match attribute_value(attributes, key) {
        Some(Value::DoubleValue(value)) => value,
        other => panic!("{key}: {other:?}"),
    };
    assert!(double("nan").is_nan());
    assert_eq!(double("inf"), f64::INFINITY);
    assert_eq!(double("ninf"), f64::NEG_INFINITY);
    let Some(Value::ArrayValue(array)) = attribute_value(attributes, "arr") else {
        panic!("array")
    };
    assert!(matches!(array.values[0].value, Some(Value::DoubleValue(value)) if value.is_nan()));
}

#[test]
fn json_restores_non_finite_metric_values() {
    let body = r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [
      {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "1", "asDouble": "-Infinity"}]}},
      {"name": "h", "histogram": {"dataPoints": [{"timeUnixNano": "1", "sum": "NaN",
         "min": "-Infinity", "max": "Infinity", "bucketCounts": ["1", "0"], "explicitBounds": [1]}]}}
    ]}]}]}"#;
    let request = decode_metrics(body.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::Gauge(gauge)) = &metrics[0].data else {
        panic!("gauge")
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(f64::NEG_INFINITY))
    );
    let Some(Data::Histogram(histogram)) = &metrics[1].data else {
        panic!("histogram")
    };
    let point = &histogram.data_points[0];
    assert!(point.sum.unwrap().is_nan());
    assert_eq!(
        (point.min, point.max),
        (Some(f64::NEG_INFINITY), Some(f64::INFINITY))
    );
    assert_eq!(point.explicit_bounds, [1.0]);
}

/// The Rust `opentelemetry-otlp` http-json exporter posts `serde_json::to_string_pretty` of
/// these very types.
#[test]
fn json_round_trips_what_the_rust_exporter_sends() {
    let traces = fixtures::traces_request(vec![fixtures::full_span()]);
    let body = serde_json::to_string_pretty(&traces).unwrap();
    assert_eq!(
        decode_traces(body.as_bytes(), Encoding::Json, LIMIT).unwrap(),
        traces
    );

    let metrics = fixtures::metrics_request(fixtures::every_metric_type());
    let body = serde_json::to_vec(&metrics).unwrap();
    assert_eq!(
        decode_metrics(&body, Encoding::Json, LIMIT).unwrap(),
        metrics
    );
}

#[test]
fn json_reads_the_rust_exporters_null_for_a_nan_gauge() {
    let point = fixtures::number_point(number_data_point::Value::AsDouble(f64::NAN));
    let gauge = opentelemetry_proto::tonic::metrics::v1::Gauge {
        data_points: vec![point],
    };
    let metrics = fixtures::metrics_request(vec![fixtures::metric("g", Data::Gauge(gauge))]);
    let body = serde_json::to_string(&metrics).unwrap();
    assert!(
        body.contains(r#""asDouble":null"#),
        "serde_json writes NaN as null"
    );
    let decoded = decode_metrics(body.as_bytes(), Encoding::Json, LIMIT).unwrap();
    let Some(Data::Gauge(gauge)) = &decoded.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("gauge")
    };
    assert!(matches!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(value)) if value.is_nan()
    ));
}

#[test]
fn json_rejects_enum_names_which_otlp_json_forbids() {
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#;
    let err = decode_traces(body, Encoding::Json, LIMIT).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid OTLP/JSON at line 1 column"),
        "{err}"
    );
}

#[test]
fn empty_bodies_are_empty_requests() {
    assert_eq!(
        decode_traces(b"", Encoding::Protobuf, LIMIT).unwrap(),
        Default::default()
    );
    assert_eq!(
        decode_metrics(b"{}", Encoding::Json, LIMIT).unwrap(),
        Default::default()
    );
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip { index: usize, mask: u8 },
        Truncate { index: usize },
        Insert { index: usize, byte: u8 },
        Remove { index: usize, len: usize },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 1..=u8::MAX).prop_map(|(index, mask)| Mutation::Flip { index, mask }),
            any::<usize>().prop_map(|index| Mutation::Truncate { index }),
            (any::<usize>(), any::<u8>())
                .prop_map(|(index, byte)| Mutation::Insert { index, byte }),
            (any::<usize>(), 1..16_usize).prop_map(|(index, len)| Mutation::Remove { index, len }),
        ]
    }

    fn apply(body: &mut Vec<u8>, mutation: &Mutation) {
        let len = body.len().max(1);
        match *mutation {
            Mutation::Flip { index, mask } => {
                if let Some(byte) = body.get_mut(index % len) {
                    *byte ^= mask;
                }
            }
            Mutation::Truncate { index } => body.truncate(index % len),
            Mutation::Insert { index, byte } => body.insert(index % (body.len() + 1), byte),
            Mutation::Remove {
                index,
                len: num_removed,
            } => {
                let start = (index % len).min(body.len());
                let end = (start + num_removed).min(body.len());
                body.drain(start..end);
            }
        }
    }

    /// Encoded fixtures: traces and metrics, protobuf and JSON.
    fn fixture_bodies() -> [Vec<u8>; 4] {
        let traces = fixtures::traces_request(vec![fixtures::full_span(), fixtures::full_span()]);
        let metrics = fixtures::metrics_request(fixtures::every_metric_type());
        [
            traces.encode_to_vec(),
            serde_json::to_vec(&traces).unwrap(),
            metrics.encode_to_vec(),
            serde_json::to_vec(&metrics).unwrap(),
        ]
    }

    /// Decodes `body` every way and converts whatever decodes; only panics matter.
    fn decode_and_convert_every_way(body: &[u8]) {
        let limits = ConvertLimits::default();
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            if let Ok(request) = decode_traces(body, encoding, LIMIT) {
                let converted = convert_traces(request, NOW, &limits);
                assert!(converted.num_rejected > 0 || converted.rejection_message.is_none());
            }
            if let Ok(request) = decode_metrics(body, encoding, LIMIT) {
                let _ = convert_metrics(request, NOW, &limits);
            }
        }
        let _ = gunzip(body, 1 << 16);
    }

    proptest! {
        // Cheap cases (about 1 ms each in a debug build), so more of them than the default.
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_and_convert_every_way(&body);
        }

        #[test]
        fn mutated_requests_never_panic(
            fixture_index in 0..4_usize,
            mutations in proptest::collection::vec(mutation(), 1..6),
        ) {
            let mut body = fixture_bodies()[fixture_index].clone();
            for mutation in &mutations {
                apply(&mut body, mutation);
            }
            decode_and_convert_every_way(&body);
        }
    }
}

mod gunzip;
