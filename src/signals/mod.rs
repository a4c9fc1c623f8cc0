//! Kafka consumer lag and circuit-breaker state, read from OTLP metric points. Pure and
//! clock-injected: the same [`SignalMapper`] runs live (fed by ingest) and over points replayed
//! from the store for a past range. Every point is stored as an ordinary metric point whatever
//! happens here; a point the mapper cannot use is counted by reason and never changes lag or
//! breaker state. Attaching lag and breakers to graph edges is the query layer's job.

mod breakers;
mod feed;
mod lag;
mod lag_trend;
mod mapping;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{AggregationTemporality, MetricPoint, PointValue, UNKNOWN_SERVICE};

pub use breakers::{Breaker, BreakerKey, BreakerObservation, BreakerState, Transition};
pub use feed::{SharedSignals, SignalsGuard};
pub use lag::{GroupLag, GroupTopic, LagSample, PartitionLag};
pub use lag_trend::Trend;
pub use mapping::{SignalKind, SignalSettings};

use breakers::BreakerTracker;
use lag::LagTracker;
use mapping::first_text;

/// Why a recognised point was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// A histogram, summary or exponential histogram where a number was expected.
    WrongType,
    /// NaN or infinite.
    NotFinite,
    /// Lag below zero.
    Negative,
    /// No topic (lag), or no breaker name.
    MissingAttribute,
    /// A state name or number that means no breaker state.
    UnknownState,
    /// The point carries OTLP's "no recorded value" flag.
    NoValue,
    /// Older than what the breaker already reported.
    OutOfOrder,
    /// The series or breaker limit is reached.
    TooManySeries,
}

impl Rejection {
    pub const ALL: [Rejection; 8] = [
        Rejection::WrongType,
        Rejection::NotFinite,
        Rejection::Negative,
        Rejection::MissingAttribute,
        Rejection::UnknownState,
        Rejection::NoValue,
        Rejection::OutOfOrder,
        Rejection::TooManySeries,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::WrongType => "wrong_type",
            Rejection::NotFinite => "not_finite",
            Rejection::Negative => "negative",
            Rejection::MissingAttribute => "missing_attribute",
            Rejection::UnknownState => "unknown_state",
            Rejection::NoValue => "no_value",
            Rejection::OutOfOrder => "out_of_order",
            Rejection::TooManySeries => "too_many_series",
        }
    }
}

/// What the mapper did with the points it recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalCounters {
    pub num_lag_points: u64,
    pub num_breaker_points: u64,
    pub rejected: HashMap<Rejection, u64>,
}

impl SignalCounters {
    pub fn reject(&mut self, reason: Rejection) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    pub fn num_rejected(&self, reason: Rejection) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }
}

/// A cumulative event counter's stream: (service, breaker, event, series start).
type EventStream = (String, String, String, u64);

pub struct SignalMapper {
    settings: SignalSettings,
    index: HashMap<String, SignalKind>,
    lag: LagTracker,
    breakers: BreakerTracker,
    /// Last value of each cumulative breaker event counter, to see increments.
    event_totals: HashMap<EventStream, f64>,
    /// Running totals of delta lag sums per series.
    delta_lag: HashMap<(GroupTopic, Option<String>), f64>,
    counters: SignalCounters,
}

impl std::fmt::Debug for SignalMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalMapper")
            .field("num_lag_series", &self.lag.num_series())
            .field("num_breakers", &self.breakers.num_breakers())
            .finish_non_exhaustive()
    }
}

impl SignalMapper {
    pub fn new(settings: SignalSettings) -> Self {
        Self {
            index: settings.index(),
            lag: LagTracker::new(
                settings.max_lag_series.get(),
                settings.history_secs,
                settings.lag_trend_window_secs,
            ),
            breakers: BreakerTracker::new(
                settings.max_breakers.get(),
                settings.max_transitions_per_breaker.get(),
            ),
            event_totals: HashMap::new(),
            delta_lag: HashMap::new(),
            counters: SignalCounters::default(),
            settings,
        }
    }

    pub fn settings(&self) -> &SignalSettings {
        &self.settings
    }

    /// Whether the mapper reads points of this metric name.
    pub fn recognises(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn counters(&self) -> &SignalCounters {
        &self.counters
    }

    pub fn num_lag_series(&self) -> usize {
        self.lag.num_series()
    }

    pub fn num_breakers(&self) -> usize {
        self.breakers.num_breakers()
    }

    /// Reads one point; points of names it does not recognise are ignored.
    pub fn observe(&mut self, point: &MetricPoint) {
        let Some(&kind) = self.index.get(&point.name) else {
            return;
        };
        if point.flags & 1 == 1 {
            self.counters.reject(Rejection::NoValue);
            return;
        }
        let outcome = match kind {
            SignalKind::Lag => self.observe_lag(point),
            SignalKind::BreakerState => self.observe_breaker_state(point),
            SignalKind::BreakerEvents => self.observe_breaker_event(point),
        };
        if let Err(reason) = outcome {
            self.counters.reject(reason);
        }
    }

    /// Forgets what is older than the history.
    pub fn expire(&mut self, now_unix_nano: u64) {
        let cutoff = now_unix_nano.saturating_sub(self.settings.history_secs * 1_000_000_000);
        self.lag.expire(now_unix_nano);
        self.breakers.expire(cutoff);
        let max_streams = self.settings.max_breakers.get() * 8;
        if self.event_totals.len() > max_streams {
            self.event_totals.clear();
        }
        if self.delta_lag.len() > self.settings.max_lag_series.get() {
            self.delta_lag.clear();
        }
    }

    /// Every group's lag on every topic as of `at_unix_nano`.
    pub fn lag(&self, at_unix_nano: u64) -> Vec<GroupLag> {
        self.lag.evaluate(at_unix_nano)
    }

    /// Lag as of now, or of the latest sample when a sender's clock runs ahead of ours.
    pub fn lag_now(&self, now_unix_nano: u64) -> Vec<GroupLag> {
        self.lag
            .evaluate(now_unix_nano.max(self.lag.latest_unix_nano()))
    }

    pub fn breakers(&self) -> impl Iterator<Item = &Breaker> {
        self.breakers.breakers()
    }

    fn observe_lag(&mut self, point: &MetricPoint) -> Result<(), Rejection> {
        let (value, is_delta) = number(&point.value)?;
        let topic = first_text(&point.attributes, &self.settings.lag_topic_attributes)
            .ok_or(Rejection::MissingAttribute)?;
        let reporter = point.service_name().to_owned();
        let group = first_text(&point.attributes, &self.settings.lag_group_attributes)
            .or_else(|| (reporter != UNKNOWN_SERVICE).then(|| reporter.clone()))
            .ok_or(Rejection::MissingAttribute)?;
        let partition = first_text(&point.attributes, &self.settings.lag_partition_attributes);
        let key = GroupTopic { group, topic };
        let lag = if is_delta {
            let total = self
                .delta_lag
                .entry((key.clone(), partition.clone()))
                .or_default();
            if *total + value < 0.0 {
                return Err(Rejection::Negative);
            }
            *total += value;
            *total
        } else {
            if value < 0.0 {
                return Err(Rejection::Negative);
            }
            value
        };
        self.lag.record(
            LagSample {
                key,
                partition,
                time_unix_nano: point.time_unix_nano,
                lag,
                reporter,
            },
            &mut self.counters,
        );
        Ok(())
    }

    fn observe_breaker_state(&mut self, point: &MetricPoint) -> Result<(), Rejection> {
        let (value, _) = number(&point.value)?;
        let state = match first_text(&point.attributes, &["state".to_owned()]) {
            // One point per state, valued 1 for the current one (resilience4j).
            Some(name) => {
                let state = BreakerState::from_name(&name).ok_or(Rejection::UnknownState)?;
                if value < 0.5 {
                    return Ok(());
                }
                state
            }
            None => BreakerState::from_number(value).ok_or(Rejection::UnknownState)?,
        };
        self.record_breaker(point, state)
    }

    fn observe_breaker_event(&mut self, point: &MetricPoint) -> Result<(), Rejection> {
        let PointValue::Sum {
            value, temporality, ..
        } = &point.value
        else {
            return Err(Rejection::WrongType);
        };
        let value = finite(value.as_f64())?;
        let Some(event) = first_text(
            &point.attributes,
            std::slice::from_ref(&self.settings.breaker_event_attribute),
        ) else {
            return Err(Rejection::MissingAttribute);
        };
        // Retries, timeouts and other strategies' events share the instrument.
        let Some(state) = BreakerState::from_polly_event(&event) else {
            return Ok(());
        };
        let name = self.breaker_name(point)?;
        let happened = if *temporality == AggregationTemporality::Delta {
            value > 0.0
        } else {
            let stream = (
                point.service_name().to_owned(),
                name,
                event,
                point.start_time_unix_nano,
            );
            let previous = self.event_totals.insert(stream, value);
            value > previous.unwrap_or(0.0)
        };
        if happened {
            self.record_breaker(point, state)?;
        }
        Ok(())
    }

    fn breaker_name(&self, point: &MetricPoint) -> Result<String, Rejection> {
        first_text(&point.attributes, &self.settings.breaker_name_attributes)
            .ok_or(Rejection::MissingAttribute)
    }

    fn record_breaker(
        &mut self,
        point: &MetricPoint,
        state: BreakerState,
    ) -> Result<(), Rejection> {
        let key = BreakerKey {
            service: point.service_name().to_owned(),
            name: self.breaker_name(point)?,
        };
        let target = first_text(&point.attributes, &self.settings.breaker_target_attributes);
        self.breakers.record(
            BreakerObservation {
                key,
                target,
                state,
                time_unix_nano: point.time_unix_nano,
            },
            &mut self.counters,
        );
        Ok(())
    }
}

/// A finite number from a gauge or sum, and whether it is a delta.
fn number(value: &PointValue) -> Result<(f64, bool), Rejection> {
    match value {
        PointValue::Gauge { value } => Ok((finite(value.as_f64())?, false)),
        PointValue::Sum {
            value, temporality, ..
        } => Ok((
            finite(value.as_f64())?,
            *temporality == AggregationTemporality::Delta,
        )),
        PointValue::Histogram(_) | PointValue::ExponentialHistogram(_) | PointValue::Summary(_) => {
            Err(Rejection::WrongType)
        }
    }
}

fn finite(value: f64) -> Result<f64, Rejection> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Rejection::NotFinite)
    }
}
