//! Alerting at run time: the evaluation loop (query the map for each rule's window, step the
//! [`Engine`], commit its state and new notifications to the outbox in one transaction), the
//! delivery loop (send what is due, log each attempt), and silences; what the API, the pages
//! and /metrics read of it is in `views`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

mod views;

pub use views::{AlertView, RuleView};

use super::config::AlertsConfig;
use super::delivery::Sender;
use super::engine::Engine;
use super::rule::{self, Inputs, RuleKind};
use super::silence::{MAX_SILENCES, NewSilence, Silence};
use super::state::Labels;
use crate::alert::store::{AlertStore, Attempt, Delivery, Outcome};
use crate::model::now_unix_nano;
use crate::query::{GraphFilter, GraphRange, PlacedGraph, QueryService, ServiceSummary};
use crate::store::{MetricQuery, StoreError};

/// Points read per metric-threshold rule and evaluation at most.
const MAX_METRIC_POINTS: usize = 50_000;
/// Deliveries attempted at once (one per receiver).
const MAX_CONCURRENT_DELIVERIES: usize = 16;

#[derive(Debug, Default)]
struct Counters {
    evaluations: AtomicU64,
    evaluation_failures: AtomicU64,
    last_evaluation_micros: AtomicU64,
    notifications_queued: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    outbox_overflow: AtomicU64,
}

struct Inner {
    engine: Mutex<Engine>,
    store: Arc<dyn AlertStore>,
    query: QueryService,
    config: AlertsConfig,
    sender: Sender,
    counters: Counters,
    wake_delivery: Notify,
    /// Held while a silence is added, so that the count checked is the count written.
    silence_writes: Mutex<()>,
}

/// Alerting, shared by the loops, the API and the pages.
#[derive(Clone)]
pub struct Alerting {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").finish_non_exhaustive()
    }
}

/// The running loops; stop them with [`AlertingTasks::stop`].
#[derive(Debug)]
pub struct AlertingTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl AlertingTasks {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("alert task failed: {0}")]
    Task(String),
    /// A limit is reached; nothing was added.
    #[error("{0}")]
    Full(String),
}

impl Alerting {
    /// Builds alerting over `store`, restoring the saved state.
    pub fn new(
        config: AlertsConfig,
        store: Arc<dyn AlertStore>,
        query: QueryService,
    ) -> Result<Self, AlertingError> {
        let mut engine = Engine::new(&config);
        if let Some(saved) = store.load_state()?
            && let Err(err) = engine.restore(&saved)
        {
            warn!(error = %err, "saved alert state unreadable; starting afresh");
        }
        let sender = Sender::new(config.delivery.clone(), config.receivers.clone())
            .map_err(AlertingError::Invalid)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine: Mutex::new(engine),
                store,
                query,
                config,
                sender,
                counters: Counters::default(),
                wake_delivery: Notify::new(),
                silence_writes: Mutex::new(()),
            }),
        })
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.inner
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the evaluation and delivery loops on the current runtime.
    pub fn start(&self) -> AlertingTasks {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if self.inner.config.enabled {
            let evaluator = self.clone();
            let mut stop_eval = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let interval = evaluator.inner.config.evaluation_interval.0;
                loop {
                    evaluator.evaluate_once().await;
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        _ = stop_eval.wait_for(|stop| *stop) => return,
                    }
                }
            }));
        }
        let deliverer = self.clone();
        let mut stop_delivery = stopped;
        tasks.push(tokio::spawn(async move {
            loop {
                let wait = deliverer.deliver_due().await;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = deliverer.inner.wake_delivery.notified() => {}
                    _ = stop_delivery.wait_for(|stop| *stop) => return,
                }
            }
        }));
        info!(
            rules = self.engine().rules.len(),
            receivers = self.inner.config.receivers.len(),
            "alerting started"
        );
        AlertingTasks { stop, tasks }
    }

    /// Evaluates every rule once, now.
    pub async fn evaluate_once(&self) {
        let started = Instant::now();
        let now = now_unix_nano();
        let results = self.evaluate_rules(now).await;
        let silences = self.silences().await.unwrap_or_default();
        let (state, deliveries) = {
            let mut engine = self.engine();
            let deliveries = engine.step(results, &silences, now);
            (engine.snapshot(), deliveries)
        };
        let counters = &self.inner.counters;
        counters.evaluations.fetch_add(1, Ordering::Relaxed);
        let max_outbox = self.inner.config.delivery.max_outbox;
        let store = Arc::clone(&self.inner.store);
        let num_new = deliveries.len() as u64;
        let committed =
            tokio::task::spawn_blocking(move || store.commit(&state, &deliveries, now, max_outbox))
                .await;
        match committed {
            Ok(Ok(overflow)) => {
                counters
                    .outbox_overflow
                    .fetch_add(overflow, Ordering::Relaxed);
                counters
                    .notifications_queued
                    .fetch_add(num_new, Ordering::Relaxed);
                if num_new > 0 {
                    self.inner.wake_delivery.notify_one();
                }
            }
            Ok(Err(err)) => {
                counters.evaluation_failures.fetch_add(1, Ordering::Relaxed);
                warn!(error = %err, "alert state could not be saved");
            }
            Err(err) => warn!(error = %err, "alert commit task failed"),
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        counters
            .last_evaluation_micros
            .store(micros, Ordering::Relaxed);
    }

    /// Each rule's result, reading each distinct window once.
    async fn evaluate_rules(&self, now: u64) -> Vec<Result<Vec<(Labels, f64)>, String>> {
        let specs: Vec<_> = self
            .engine()
            .rules
            .iter()
            .map(|rule| rule.spec.clone())
            .collect();
        let mut windows: BTreeMap<i64, Result<Window, String>> = BTreeMap::new();
        let mut results = Vec::with_capacity(specs.len());
        for spec in specs {
            let minutes = i64::try_from(spec.window.0.as_secs().div_ceil(60))
                .unwrap_or(1)
                .max(1);
            if let std::collections::btree_map::Entry::Vacant(entry) = windows.entry(minutes) {
                let window = self.read_window(minutes, now).await;
                if let Err(err) = &window {
                    self.inner
                        .counters
                        .evaluation_failures
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(error = %err, "alert evaluation could not read the map");
                }
                entry.insert(window);
            }
            let window = match &windows[&minutes] {
                Ok(window) => window,
                Err(err) => {
                    results.push(Err(err.clone()));
                    continue;
                }
            };
            let points = match spec.kind.metric_name() {
                Some(name) => match self.read_metric(name, &window.range).await {
                    Ok(points) => points,
                    Err(err) => {
                        results.push(Err(err));
                        continue;
                    }
                },
                None => Vec::new(),
            };
            let anomalies = match &spec.kind {
                RuleKind::Anomaly { .. } => match self.read_anomalies(minutes, now).await {
                    Ok(found) => found,
                    Err(err) => {
                        results.push(Err(err));
                        continue;
                    }
                },
                _ => Vec::new(),
            };
            let inputs = Inputs {
                view: &window.placed.view,
                overlay: &window.placed.overlay,
                services: &window.services,
                baseline: &window.baseline,
                baseline_services: &window.baseline_services,
                metric_points: &points,
                findings: &window.findings,
                anomalies: &anomalies,
            };
            results.push(Ok(rule::evaluate(&spec.kind, &inputs)));
        }
        results
    }

    async fn read_window(&self, minutes: i64, now: u64) -> Result<Window, String> {
        let query = &self.inner.query;
        // One minute more than the window: the minute in progress may have just begun, and
        // the window must still hold `window` of data.
        let range = GraphRange::last_minutes(minutes + 1, now);
        let filter = GraphFilter::default();
        let text = |err: crate::query::QueryError| err.to_string();
        let placed = query.placed_graph(range, &filter).await.map_err(text)?;
        let findings = query.audit_of(&placed.view, &placed.overlay).1;
        Ok(Window {
            placed,
            findings,
            services: query.services(range, None).await.map_err(text)?,
            baseline: query.graph(range.before(), &filter).await.map_err(text)?,
            baseline_services: query.services(range.before(), None).await.map_err(text)?,
            range,
        })
    }

    /// What departs from its baseline over the last `minutes` (at most the anomaly query's
    /// longest window).
    async fn read_anomalies(
        &self,
        minutes: i64,
        now: u64,
    ) -> Result<Vec<crate::query::Anomaly>, String> {
        let minutes = minutes.min(crate::query::MAX_ANOMALY_WINDOW_MINUTES);
        let range = GraphRange::last_minutes(minutes, now);
        let found = self.inner.query.anomalies(range).await;
        found
            .map(|found| found.anomalies)
            .map_err(|err| err.to_string())
    }

    async fn read_metric(
        &self,
        name: &str,
        range: &GraphRange,
    ) -> Result<Vec<crate::model::MetricPoint>, String> {
        let (from_unix_nano, to_unix_nano) = range.minutes.unix_nano_bounds();
        self.inner
            .query
            .metric_points(MetricQuery {
                name: Some(name.to_owned()),
                service: None,
                from_unix_nano,
                to_unix_nano,
                limit: MAX_METRIC_POINTS,
            })
            .await
            .map_err(|err| err.to_string())
    }

    /// Attempts what is due; returns how long to wait before looking again.
    async fn deliver_due(&self) -> Duration {
        const IDLE_POLL: Duration = Duration::from_secs(1);
        let now = now_unix_nano();
        let store = Arc::clone(&self.inner.store);
        let due = tokio::task::spawn_blocking(move || {
            store.due_deliveries(now, MAX_CONCURRENT_DELIVERIES)
        })
        .await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(err)) => {
                warn!(error = %err, "outbox unreadable");
                return IDLE_POLL;
            }
            Err(_) => return IDLE_POLL,
        };
        if due.is_empty() {
            let store = Arc::clone(&self.inner.store);
            let next = tokio::task::spawn_blocking(move || store.next_due())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            return match next {
                Some(at) => Duration::from_nanos(at.saturating_sub(now)).min(IDLE_POLL),
                None => IDLE_POLL,
            };
        }
        let sender = &self.inner.sender;
        let attempts = join_all(due.iter().map(|delivery| sender.attempt(delivery, now))).await;
        for (delivery, (attempt, outcome)) in due.iter().zip(attempts) {
            self.record(delivery, attempt, outcome).await;
        }
        Duration::ZERO
    }

    async fn record(&self, delivery: &Delivery, attempt: Attempt, outcome: Outcome) {
        let counters = &self.inner.counters;
        let counter = match outcome {
            Outcome::Delivered => &counters.delivered,
            Outcome::RetryAt(_) => &counters.retried,
            Outcome::Failed => &counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Delivered => {}
            Outcome::RetryAt(_) => info!(
                receiver = %delivery.receiver, attempt = delivery.num_attempts + 1,
                error = attempt.error.as_deref().unwrap_or(""), "notification will be retried"
            ),
            Outcome::Failed => warn!(
                receiver = %delivery.receiver,
                error = attempt.error.as_deref().unwrap_or(""), "notification given up"
            ),
        }
        let store = Arc::clone(&self.inner.store);
        let max_log = self.inner.config.delivery.max_log_entries;
        let recorded =
            tokio::task::spawn_blocking(move || store.record_attempt(&attempt, outcome, max_log))
                .await;
        if !matches!(recorded, Ok(Ok(()))) {
            warn!(receiver = %delivery.receiver, "delivery outcome could not be saved");
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn AlertStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AlertingError> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || work(store.as_ref()))
            .await
            .map_err(|err| AlertingError::Task(err.to_string()))?
            .map_err(AlertingError::Store)
    }

    pub async fn silences(&self) -> Result<Vec<Silence>, AlertingError> {
        self.blocking(|store| store.silences()).await
    }

    /// Creates a silence; returns its id. At [`MAX_SILENCES`] silences not yet expired, the new
    /// one is refused (`Full`): the store lets go of expired silences only, never of one that a
    /// client was told is kept.
    pub async fn add_silence(&self, new: NewSilence) -> Result<String, AlertingError> {
        let now = now_unix_nano();
        let id = format!(
            "{:016x}",
            crate::model::split_mix(now ^ u64::from(std::process::id()))
        );
        let silence = Silence::create(new, id.clone(), now).map_err(AlertingError::Invalid)?;
        let inner = Arc::clone(&self.inner);
        let added = self
            .blocking(move |store| {
                let _writing = inner
                    .silence_writes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let num_unexpired = store
                    .silences()?
                    .iter()
                    .filter(|kept| kept.ends_at_unix_nano > now)
                    .count();
                if num_unexpired >= MAX_SILENCES {
                    return Ok(false);
                }
                store.put_silence(&silence)?;
                Ok(true)
            })
            .await?;
        if !added {
            return Err(AlertingError::Full(format!(
                "{MAX_SILENCES} silences are active or pending, the most kept: expire one \
                 (DELETE /api/v1/silences/ID) before adding another"
            )));
        }
        Ok(id)
    }

    /// Expires a silence now; `Ok(false)` when there is no silence with that id.
    pub async fn expire_silence(&self, id: String) -> Result<bool, AlertingError> {
        let now = now_unix_nano();
        self.blocking(move |store| {
            let Some(mut silence) = store
                .silences()?
                .into_iter()
                .find(|silence| silence.id == id)
            else {
                return Ok(false);
            };
            silence.expire(now);
            store.put_silence(&silence)?;
            Ok(true)
        })
        .await
    }

    pub async fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, AlertingError> {
        self.blocking(move |store| store.deliveries(limit)).await
    }

    pub async fn attempts(&self, limit: usize) -> Result<Vec<Attempt>, AlertingError> {
        self.blocking(move |store| store.attempts(limit)).await
    }

    pub fn external_url(&self) -> String {
        self.engine().external_url().to_owned()
    }

    /// Where the UI listens, for links in notifications (unless `external_url` is set).
    pub fn set_ui_url(&self, url: &str) {
        self.engine().set_ui_url(url);
    }
}

/// What rules with one window length read.
struct Window {
    range: GraphRange,
    placed: PlacedGraph,
    services: Vec<ServiceSummary>,
    baseline: crate::graph::analysis::GraphView,
    baseline_services: Vec<ServiceSummary>,
    /// The audit of `placed` (finding rules).
    findings: Vec<crate::graph::audit::Finding>,
}
