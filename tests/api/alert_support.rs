//! What the alert tests share: a real HTTP webhook receiver (actix-web on loopback, recording
//! every request, answering with a settable status), calls between two services sent through
//! the real Rust OpenTelemetry SDK, and a config with fast alert timing.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{HttpRequest, HttpResponse, web};
use cartograph::alert::config::AlertsConfig;
use cartograph::config::Config;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

use crate::helpers::{TestApp, test_config};
use crate::signals_sdk::tracer_provider;

pub const RULE: &str = "CheckoutErrors";
/// The rule's `for` and the evaluation interval of [`alert_config`].
pub const FOR: Duration = Duration::from_secs(2);
pub const EVALUATION_INTERVAL: Duration = Duration::from_millis(500);
pub const WAIT: Duration = Duration::from_secs(30);

/// Alerts on checkout → payments errors above 5 %, evaluated every 500 ms, notified fast;
/// built-in rules off so only this rule speaks. `extra` is appended to the `[alerts]` TOML.
pub fn alert_config(receiver_url: &str, extra: &str) -> Config {
    let text = format!(
        r#"
evaluation_interval = "500ms"
builtin_rules = false
group_wait = "500ms"
group_interval = "1s"
repeat_interval = "1h"
{extra}
[delivery]
initial_backoff = "200ms"
max_backoff = "1s"
timeout = "2s"

[[receivers]]
name = "ops"
url = "{receiver_url}"
hmac_secret = "test-secret"
headers = {{ Authorization = "Bearer receiver-token" }}

[[rules]]
name = "{RULE}"
kind = "edge_error_rate"
threshold = 0.05
min_requests = 10
for = "2s"
window = "1m"
labels = {{ team = "payments" }}
annotations = {{ summary = "{{{{ $value | percent }}}} of calls {{{{ $labels.source | name }}}} → {{{{ $labels.target | name }}}} fail" }}
"#
    );
    let mut config = test_config();
    config.alerts = toml::from_str::<AlertsConfig>(&text).expect("alert config parses");
    config
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub raw: Vec<u8>,
    pub body: Value,
}

/// A webhook receiver on loopback.
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    handle: ServerHandle,
}

async fn record(
    request: HttpRequest,
    body: web::Bytes,
    received: web::Data<Arc<Mutex<Vec<Received>>>>,
    status: web::Data<Arc<AtomicU16>>,
    delay_ms: web::Data<Arc<AtomicU64>>,
) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    received.lock().expect("lock").push(Received {
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
    });
    let delay = delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let code = status.load(Ordering::Relaxed);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("status"))
        .body("recorded")
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: any) and answers 200 until told otherwise.
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, None).await
    }

    /// Listens over https with the certificate `ca` issued.
    pub async fn start_tls(ca: &crate::tls_support::TestCa) -> Self {
        let identity = cartograph::tls::ServerIdentity::load(&ca.cert_file, &ca.key_file)
            .expect("receiver certificate");
        Self::start_with(0, Some(identity)).await
    }

    async fn start_with(port: u16, tls: Option<cartograph::tls::ServerIdentity>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("receiver binds");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (shared_received, shared_status, shared_delay) = (
            Arc::clone(&received),
            Arc::clone(&status),
            Arc::clone(&delay_ms),
        );
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(Arc::clone(&shared_received)))
                .app_data(web::Data::new(Arc::clone(&shared_status)))
                .app_data(web::Data::new(Arc::clone(&shared_delay)))
                .default_service(web::to(record))
        })
        .workers(2)
        .disable_signals();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(identity) => server.listen_rustls_0_23(listener, identity.rustls_config()),
            None => server.listen(listener),
        }
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("{scheme}://127.0.0.1:{port}/hook"),
            received,
            status,
            delay_ms,
            handle,
        }
    }

    /// Answers only after `delay` (a slow receiver).
    pub fn delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `count` requests arrived; returns them all.
    pub async fn wait_for(&self, count: usize, what: &str) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                started.elapsed() < WAIT,
                "{what}: {} of {count} requests within {WAIT:?}: {:?}",
                received.len(),
                received.iter().map(|r| &r.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Checkout calling payments over HTTP through the real SDK (OTLP/HTTP), on a thread of its
/// own; each batch is exported before [`Calls::send`] returns.
pub struct Calls {
    batches: mpsc::Sender<(u64, u64)>,
    done: mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

fn call(checkout: &SdkTracerProvider, payments: &SdkTracerProvider, fails: bool) {
    let checkout_tracer = checkout.tracer("checkout");
    let root = checkout_tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", "POST")])
        .start(&checkout_tracer);
    let root_cx = Context::current_with_span(root);
    let client = checkout_tracer
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("peer.service", "payments"),
        ])
        .start_with_context(&checkout_tracer, &root_cx);
    let client_cx = root_cx.with_span(client);
    let payments_tracer = payments.tracer("payments");
    let mut server = payments_tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", "POST")])
        .start_with_context(&payments_tracer, &client_cx);
    if fails {
        server.set_status(Status::error("card processor unavailable"));
        client_cx
            .span()
            .set_status(Status::error("HTTP 503 from payments"));
    }
    server.end();
    client_cx.span().end();
    root_cx.span().end();
}

impl Calls {
    pub fn start(app: &TestApp) -> Self {
        let endpoint = app.otlp_http.clone();
        let (batches, batch_receiver) = mpsc::channel::<(u64, u64)>();
        let (done_sender, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let checkout = tracer_provider(&endpoint, "checkout");
            let payments = tracer_provider(&endpoint, "payments");
            for (num_ok, num_errors) in batch_receiver {
                for index in 0..num_ok + num_errors {
                    call(&checkout, &payments, index < num_errors);
                }
                let _ = done_sender.send(());
            }
            let _ = checkout.shutdown();
            let _ = payments.shutdown();
        });
        Self {
            batches,
            done,
            thread,
        }
    }

    /// Sends `num_ok` good and `num_errors` failing calls and waits until they are exported.
    pub async fn send(&self, num_ok: u64, num_errors: u64) {
        self.batches
            .send((num_ok, num_errors))
            .expect("sdk thread alive");
        let done = &self.done;
        tokio::task::block_in_place(|| done.recv_timeout(WAIT)).expect("calls exported");
    }

    pub async fn stop(self) {
        drop(self.batches);
        tokio::task::spawn_blocking(move || self.thread.join().expect("sdk thread"))
            .await
            .expect("join");
    }
}

/// Polls `/api/v1/alerts` until `check` holds for the list; returns it.
pub async fn alerts_until(
    app: &TestApp,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (status, body) = app.get_json("/api/v1/alerts").await;
        assert_eq!(status, 200, "{body}");
        let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
        if check(&alerts) {
            return alerts;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} within {WAIT:?}: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn has_status(alerts: &[Value], status: &str) -> bool {
    alerts.iter().any(|alert| alert["status"] == status)
}

/// Runs the strict Alertmanager v4 schema (tests/support) over `bodies` with Python's
/// jsonschema; returns its complaints (empty: every body is valid).
pub fn schema_errors(bodies: &[&Value]) -> String {
    let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON").unwrap_or_else(|| {
        panic!(
            "CARTOGRAPH_TEST_PYTHON is not set: run the tests through scripts/test.sh, \
             which installs jsonschema into a venv"
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            let path = dir.path().join(format!("webhook-{index}.json"));
            std::fs::write(&path, body.to_string()).expect("write body");
            path.display().to_string()
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/validate_webhook.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args(&files)
        .output()
        .expect("python runs");
    let mut complaints = String::from_utf8_lossy(&output.stdout).into_owned();
    complaints.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() && complaints.is_empty() {
        complaints = format!("validator exited with {}", output.status);
    }
    complaints
}
