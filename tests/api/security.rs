//! Authentication on every port: with tokens configured, OTLP/gRPC, OTLP/HTTP and the UI/API
//! refuse requests without credentials or with wrong ones (UNAUTHENTICATED / 401) on every
//! path but `/health/live`, and let the right ones through (the real Rust SDK exporter with a
//! header included). The UI sends its security headers.

use std::collections::HashMap;

use base64::Engine as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

use crate::helpers::{TestApp, spawn_app_with, test_config};

const INGEST: &str = "ingest-token-1";
const UI: &str = "ui-token-1";

async fn secured() -> TestApp {
    let mut config = test_config();
    config.security.ingest_tokens = vec![INGEST.to_owned()];
    config.security.ui_tokens = vec![UI.to_owned()];
    config.security.ui_users = [("ana".to_owned(), "correct horse".to_owned())].into();
    config.alerts.enabled = false;
    spawn_app_with(config).await
}

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_refuses_missing_and_wrong_tokens_on_every_path() {
    let app = secured().await;
    let protobuf = ("content-type", "application/x-protobuf");
    for path in ["/v1/traces", "/v1/metrics", "/v1/logs", "/no/such/path"] {
        for headers in [
            vec![protobuf],
            vec![protobuf, ("authorization", "Bearer wrong")],
            vec![protobuf, ("authorization", UI)],
            vec![protobuf, ("x-service-auth", "wrong")],
        ] {
            let response = app.post_otlp(path, &headers, Vec::new()).await;
            assert_eq!(response.status(), 401, "{path} {headers:?}");
            assert!(response.headers().contains_key("www-authenticate"));
        }
    }
    let bearer = format!("Bearer {INGEST}");
    for auth in [
        ("authorization", bearer.as_str()),
        ("x-service-auth", INGEST),
    ] {
        let response = app
            .post_otlp("/v1/traces", &[protobuf, auth], Vec::new())
            .await;
        assert_eq!(response.status(), 200, "{auth:?}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_answers_unauthenticated_without_the_token() {
    let app = secured().await;
    let mut traces = TraceServiceClient::connect(app.otlp_grpc.clone())
        .await
        .expect("connect");
    let mut metrics = MetricsServiceClient::connect(app.otlp_grpc.clone())
        .await
        .expect("connect");
    for metadata in [
        None,
        Some(("authorization", "Bearer wrong".to_owned())),
        Some(("x-service-auth", "wrong".to_owned())),
    ] {
        let mut trace_request = tonic::Request::new(ExportTraceServiceRequest::default());
        let mut metric_request = tonic::Request::new(ExportMetricsServiceRequest::default());
        if let Some((name, value)) = &metadata {
            let value: tonic::metadata::MetadataValue<_> = value.parse().expect("metadata");
            trace_request.metadata_mut().insert(*name, value.clone());
            metric_request.metadata_mut().insert(*name, value);
        }
        let status = traces.export(trace_request).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{metadata:?}");
        let status = metrics.export(metric_request).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{metadata:?}");
    }
    for (name, value) in [
        ("authorization", format!("Bearer {INGEST}")),
        ("x-service-auth", INGEST.to_owned()),
    ] {
        let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
        request
            .metadata_mut()
            .insert(name, value.parse().expect("metadata"));
        traces
            .export(request)
            .await
            .expect("accepted with the token");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_sends_with_a_configured_header() {
    let app = secured().await;
    let endpoint = format!("{}/v1/traces", app.otlp_http);
    let exported = tokio::task::spawn_blocking(move || {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_headers(HashMap::from([(
                "authorization".to_owned(),
                format!("Bearer {INGEST}"),
            )]))
            .build()
            .expect("exporter");
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .build();
        provider.tracer("secured").in_span("GET /secured", |_| {});
        provider.shutdown()
    })
    .await
    .expect("join");
    exported.expect("the SDK exported with its header");
    app.wait_until_stored().await;
    let found: serde_json::Value = app
        .client
        .get(format!(
            "{}/api/v1/traces?operation=GET%20%2Fsecured",
            app.ui
        ))
        .header("authorization", format!("Bearer {UI}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(found["traces"].as_array().map(Vec::len), Some(1), "{found}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_and_api_refuse_without_credentials_except_liveness() {
    let app = secured().await;
    let client = crate::helpers::http_client();
    let get_paths = [
        "/",
        "/services",
        "/alerts",
        "/traces",
        "/api/v1/graph",
        "/api/v1/traces",
        "/api/v1/alerts",
        "/api/v1/silences",
        "/metrics",
        "/health/ready",
        "/static/app.css",
        "/no/such/page",
    ];
    let wrong = [
        None,
        Some(format!("Bearer {INGEST}")),
        Some("Bearer wrong".to_owned()),
        Some(basic("ana:wrong")),
        Some(basic("bob:correct horse")),
    ];
    for path in get_paths {
        for authorization in &wrong {
            let mut request = client.get(format!("{}{path}", app.ui));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), 401, "{path} {authorization:?}");
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .expect("text")
                    .starts_with("Basic"),
                "browsers are asked to sign in"
            );
        }
        for right in [format!("Bearer {UI}"), basic("ana:correct horse")] {
            let response = client
                .get(format!("{}{path}", app.ui))
                .header("authorization", right)
                .send()
                .await
                .expect("request");
            assert_ne!(response.status(), 401, "{path}");
            assert!(response.status() != 403, "{path}");
        }
    }
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/silences"),
        (reqwest::Method::DELETE, "/api/v1/silences/some-id"),
        (reqwest::Method::POST, "/alerts/silences"),
    ] {
        let response = client
            .request(method.clone(), format!("{}{path}", app.ui))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    let live = client
        .get(format!("{}/health/live", app.ui))
        .send()
        .await
        .expect("request");
    assert_eq!(live.status(), 200, "liveness stays open");
    let metrics = client
        .get(format!("{}/metrics", app.ui))
        .header("authorization", format!("Bearer {UI}"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    let refused: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cartograph_unauthenticated_requests_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the refusals are counted");
    assert_eq!(refused, (get_paths.len() * wrong.len() + 3) as u64);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_a_strict_content_security_policy_and_security_headers() {
    let mut config = test_config();
    config.alerts.enabled = false;
    let app = spawn_app_with(config).await;
    for path in ["/", "/api/v1/graph", "/no/such/page"] {
        let response = app
            .client
            .get(format!("{}{path}", app.ui))
            .send()
            .await
            .expect("request");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("text");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_decides_the_tenant_whatever_the_sender_claims() {
    use crate::fixtures::{encode, span, string_attr, trace_request};
    let mut config = test_config();
    config.security.ingest_tokens = vec![INGEST.to_owned()];
    config.security.tenants = [
        ("shop".to_owned(), vec!["shop-token".to_owned()]),
        ("billing".to_owned(), vec!["billing-token".to_owned()]),
    ]
    .into();
    config.alerts.enabled = false;
    let app = spawn_app_with(config).await;
    // Each request claims to be billing's; only billing's own token makes it so.
    let claiming = |seed: u8| {
        let mut request = trace_request(Some("orders"), vec![span(seed, "GET /claimed")]);
        if let Some(resource) = request.resource_spans[0].resource.as_mut() {
            resource
                .attributes
                .push(string_attr("cartograph.tenant", "billing"));
        }
        // And, on the span, shop's (a search by attribute would match it there too).
        request.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(string_attr("cartograph.tenant", "shop"));
        request
    };
    let protobuf = ("content-type", "application/x-protobuf");
    let response = app
        .post_otlp(
            "/v1/traces",
            &[protobuf, ("x-service-auth", "shop-token")],
            encode(&claiming(1)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let bearer = format!("Bearer {INGEST}");
    let response = app
        .post_otlp(
            "/v1/traces",
            &[protobuf, ("authorization", &bearer)],
            encode(&claiming(2)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut traces = TraceServiceClient::connect(app.otlp_grpc.clone())
        .await
        .expect("connect");
    let mut request = tonic::Request::new(claiming(3));
    request.metadata_mut().insert(
        "authorization",
        "Bearer billing-token".parse().expect("metadata"),
    );
    traces.export(request).await.expect("billing's own token");
    app.wait_until_stored().await;

    let tenant_of = |seed: u8| {
        let id = format!("{seed:02x}").repeat(16);
        let app = &app;
        async move {
            let (status, trace) = app.trace(&id).await;
            assert_eq!(status, 200, "{trace}");
            let tenant = &trace["spans"][0]["resource"]["attributes"]["cartograph.tenant"];
            tenant.get("stringValue").cloned()
        }
    };
    assert_eq!(tenant_of(1).await, Some("shop".into()), "shop's token");
    assert_eq!(tenant_of(2).await, None, "a shared token carries no tenant");
    assert_eq!(
        tenant_of(3).await,
        Some("billing".into()),
        "billing's token"
    );
    let (_, found) = app
        .search_traces("attr=cartograph.tenant%3Dshop&limit=10")
        .await;
    assert_eq!(found["traces"].as_array().map(Vec::len), Some(1), "{found}");
    app.shutdown().await;
}

/// A real process logging at `debug`, configured with every kind of secret, started, sent to
/// with right and wrong credentials, read through the UI: no secret appears in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_even_at_debug() {
    use crate::fixtures::{encode, span, trace_request};
    use crate::process::{Options, start};
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("cartograph.toml");
    std::fs::write(
        &config,
        r#"
[security]
ingest_tokens = ["ingest-SECRET-1"]
ui_tokens = ["ui-SECRET-2"]
ui_users = { ana = "pw-SECRET-3" }
[security.tenants]
shop = ["tenant-SECRET-4"]
[clickhouse]
password = "clickhouse-SECRET-5"
[[alerts.receivers]]
name = "ops"
url = "http://127.0.0.1:9/hook"
hmac_secret = "hmac-SECRET-6"
headers = { Authorization = "Bearer receiver-SECRET-7" }
"#,
    )
    .expect("config");
    let log = dir.path().join("cartograph.log");
    let server = start(Options {
        config: Some(&config),
        // The whole output: the log is on stdout, panics on stderr.
        log: Some((&log, "debug")),
        ..Options::default()
    })
    .await;
    let body = || encode(&trace_request(Some("orders"), vec![span(1, "GET /x")]));
    for token in ["ingest-SECRET-1", "tenant-SECRET-4", "wrong-SECRET-8"] {
        let expected = if token.starts_with("wrong") { 401 } else { 200 };
        let bearer = format!("Bearer {token}");
        let (status, _) = server
            .post_traces_with(&[("authorization", &bearer)], body())
            .await;
        assert_eq!(status, expected, "{token}");
        let (status, _) = server
            .post_traces_with(&[("x-service-auth", token)], body())
            .await;
        assert_eq!(status, expected, "{token}");
    }
    for (path, auth, expected) in [
        ("/", "Bearer ui-SECRET-2".to_owned(), 200),
        ("/api/v1/graph", basic("ana:pw-SECRET-3"), 200),
        ("/alerts", basic("ana:wrong-SECRET-9"), 401),
    ] {
        let response = server
            .client
            .get(format!("{}{path}", server.ui))
            .header("authorization", auth)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), expected, "{path}");
    }
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(
        &bad_config,
        "[security]\ningest_tokens = [\"has SECRET-10 space\"]\n",
    )
    .expect("config");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_cartograph"))
        .args(["serve", "--store", "memory", "--config"])
        .arg(&bad_config)
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    let refused_text = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        refused_text.contains("security.ingest_tokens"),
        "{refused_text}"
    );
    drop(server);
    let logged = std::fs::read_to_string(&log).expect("log") + &refused_text;
    assert!(logged.len() > 1000, "the debug log has content:\n{logged}");
    let leaks: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains("SECRET"))
        .collect();
    assert!(leaks.is_empty(), "secrets in the log: {leaks:#?}");
}
