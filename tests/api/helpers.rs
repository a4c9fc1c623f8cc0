//! `spawn_app()` and `TestApp`: a whole Cartograph on port 0 with a method per endpoint.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cartograph::App;
use cartograph::config::{Config, StoreKind};
use cartograph::telemetry::Signal;
use serde_json::Value;

/// How long tests wait for accepted data to reach the store.
const STORE_WAIT: Duration = Duration::from_secs(20);

pub struct TestApp {
    app: Option<App>,
    pub ui: String,
    pub otlp_http: String,
    pub otlp_grpc: String,
    pub client: reqwest::Client,
    pub data_dir: Option<PathBuf>,
}

/// A config on free loopback ports with the in-memory store.
pub fn test_config() -> Config {
    let mut config = Config::default();
    let any_port = "127.0.0.1:0".parse().expect("addr");
    config.listen.otlp_grpc = any_port;
    config.listen.otlp_http = any_port;
    config.listen.ui = any_port;
    config.storage.store = StoreKind::Memory;
    config
}

/// An HTTP client for tests (installs the TLS crypto provider reqwest needs first: each test
/// runs in a process of its own, which may not have started an app yet).
pub fn http_client() -> reqwest::Client {
    cartograph::tls::install_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The value of the sample `series` (name and labels, exactly) in Prometheus text.
pub fn sample_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A free loopback port (nothing listens on it when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// A file-backed app on `data_dir` (reopen the same directory to test restarts).
pub async fn spawn_app_on_disk(data_dir: &Path) -> TestApp {
    let mut config = test_config();
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    spawn_app_with(config).await
}

/// Starts `config`; URLs are https where `[tls]` puts a listener on TLS (give `client` the CA).
pub async fn spawn_app_with(config: Config) -> TestApp {
    let data_dir =
        (config.storage.store == StoreKind::Sqlite).then(|| config.storage.data_dir.clone());
    let tls = !config.tls.cert_file.as_os_str().is_empty();
    let scheme = |on: bool| if tls && on { "https" } else { "http" };
    let (otlp, ui) = (scheme(config.tls.otlp), scheme(config.tls.ui));
    let app = App::build(config).await.expect("app starts");
    TestApp {
        ui: format!("{ui}://{}", app.ui_addr()),
        otlp_http: format!("{otlp}://{}", app.otlp_http_addr()),
        otlp_grpc: format!("{otlp}://{}", app.otlp_grpc_addr()),
        app: Some(app),
        client: http_client(),
        data_dir,
    }
}

impl TestApp {
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("running")
    }

    /// Graceful shutdown: everything accepted is stored when this returns.
    pub async fn shutdown(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }

    /// Waits until everything accepted so far has been committed to the store.
    pub async fn wait_until_stored(&self) {
        let telemetry = self.app().telemetry();
        let started = Instant::now();
        loop {
            let done = [Signal::Traces, Signal::Metrics]
                .iter()
                .all(|signal| telemetry.stored_items(*signal) >= telemetry.accepted_items(*signal));
            if done {
                return;
            }
            assert!(
                started.elapsed() < STORE_WAIT,
                "accepted data was not stored within {STORE_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path_and_query}", self.ui))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.get(path_and_query).await;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.expect("json body");
        (status, body)
    }

    /// A page's status and text.
    pub async fn get_text(&self, path_and_query: &str) -> (u16, String) {
        let response = self.get(path_and_query).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("text body"))
    }

    pub async fn trace(&self, trace_id: &str) -> (u16, Value) {
        self.get_json(&format!("/api/v1/traces/{trace_id}")).await
    }

    pub async fn search_traces(&self, query: &str) -> (u16, Value) {
        self.get_json(&format!("/api/v1/traces?{query}")).await
    }

    pub async fn metric_points(&self, query: &str) -> (u16, Value) {
        self.get_json(&format!("/api/v1/metric-points?{query}"))
            .await
    }

    pub async fn prometheus(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.ui))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text")
    }

    /// The value of one sample line of `/metrics`, e.g. `cartograph_accepted_items_total{signal="traces"}`.
    pub async fn prometheus_value(&self, series: &str) -> f64 {
        let text = self.prometheus().await;
        sample_value(&text, series)
            .unwrap_or_else(|| panic!("series {series} not in /metrics:\n{text}"))
    }

    /// POSTs raw bytes to the OTLP/HTTP receiver.
    pub async fn post_otlp(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.otlp_http))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // An app not shut down explicitly is simply abandoned with its test runtime.
        self.app.take();
    }
}
