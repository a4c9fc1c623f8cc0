//! The write-ahead log under a real `cartograph` process and real load. `cartograph loadgen`
//! (its own process) saturates or paces ingest while probers send small traces of known ids
//! over OTLP/gRPC and note which were acknowledged (refused ones are retried, never counted).
//!
//! - **kill -9**: the process is killed with SIGKILL under full load, probes in flight; after a
//!   restart on the same data directory and the log's replay, every acknowledged trace is
//!   readable whole.
//! - **size budget**: with `storage.max_size_mb = 25` and several times that written, the data
//!   directory (every file, recursively) is within 10 % of the budget once the load stops, and
//!   every trace acknowledged in the last 10 s of load is readable whole.
//! - **SIGTERM under full load**: the process exits within 5 s, and after a restart every
//!   acknowledged trace is readable whole.
//!
//! `kill_9_repeatedly` (ignored; `scripts/bench-crash.sh`) runs the kill -9 case many times.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::fixtures::{now_nanos, span, trace_request};
use crate::process::{Options, Server, start};

const SPANS_PER_PROBE: usize = 3;
/// Probe exports in flight at once, so that some are when the process dies.
const NUM_PROBERS: usize = 4;
/// A probe export not answered (OK or refused) within this counts as unanswered: a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a refusal or an error before the next attempt.
const PROBE_PAUSE: Duration = Duration::from_millis(20);
/// At most this often per prober: a few hundred acknowledged traces, every one read back
/// afterwards (tens of ms each in a debug build).
const CRASH_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// About a hundred probes acknowledged in the size-budget test's last 10 s.
const SIZE_PROBE_INTERVAL: Duration = Duration::from_millis(400);
/// Four of loadgen's 512-span requests: the store writer keeps up with loadgen's 4
/// connections, so only a queue this small is full (and refuses) while it commits.
const QUEUE_CAPACITY_ITEMS: usize = 2048;
const WRITER_BATCH_ITEMS: usize = 512;
/// Full load before the kill or the SIGTERM.
const LOAD_BEFORE_STOP: Duration = Duration::from_secs(4);
const MIN_ACKED: usize = 50;
const READY_WAIT: Duration = Duration::from_secs(30);
/// For the store writer to catch up with the log once the load stops.
const STORED_WAIT: Duration = Duration::from_secs(30);
const SIGTERM_EXIT_LIMIT: Duration = Duration::from_secs(5);
/// How long a SIGTERM'd process is waited for before it is killed and the test fails.
const SIGTERM_WAIT: Duration = Duration::from_secs(15);

const MIB: u64 = 1024 * 1024;
const BUDGET_MB: u64 = 25;
/// Most of the size-budget test's flood (at full speed) before its paced load.
const FLOOD_MAX: Duration = Duration::from_secs(28);
/// Paced load at the end of the size-budget test: a third of the budget per 10 s at the
/// ~90 bytes a loadgen span takes in the store.
const PACED_LOAD: Duration = Duration::from_secs(12);
const PACED_SPANS_PER_SEC: u64 = 10_000;
/// Traces acknowledged this long before the load stopped must survive retention.
const RECENT: Duration = Duration::from_secs(10);
const RETENTION_PASSES_WAIT: Duration = Duration::from_secs(3);

const REFUSED_REQUESTS: &str =
    "cartograph_rejected_requests_total{signal=\"traces\",reason=\"backpressure\"}";
const ACCEPTED: &str = "cartograph_accepted_items_total{signal=\"traces\"}";
const STORED: &str = "cartograph_stored_items_total{signal=\"traces\"}";
const RETENTION_DELETED: &str = "cartograph_retention_deleted_items_total{signal=\"traces\"}";
const REPLAYED_ITEMS: &str = "cartograph_wal_replayed_items";
const WAL_DISK_BYTES: &str = "cartograph_wal_disk_bytes";
const STORE_SIZE_BYTES: &str = "cartograph_store_size_bytes";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_full_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let run = kill_9_run(dir.path()).await;
    println!("{}", run.summary());
    run.assert_sound(MIN_ACKED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "many kill -9 runs, minutes long: scripts/bench-crash.sh"]
async fn kill_9_repeatedly() {
    let num_runs: usize = std::env::var("CARTOGRAPH_CRASH_RUNS").map_or(20, |runs| {
        runs.parse().expect("CARTOGRAPH_CRASH_RUNS: a number")
    });
    let mut num_lost = 0;
    let mut num_unanswered = 0;
    for run_index in 1..=num_runs {
        let dir = tempfile::tempdir().expect("dir");
        let run = kill_9_run(dir.path()).await;
        println!(
            "run {run_index:>3}: acked {:>5}, lost {:>3}, {} unanswered, {} items replayed, ready \
             {:?} after restart, read back in {:?}",
            run.probes.acked.len(),
            run.check.unreadable.len(),
            run.probes.num_unanswered,
            run.num_replayed_items,
            run.ready_after,
            run.check.took
        );
        if !run.check.unreadable.is_empty() || run.probes.num_unanswered > 0 {
            println!(
                "    {}\n    lost e.g. {:?}",
                run.summary(),
                &run.check.unreadable[..run.check.unreadable.len().min(5)]
            );
        }
        num_lost += run.check.unreadable.len();
        num_unanswered += run.probes.num_unanswered;
    }
    println!("{num_runs} runs: {num_lost} acknowledged traces lost");
    assert_eq!(num_lost, 0, "acknowledged traces lost");
    assert_eq!(num_unanswered, 0, "probe exports never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_stays_within_its_size_budget_and_keeps_the_newest_traces() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(
        dir.path(),
        &format!("[storage]\nmax_size_mb = {BUDGET_MB}\nretention_interval_secs = 1\n"),
    );
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let server = start_logged(&data, &config, &log).await;
    let probers = Probers::start(&server, SIZE_PROBE_INTERVAL);
    let load = load_past_the_budget(&server, dir.path()).await;
    let probes = probers.stop().await;

    let stored_after = wait_stored(&server, &log).await;
    tokio::time::sleep(RETENTION_PASSES_WAIT).await;
    let size = dir_bytes(&data);
    let store_size_bytes = server.metric(STORE_SIZE_BYTES).await as u64;
    let free_bytes = sqlite_free_bytes(&data.join("cartograph.sqlite3"));
    let stored = server.metric(STORED).await;
    let deleted = server.metric(RETENTION_DELETED).await;
    let recent: Vec<u128> = probes
        .acked
        .iter()
        .filter(|(_, acked_at)| load.stopped.duration_since(*acked_at) <= RECENT)
        .map(|(trace_id, _)| *trace_id)
        .collect();
    let check = check_readable(&server, &recent).await;
    let limit_bytes = BUDGET_MB * MIB * 110 / 100;
    println!(
        "flood {:?}, then {PACED_LOAD:?} at {PACED_SPANS_PER_SEC} spans/s, all stored \
         {stored_after:?} after; spans stored {stored}, deleted by retention {deleted} (written: \
         {:.1} times what is kept); data directory: peak {} KiB (write-ahead log peak {} KiB), \
         after the load {} KiB ({} KiB allocated; the store counts {} KiB, free pages in its \
         database {} KiB), limit {} KiB; {}; acked in the last {RECENT:?}: {}, {}\nflood: \
         {}\npaced: {}",
        load.flood_took,
        stored / (stored - deleted),
        load.peak.dir_bytes / 1024,
        load.peak.wal_bytes / 1024,
        size.apparent / 1024,
        size.allocated / 1024,
        store_size_bytes / 1024,
        free_bytes / 1024,
        limit_bytes / 1024,
        probes.summary(),
        recent.len(),
        check.summary(),
        load.flood_report,
        load.paced_report
    );
    assert_eq!(
        probes.num_unanswered,
        0,
        "probe exports never answered; server log:\n{}",
        log_tail(&log)
    );
    assert!(
        deleted > 0.0,
        "retention deleted nothing: the budget was never exceeded"
    );
    assert!(
        size.apparent <= limit_bytes,
        "data directory {} bytes > {limit_bytes} after the load (the store counts \
         {store_size_bytes}; free pages in its database: {free_bytes} bytes):\n{}\n\
         server log:\n{}",
        size.apparent,
        list_files(&data),
        log_tail(&log)
    );
    assert!(
        recent.len() > MIN_ACKED,
        "only {} probes acknowledged in the last {RECENT:?}",
        recent.len()
    );
    assert!(
        check.unreadable.is_empty(),
        "{} of {} traces acknowledged in the last {RECENT:?} not readable whole, e.g. {:?}",
        check.unreadable.len(),
        recent.len(),
        &check.unreadable[..check.unreadable.len().min(10)]
    );
}

/// The size-budget test's load and what was seen meanwhile.
struct SizeLoad {
    peak: Peaks,
    flood_took: Duration,
    flood_report: String,
    paced_report: String,
    stopped: Instant,
}

/// Loadgen at full speed until retention has deleted half of what was stored (or
/// [`FLOOD_MAX`]), then paced for [`PACED_LOAD`], the size sampled all along.
async fn load_past_the_budget(server: &Server, dir: &Path) -> SizeLoad {
    let data = dir.join("data");
    let mut peak = Peaks::default();
    let flood = Load::start(server, 0, &dir.join("flood.txt"));
    let started = Instant::now();
    while started.elapsed() < FLOOD_MAX {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak.sample(server, &data).await;
        let deleted = server.metric(RETENTION_DELETED).await;
        if deleted > 0.0 && deleted >= server.metric(STORED).await / 2.0 {
            break;
        }
    }
    let flood_report = flood.stop();
    let flood_took = started.elapsed();

    // The last 10 s at this pace fit in the budget several times over.
    let paced = Load::start(server, PACED_SPANS_PER_SEC, &dir.join("paced.txt"));
    let paced_started = Instant::now();
    while paced_started.elapsed() < PACED_LOAD {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak.sample(server, &data).await;
    }
    let paced_report = paced.stop();
    SizeLoad {
        peak,
        flood_took,
        flood_report,
        paced_report,
        stopped: Instant::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_full_load_exits_within_5_s_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let config = queue_config(dir.path());
    let data = dir.path().join("data");
    let first_log = dir.path().join("first.log");
    let server = start_logged(&data, &config, &first_log).await;
    let load = Load::start(&server, 0, &dir.path().join("loadgen.txt"));
    let probers = Probers::start(&server, CRASH_PROBE_INTERVAL);
    tokio::time::sleep(LOAD_BEFORE_STOP).await;
    let num_refused_requests = server.metric(REFUSED_REQUESTS).await;
    let num_in_flight = probers.wait_in_flight().await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate_within(SIGTERM_WAIT))
        .await
        .expect("join");
    let probes = probers.stop().await;
    let load_report = load.stop();
    let Some((exit, took)) = stopped else {
        panic!(
            "still running {SIGTERM_WAIT:?} after SIGTERM ({}); server log:\n{}",
            probes.summary(),
            log_tail(&first_log)
        );
    };

    let second_log = dir.path().join("second.log");
    let server = start_logged(&data, &config, &second_log).await;
    let ready_after = wait_ready(&server, &second_log).await;
    let replayed = server.metric(REPLAYED_ITEMS).await;
    let check = check_readable(&server, &probes.acked_ids()).await;
    println!(
        "exited with {exit} {took:?} after SIGTERM; {num_refused_requests} requests refused \
         before, {num_in_flight} probes in flight; {}; ready {ready_after:?} after restart, \
         {replayed} items replayed; {}\nloadgen: {load_report}",
        probes.summary(),
        check.summary()
    );
    assert!(
        took < SIGTERM_EXIT_LIMIT,
        "exit took {took:?}; server log:\n{}",
        log_tail(&first_log)
    );
    assert!(
        exit.success(),
        "exit status {exit}; server log:\n{}",
        log_tail(&first_log)
    );
    assert!(
        num_refused_requests > 0.0,
        "the load never filled the queue"
    );
    assert!(num_in_flight > 0, "no probe in flight at the SIGTERM");
    assert_eq!(
        probes.num_unanswered,
        0,
        "probe exports never answered; server log:\n{}",
        log_tail(&first_log)
    );
    assert!(probes.acked.len() > MIN_ACKED, "{}", probes.summary());
    assert!(
        check.unreadable.is_empty(),
        "{} of {} acknowledged traces not readable whole after SIGTERM, e.g. {:?}",
        check.unreadable.len(),
        probes.acked.len(),
        &check.unreadable[..check.unreadable.len().min(10)]
    );
}

/// One kill -9 under full load and the restart after it.
struct CrashRun {
    probes: ProbeLog,
    num_refused_requests: f64,
    num_in_flight: usize,
    ready_after: Duration,
    num_replayed_items: f64,
    /// Every acknowledged trace read back after the restart.
    check: ReadCheck,
    first_log: PathBuf,
    load_report: String,
}

async fn kill_9_run(dir: &Path) -> CrashRun {
    let config = queue_config(dir);
    let data = dir.join("data");
    let first_log = dir.join("first.log");
    let server = start_logged(&data, &config, &first_log).await;
    let load = Load::start(&server, 0, &dir.join("loadgen.txt"));
    let probers = Probers::start(&server, CRASH_PROBE_INTERVAL);
    tokio::time::sleep(LOAD_BEFORE_STOP).await;
    let num_refused_requests = server.metric(REFUSED_REQUESTS).await;
    let num_in_flight = probers.wait_in_flight().await;
    server.kill();
    let probes = probers.stop().await;
    // Before the restart, which may get the same ports.
    let load_report = load.stop();

    let second_log = dir.join("second.log");
    let server = start_logged(&data, &config, &second_log).await;
    let ready_after = wait_ready(&server, &second_log).await;
    let num_replayed_items = server.metric(REPLAYED_ITEMS).await;
    let check = check_readable(&server, &probes.acked_ids()).await;
    CrashRun {
        probes,
        num_refused_requests,
        num_in_flight,
        ready_after,
        num_replayed_items,
        check,
        first_log,
        load_report,
    }
}

impl CrashRun {
    fn summary(&self) -> String {
        format!(
            "acked {}, lost {} ({}); {}; {} requests refused before the kill, {} probes in \
             flight at it; ready {:?} after restart, {} items replayed; loadgen: {}",
            self.probes.acked.len(),
            self.check.unreadable.len(),
            self.check.summary(),
            self.probes.summary(),
            self.num_refused_requests,
            self.num_in_flight,
            self.ready_after,
            self.num_replayed_items,
            self.load_report.replace('\n', "; ")
        )
    }

    fn assert_sound(&self, min_acked: usize) {
        assert!(
            self.num_refused_requests > 0.0,
            "the load never filled the queue"
        );
        assert!(self.num_in_flight > 0, "no probe in flight at the kill");
        assert_eq!(
            self.probes.num_unanswered,
            0,
            "probe exports never answered; server log:\n{}",
            log_tail(&self.first_log)
        );
        assert!(
            self.probes.acked.len() > min_acked,
            "only {} probes acknowledged; server log:\n{}",
            self.probes.acked.len(),
            log_tail(&self.first_log)
        );
        let lost = &self.check.unreadable;
        assert!(
            lost.is_empty(),
            "{} of {} acknowledged traces not readable whole after kill -9, e.g. {:?}",
            lost.len(),
            self.probes.acked.len(),
            &lost[..lost.len().min(10)]
        );
    }
}

fn write_config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("cartograph.toml");
    std::fs::write(&path, toml).expect("config");
    path
}

fn queue_config(dir: &Path) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[pipeline]\nqueue_capacity_items = {QUEUE_CAPACITY_ITEMS}\n\
             writer_batch_items = {WRITER_BATCH_ITEMS}\n"
        ),
    )
}

/// A server on `data` whose log (at `info`: replay, shutdown, panics) goes to `log`.
async fn start_logged(data: &Path, config: &Path, log: &Path) -> Server {
    start(Options {
        data_dir: Some(data),
        config: Some(config),
        log: Some((log, "info")),
        ..Options::default()
    })
    .await
}

async fn wait_ready(server: &Server, log: &Path) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = server.ready().await;
        if status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < READY_WAIT,
            "not ready {READY_WAIT:?} after restart: {body}; server log:\n{}",
            log_tail(log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the store writer has stored every accepted span (acknowledged spans are
/// readable only then); how long that took.
async fn wait_stored(server: &Server, log: &Path) -> Duration {
    let started = Instant::now();
    loop {
        let (stored, accepted) = (server.metric(STORED).await, server.metric(ACCEPTED).await);
        if stored >= accepted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < STORED_WAIT,
            "{stored} of {accepted} accepted spans stored {STORED_WAIT:?} after the load; \
             server log:\n{}",
            log_tail(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The largest sizes seen while the load ran.
#[derive(Default)]
struct Peaks {
    dir_bytes: u64,
    wal_bytes: u64,
}

impl Peaks {
    async fn sample(&mut self, server: &Server, data: &Path) {
        self.dir_bytes = self.dir_bytes.max(dir_bytes(data).apparent);
        self.wal_bytes = self
            .wal_bytes
            .max(server.metric(WAL_DISK_BYTES).await as u64);
    }
}

/// The last lines of a server's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `cartograph loadgen` as a process of its own, over OTLP/gRPC with 4 connections.
struct Load {
    child: Child,
    output: PathBuf,
}

impl Load {
    /// `rate_spans_per_sec` 0: as fast as answers come. It runs until stopped.
    fn start(server: &Server, rate_spans_per_sec: u64, output: &Path) -> Load {
        let child = Command::new(env!("CARGO_BIN_EXE_cartograph"))
            .args(["loadgen", "--endpoint"])
            .arg(format!("http://127.0.0.1:{}", server.otlp_grpc))
            .args(["--rate", &rate_spans_per_sec.to_string()])
            .args(["--concurrency", "4", "--duration", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(output).expect("loadgen output"),
            ))
            .stderr(Stdio::null())
            .spawn()
            .expect("loadgen starts");
        Load {
            child,
            output: output.to_path_buf(),
        }
    }

    /// Stops it (SIGTERM: it reports what it did; SIGKILL after 2 s); its report.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return std::fs::read_to_string(&self.output).unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        "(no report: killed 2 s after SIGTERM)".to_owned()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the probers saw.
#[derive(Debug, Default)]
struct ProbeLog {
    /// Acknowledged trace ids, each with the moment its OK arrived.
    acked: Vec<(u128, Instant)>,
    /// RESOURCE_EXHAUSTED answers (each retried with the same trace).
    num_refused: usize,
    /// Other errors: the process gone or going, connections cut.
    num_failed: usize,
    /// OK answers that rejected some spans (none should: every probe is valid).
    num_partially_rejected: usize,
    /// Exports with no answer within [`PROBE_TIMEOUT`].
    num_unanswered: usize,
    /// The first errors, for the report.
    errors: Vec<String>,
}

impl ProbeLog {
    fn merge(&mut self, other: ProbeLog) {
        self.acked.extend(other.acked);
        self.num_refused += other.num_refused;
        self.num_failed += other.num_failed;
        self.num_partially_rejected += other.num_partially_rejected;
        self.num_unanswered += other.num_unanswered;
        self.errors.extend(other.errors);
        self.errors.truncate(5);
    }

    fn acked_ids(&self) -> Vec<u128> {
        self.acked.iter().map(|(trace_id, _)| *trace_id).collect()
    }

    fn summary(&self) -> String {
        format!(
            "probes: {} acked, {} refused, {} failed, {} partially rejected, {} unanswered \
             (first errors {:?})",
            self.acked.len(),
            self.num_refused,
            self.num_failed,
            self.num_partially_rejected,
            self.num_unanswered,
            self.errors
        )
    }
}

/// [`NUM_PROBERS`] tasks sending one small trace after the other over OTLP/gRPC.
struct Probers {
    stop: Arc<AtomicBool>,
    num_in_flight: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<ProbeLog>>,
}

impl Probers {
    /// Each prober sends a trace at most every `interval` (back to back when zero).
    fn start(server: &Server, interval: Duration) -> Probers {
        let stop = Arc::new(AtomicBool::new(false));
        let num_in_flight = Arc::new(AtomicUsize::new(0));
        // Trace ids no other run (or loadgen) sends: this run's clock, the prober, a counter.
        let run_tag = u128::from(now_nanos()) << 64;
        let tasks = (0..NUM_PROBERS)
            .map(|prober| {
                let channel =
                    Endpoint::from_shared(format!("http://127.0.0.1:{}", server.otlp_grpc))
                        .expect("endpoint")
                        .connect_lazy();
                tokio::spawn(probe(
                    TraceServiceClient::new(channel),
                    run_tag | (prober as u128) << 48,
                    interval,
                    Arc::clone(&stop),
                    Arc::clone(&num_in_flight),
                ))
            })
            .collect();
        Probers {
            stop,
            num_in_flight,
            tasks,
        }
    }

    /// Waits (briefly) until some probe export is in flight; how many are.
    async fn wait_in_flight(&self) -> usize {
        let started = Instant::now();
        loop {
            let num_in_flight = self.num_in_flight.load(Ordering::Relaxed);
            if num_in_flight > 0 || started.elapsed() > Duration::from_secs(2) {
                return num_in_flight;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops after the exports in flight are answered (or time out); what every prober saw.
    async fn stop(self) -> ProbeLog {
        self.stop.store(true, Ordering::Relaxed);
        let mut log = ProbeLog::default();
        for task in self.tasks {
            log.merge(task.await.expect("prober"));
        }
        log
    }
}

async fn probe(
    mut client: TraceServiceClient<Channel>,
    first_trace_id: u128,
    interval: Duration,
    stop: Arc<AtomicBool>,
    num_in_flight: Arc<AtomicUsize>,
) -> ProbeLog {
    let mut log = ProbeLog::default();
    let mut trace_id = first_trace_id;
    while !stop.load(Ordering::Relaxed) {
        let trace_started = Instant::now();
        trace_id += 1;
        let request = probe_request(trace_id);
        loop {
            num_in_flight.fetch_add(1, Ordering::Relaxed);
            let answer = tokio::time::timeout(PROBE_TIMEOUT, client.export(request.clone())).await;
            num_in_flight.fetch_sub(1, Ordering::Relaxed);
            match answer {
                Ok(Ok(response)) => {
                    let partial_opt = response.into_inner().partial_success;
                    if partial_opt.is_some_and(|partial| partial.rejected_spans > 0) {
                        log.num_partially_rejected += 1;
                    } else {
                        log.acked.push((trace_id, Instant::now()));
                    }
                    break;
                }
                Ok(Err(status)) if status.code() == tonic::Code::ResourceExhausted => {
                    log.num_refused += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(PROBE_PAUSE).await;
                }
                Ok(Err(status)) => {
                    log.num_failed += 1;
                    if log.errors.len() < 5 {
                        log.errors
                            .push(format!("{:?}: {}", status.code(), status.message()));
                    }
                    tokio::time::sleep(PROBE_PAUSE).await;
                    break;
                }
                Err(_) => {
                    log.num_unanswered += 1;
                    break;
                }
            }
        }
        tokio::time::sleep(interval.saturating_sub(trace_started.elapsed())).await;
    }
    log
}

/// A parent server span and its client children, all in `trace_id`.
fn probe_request(trace_id: u128) -> ExportTraceServiceRequest {
    let spans = (0..SPANS_PER_PROBE)
        .map(|index| {
            let mut probe = span(1, "GET /probe");
            probe.trace_id = trace_id.to_be_bytes().to_vec();
            probe.span_id = vec![index as u8 + 1; 8];
            if index > 0 {
                probe.parent_span_id = vec![1; 8];
                probe.kind = 3;
                probe.name = format!("GET /probe/child-{index}");
            }
            probe
        })
        .collect();
    trace_request(Some("durability-probe"), spans)
}

/// Reading every acknowledged trace back.
struct ReadCheck {
    /// Traces not readable whole: id, status, number of spans.
    unreadable: Vec<String>,
    took: Duration,
    slowest: Duration,
}

impl ReadCheck {
    fn summary(&self) -> String {
        format!(
            "{} not readable whole (read in {:?}, slowest {:?})",
            self.unreadable.len(),
            self.took,
            self.slowest
        )
    }
}

/// Reads each of `trace_ids` through the API, a few at a time.
async fn check_readable(server: &Server, trace_ids: &[u128]) -> ReadCheck {
    const NUM_READERS: usize = 4;
    let started = Instant::now();
    let chunk_len = trace_ids.len().div_ceil(NUM_READERS).max(1);
    let readers: Vec<_> = trace_ids
        .chunks(chunk_len)
        .map(|chunk| {
            let (client, ui, chunk) = (server.client.clone(), server.ui.clone(), chunk.to_vec());
            tokio::spawn(async move {
                let mut unreadable = Vec::new();
                let mut slowest = Duration::ZERO;
                for trace_id in chunk {
                    let read_started = Instant::now();
                    let response = client
                        .get(format!("{ui}/api/v1/traces/{trace_id:032x}"))
                        .send()
                        .await
                        .expect("trace");
                    let status = response.status().as_u16();
                    let trace: serde_json::Value = response.json().await.unwrap_or_default();
                    slowest = slowest.max(read_started.elapsed());
                    let num_spans = trace["spans"].as_array().map_or(0, Vec::len);
                    if status != 200 || num_spans != SPANS_PER_PROBE {
                        unreadable.push(format!("{trace_id:032x}: {status}, {num_spans} spans"));
                    }
                }
                (unreadable, slowest)
            })
        })
        .collect();
    let mut check = ReadCheck {
        unreadable: Vec::new(),
        took: Duration::ZERO,
        slowest: Duration::ZERO,
    };
    for reader in readers {
        let (unreadable, slowest) = reader.await.expect("reader");
        check.unreadable.extend(unreadable);
        check.slowest = check.slowest.max(slowest);
    }
    check.took = started.elapsed();
    check
}

struct DirBytes {
    /// File lengths.
    apparent: u64,
    /// Blocks allocated (what `du` shows).
    allocated: u64,
}

/// Every file under `dir`, recursively.
fn dir_bytes(dir: &Path) -> DirBytes {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = DirBytes {
        apparent: 0,
        allocated: 0,
    };
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            let inner = dir_bytes(&entry.path());
            total.apparent += inner.apparent;
            total.allocated += inner.allocated;
        } else {
            total.apparent += meta.len();
            total.allocated += meta.blocks() * 512;
        }
    }
    total
}

/// Bytes of free pages in a SQLite database (in the file, not in use), read beside the
/// running process.
fn sqlite_free_bytes(path: &Path) -> u64 {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store's database");
    let pragma = |name: &str| -> u64 {
        let value: i64 = db
            .pragma_query_value(None, name, |row| row.get(0))
            .expect("pragma");
        value.unsigned_abs()
    };
    pragma("freelist_count") * pragma("page_size")
}

/// `path: bytes` for every file under `dir`, for failure messages.
fn list_files(dir: &Path) -> String {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => lines.push(list_files(&path)),
            Ok(meta) => lines.push(format!("{}: {}", path.display(), meta.len())),
            Err(_) => {}
        }
    }
    lines.join("\n")
}
