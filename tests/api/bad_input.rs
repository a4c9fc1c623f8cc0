//! Every kind of bad input gets the right status and a message naming the problem, and loses
//! nothing already accepted.

use cartograph::ingest::http::RpcStatus;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;

use crate::fixtures::{encode, gzip, span, trace_request};
use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_config};

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

/// Posts to /v1/traces and returns the status with the error message of a protobuf body.
async fn post_traces(app: &TestApp, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let response = app.post_otlp("/v1/traces", headers, body).await;
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    let bytes = response.bytes().await.expect("body");
    let message = if is_json {
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json body");
        value["message"].as_str().unwrap_or_default().to_owned()
    } else {
        RpcStatus::decode(bytes.as_ref())
            .expect("rpc status")
            .message
    };
    (status, message)
}

/// Accepts one good trace first so each test can check it survives.
async fn app_with_accepted_trace() -> TestApp {
    let app = spawn_app().await;
    let body = encode(&trace_request(
        Some("survivor"),
        vec![span(0x77, "GET /kept")],
    ));
    let (status, _) = post_traces(&app, &[PROTOBUF], body).await;
    assert_eq!(status, 200);
    app
}

async fn assert_survivor_kept(app: &TestApp) {
    app.wait_until_stored().await;
    let (status, trace) = app.trace(&"77".repeat(16)).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["spans"][0]["name"], "GET /kept");
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(status, 200, "{ready}");
}

#[tokio::test]
async fn malformed_protobuf_is_400_naming_protobuf() {
    let app = app_with_accepted_trace().await;
    let (status, message) = post_traces(&app, &[PROTOBUF], vec![0x0a, 0xff, 0xff, 0x01]).await;
    assert_eq!(status, 400);
    assert!(message.contains("protobuf"), "{message}");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn truncated_protobuf_is_400() {
    let app = app_with_accepted_trace().await;
    let body = encode(&trace_request(
        Some("cut"),
        vec![span(1, "GET /a"), span(2, "GET /b")],
    ));
    let (status, message) = post_traces(&app, &[PROTOBUF], body[..body.len() / 2].to_vec()).await;
    assert_eq!(status, 400);
    assert!(message.contains("protobuf"), "{message}");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn malformed_json_is_400_naming_json_and_position() {
    let app = app_with_accepted_trace().await;
    let (status, message) = post_traces(&app, &[JSON], b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(status, 400);
    assert!(message.contains("JSON"), "{message}");
    assert!(message.contains("line 1"), "{message}");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn invalid_hex_id_in_json_is_400() {
    let app = app_with_accepted_trace().await;
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708","name":"x"}]}]}]}"#;
    let (status, message) = post_traces(&app, &[JSON], body.to_vec()).await;
    assert_eq!(status, 400);
    assert!(message.contains("JSON"), "{message}");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn wrong_content_type_is_415_listing_accepted_types() {
    let app = app_with_accepted_trace().await;
    let (status, message) =
        post_traces(&app, &[("content-type", "text/plain")], b"hello".to_vec()).await;
    assert_eq!(status, 415);
    assert!(message.contains("text/plain"), "{message}");
    assert!(message.contains("application/x-protobuf"), "{message}");
    let (status, _) = post_traces(&app, &[], b"hello".to_vec()).await;
    assert_eq!(status, 415, "a missing Content-Type is refused too");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn unsupported_content_encoding_is_415() {
    let app = app_with_accepted_trace().await;
    let body = encode(&trace_request(Some("svc"), vec![span(3, "GET /")]));
    let (status, message) = post_traces(&app, &[PROTOBUF, ("content-encoding", "br")], body).await;
    assert_eq!(status, 415);
    assert!(message.contains("Content-Encoding"), "{message}");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn oversized_body_is_413_naming_the_limit() {
    let mut config = test_config();
    config.ingest.max_message_bytes = 2048.try_into().expect("non-zero");
    let app = spawn_app_with(config).await;
    let spans = (1..=40).map(|seed| span(seed, "GET /large")).collect();
    let body = encode(&trace_request(Some("big"), spans));
    assert!(body.len() > 2048);
    let (status, message) = post_traces(&app, &[PROTOBUF], body).await;
    assert_eq!(status, 413);
    assert!(message.contains("2048"), "{message}");
}

#[tokio::test]
async fn corrupt_gzip_is_400_naming_gzip() {
    let app = app_with_accepted_trace().await;
    let (status, message) = post_traces(
        &app,
        &[PROTOBUF, ("content-encoding", "gzip")],
        b"\x1f\x8b\x08\x00garbage".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("gzip"), "{message}");
    assert_survivor_kept(&app).await;
}

#[tokio::test]
async fn gzip_bomb_is_refused_at_the_decompressed_limit() {
    let mut config = test_config();
    config.ingest.max_message_bytes = (512 * 1024).try_into().expect("non-zero");
    config.ingest.max_decompressed_bytes = (1024 * 1024).try_into().expect("non-zero");
    let app = spawn_app_with(config).await;
    let bomb = gzip(&vec![0_u8; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let (status, message) =
        post_traces(&app, &[PROTOBUF, ("content-encoding", "gzip")], bomb).await;
    assert_eq!(status, 413);
    assert!(message.contains("1048576"), "{message}");
}

#[tokio::test]
async fn gzip_body_is_accepted() {
    let app = spawn_app().await;
    let body = gzip(&encode(&trace_request(
        Some("zipped"),
        vec![span(4, "GET /gz")],
    )));
    let (status, _) = post_traces(&app, &[PROTOBUF, ("content-encoding", "gzip")], body).await;
    assert_eq!(status, 200);
    app.wait_until_stored().await;
    let (status, _) = app.trace(&"04".repeat(16)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn invalid_ids_are_rejected_per_span_as_partial_success() {
    let app = spawn_app().await;
    let mut short_trace_id = span(5, "short trace id");
    short_trace_id.trace_id = vec![1, 2, 3];
    let mut zero_span_id = span(6, "zero span id");
    zero_span_id.span_id = vec![0; 8];
    let good = span(7, "good");
    let body = encode(&trace_request(
        Some("ids"),
        vec![short_trace_id, zero_span_id, good],
    ));
    let response = app.post_otlp("/v1/traces", &[PROTOBUF], body).await;
    assert_eq!(response.status().as_u16(), 200);
    let decoded =
        ExportTraceServiceResponse::decode(response.bytes().await.expect("body").as_ref())
            .expect("response");
    let partial = decoded.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("trace id"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("span id"),
        "{}",
        partial.error_message
    );
    app.wait_until_stored().await;
    let (status, _) = app.trace(&"07".repeat(16)).await;
    assert_eq!(status, 200, "the valid span of the batch is stored");
    let rejected = app
        .prometheus_value("cartograph_rejected_items_total{signal=\"traces\",reason=\"invalid\"}")
        .await;
    assert_eq!(rejected, 2.0);
}

#[tokio::test]
async fn absurd_timestamps_are_rejected_with_the_reason() {
    let app = spawn_app().await;
    let mut zero_start = span(8, "zero start");
    zero_start.start_time_unix_nano = 0;
    let mut backwards = span(9, "ends before it starts");
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    let mut far_future = span(10, "year 2200");
    far_future.start_time_unix_nano = 7_258_118_400_000_000_000;
    far_future.end_time_unix_nano = far_future.start_time_unix_nano + 1;
    let body = encode(&trace_request(
        Some("clock"),
        vec![zero_start, backwards, far_future],
    ));
    let response = app
        .post_otlp(
            "/v1/traces",
            &[JSON],
            serde_json::to_vec(&serde_json::json!({})).expect("json"),
        )
        .await;
    assert_eq!(
        response.status().as_u16(),
        200,
        "an empty JSON request is valid"
    );
    let response = app.post_otlp("/v1/traces", &[PROTOBUF], body).await;
    assert_eq!(response.status().as_u16(), 200);
    let decoded =
        ExportTraceServiceResponse::decode(response.bytes().await.expect("body").as_ref())
            .expect("response");
    let partial = decoded.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 3);
    assert!(
        partial.error_message.contains("time"),
        "{}",
        partial.error_message
    );
}

#[tokio::test]
async fn missing_service_name_becomes_unknown_service_and_is_counted() {
    let app = spawn_app().await;
    let body = encode(&trace_request(None, vec![span(11, "anonymous")]));
    let (status, _) = post_traces(&app, &[PROTOBUF], body).await;
    assert_eq!(status, 200);
    app.wait_until_stored().await;
    let (_, trace) = app.trace(&"0b".repeat(16)).await;
    assert_eq!(
        trace["spans"][0]["resource"]["service_name"],
        "unknown_service"
    );
    let counted = app
        .prometheus_value("cartograph_unknown_service_items_total{signal=\"traces\"}")
        .await;
    assert_eq!(counted, 1.0);
}

#[tokio::test]
async fn hostile_strings_round_trip_exactly_and_are_searchable() {
    let app = spawn_app().await;
    let hostile = "<script>alert(1)</script>'; DROP TABLE spans;--\u{0}\u{1b}[31m\u{202e}ü";
    let mut span = span(12, hostile);
    span.attributes
        .push(crate::fixtures::string_attr("x-correlation-id", hostile));
    let (status, _) = post_traces(
        &app,
        &[PROTOBUF],
        encode(&trace_request(Some(hostile), vec![span])),
    )
    .await;
    assert_eq!(status, 200);
    app.wait_until_stored().await;
    let (_, trace) = app.trace(&"0c".repeat(16)).await;
    assert_eq!(trace["spans"][0]["name"], hostile);
    assert_eq!(trace["spans"][0]["resource"]["service_name"], hostile);
    let query = serde_urlencoded::to_string([
        ("service", hostile.to_owned()),
        ("attr", format!("x-correlation-id={hostile}")),
    ])
    .expect("query");
    let (status, found) = app.search_traces(&query).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["traces"][0]["trace_id"], "0c".repeat(16));
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, expected) in [
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("min_duration_ms=-3", "min_duration_ms"),
        ("error=perhaps", "error"),
        ("from=last-tuesday", "from"),
        ("attr=no-equals-sign", "attr"),
        ("servce=typo", "servce"),
    ] {
        let (status, body) = app.search_traces(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["error"].as_str().expect("error message");
        assert!(message.contains(expected), "{query}: {message}");
    }
    let (status, body) = app.trace("not-a-trace-id").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .expect("message")
            .contains("trace id")
    );
    let (status, body) = app.trace(&"ab".repeat(16)).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .expect("message")
            .contains("not found")
    );
}

#[tokio::test]
async fn grpc_rejects_invalid_spans_partially_and_logs_as_unimplemented() {
    let app = spawn_app().await;
    let mut client = TraceServiceClient::connect(app.otlp_grpc.clone())
        .await
        .expect("connect");
    let mut bad = span(13, "bad");
    bad.trace_id = vec![0; 16];
    let response = client
        .export(trace_request(Some("grpc"), vec![bad, span(14, "good")]))
        .await
        .expect("export");
    let partial = response
        .into_inner()
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace id"),
        "{}",
        partial.error_message
    );

    let mut logs = LogsServiceClient::connect(app.otlp_grpc.clone())
        .await
        .expect("connect");
    let status = logs
        .export(ExportLogsServiceRequest::default())
        .await
        .expect_err("logs are refused");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(
        status.message().contains("logs are not collected"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn unknown_paths_and_logs_over_http_say_what_to_use() {
    let app = spawn_app().await;
    let response = app.post_otlp("/v1/logs", &[PROTOBUF], Vec::new()).await;
    assert_eq!(response.status().as_u16(), 501);
    let response = app.post_otlp("/v1/trace", &[PROTOBUF], Vec::new()).await;
    assert_eq!(response.status().as_u16(), 404);
    let body = response.text().await.expect("text");
    assert!(body.contains("/v1/traces"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_over_the_limits_are_dropped_or_cut_and_counted() {
    let mut config = test_config();
    config.ingest.max_attributes = 10.try_into().expect("non-zero");
    config.ingest.max_attribute_value_bytes = 100.try_into().expect("non-zero");
    let app = spawn_app_with(config).await;
    let mut wide = span(0x0d, "wide");
    wide.attributes = (0..50)
        .map(|n| crate::fixtures::string_attr(&format!("key.{n}"), &"é".repeat(80)))
        .collect();
    wide.dropped_attributes_count = 3;
    let (status, body) = post_traces(
        &app,
        &[PROTOBUF],
        encode(&trace_request(Some("wide"), vec![wide])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.wait_until_stored().await;
    let (status, trace) = app.trace(&"0d".repeat(16)).await;
    assert_eq!(status, 200, "{trace}");
    let stored = &trace["spans"][0];
    let attributes = stored["attributes"].as_object().expect("attributes");
    assert_eq!(attributes.len(), 10, "{stored}");
    assert_eq!(
        stored["dropped_attributes_count"],
        3 + 40,
        "dropped ones are counted"
    );
    let value = attributes["key.0"]["stringValue"].as_str().expect("string");
    assert_eq!(
        value.len(),
        100,
        "cut at 100 bytes, on a character boundary"
    );
    assert_eq!(
        app.prometheus_value("cartograph_limited_attributes_total{signal=\"traces\"}")
            .await,
        50.0,
        "40 dropped and 10 cut"
    );
    app.shutdown().await;
}
