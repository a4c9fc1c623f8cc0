//! Services and edges drawn from OpenTelemetry semantic-convention duration histograms
//! (`http.server.request.duration`, `http.client.request.duration`, `rpc.*.duration`,
//! `messaging.process.duration`, `db.client.operation.duration`, …), for services that
//! export metrics but no traces. Pure and clock-injected: the same [`MetricRed`] runs live
//! (fed by ingest through `signals::SharedSignals`) and over points replayed from the store
//! for a past range. It keeps per-minute RED (requests, errors, a latency sketch) per serving
//! operation and per edge; placing them on the map beside the trace figures is the query
//! layer's job (`query::metric_red`). It never touches the trace figures.
//!
//! Temporality: a delta point is its own increment. A cumulative point's increment is its
//! difference from the series' previous point; a series seen for the first time counts whole
//! when it started (`start_time_unix_nano`) after the accumulator did, else it only sets the
//! baseline. A count that went down, a new start time or changed bounds is a reset: the
//! point counts whole (what the restarted series has seen since its start). An increment
//! counts in the minute of the point's `time_unix_nano`. See docs/metrics-source.md.

mod buckets;
mod semconv;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

pub use buckets::{Counts, Layout};
pub use semconv::{INSTRUMENTS, Peer, Side};

use crate::model::graph::{EdgeKind, NodeKey, NodePlacement, OperationStats};
use crate::model::{AggregationTemporality, MetricPoint, MinuteRange, UnixMinute};
use semconv::Subject;

/// Histogram series (resource, metric, attributes) followed at most; further ones are
/// counted and not used.
pub const MAX_SERIES: usize = 10_000;
/// Operations and edges kept per minute at most; further ones are counted and not kept.
pub const MAX_KEYS_PER_MINUTE: usize = 5_000;
/// Minutes kept: the live hour and the minute in progress.
pub const MAX_MINUTES: usize = 61;
/// A series not reported for this long is forgotten (its next point counts as a new one).
pub const SERIES_IDLE_NANOS: u64 = 3_600 * 1_000_000_000;

/// An edge as metrics name it: the peer is resolved to a service at placement, as the trace
/// path does for `peer.service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RedEdge {
    pub source: NodeKey,
    pub target: Peer,
    pub kind: EdgeKind,
    /// Which end measured it: the caller (a client histogram) or the callee (a consumer's).
    pub measured_by: Side,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RedKey {
    Operation { service: String, operation: String },
    Edge(RedEdge),
}

/// Why a point of a recognised name was not used (all points are stored regardless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedRejection {
    /// Not a histogram or exponential histogram.
    WrongType,
    /// Neither delta nor cumulative.
    UnknownTemporality,
    /// The point carries OTLP's "no recorded value" flag.
    NoValue,
    /// A client-side point naming no peer.
    NoPeer,
    /// [`MAX_SERIES`] reached.
    TooManySeries,
    /// [`MAX_KEYS_PER_MINUTE`] reached in the point's minute.
    TooManyKeys,
    /// Older than the minutes kept.
    TooOld,
}

impl RedRejection {
    pub const ALL: [RedRejection; 7] = [
        RedRejection::WrongType,
        RedRejection::UnknownTemporality,
        RedRejection::NoValue,
        RedRejection::NoPeer,
        RedRejection::TooManySeries,
        RedRejection::TooManyKeys,
        RedRejection::TooOld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RedRejection::WrongType => "wrong_type",
            RedRejection::UnknownTemporality => "unknown_temporality",
            RedRejection::NoValue => "no_value",
            RedRejection::NoPeer => "no_peer",
            RedRejection::TooManySeries => "too_many_series",
            RedRejection::TooManyKeys => "too_many_keys",
            RedRejection::TooOld => "too_old",
        }
    }
}

/// What the accumulator did with the points it recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedCounters {
    pub num_points: u64,
    /// Cumulative series that restarted (a count went down, a new start time, new bounds).
    pub num_resets: u64,
    pub rejected: HashMap<RedRejection, u64>,
}

impl RedCounters {
    fn reject(&mut self, reason: RedRejection) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    pub fn num_rejected(&self, reason: RedRejection) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }
}

/// RED over a range of minutes, as the query layer places it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedView {
    /// (service, operation) → what it served.
    pub operations: BTreeMap<(String, String), OperationStats>,
    pub edges: BTreeMap<RedEdge, OperationStats>,
    /// Every reporting service's placement (from its resource).
    pub placements: BTreeMap<String, NodePlacement>,
}

struct SeriesState {
    start_unix_nano: u64,
    last_seen_unix_nano: u64,
    counts: Counts,
}

pub struct MetricRed {
    /// Cumulative series start counting whole only when they started after this.
    since_unix_nano: u64,
    series: HashMap<u64, SeriesState>,
    minutes: BTreeMap<i64, HashMap<RedKey, OperationStats>>,
    placements: HashMap<String, NodePlacement>,
    counters: RedCounters,
}

impl std::fmt::Debug for MetricRed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricRed")
            .field("num_series", &self.series.len())
            .field("num_minutes", &self.minutes.len())
            .finish_non_exhaustive()
    }
}

impl MetricRed {
    /// An accumulator whose knowledge starts at `since_unix_nano`.
    pub fn new(since_unix_nano: u64) -> Self {
        Self {
            since_unix_nano,
            series: HashMap::new(),
            minutes: BTreeMap::new(),
            placements: HashMap::new(),
            counters: RedCounters::default(),
        }
    }

    pub fn since_unix_nano(&self) -> u64 {
        self.since_unix_nano
    }

    /// Whether points of this name are read.
    pub fn recognises(name: &str) -> bool {
        semconv::instrument_of(name).is_some()
    }

    /// The recognised metric names (to replay them from the store).
    pub fn metric_names() -> impl Iterator<Item = &'static str> {
        INSTRUMENTS.iter().map(|(name, _)| *name)
    }

    pub fn counters(&self) -> &RedCounters {
        &self.counters
    }

    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Reads one point; points of names it does not recognise are ignored.
    pub fn observe(&mut self, point: &MetricPoint) {
        let Some(instrument) = semconv::instrument_of(&point.name) else {
            return;
        };
        if let Err(reason) = self.observe_recognised(instrument, point) {
            self.counters.reject(reason);
        }
    }

    fn observe_recognised(
        &mut self,
        instrument: semconv::Instrument,
        point: &MetricPoint,
    ) -> Result<(), RedRejection> {
        if point.flags & 1 == 1 {
            return Err(RedRejection::NoValue);
        }
        let counts = Counts::of(&point.value).map_err(|_| RedRejection::WrongType)?;
        let subject = semconv::subject(instrument, point).map_err(|_| RedRejection::NoPeer)?;
        if subject == Subject::NotACall {
            return Ok(());
        }
        let increment = match temporality(&point.value) {
            AggregationTemporality::Delta => Some(counts),
            AggregationTemporality::Cumulative => self.increment(point, counts)?,
            AggregationTemporality::Unspecified => {
                return Err(RedRejection::UnknownTemporality);
            }
        };
        self.counters.num_points += 1;
        let Some(increment) = increment.filter(|increment| increment.count > 0) else {
            return Ok(());
        };
        let unit_nanos = semconv::unit_nanos(&point.unit, instrument);
        let stats = OperationStats {
            num_requests: increment.count,
            num_errors: if semconv::is_error(instrument, &point.attributes) {
                increment.count
            } else {
                0
            },
            latency: increment.sketch(unit_nanos),
            ..OperationStats::default()
        };
        let service = point.service_name().to_owned();
        let keys = keys_of(&service, subject, instrument.side);
        self.add(UnixMinute::of_unix_nano(point.time_unix_nano), keys, &stats)?;
        if !self.placements.contains_key(&service) && self.placements.len() < MAX_KEYS_PER_MINUTE {
            let placement = NodePlacement {
                namespace: point.resource.service_namespace.clone(),
                environment: point.resource.deployment_environment.clone(),
            };
            self.placements.insert(service, placement);
        }
        Ok(())
    }

    /// A cumulative point's increment since the series' previous point (`None`: a baseline).
    fn increment(
        &mut self,
        point: &MetricPoint,
        counts: Counts,
    ) -> Result<Option<Counts>, RedRejection> {
        let id = series_id(point);
        let Some(state) = self.series.get_mut(&id) else {
            if self.series.len() >= MAX_SERIES {
                return Err(RedRejection::TooManySeries);
            }
            let counts_whole = point.start_time_unix_nano >= self.since_unix_nano;
            let increment = counts_whole.then(|| counts.clone());
            self.series.insert(
                id,
                SeriesState {
                    start_unix_nano: point.start_time_unix_nano,
                    last_seen_unix_nano: point.time_unix_nano,
                    counts,
                },
            );
            return Ok(increment);
        };
        if point.time_unix_nano < state.last_seen_unix_nano {
            // An older point re-sent (a retried export): already counted.
            return Ok(None);
        }
        let difference = (point.start_time_unix_nano == state.start_unix_nano)
            .then(|| counts.minus(&state.counts))
            .flatten();
        let increment = match difference {
            Some(difference) => difference,
            None => {
                self.counters.num_resets += 1;
                counts.clone()
            }
        };
        *state = SeriesState {
            start_unix_nano: point.start_time_unix_nano,
            last_seen_unix_nano: point.time_unix_nano,
            counts,
        };
        Ok(Some(increment))
    }

    fn add(
        &mut self,
        minute: UnixMinute,
        keys: Vec<RedKey>,
        stats: &OperationStats,
    ) -> Result<(), RedRejection> {
        if self.minutes.len() >= MAX_MINUTES
            && !self.minutes.contains_key(&minute.get())
            && self
                .minutes
                .first_key_value()
                .is_some_and(|(oldest, _)| minute.get() < *oldest)
        {
            return Err(RedRejection::TooOld);
        }
        let figures = self.minutes.entry(minute.get()).or_default();
        for key in keys {
            if !figures.contains_key(&key) && figures.len() >= MAX_KEYS_PER_MINUTE {
                self.counters.reject(RedRejection::TooManyKeys);
                continue;
            }
            figures.entry(key).or_default().merge(stats);
        }
        while self.minutes.len() > MAX_MINUTES {
            self.minutes.pop_first();
        }
        Ok(())
    }

    /// Forgets minutes older than [`MAX_MINUTES`] before `now_unix_nano` and idle series.
    pub fn expire(&mut self, now_unix_nano: u64) {
        let oldest_kept = UnixMinute::of_unix_nano(now_unix_nano).get() - MAX_MINUTES as i64 + 1;
        self.minutes.retain(|minute, _| *minute >= oldest_kept);
        let cutoff = now_unix_nano.saturating_sub(SERIES_IDLE_NANOS);
        self.series
            .retain(|_, state| state.last_seen_unix_nano >= cutoff);
    }

    /// RED over `range`, merged across its minutes.
    pub fn view(&self, range: MinuteRange) -> RedView {
        let mut view = RedView::default();
        let minutes = self
            .minutes
            .range(range.from().get()..range.to().get())
            .map(|(_, figures)| figures);
        for figures in minutes {
            for (key, stats) in figures {
                let slot = match key {
                    RedKey::Operation { service, operation } => view
                        .operations
                        .entry((service.clone(), operation.clone()))
                        .or_default(),
                    RedKey::Edge(edge) => view.edges.entry(edge.clone()).or_default(),
                };
                slot.merge(stats);
            }
        }
        view.placements = self
            .placements
            .iter()
            .map(|(service, placement)| (service.clone(), placement.clone()))
            .collect();
        view
    }
}

fn temporality(value: &crate::model::PointValue) -> AggregationTemporality {
    match value {
        crate::model::PointValue::Histogram(histogram) => histogram.temporality,
        crate::model::PointValue::ExponentialHistogram(histogram) => histogram.temporality,
        _ => AggregationTemporality::Unspecified,
    }
}

/// The operation and edge a point counts for.
fn keys_of(service: &str, subject: Subject, side: Side) -> Vec<RedKey> {
    let service_node = || NodeKey::service(service.to_owned());
    match subject {
        Subject::Serving {
            operation,
            from_opt,
        } => {
            let mut keys = vec![RedKey::Operation {
                service: service.to_owned(),
                operation,
            }];
            if let Some(topic) = from_opt {
                keys.push(RedKey::Edge(RedEdge {
                    source: topic,
                    target: Peer {
                        node: service_node(),
                        is_logical_name: false,
                    },
                    kind: EdgeKind::Messaging,
                    measured_by: side,
                }));
            }
            keys
        }
        Subject::Calling { peer, kind } => vec![RedKey::Edge(RedEdge {
            source: service_node(),
            target: peer,
            kind,
            measured_by: side,
        })],
        Subject::NotACall => Vec::new(),
    }
}

/// One histogram stream: its resource, scope, name and point attributes.
fn series_id(point: &MetricPoint) -> u64 {
    let mut hasher = DefaultHasher::new();
    point.name.hash(&mut hasher);
    point.scope.name.hash(&mut hasher);
    for attributes in [&point.resource.attributes, &point.attributes] {
        attributes.len().hash(&mut hasher);
        for (key, value) in attributes {
            key.hash(&mut hasher);
            format!("{value:?}").hash(&mut hasher);
        }
    }
    hasher.finish()
}
