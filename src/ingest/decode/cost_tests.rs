//! The decoding-cost estimate for typical and hostile bodies of both encodings: hostile ones
//! (2 bytes on the wire per decoded object) are refused by a limit far above their size,
//! typical ones cost a small multiple of their size (what decoding them really takes is
//! measured against a real process in `tests/api/decode_limits.rs`).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Histogram, metric::Data};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use super::*;
use crate::ingest::convert::fixtures;

fn typical_traces() -> ExportTraceServiceRequest {
    let spans = (0..200_u8)
        .map(|index| {
            let mut span = fixtures::full_span();
            span.span_id = vec![index; 8];
            for key in ["http.request.method", "url.path", "server.address", "peer"] {
                span.attributes
                    .push(fixtures::text(key, "GET /api/v1/orders"));
            }
            span
        })
        .collect();
    fixtures::traces_request(spans)
}

fn attribute_bomb() -> ExportTraceServiceRequest {
    let mut span = fixtures::full_span();
    span.attributes = vec![KeyValue::default(); 100_000];
    fixtures::traces_request(vec![span])
}

fn empty_span_bomb() -> ExportTraceServiceRequest {
    fixtures::traces_request(vec![Span::default(); 50_000])
}

fn nested_value_bomb() -> ExportTraceServiceRequest {
    let mut span = fixtures::full_span();
    let values = vec![AnyValue::default(); 50_000];
    span.attributes.push(fixtures::key_value(
        "list",
        any_value::Value::ArrayValue(ArrayValue { values }),
    ));
    fixtures::traces_request(vec![span])
}

fn histograms() -> ExportMetricsServiceRequest {
    let mut point = fixtures::histogram_point(vec![3; 16], vec![0.5; 15]);
    point.attributes = vec![fixtures::text("http.route", "/orders")];
    let histogram = Data::Histogram(Histogram {
        data_points: vec![point; 500],
        aggregation_temporality: 2,
    });
    let metric = fixtures::metric("http.server.request.duration", histogram);
    fixtures::metrics_request(vec![metric; 4])
}

/// The estimate for one body, as a multiple of its size; refused just below it.
fn check(name: &str, body: &[u8], encoding: Encoding, metrics: bool) -> f64 {
    let estimate = estimate_decoded_bytes(body, encoding, metrics);
    let ratio = estimate as f64 / body.len() as f64;
    println!(
        "{name} {encoding:?}: {} body bytes, estimate {estimate} ({ratio:.1}x)",
        body.len()
    );
    let refused = if metrics {
        decode_metrics(body, encoding, estimate - 1).map(|_| ())
    } else {
        decode_traces(body, encoding, estimate - 1).map(|_| ())
    };
    assert!(
        matches!(refused, Err(DecodeError::TooCostly { .. })),
        "{name} {encoding:?}: {refused:?}"
    );
    let accepted = if metrics {
        decode_metrics(body, encoding, estimate).map(|_| ())
    } else {
        decode_traces(body, encoding, estimate).map(|_| ())
    };
    assert!(accepted.is_ok(), "{name} {encoding:?}: {accepted:?}");
    ratio
}

#[test]
fn hostile_bodies_cost_many_times_their_size_and_typical_ones_a_few() {
    for (name, request, hostile) in [
        ("typical", typical_traces(), false),
        ("attribute bomb", attribute_bomb(), true),
        ("empty span bomb", empty_span_bomb(), true),
        ("nested value bomb", nested_value_bomb(), true),
    ] {
        let protobuf = check(name, &request.encode_to_vec(), Encoding::Protobuf, false);
        let json_body = serde_json::to_vec(&request).unwrap();
        let json = check(name, &json_body, Encoding::Json, false);
        if hostile {
            assert!(protobuf > 30.0, "{name}: {protobuf:.1}x");
            // serde_json writes every field of the default structs; still more than typical.
            assert!(json > 4.0, "{name}: {json:.1}x");
        } else {
            assert!(protobuf < 12.0, "{name}: {protobuf:.1}x");
            assert!(json < 8.0, "{name}: {json:.1}x");
        }
    }
    // What an attacker writes instead: 3 bytes per span.
    let spans = vec!["{}"; 100_000].join(",");
    let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#);
    let json = check("empty span bomb", body.as_bytes(), Encoding::Json, false);
    assert!(json > 100.0, "{json:.1}x");
    let request = histograms();
    let protobuf = check(
        "histograms",
        &request.encode_to_vec(),
        Encoding::Protobuf,
        true,
    );
    let json_body = serde_json::to_vec(&request).unwrap();
    let json = check("histograms", &json_body, Encoding::Json, true);
    assert!(protobuf < 12.0 && json < 8.0, "{protobuf:.1}x, {json:.1}x");
}

#[test]
fn no_body_is_estimated_above_the_bound_that_lets_small_bodies_skip_the_walk() {
    let bodies = [
        typical_traces().encode_to_vec(),
        attribute_bomb().encode_to_vec(),
        empty_span_bomb().encode_to_vec(),
        nested_value_bomb().encode_to_vec(),
        serde_json::to_vec(&typical_traces()).unwrap(),
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            vec!["{}"; 1000].join(",")
        )
        .into_bytes(),
    ];
    for body in bodies {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let estimate = estimate_decoded_bytes(&body, encoding, false);
            let budget = match encoding {
                Encoding::Protobuf => cost::Budget::protobuf(estimate - 1),
                Encoding::Json => cost::Budget::json(estimate - 1),
            };
            assert!(
                cost::could_exceed(body.len(), schema::Message::TraceRequest, &budget),
                "{encoding:?}: {} bytes estimated at {estimate}",
                body.len()
            );
        }
    }
}

#[test]
fn a_small_body_that_decodes_into_millions_of_objects_is_refused_unparsed() {
    // 2 bytes per attribute on the wire; ~128 bytes each once decoded.
    let body = attribute_bomb().encode_to_vec();
    let limit = body.len() * 10;
    let err = decode_traces(&body, Encoding::Protobuf, limit).unwrap_err();
    assert!(matches!(err, DecodeError::TooCostly { .. }), "{err}");
    assert!(err.to_string().contains(&limit.to_string()), "{err}");
    assert!(err.to_string().contains("max_decoded_bytes"), "{err}");
}
