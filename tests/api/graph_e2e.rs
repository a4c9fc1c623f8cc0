//! End to end: four real processes (`tests/python/shop.py`, the Python OpenTelemetry SDK) call
//! each other over HTTP on loopback with W3C `traceparent` propagation and export their spans
//! to Cartograph over OTLP/HTTP; the graph API must show exactly the calls that were made.
//!
//! The interpreter comes from `CARTOGRAPH_TEST_PYTHON` (a venv `scripts/test.sh` builds from
//! `tests/python/requirements.txt`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::graph_support::{
    LIVE, assert_graph_settles, edge, expect_graph, service, settle_time, spawn_graph_app, user,
};
use crate::helpers::TestApp;

const SHOP_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/shop.py");
/// Interpreter start-up and SDK import, with a wide margin for a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The engine's default: pairing across processes is what this test is about.
const PAIRING_TTL_SECS: u64 = 10;
const NUM_ORDERS: u64 = 20;
/// payments declines every order whose number is a multiple of this.
const DECLINE_EVERY: u64 = 5;

/// The shop's processes; killed (and reaped) when dropped, so a failing test leaves none behind.
struct Shop {
    processes: Vec<(String, Child)>,
    dir: tempfile::TempDir,
}

impl Shop {
    fn new() -> Self {
        Self {
            processes: Vec::new(),
            dir: tempfile::tempdir().expect("temporary directory for port files"),
        }
    }

    /// Starts one service and returns its base URL once it listens.
    async fn start(&mut self, app: &TestApp, name: &str, downstream: &[(&str, &str)]) -> String {
        let python = std::env::var_os("CARTOGRAPH_TEST_PYTHON").unwrap_or_else(|| {
            panic!(
                "CARTOGRAPH_TEST_PYTHON is not set: run the tests through scripts/test.sh, \
                 which installs the Python OpenTelemetry SDK into a venv"
            )
        });
        let port_file = self.dir.path().join(format!("{name}.port"));
        let mut command = Command::new(&python);
        command
            .arg(SHOP_PY)
            .args(["--service", name, "--otlp-endpoint", &app.otlp_http])
            .arg("--port-file")
            .arg(&port_file)
            // Loopback only, whatever proxy the environment names.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (target, url) in downstream {
            command.arg("--downstream").arg(format!("{target}={url}"));
        }
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {python:?} {SHOP_PY}: {err}"));
        self.processes.push((name.to_owned(), child));
        let port = self.wait_for_port(name, &port_file).await;
        format!("http://127.0.0.1:{port}")
    }

    async fn wait_for_port(&mut self, name: &str, port_file: &Path) -> u16 {
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(port_file) {
                return text
                    .trim()
                    .parse()
                    .unwrap_or_else(|err| panic!("{name} wrote port {text:?}: {err}"));
            }
            let (_, child) = self.processes.last_mut().expect("just started");
            if let Some(status) = child.try_wait().expect("poll shop.py") {
                panic!("shop.py {name} exited with {status} before listening (stderr above)");
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "shop.py {name} did not listen within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        for (_, child) in &mut self.processes {
            // Best effort: a process that already exited is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_between_real_instrumented_processes_show_up_exactly() {
    let app = spawn_graph_app(PAIRING_TTL_SECS).await;
    let mut shop = Shop::new();
    let payments = shop.start(&app, "payments", &[]).await;
    let inventory = shop.start(&app, "inventory", &[]).await;
    let orders = shop
        .start(
            &app,
            "orders",
            &[("payments", &payments), ("inventory", &inventory)],
        )
        .await;
    let frontend = shop.start(&app, "frontend", &[("orders", &orders)]).await;

    // An uninstrumented caller (no traceparent): frontend's server spans are roots.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    for order in 1..=NUM_ORDERS {
        let response = client
            .get(format!("{frontend}/checkout?order={order}"))
            .send()
            .await
            .unwrap_or_else(|err| panic!("order {order}: {err}"));
        let expected_status = if order % DECLINE_EVERY == 0 { 502 } else { 200 };
        assert_eq!(response.status().as_u16(), expected_status, "order {order}");
    }

    let declined = NUM_ORDERS / DECLINE_EVERY;
    let expected = expect_graph(
        &[
            user(),
            service("frontend"),
            service("orders"),
            service("payments"),
            service("inventory"),
        ],
        vec![
            edge(&user(), &service("frontend"), "http", NUM_ORDERS, declined),
            edge(
                &service("frontend"),
                &service("orders"),
                "http",
                NUM_ORDERS,
                declined,
            )
            .with("client_only", 0)
            .with("server_only", 0),
            // Two stock calls per order.
            edge(
                &service("orders"),
                &service("inventory"),
                "http",
                2 * NUM_ORDERS,
                0,
            )
            .with("client_only", 0)
            .with("server_only", 0),
            edge(
                &service("orders"),
                &service("payments"),
                "http",
                NUM_ORDERS,
                declined,
            )
            .with("client_only", 0)
            .with("server_only", 0),
        ],
    );
    assert_graph_settles(&app, LIVE, &expected, settle_time(PAIRING_TTL_SECS)).await;
    drop(shop);
    app.shutdown().await;
}
