//! `cartograph loadgen`: drives OTLP trace load at any endpoint for benchmarks and soak runs.
//! Requests are pre-encoded (`batches`) so the generator spends its time sending, not
//! encoding; `concurrency` workers share the target rate (0 = as fast as the server answers).
//! The report reconciles: every span sent is accepted, rejected by the server inside an
//! accepted request, refused with its request (by status), or failed (no answer).

mod batches;
mod send;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use batches::{RequestSource, Shape};
pub use send::{Outcome, Sender};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Grpc,
    Http,
}

#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Base URL: `http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for HTTP.
    pub endpoint: String,
    pub protocol: Protocol,
    /// Target spans per second over all workers; 0 sends as fast as answers come.
    pub rate_spans_per_sec: u64,
    pub duration: Duration,
    pub concurrency: usize,
    pub shape: Shape,
}

/// What a run sent and how it was answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadReport {
    pub num_requests: u64,
    pub num_spans_sent: u64,
    /// Spans in accepted requests, less those the server rejected inside them.
    pub num_spans_accepted: u64,
    /// Spans an accepted request's `partial_success` rejected.
    pub num_spans_rejected_in_accepted: u64,
    /// Requests refused whole, by gRPC code or HTTP status.
    pub refused_requests: BTreeMap<String, u64>,
    pub num_spans_refused: u64,
    /// Requests that got no answer (connection errors, timeouts).
    pub num_requests_failed: u64,
    pub num_spans_failed: u64,
    pub elapsed_secs: f64,
    pub accepted_spans_per_sec: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
}

impl LoadReport {
    fn add(&mut self, outcome: &Outcome, num_spans: u64) {
        self.num_requests += 1;
        self.num_spans_sent += num_spans;
        match outcome {
            Outcome::Accepted { num_rejected_spans } => {
                let rejected = (*num_rejected_spans).min(num_spans);
                self.num_spans_accepted += num_spans - rejected;
                self.num_spans_rejected_in_accepted += rejected;
            }
            Outcome::Refused(status) => {
                *self.refused_requests.entry(status.clone()).or_default() += 1;
                self.num_spans_refused += num_spans;
            }
            Outcome::Failed(_) => {
                self.num_requests_failed += 1;
                self.num_spans_failed += num_spans;
            }
        }
    }

    fn merge(&mut self, other: LoadReport) {
        self.num_requests += other.num_requests;
        self.num_spans_sent += other.num_spans_sent;
        self.num_spans_accepted += other.num_spans_accepted;
        self.num_spans_rejected_in_accepted += other.num_spans_rejected_in_accepted;
        for (status, count) in other.refused_requests {
            *self.refused_requests.entry(status).or_default() += count;
        }
        self.num_spans_refused += other.num_spans_refused;
        self.num_requests_failed += other.num_requests_failed;
        self.num_spans_failed += other.num_spans_failed;
    }

    /// The report as the command prints it.
    pub fn render(&self) -> String {
        let latency = |value: Option<f64>| value.map_or("-".to_owned(), |ms| format!("{ms:.2} ms"));
        let mut out = format!(
            "requests {}, spans sent {} in {:.1} s\n\
             accepted {} spans ({:.0} spans/s), rejected inside accepted requests {}\n\
             refused {} spans in {} requests {:?}, failed {} spans in {} requests\n\
             export latency p50 {}, p99 {}, max {}\n",
            self.num_requests,
            self.num_spans_sent,
            self.elapsed_secs,
            self.num_spans_accepted,
            self.accepted_spans_per_sec,
            self.num_spans_rejected_in_accepted,
            self.num_spans_refused,
            self.refused_requests.values().sum::<u64>(),
            self.refused_requests,
            self.num_spans_failed,
            self.num_requests_failed,
            latency(self.latency_p50_ms),
            latency(self.latency_p99_ms),
            latency(self.latency_max_ms),
        );
        if self.num_requests_failed > 0 {
            out.push_str(
                "some requests got no answer: is the endpoint up and the protocol right?\n",
            );
        }
        out
    }
}

/// Runs the load and reports; fails only when no connection can be made at all.
pub async fn run(settings: LoadSettings) -> Result<LoadReport, String> {
    run_until(settings, Arc::new(AtomicBool::new(false))).await
}

/// As [`run`], ending early (with the report so far) once `stop` is set.
pub async fn run_until(
    settings: LoadSettings,
    stop: Arc<AtomicBool>,
) -> Result<LoadReport, String> {
    let source = Arc::new(RequestSource::new(settings.shape));
    let is_grpc = settings.protocol == Protocol::Grpc;
    let concurrency = settings.concurrency.max(1);
    let spans_per_request = source.spans_per_request() as f64;
    // Seconds between one worker's sends, or none when unpaced.
    let interval_opt = (settings.rate_spans_per_sec > 0).then(|| {
        Duration::from_secs_f64(
            spans_per_request * concurrency as f64 / settings.rate_spans_per_sec as f64,
        )
    });
    let next_request = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker_no in 0..concurrency {
        let sender = Sender::connect(&settings.endpoint, is_grpc).await?;
        let source = Arc::clone(&source);
        let next_request = Arc::clone(&next_request);
        // Spread the workers' first sends over one interval.
        let offset = interval_opt.map_or(Duration::ZERO, |interval| {
            interval.mul_f64(worker_no as f64 / concurrency as f64)
        });
        workers.push(tokio::spawn(worker(
            sender,
            source,
            next_request,
            started + offset,
            deadline,
            Arc::clone(&stop),
            interval_opt,
        )));
    }
    let mut report = LoadReport::default();
    let mut latencies: Vec<Duration> = Vec::new();
    for handle in workers {
        let (worker_report, worker_latencies) = handle
            .await
            .map_err(|err| format!("load worker failed: {err}"))?;
        report.merge(worker_report);
        latencies.extend(worker_latencies);
    }
    report.elapsed_secs = started.elapsed().as_secs_f64();
    report.accepted_spans_per_sec =
        report.num_spans_accepted as f64 / report.elapsed_secs.max(1e-9);
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let last = latencies.len().checked_sub(1)?;
        let index = ((last as f64) * q).round() as usize;
        Some(latencies[index].as_secs_f64() * 1e3)
    };
    report.latency_p50_ms = quantile(0.5);
    report.latency_p99_ms = quantile(0.99);
    report.latency_max_ms = quantile(1.0);
    Ok(report)
}

async fn worker(
    mut sender: Sender,
    source: Arc<RequestSource>,
    next_request: Arc<AtomicU64>,
    first_send: Instant,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    interval_opt: Option<Duration>,
) -> (LoadReport, Vec<Duration>) {
    let mut report = LoadReport::default();
    let mut latencies = Vec::new();
    let num_spans = source.spans_per_request() as u64;
    let mut due = first_send;
    loop {
        if let Some(interval) = interval_opt {
            tokio::time::sleep_until(due.into()).await;
            // Behind schedule (the server is slower than the rate): do not burst to catch up.
            due = (due + interval).max(Instant::now());
        }
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        let request_no = next_request.fetch_add(1, Ordering::Relaxed);
        let body = source.request(request_no);
        let sent = Instant::now();
        let outcome = sender.send(body).await;
        let latency = sent.elapsed();
        if !matches!(outcome, Outcome::Failed(_)) {
            latencies.push(latency);
        }
        report.add(&outcome, num_spans);
    }
    (report, latencies)
}
