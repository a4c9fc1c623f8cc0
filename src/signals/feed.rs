//! The live mapper shared between ingest (which feeds it the recognised points of each
//! accepted export) and queries (which read it). Filtering by name happens before the lock,
//! so exports without lag or breaker metrics never touch it. The same feed carries the
//! semantic-convention duration histograms to the live [`MetricRed`] (its own lock).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Rejection, SignalMapper, SignalSettings};
use crate::metric_red::{MetricRed, RedRejection};
use crate::model::{MetricPoint, now_unix_nano};

/// How often the live mapper forgets what is older than its history.
const EXPIRE_INTERVAL_NANOS: u64 = crate::model::NANOS_PER_MINUTE;

#[derive(Clone)]
pub struct SharedSignals {
    mapper: Arc<Mutex<(SignalMapper, u64)>>,
    names: Arc<HashSet<String>>,
    /// RED from duration histograms since this process started.
    red: Arc<Mutex<MetricRed>>,
}

impl std::fmt::Debug for SharedSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSignals")
            .field("num_names", &self.names.len())
            .finish_non_exhaustive()
    }
}

/// The locked mapper.
pub struct SignalsGuard<'a>(MutexGuard<'a, (SignalMapper, u64)>);

impl std::ops::Deref for SignalsGuard<'_> {
    type Target = SignalMapper;

    fn deref(&self) -> &SignalMapper {
        &self.0.0
    }
}

impl SharedSignals {
    pub fn new(settings: SignalSettings) -> Self {
        let names = settings.metric_names().map(str::to_owned).collect();
        Self {
            mapper: Arc::new(Mutex::new((SignalMapper::new(settings), 0))),
            names: Arc::new(names),
            red: Arc::new(Mutex::new(MetricRed::new(now_unix_nano()))),
        }
    }

    pub fn recognises(&self, name: &str) -> bool {
        self.names.contains(name) || MetricRed::recognises(name)
    }

    /// The live RED accumulator.
    pub fn lock_red(&self) -> MutexGuard<'_, MetricRed> {
        self.red.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Observes the recognised points among `points` (in the order given).
    pub fn offer<'a>(&self, points: impl IntoIterator<Item = &'a MetricPoint>, now_unix_nano: u64) {
        let (histograms, recognised): (Vec<&MetricPoint>, Vec<&MetricPoint>) = points
            .into_iter()
            .filter(|point| self.recognises(&point.name))
            .partition(|point| MetricRed::recognises(&point.name));
        if !histograms.is_empty() {
            let mut red = self.lock_red();
            for point in histograms {
                red.observe(point);
            }
            red.expire(now_unix_nano);
        }
        if recognised.is_empty() {
            return;
        }
        let mut guard = self.mapper.lock().unwrap_or_else(PoisonError::into_inner);
        let (mapper, last_expired) = &mut *guard;
        for point in recognised {
            mapper.observe(point);
        }
        if now_unix_nano.saturating_sub(*last_expired) >= EXPIRE_INTERVAL_NANOS {
            mapper.expire(now_unix_nano);
            *last_expired = now_unix_nano;
        }
    }

    /// The mapper's counters and sizes as Prometheus text.
    pub fn render_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mapper = self.lock();
        let counters = mapper.counters();
        let num_open = mapper.breakers().filter(|b| b.state.is_open()).count();
        let mut out = String::from(
            "# HELP cartograph_signal_points_total Lag and breaker points the signal mapper used.\n\
             # TYPE cartograph_signal_points_total counter\n",
        );
        let _ = writeln!(
            out,
            "cartograph_signal_points_total{{signal=\"lag\"}} {}",
            counters.num_lag_points
        );
        let _ = writeln!(
            out,
            "cartograph_signal_points_total{{signal=\"breaker\"}} {}",
            counters.num_breaker_points
        );
        out.push_str(
            "# HELP cartograph_signal_points_rejected_total Recognised points the mapper could not use (stored all the same).\n\
             # TYPE cartograph_signal_points_rejected_total counter\n",
        );
        for reason in Rejection::ALL {
            let _ = writeln!(
                out,
                "cartograph_signal_points_rejected_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                counters.num_rejected(reason)
            );
        }
        render_red(&mut out, &self.lock_red());
        let gauges = [
            (
                "cartograph_signal_lag_series",
                "Lag series (group, topic, partition) tracked.",
                mapper.num_lag_series(),
            ),
            (
                "cartograph_signal_breakers",
                "Circuit breakers tracked.",
                mapper.num_breakers(),
            ),
            (
                "cartograph_signal_breakers_open",
                "Circuit breakers open now.",
                num_open,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }

    pub fn lock(&self) -> SignalsGuard<'_> {
        SignalsGuard(self.mapper.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The RED accumulator's counters and size.
fn render_red(out: &mut String, red: &MetricRed) {
    use std::fmt::Write as _;
    let counters = red.counters();
    out.push_str(
        "# HELP cartograph_metric_red_points_total Duration-histogram points used for services and edges.\n\
         # TYPE cartograph_metric_red_points_total counter\n",
    );
    let _ = writeln!(
        out,
        "cartograph_metric_red_points_total {}",
        counters.num_points
    );
    out.push_str(
        "# HELP cartograph_metric_red_resets_total Cumulative histogram series that restarted.\n\
         # TYPE cartograph_metric_red_resets_total counter\n",
    );
    let _ = writeln!(
        out,
        "cartograph_metric_red_resets_total {}",
        counters.num_resets
    );
    out.push_str(
        "# HELP cartograph_metric_red_points_rejected_total Duration-histogram points not used (stored all the same).\n\
         # TYPE cartograph_metric_red_points_rejected_total counter\n",
    );
    for reason in RedRejection::ALL {
        let _ = writeln!(
            out,
            "cartograph_metric_red_points_rejected_total{{reason=\"{}\"}} {}",
            reason.as_str(),
            counters.num_rejected(reason)
        );
    }
    let _ = writeln!(
        out,
        "# HELP cartograph_metric_red_series Histogram series followed.\n\
         # TYPE cartograph_metric_red_series gauge\ncartograph_metric_red_series {}",
        red.num_series()
    );
}
