use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

use super::*;
use crate::ingest::convert::fixtures::{self, END, NOW, PARENT_SPAN_ID, SPAN_ID, START, TRACE_ID};
use crate::model::{AttrValue, UNKNOWN_SERVICE};

fn convert_one(otlp_span: OtlpSpan) -> Converted<Span> {
    let request = fixtures::traces_request(vec![otlp_span]);
    convert_traces(request, NOW, &ConvertLimits::default())
}

/// The reason the single span in a request was rejected.
fn rejection_of(otlp_span: OtlpSpan) -> String {
    let converted = convert_one(otlp_span);
    assert!(converted.items.is_empty(), "span should be rejected");
    assert_eq!(converted.num_rejected, 1);
    converted.rejection_message.expect("a reason")
}

#[test]
fn converts_every_field_of_a_full_span() {
    let converted = convert_one(fixtures::full_span());
    assert_eq!(converted.num_rejected, 0);
    assert_eq!(converted.rejection_message, None);
    assert_eq!(converted.num_unknown_service, 0);
    let [span] = converted.items.try_into().expect("one span");

    let resource = &span.resource;
    assert_eq!(resource.service_name, "cart");
    assert_eq!(resource.service_namespace.as_deref(), Some("shop"));
    assert_eq!(resource.service_version.as_deref(), Some("1.4.2"));
    assert_eq!(resource.deployment_environment.as_deref(), Some("prod"));
    assert_eq!(resource.attributes.len(), 5);
    assert_eq!(resource.dropped_attributes_count, 2);
    assert_eq!(span.scope.name, "io.opentelemetry.http");
    assert_eq!(span.scope.version, "2.1.0");
    assert_eq!(
        span.scope.attributes,
        vec![("scope.kind".to_owned(), AttrValue::Str("library".into()))]
    );
    assert_eq!(span.scope.dropped_attributes_count, 1);

    assert_eq!(span.trace_id.as_bytes(), &TRACE_ID);
    assert_eq!(span.span_id.as_bytes(), &SPAN_ID);
    assert_eq!(
        span.parent_span_id.map(|id| *id.as_bytes()),
        Some(PARENT_SPAN_ID)
    );
    assert_eq!(span.trace_state, "vendor=span");
    assert_eq!(span.flags, 0x101);
    assert_eq!(span.name, "GET /cart");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.start_time_unix_nano, START);
    assert_eq!(span.end_time_unix_nano, END);
    assert_eq!(span.status_code, StatusCode::Error);
    assert_eq!(span.status_message, "upstream timed out");
    assert_eq!(span.dropped_attributes_count, 3);
    assert_eq!(span.dropped_events_count, 6);

    let expected_attributes = vec![
        (
            "http.request.method".to_owned(),
            AttrValue::Str("GET".into()),
        ),
        ("http.response.status_code".to_owned(), AttrValue::Int(200)),
        ("sampled".to_owned(), AttrValue::Bool(false)),
        ("ratio".to_owned(), AttrValue::Double(0.5)),
        ("payload".to_owned(), AttrValue::Bytes(vec![1, 2, 255])),
        (
            "tags".to_owned(),
            AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Int(2)]),
        ),
        (
            "headers".to_owned(),
            AttrValue::Map(vec![("nested".to_owned(), AttrValue::Bool(true))]),
        ),
        ("empty".to_owned(), AttrValue::Empty),
    ];
    assert_eq!(span.attributes, expected_attributes);

    let expected_event = Event {
        time_unix_nano: START + 10,
        name: "exception".into(),
        attributes: vec![(
            "exception.type".to_owned(),
            AttrValue::Str("Timeout".into()),
        )],
        dropped_attributes_count: 5,
    };
    assert_eq!(span.events, vec![expected_event]);

    // The link with a 3-byte trace id is dropped and counted on top of the sender's 1.
    assert_eq!(span.dropped_links_count, 2);
    let expected_link = Link {
        trace_id: TraceId::from_bytes(&[7; 16]).unwrap(),
        span_id: SpanId::from_bytes(&[8; 8]).unwrap(),
        trace_state: "vendor=link".into(),
        attributes: vec![("link.kind".to_owned(), AttrValue::Str("follows".into()))],
        dropped_attributes_count: 4,
        flags: 0x301,
    };
    assert_eq!(span.links, vec![expected_link]);
}

#[test]
fn spans_of_one_resource_share_its_resource_and_scope() {
    let request = fixtures::traces_request(vec![fixtures::full_span(), fixtures::full_span()]);
    let converted = convert_traces(request, NOW, &ConvertLimits::default());
    let [first, second] = converted.items.try_into().expect("two spans");
    assert!(Arc::ptr_eq(&first.resource, &second.resource));
    assert!(Arc::ptr_eq(&first.scope, &second.scope));
}

#[test]
fn missing_status_means_unset() {
    let otlp_span = OtlpSpan {
        status: None,
        kind: 42,
        ..fixtures::full_span()
    };
    let [span] = convert_one(otlp_span).items.try_into().expect("one span");
    assert_eq!(span.status_code, StatusCode::Unset);
    assert_eq!(span.status_message, "");
    assert_eq!(span.kind, SpanKind::Unspecified);
}

#[test]
fn empty_or_zero_parent_is_a_root() {
    for parent in [Vec::new(), vec![0; 8]] {
        let otlp_span = OtlpSpan {
            parent_span_id: parent,
            ..fixtures::full_span()
        };
        let [span] = convert_one(otlp_span).items.try_into().expect("one span");
        assert_eq!(span.parent_span_id, None);
    }
}

#[test]
fn rejects_invalid_ids() {
    let short_trace = OtlpSpan {
        trace_id: vec![1, 2, 3],
        ..fixtures::full_span()
    };
    assert_eq!(
        rejection_of(short_trace),
        "rejected 1 of 1 spans: resource 0 scope 0 span 0: trace id must be 16 bytes, got 3"
    );
    let zero_trace = OtlpSpan {
        trace_id: vec![0; 16],
        ..fixtures::full_span()
    };
    assert!(rejection_of(zero_trace).ends_with("trace id must not be all zeroes"));
    let empty_span_id = OtlpSpan {
        span_id: Vec::new(),
        ..fixtures::full_span()
    };
    assert!(rejection_of(empty_span_id).ends_with("span id must be 8 bytes, got 0"));
    let long_parent = OtlpSpan {
        parent_span_id: vec![1; 16],
        ..fixtures::full_span()
    };
    assert!(rejection_of(long_parent).ends_with("parent span id must be 8 bytes, got 16"));
}

#[test]
fn rejects_missing_and_inverted_times() {
    let no_start = OtlpSpan {
        start_time_unix_nano: 0,
        ..fixtures::full_span()
    };
    assert!(rejection_of(no_start).ends_with("start_time_unix_nano is 0"));
    let inverted = OtlpSpan {
        end_time_unix_nano: START - 1,
        ..fixtures::full_span()
    };
    let expected = format!(
        "end_time_unix_nano {} is before start_time_unix_nano {START}",
        START - 1
    );
    assert!(rejection_of(inverted).ends_with(&expected));
}

#[test]
fn rejects_absurd_timestamps() {
    let limits = ConvertLimits::default();
    let ancient = OtlpSpan {
        start_time_unix_nano: limits.min_time_unix_nano - 1,
        ..fixtures::full_span()
    };
    let expected = format!(
        "absurd timestamp: start_time_unix_nano {} is before {}",
        limits.min_time_unix_nano - 1,
        limits.min_time_unix_nano
    );
    assert!(rejection_of(ancient).ends_with(&expected));

    let future_end = NOW + limits.max_future_skew_nanos + 1;
    let future = OtlpSpan {
        end_time_unix_nano: future_end,
        ..fixtures::full_span()
    };
    let expected = format!(
        "absurd timestamp: end_time_unix_nano {future_end} is more than 3600 s ahead of now ({NOW})"
    );
    assert!(rejection_of(future).ends_with(&expected));
}

#[test]
fn accepts_times_at_the_limits() {
    let limits = ConvertLimits::default();
    let otlp_span = OtlpSpan {
        start_time_unix_nano: limits.min_time_unix_nano,
        end_time_unix_nano: NOW + limits.max_future_skew_nanos,
        ..fixtures::full_span()
    };
    assert_eq!(convert_one(otlp_span).items.len(), 1);
}

#[test]
fn keeps_valid_spans_and_summarises_the_first_three_rejections() {
    let bad = |trace_len: usize| OtlpSpan {
        trace_id: vec![9; trace_len],
        ..fixtures::full_span()
    };
    let spans = vec![
        bad(1),
        fixtures::full_span(),
        bad(2),
        bad(3),
        bad(4),
        bad(5),
    ];
    let request = fixtures::traces_request(spans);
    let converted = convert_traces(request, NOW, &ConvertLimits::default());
    assert_eq!(converted.items.len(), 1);
    assert_eq!(converted.num_rejected, 5);
    assert_eq!(
        converted.rejection_message.as_deref(),
        Some(
            "rejected 5 of 6 spans: resource 0 scope 0 span 0: trace id must be 16 bytes, got 1; \
             resource 0 scope 0 span 2: trace id must be 16 bytes, got 2; \
             resource 0 scope 0 span 3: trace id must be 16 bytes, got 3; and 2 more"
        )
    );
}

#[test]
fn counts_accepted_spans_without_a_service_name() {
    let scope_spans = |spans| ScopeSpans {
        scope: None,
        spans,
        schema_url: String::new(),
    };
    let invalid = OtlpSpan {
        start_time_unix_nano: 0,
        ..fixtures::full_span()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(fixtures::resource(None)),
                scope_spans: vec![scope_spans(vec![fixtures::full_span(), invalid])],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![scope_spans(vec![fixtures::full_span()])],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: Some(fixtures::resource(Some("cart"))),
                scope_spans: vec![scope_spans(vec![fixtures::full_span()])],
                schema_url: String::new(),
            },
        ],
    };
    let converted = convert_traces(request, NOW, &ConvertLimits::default());
    assert_eq!(converted.items.len(), 3);
    assert_eq!(converted.num_unknown_service, 2);
    assert_eq!(converted.items[0].service_name(), UNKNOWN_SERVICE);
    assert_eq!(converted.items[1].service_name(), UNKNOWN_SERVICE);
    assert_eq!(converted.items[1].scope.name, "");
    assert!(
        converted
            .rejection_message
            .expect("one rejection")
            .starts_with("rejected 1 of 4 spans: resource 0 scope 0 span 1:")
    );
}

#[test]
fn empty_request_converts_to_nothing() {
    let converted = convert_traces(
        ExportTraceServiceRequest::default(),
        NOW,
        &ConvertLimits::default(),
    );
    assert!(converted.items.is_empty());
    assert_eq!(converted.num_rejected, 0);
    assert_eq!(converted.rejection_message, None);
}
