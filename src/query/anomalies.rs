//! Which edges and services depart from their baseline over a range (`graph::anomaly` judges):
//! the range read once as one window, and the windows around the same time a day and a week
//! before read once each (`graph::anomaly::history_range`), from memory and stored rollups.
//! Bounded: ranges up to [`MAX_WINDOW_MINUTES`], the busiest [`MAX_SUBJECTS`] edges and
//! services judged, the rest counted.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{GraphRange, QueryError, QueryService, SeriesBuckets};
use crate::graph::anomaly::{
    self, Departure, Figure, History, NEIGHBOURS, Reference, Sample, Verdict,
};
use crate::graph::audit::edge_id;
use crate::graph::diff::judged_sketch;
use crate::model::MinuteRange;
use crate::model::figures::{p95_ms, per_second};
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, OperationStats};

/// The longest range judged: its baseline reads five times its length twice.
pub const MAX_WINDOW_MINUTES: i64 = 60;
/// Edges (and, apart, services) judged at most, the busiest first.
pub const MAX_SUBJECTS: usize = 2_000;

/// What departs: an edge or a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Edge(EdgeKey),
    Service(String),
}

impl Subject {
    /// An edge as findings name it (`service:a -> service:b`), a service by its node id.
    pub fn id(&self) -> String {
        match self {
            Subject::Edge(key) => edge_id(key),
            Subject::Service(name) => NodeKey::service(name.clone()).id(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Edge(_) => "edge",
            Subject::Service(_) => "service",
        }
    }
}

/// One figure of one subject beyond its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub subject: Subject,
    pub figure: Figure,
    pub departure: Departure,
}

/// The anomalies of a range, the largest departures first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Anomalies {
    pub anomalies: Vec<Anomaly>,
    /// Subjects judged that had no baseline (too little history).
    pub num_without_baseline: usize,
    /// Subjects beyond [`MAX_SUBJECTS`], not judged.
    pub num_skipped: usize,
}

impl Anomalies {
    /// Each anomalous edge's largest departure.
    pub fn by_edge(&self) -> HashMap<&EdgeKey, &Anomaly> {
        let mut edges: HashMap<&EdgeKey, &Anomaly> = HashMap::new();
        for anomaly in &self.anomalies {
            if let Subject::Edge(key) = &anomaly.subject {
                edges.entry(key).or_insert(anomaly);
            }
        }
        edges
    }
}

/// Seconds each history window holds data of (`None`: too little stored to be a sample).
type Coverage = Vec<Option<f64>>;

/// A subject's series: now, and each reference's windows.
struct Series<'a, T> {
    now: Option<&'a T>,
    day_before: Option<&'a Vec<T>>,
    week_before: Option<&'a Vec<T>>,
}

impl QueryService {
    /// The anomalies of `range` (at most [`MAX_WINDOW_MINUTES`] long: callers check).
    pub async fn anomalies(&self, range: GraphRange) -> Result<Anomalies, QueryError> {
        debug_assert!(range.minutes.num_minutes() <= MAX_WINDOW_MINUTES);
        let now_secs = self.covered(range).await?.window_secs;
        let now = SeriesBuckets::new(range.minutes, 1);
        let num_windows = 2 * NEIGHBOURS + 1;
        let around = |reference| {
            SeriesBuckets::new(
                anomaly::history_range(range.minutes, reference),
                num_windows,
            )
        };
        let (day, week) = (around(Reference::DayBefore), around(Reference::WeekBefore));
        let coverage = [self.coverage(&day).await?, self.coverage(&week).await?];
        let mut found = Anomalies::default();
        let buckets = [&now, &day, &week];
        self.judge_edges(buckets, now_secs, &coverage, &mut found)
            .await?;
        self.judge_services(buckets, now_secs, &coverage, &mut found)
            .await?;
        found.anomalies.sort_by(|a, b| {
            b.departure
                .score
                .abs()
                .total_cmp(&a.departure.score.abs())
                .then_with(|| a.subject.cmp(&b.subject))
        });
        Ok(found)
    }

    /// The busiest edges judged over `now`, the day and the week before.
    async fn judge_edges(
        &self,
        [now, day, week]: [&SeriesBuckets; 3],
        now_secs: f64,
        coverage: &[Coverage; 2],
        found: &mut Anomalies,
    ) -> Result<(), QueryError> {
        let now_edges = self.edge_series_by_key(now).await?;
        let day_edges = self.edge_series_by_key(day).await?;
        let week_edges = self.edge_series_by_key(week).await?;
        judge_busiest(
            [&now_edges, &day_edges, &week_edges],
            |stats| stats.num_requests,
            |key| Subject::Edge(key.clone()),
            edge_sample,
            (now_secs, coverage),
            found,
        );
        Ok(())
    }

    /// The busiest services judged over `now`, the day and the week before.
    async fn judge_services(
        &self,
        [now, day, week]: [&SeriesBuckets; 3],
        now_secs: f64,
        coverage: &[Coverage; 2],
        found: &mut Anomalies,
    ) -> Result<(), QueryError> {
        let by_service = |buckets: Vec<BTreeMap<String, OperationStats>>| {
            let num_buckets = buckets.len();
            let mut series: HashMap<String, Vec<OperationStats>> = HashMap::new();
            for (index, services) in buckets.into_iter().enumerate() {
                for (name, stats) in services {
                    series
                        .entry(name)
                        .or_insert_with(|| vec![OperationStats::default(); num_buckets])[index] =
                        stats;
                }
            }
            series
        };
        let now_services = by_service(self.service_series(now, None).await?);
        let day_services = by_service(self.service_series(day, None).await?);
        let week_services = by_service(self.service_series(week, None).await?);
        judge_busiest(
            [&now_services, &day_services, &week_services],
            |stats| stats.num_requests,
            |name| Subject::Service(name.clone()),
            service_sample,
            (now_secs, coverage),
            found,
        );
        Ok(())
    }

    /// Per window of `buckets`, the seconds with anything stored (any edge or operation), when
    /// at least half of the window has: a window Cartograph did not see is no sample.
    async fn coverage(&self, buckets: &SeriesBuckets) -> Result<Coverage, QueryError> {
        let range = buckets.range();
        let stored: HashSet<i64> = self
            .blocking(move |reader| reader.rollup_minutes(range))
            .await?
            .into_iter()
            .collect();
        Ok(buckets
            .ranges()
            .into_iter()
            .map(|window| {
                let num_stored = minutes_of(window)
                    .filter(|minute| stored.contains(minute))
                    .count() as i64;
                (num_stored * 2 >= window.num_minutes()).then_some(num_stored as f64 * 60.0)
            })
            .collect())
    }
}

fn minutes_of(range: MinuteRange) -> impl Iterator<Item = i64> {
    range.from().get()..range.to().get()
}

/// The subjects of any of `reads`, the busiest (most calls now or in any earlier window) first,
/// at most [`MAX_SUBJECTS`]; the rest added to `num_skipped`.
fn busiest<'a, K: Ord + std::hash::Hash + Eq, T>(
    reads: [&'a HashMap<K, Vec<T>>; 3],
    calls: impl Fn(&T) -> u64,
    num_skipped: &mut usize,
) -> Vec<&'a K> {
    let mut most: HashMap<&K, u64> = HashMap::new();
    for read in reads {
        for (key, buckets) in read {
            let busiest = buckets.iter().map(&calls).max().unwrap_or(0);
            let entry = most.entry(key).or_default();
            *entry = (*entry).max(busiest);
        }
    }
    let mut ranked: Vec<(&K, u64)> = most.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    *num_skipped += ranked.len().saturating_sub(MAX_SUBJECTS);
    ranked
        .into_iter()
        .take(MAX_SUBJECTS)
        .map(|(key, _)| key)
        .collect()
}

/// The busiest subjects of the reads of now, a day and a week before, each judged.
fn judge_busiest<K: Ord + std::hash::Hash + Eq, T: Default>(
    reads: [&HashMap<K, Vec<T>>; 3],
    calls: fn(&T) -> u64,
    subject: impl Fn(&K) -> Subject,
    sample: fn(Figure, &T, f64) -> Sample,
    (now_secs, coverage): (f64, &[Coverage; 2]),
    found: &mut Anomalies,
) {
    let [now, day, week] = reads;
    for key in busiest(reads, calls, &mut found.num_skipped) {
        let series = Series {
            now: now.get(key).and_then(|buckets| buckets.first()),
            day_before: day.get(key),
            week_before: week.get(key),
        };
        judge_subject(subject(key), &series, now_secs, coverage, sample, found);
    }
}

/// Each figure of one subject judged; anomalies pushed to `found`.
fn judge_subject<T: Default>(
    subject: Subject,
    series: &Series<'_, T>,
    now_secs: f64,
    coverage: &[Coverage; 2],
    sample: fn(Figure, &T, f64) -> Sample,
    found: &mut Anomalies,
) {
    let nothing = T::default();
    let windows = |buckets: Option<&Vec<T>>, covered: &Coverage, figure| -> Vec<Option<Sample>> {
        covered
            .iter()
            .enumerate()
            .map(|(index, secs)| {
                let stats = buckets.and_then(|b| b.get(index)).unwrap_or(&nothing);
                secs.map(|secs| sample(figure, stats, secs))
            })
            .collect()
    };
    let mut has_baseline = false;
    for figure in Figure::ALL {
        let history = History {
            day_before: windows(series.day_before, &coverage[0], figure),
            week_before: windows(series.week_before, &coverage[1], figure),
        };
        let now = sample(figure, series.now.unwrap_or(&nothing), now_secs);
        match anomaly::judge(figure, &now, &history) {
            Verdict::NoBaseline => continue,
            Verdict::TooFewCalls | Verdict::Usual(_) => {}
            Verdict::Anomaly(departure) => found.anomalies.push(Anomaly {
                subject: subject.clone(),
                figure,
                departure,
            }),
        }
        has_baseline = true;
    }
    if !has_baseline {
        found.num_without_baseline += 1;
    }
}

/// An edge's figure over `secs`: its rate, its error rate (as every page shows it: refused
/// calls left out) and its judged p95 (the caller's wait, else the callee's time).
fn edge_sample(figure: Figure, stats: &EdgeStats, secs: f64) -> Sample {
    let (value, calls) = match figure {
        Figure::Rate => (
            Some(per_second(stats.num_requests, secs)),
            stats.num_requests,
        ),
        Figure::ErrorRate => (stats.error_rate(), stats.num_attempted()),
        Figure::P95Ms => {
            let sketch = judged_sketch(stats);
            (p95_ms(sketch), sketch.count())
        }
    };
    Sample { value, calls, secs }
}

/// A service's figure over `secs`: what it served itself.
fn service_sample(figure: Figure, stats: &OperationStats, secs: f64) -> Sample {
    let (value, calls) = match figure {
        Figure::Rate => (
            Some(per_second(stats.num_requests, secs)),
            stats.num_requests,
        ),
        Figure::ErrorRate => (stats.error_rate(), stats.num_requests),
        Figure::P95Ms => (p95_ms(&stats.latency), stats.latency.count()),
    };
    Sample { value, calls, secs }
}
