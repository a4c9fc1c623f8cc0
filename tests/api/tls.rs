//! TLS on every port: with `[tls]` set, the real Rust SDK exporters (OTLP/gRPC and OTLP/HTTP)
//! connect trusting the configured CA and their spans are stored; the UI answers over https;
//! plain-text clients and clients that do not trust the CA are refused and the ports keep
//! serving; a certificate that does not fit its key stops startup naming the files.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{
    Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use tonic::transport::{Certificate, ClientTlsConfig};

use crate::helpers::{TestApp, spawn_app_with, test_config};
use crate::tls_support::TestCa;

const INGEST: &str = "tls-ingest-token";
const UI: &str = "tls-ui-token";

async fn on_tls(ca: &TestCa) -> TestApp {
    let mut config = test_config();
    config.tls.cert_file = ca.cert_file.clone();
    config.tls.key_file = ca.key_file.clone();
    config.security.ingest_tokens = vec![INGEST.to_owned()];
    config.security.ui_tokens = vec![UI.to_owned()];
    config.alerts.enabled = false;
    let mut app = spawn_app_with(config).await;
    app.client = ca.client();
    app
}

fn send_one(provider: SdkTracerProvider, operation: &'static str) {
    provider.tracer("tls-test").in_span(operation, |_| {});
    provider.shutdown().expect("the exporter sent over TLS");
}

async fn traces_named(app: &TestApp, operation: &str) -> usize {
    let found: Value = app
        .client
        .get(format!(
            "{}/api/v1/traces?{}",
            app.ui,
            serde_urlencoded::to_string([("operation", operation)]).expect("query")
        ))
        .header("authorization", format!("Bearer {UI}"))
        .send()
        .await
        .expect("https request to the UI")
        .json()
        .await
        .expect("json");
    found["traces"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_exporters_connect_with_the_configured_ca() {
    let ca = TestCa::new();
    let app = on_tls(&ca).await;
    assert!(app.otlp_grpc.starts_with("https://") && app.ui.starts_with("https://"));

    let (grpc, ca_pem) = (app.otlp_grpc.clone(), ca.ca_pem.clone());
    tokio::task::spawn_blocking(move || {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            "authorization",
            format!("Bearer {INGEST}").parse().expect("metadata"),
        );
        let exporter = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(grpc)
            .with_tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca_pem))
                    .domain_name("localhost"),
            )
            .with_metadata(metadata)
            .with_timeout(Duration::from_secs(10))
            .build()
            .expect("gRPC exporter");
        send_one(
            SdkTracerProvider::builder()
                .with_simple_exporter(exporter)
                .build(),
            "GET /over-grpc-tls",
        );
    })
    .await
    .expect("join");

    let (http, ca_pem) = (format!("{}/v1/traces", app.otlp_http), ca.ca_pem.clone());
    tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA")])
            .build()
            .expect("blocking client");
        let exporter = SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http)
            .with_headers(HashMap::from([(
                "x-service-auth".to_owned(),
                INGEST.to_owned(),
            )]))
            .build()
            .expect("HTTP exporter");
        send_one(
            SdkTracerProvider::builder()
                .with_simple_exporter(exporter)
                .build(),
            "GET /over-http-tls",
        );
    })
    .await
    .expect("join");

    app.wait_until_stored().await;
    assert_eq!(traces_named(&app, "GET /over-grpc-tls").await, 1);
    assert_eq!(traces_named(&app, "GET /over-http-tls").await, 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_and_untrusting_clients_are_refused_and_the_ports_keep_serving() {
    let ca = TestCa::new();
    let app = on_tls(&ca).await;
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for url in [&app.otlp_http, &app.ui] {
        let as_http = url.replacen("https://", "http://", 1);
        let answer = plain.get(format!("{as_http}/health/live")).send().await;
        assert!(
            answer
                .as_ref()
                .map_or(true, |response| !response.status().is_success()),
            "plain http to a TLS port must not be served: {answer:?}"
        );
        // The system's roots do not include the test CA.
        let untrusting = plain.get(format!("{url}/health/live")).send().await;
        assert!(
            untrusting.is_err(),
            "a client not trusting the CA must fail the handshake"
        );
    }
    // A gRPC client speaking plain text gets no answer either.
    let as_http = app.otlp_grpc.replacen("https://", "http://", 1);
    let plain_grpc = async {
        let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(as_http).await?;
        client
            .export(
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default(),
            )
            .await
            .map_err(Into::<Box<dyn std::error::Error + Send + Sync>>::into)
    };
    let plain_result: Result<_, Box<dyn std::error::Error + Send + Sync>> =
        tokio::time::timeout(Duration::from_secs(10), plain_grpc)
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
    assert!(plain_result.is_err(), "plain-text gRPC must be refused");

    // The ports still serve trusted clients.
    let live = app
        .client
        .get(format!("{}/health/live", app.ui))
        .send()
        .await
        .expect("https");
    assert_eq!(live.status(), 200);
    let ready = app
        .client
        .get(format!("{}/health/ready", app.ui))
        .header("authorization", format!("Bearer {UI}"))
        .send()
        .await
        .expect("https");
    assert_eq!(ready.status(), 200);
    let bearer = format!("Bearer {INGEST}");
    let accepted = app
        .post_otlp(
            "/v1/traces",
            &[
                ("content-type", "application/x-protobuf"),
                ("authorization", &bearer),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(accepted.status(), 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_fit_the_certificate_stops_startup_naming_the_files() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let mut config = test_config();
    config.tls.cert_file = ca.cert_file.clone();
    config.tls.key_file = other.key_file.clone();
    let message = cartograph::App::build(config)
        .await
        .expect_err("must not start")
        .to_string();
    assert!(
        message.contains("does not fit") && message.contains("server-key.pem"),
        "{message}"
    );
    let mut config = test_config();
    config.tls.cert_file = ca.cert_file.clone();
    let message = cartograph::App::build(config)
        .await
        .expect_err("must not start")
        .to_string();
    assert!(
        message.contains("tls.cert_file and tls.key_file"),
        "{message}"
    );
}
