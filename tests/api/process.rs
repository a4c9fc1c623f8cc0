//! A real `cartograph serve` process on free loopback ports, for tests that need what only a
//! process has: its own file-descriptor and file-size limits, its own RSS, signals.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

pub struct Server {
    child: Child,
    pub ui: String,
    pub otlp_http: u16,
    pub otlp_grpc: u16,
    pub client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the process is started.
#[derive(Default)]
pub struct Options<'a> {
    /// `None`: the memory store; else SQLite in this directory.
    pub data_dir: Option<&'a Path>,
    pub config: Option<&'a Path>,
    /// Ignore SIGXFSZ (inherited through exec), so a write past the file-size limit fails
    /// with EFBIG the way a full disk fails with ENOSPC, instead of killing the process.
    pub ignore_file_size_signal: bool,
    /// Write the process's log here at `debug` (else: warnings, discarded).
    pub debug_log: Option<&'a Path>,
    /// Write the process's whole output (its log is on stdout, panics on stderr) here, with
    /// this `RUST_LOG` filter; takes precedence over `debug_log`.
    pub log: Option<(&'a Path, &'a str)>,
}

/// How many times a process that exits before it listens (another process took one of its
/// free ports between the probe and the bind) is started again on fresh ports.
const START_ATTEMPTS: usize = 3;
/// How long a started process may take to answer `/health/live` on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn start(options: Options<'_>) -> Server {
    let client = crate::helpers::http_client();
    let mut exits = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let (grpc, http, ui) = (free_port(), free_port(), free_port());
        let mut server = Server {
            child: spawn(&options, (grpc, http, ui)),
            ui: format!("http://127.0.0.1:{ui}"),
            otlp_http: http,
            otlp_grpc: grpc,
            client: client.clone(),
        };
        let started = Instant::now();
        loop {
            let live = server.client.get(format!("{}/health/live", server.ui));
            if live.send().await.is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                exits.push(status);
                break;
            }
            assert!(started.elapsed() < START_TIMEOUT, "server up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("the server exited before it listened, {START_ATTEMPTS} times: {exits:?}")
}

/// `cartograph serve` with `options` on the loopback ports (gRPC, HTTP, UI).
fn spawn(options: &Options<'_>, (grpc, http, ui): (u16, u16, u16)) -> Child {
    let mut args: Vec<String> = vec!["serve".into()];
    match options.data_dir {
        Some(dir) => args.extend([
            "--store".into(),
            "sqlite".into(),
            "--data-dir".into(),
            dir.display().to_string(),
        ]),
        None => args.extend(["--store".into(), "memory".into()]),
    }
    if let Some(config) = options.config {
        args.extend(["--config".into(), config.display().to_string()]);
    }
    args.extend([
        "--otlp-grpc".into(),
        format!("127.0.0.1:{grpc}"),
        "--otlp-http".into(),
        format!("127.0.0.1:{http}"),
        "--ui".into(),
        format!("127.0.0.1:{ui}"),
    ]);
    let binary = env!("CARGO_BIN_EXE_cartograph");
    let mut command = if options.ignore_file_size_signal {
        let mut shell = Command::new("sh");
        shell.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\"", binary]);
        shell
    } else {
        Command::new(binary)
    };
    let (log_filter, stdout, stderr) = match (options.log, options.debug_log) {
        (Some((path, filter)), _) => {
            let file = std::fs::File::create(path).expect("log file");
            let stdout = Stdio::from(file.try_clone().expect("log file"));
            (filter, stdout, Stdio::from(file))
        }
        (None, Some(path)) => (
            "debug",
            Stdio::null(),
            Stdio::from(std::fs::File::create(path).expect("log file")),
        ),
        (None, None) => ("warn", Stdio::null(), Stdio::null()),
    };
    command
        .args(&args)
        .env("RUST_LOG", log_filter)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("cartograph starts")
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory now, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// The most resident memory the process has had so far.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    /// Sets the peak (VmHWM) back to the resident memory now, so the next peak measures only
    /// what follows (`/proc/PID/clear_refs`, Linux 4.0 and later); false where refused.
    pub fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{}/status", self.pid()))
            * 1024
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.ui))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// One series' value at /metrics (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        crate::helpers::sample_value(&self.metrics().await, series).unwrap_or(0.0)
    }

    /// `/health/ready`: status and body.
    pub async fn ready(&self) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}/health/ready", self.ui))
            .send()
            .await
            .expect("ready");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Posts an OTLP/HTTP protobuf body; the status (0 when the request failed).
    pub async fn post_traces(&self, body: Vec<u8>) -> u16 {
        self.post_traces_with(&[], body).await.0
    }

    /// Posts an OTLP/HTTP protobuf body with extra headers; the status and the response text.
    pub async fn post_traces_with(&self, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("http://127.0.0.1:{}/v1/traces", self.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
            Err(err) => (0, err.to_string()),
        }
    }

    /// Stops with SIGTERM (graceful: everything accepted is stored); the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        let (status, _) = self
            .terminate_within(Duration::from_secs(60))
            .expect("stops on SIGTERM");
        status
    }

    /// Kills the process with SIGKILL (no chance to clean up, as in a crash); the exit status.
    pub fn kill(mut self) -> std::process::ExitStatus {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait")
    }

    /// Sends SIGTERM and waits up to `limit` for the exit: the status and how long it took.
    /// `None` when the process was still running then (it is killed with SIGKILL).
    pub fn terminate_within(
        mut self,
        limit: Duration,
    ) -> Option<(std::process::ExitStatus, Duration)> {
        let killed = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}
