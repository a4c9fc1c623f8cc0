//! The Python OpenTelemetry SDK sends a trace and metrics with its own OTLP exporters
//! (`tests/python/send.py`), over gRPC and over HTTP/protobuf with gzip; everything it reports
//! having sent must come back through the API field by field.
//!
//! With TLS and an ingest token configured, both exporters send over TLS trusting the test CA
//! and carrying the token in a header.
//!
//! The interpreter comes from `CARTOGRAPH_TEST_PYTHON`, a venv that `scripts/test.sh` builds
//! from `tests/python/requirements.txt`.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::compare;
use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_config};
use crate::tls_support::TestCa;

const SEND_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send.py");
/// Interpreter start-up, SDK import and both exports, with a wide margin for a loaded machine.
const SEND_TIMEOUT: Duration = Duration::from_secs(90);
const SERVICE_NAME: &str = "py-checkout";
const METRIC_NAMES: [&str; 5] = [
    "orders.placed",
    "checkout.in_flight",
    "pool.usage",
    "checkout.latency",
    "checkout.latency.exp",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_telemetry_arrives_intact() {
    let app = spawn_app().await;
    telemetry_arrives_intact(app, &["--protocol", "grpc", "--temporality", "cumulative"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_protobuf_telemetry_arrives_intact() {
    let app = spawn_app().await;
    telemetry_arrives_intact(
        app,
        &[
            "--protocol",
            "http/protobuf",
            "--compression",
            "gzip",
            "--temporality",
            "delta",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exporters_send_over_tls_with_a_token() {
    const TOKEN: &str = "python-ingest-token";
    let ca = TestCa::new();
    let mut config = test_config();
    config.tls.cert_file = ca.cert_file.clone();
    config.tls.key_file = ca.key_file.clone();
    config.security.ingest_tokens = vec![TOKEN.to_owned()];
    let ca_file = ca.ca_file.to_str().expect("utf-8 path").to_owned();
    for protocol in ["grpc", "http/protobuf"] {
        let mut app = spawn_app_with(config.clone()).await;
        app.client = ca.client();
        let bearer = format!("authorization=Bearer {TOKEN}");
        let args = [
            "--protocol",
            protocol,
            "--ca-file",
            &ca_file,
            "--header",
            &bearer,
        ];
        telemetry_arrives_intact(app, &args).await;
    }
}

async fn telemetry_arrives_intact(app: TestApp, args: &[&str]) {
    let sent = send_with_python(&app, args).await;
    app.wait_until_stored().await;

    let spans = sent["spans"].as_array().expect("send.py reports spans");
    let trace_id = spans[0]["trace_id"].as_str().expect("trace id");
    let (status, trace) = app.trace(trace_id).await;
    assert_eq!(status, 200, "trace {trace_id} sent with {args:?}: {trace}");
    compare::assert_trace_matches(spans, &trace);

    let correlation_id = sent["correlation_id"].as_str().expect("correlation id");
    let query = format!("service={SERVICE_NAME}&attr=x-correlation-id={correlation_id}");
    let (status, search) = app.search_traces(&query).await;
    assert_eq!(status, 200, "{search}");
    compare::assert_search_finds(spans, &search);

    let points = sent["points"].as_array().expect("send.py reports points");
    compare::assert_sent_metrics(points, &METRIC_NAMES);
    for name in METRIC_NAMES {
        let (status, stored) = app
            .metric_points(&format!("name={name}&service={SERVICE_NAME}&limit=1000"))
            .await;
        assert_eq!(status, 200, "{stored}");
        compare::assert_points_match(name, points, &stored);
    }
    app.shutdown().await;
}

/// Runs send.py against the app; returns what it reports having sent.
async fn send_with_python(app: &TestApp, args: &[&str]) -> Value {
    let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON").unwrap_or_else(|| {
        panic!(
            "CARTOGRAPH_TEST_PYTHON is not set: run the tests through scripts/test.sh, \
             which installs the Python OpenTelemetry SDK into a venv"
        )
    });
    let mut stdout = tempfile::tempfile().expect("temporary file for send.py's output");
    let mut command = Command::new(&python);
    command
        .arg(SEND_PY)
        .args(args)
        .args(["--grpc-endpoint", &app.otlp_grpc])
        .args(["--http-endpoint", &app.otlp_http])
        // Loopback only, whatever proxy the environment names.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        // `requests` lets these override the CA an exporter was given (psf/requests#3829).
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .stdin(Stdio::null())
        // A file, not a pipe: nothing can block on a full pipe while we wait.
        .stdout(stdout.try_clone().expect("clone file handle"))
        .stderr(Stdio::inherit());
    let child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {python:?} {SEND_PY}: {err}"));
    let status = tokio::task::spawn_blocking(move || wait_bounded(child, SEND_TIMEOUT))
        .await
        .expect("waiting for send.py");
    assert!(
        status.success(),
        "send.py {args:?} failed with {status} (its stderr is above)"
    );

    stdout.seek(SeekFrom::Start(0)).expect("rewind output");
    let mut output = String::new();
    stdout
        .read_to_string(&mut output)
        .expect("read send.py's output");
    serde_json::from_str(&output)
        .unwrap_or_else(|err| panic!("send.py printed no JSON ({err}): {output}"))
}

/// Waits for `child`, killing it after `limit`.
fn wait_bounded(mut child: Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll send.py") {
            return status;
        }
        if started.elapsed() > limit {
            // Best effort: the panic below is the report.
            let _ = child.kill();
            let _ = child.wait();
            panic!("send.py did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
