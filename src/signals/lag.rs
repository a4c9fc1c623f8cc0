//! Kafka consumer lag per (group, topic, partition): samples over time, the total per group
//! and topic, and its trend (see [`super::lag_trend`]). Partition series are summed; a
//! group/topic-level series (e.g. `kafka.consumer_group.lag_sum`, `records_lag_max` without a
//! partition) is used only when no partition reports. Bounded: samples by age and count, series
//! by number (overflow counted).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::lag_trend::{MAX_TREND_POINTS, Trend, lag_trend};
use super::{Rejection, SignalCounters};

/// Samples kept per series at most, whatever their age.
const MAX_SAMPLES_PER_SERIES: usize = 720;
/// Points of history returned per group and topic.
const MAX_HISTORY_POINTS: usize = 60;
const NANOS_PER_SEC: f64 = 1e9;

/// One consumer group on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupTopic {
    pub group: String,
    pub topic: String,
}

/// One lag observation, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LagSample {
    pub key: GroupTopic,
    /// `None`: the value covers the whole group and topic.
    pub partition: Option<String>,
    pub time_unix_nano: u64,
    pub lag: f64,
    /// The reporting resource's `service.name`: the consumer itself for client metrics.
    pub reporter: String,
}

#[derive(Debug, Default)]
struct Series {
    /// Ordered by time, at most one sample per time.
    samples: VecDeque<(u64, f64)>,
}

impl Series {
    fn insert(&mut self, time_unix_nano: u64, lag: f64) {
        match self.samples.back() {
            Some(&(last, _)) if last < time_unix_nano => {
                self.samples.push_back((time_unix_nano, lag))
            }
            None => self.samples.push_back((time_unix_nano, lag)),
            Some(_) => match self
                .samples
                .binary_search_by_key(&time_unix_nano, |&(time, _)| time)
            {
                Ok(index) => self.samples[index].1 = lag,
                Err(index) => self.samples.insert(index, (time_unix_nano, lag)),
            },
        }
        while self.samples.len() > MAX_SAMPLES_PER_SERIES {
            self.samples.pop_front();
        }
    }

    fn forget_before(&mut self, cutoff_unix_nano: u64) {
        while self
            .samples
            .front()
            .is_some_and(|&(time, _)| time < cutoff_unix_nano)
        {
            self.samples.pop_front();
        }
    }

    /// The latest sample at or before `at`.
    fn value_at(&self, at_unix_nano: u64) -> Option<(u64, f64)> {
        let end = self
            .samples
            .partition_point(|&(time, _)| time <= at_unix_nano);
        end.checked_sub(1).map(|index| self.samples[index])
    }
}

#[derive(Debug, Default)]
struct GroupSeries {
    /// Keyed by partition; `None` is the group/topic-level series.
    partitions: BTreeMap<Option<String>, Series>,
    reporter: String,
}

/// One partition's lag at the evaluation time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    pub partition: String,
    pub lag: f64,
    pub updated_unix_nano: u64,
}

/// A group's lag on a topic at the evaluation time, with its trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    /// The service that reported the lag (the consumer itself for client metrics).
    pub reporter: String,
    pub lag: f64,
    /// Growing or draining now: the last minute decides (see [`super::lag_trend`]).
    pub trend: Trend,
    /// Change of the total lag in messages per second, as the trend was decided on.
    pub rate_per_s: Option<f64>,
    /// Lag over the drain rate, only while draining (none once drained).
    pub time_to_drain_secs: Option<f64>,
    pub updated_unix_nano: u64,
    pub partitions: Vec<PartitionLag>,
    /// `[time_unix_nano, total lag]`, oldest first.
    pub history: Vec<(u64, f64)>,
}

#[derive(Debug)]
pub struct LagTracker {
    groups: BTreeMap<GroupTopic, GroupSeries>,
    num_series: usize,
    /// The latest sample time seen: "now" for a sender whose clock runs ahead.
    latest_unix_nano: u64,
    max_series: usize,
    history_nanos: u64,
    trend_window_nanos: u64,
}

impl LagTracker {
    pub fn new(max_series: usize, history_secs: u64, trend_window_secs: u64) -> Self {
        Self {
            groups: BTreeMap::new(),
            num_series: 0,
            latest_unix_nano: 0,
            max_series,
            history_nanos: history_secs.saturating_mul(1_000_000_000),
            trend_window_nanos: trend_window_secs.saturating_mul(1_000_000_000),
        }
    }

    pub fn num_series(&self) -> usize {
        self.num_series
    }

    pub fn record(&mut self, sample: LagSample, counters: &mut SignalCounters) {
        let is_new_series = self
            .groups
            .get(&sample.key)
            .is_none_or(|group| !group.partitions.contains_key(&sample.partition));
        if is_new_series && self.num_series >= self.max_series {
            self.forget_before(sample.time_unix_nano.saturating_sub(self.history_nanos));
            if self.num_series >= self.max_series {
                counters.reject(Rejection::TooManySeries);
                return;
            }
        }
        let group = self.groups.entry(sample.key).or_default();
        group.reporter = sample.reporter;
        let series = group.partitions.entry(sample.partition).or_default();
        self.num_series += usize::from(is_new_series);
        series.insert(sample.time_unix_nano, sample.lag);
        self.latest_unix_nano = self.latest_unix_nano.max(sample.time_unix_nano);
        counters.num_lag_points += 1;
    }

    /// Drops samples older than the history, and series left empty.
    pub fn expire(&mut self, now_unix_nano: u64) {
        self.forget_before(now_unix_nano.saturating_sub(self.history_nanos));
    }

    fn forget_before(&mut self, cutoff_unix_nano: u64) {
        let mut num_series = 0;
        self.groups.retain(|_, group| {
            group.partitions.retain(|_, series| {
                series.forget_before(cutoff_unix_nano);
                !series.samples.is_empty()
            });
            num_series += group.partitions.len();
            !group.partitions.is_empty()
        });
        self.num_series = num_series;
    }

    pub fn latest_unix_nano(&self) -> u64 {
        self.latest_unix_nano
    }

    /// Every group and topic with a sample at or before `at`, with its lag and trend then.
    pub fn evaluate(&self, at_unix_nano: u64) -> Vec<GroupLag> {
        self.groups
            .iter()
            .filter_map(|(key, group)| self.evaluate_group(key, group, at_unix_nano))
            .collect()
    }

    fn evaluate_group(&self, key: &GroupTopic, group: &GroupSeries, at: u64) -> Option<GroupLag> {
        let has_partitions = group.partitions.keys().any(Option::is_some);
        // Partition series are summed; the group-level one stands in only without them.
        let counted: Vec<(&Option<String>, &Series)> = group
            .partitions
            .iter()
            .filter(|(partition, _)| partition.is_some() == has_partitions)
            .collect();
        let (lag, updated_unix_nano, partitions) = lag_at(&counted, at)?;
        let trend_from = at.saturating_sub(self.trend_window_nanos);
        let trend = lag_trend(&trend_points(&counted, trend_from, at));
        let history_from = at.saturating_sub(self.history_nanos);
        let history_times = sample_times(&counted, history_from, at, MAX_HISTORY_POINTS);
        Some(GroupLag {
            group: key.group.clone(),
            topic: key.topic.clone(),
            reporter: group.reporter.clone(),
            lag,
            trend: trend.trend,
            rate_per_s: trend.rate_per_s,
            time_to_drain_secs: trend.time_to_drain_secs,
            updated_unix_nano,
            partitions,
            history: totals(&counted, &history_times),
        })
    }
}

type CountedSeries<'a> = [(&'a Option<String>, &'a Series)];

/// The total lag at `at`, when the latest counted sample then was taken, and each partition's
/// lag in natural order; `None` when no series has a sample at or before `at`.
fn lag_at(counted: &CountedSeries<'_>, at: u64) -> Option<(f64, u64, Vec<PartitionLag>)> {
    let mut partitions = Vec::new();
    let mut lag = 0.0;
    let mut updated_unix_nano = 0;
    for (partition, series) in counted {
        let Some((time, value)) = series.value_at(at) else {
            continue;
        };
        lag += value;
        updated_unix_nano = updated_unix_nano.max(time);
        if let Some(partition) = partition {
            partitions.push(PartitionLag {
                partition: partition.clone(),
                lag: value,
                updated_unix_nano: time,
            });
        }
    }
    if updated_unix_nano == 0 {
        return None;
    }
    partitions.sort_by(|a, b| natural_order(&a.partition, &b.partition));
    Some((lag, updated_unix_nano, partitions))
}

/// The total lag over the trend window `[from, at]` as `(seconds since the first point, lag)`,
/// for [`lag_trend`].
fn trend_points(counted: &CountedSeries<'_>, from: u64, at: u64) -> Vec<(f64, f64)> {
    let points = totals(counted, &sample_times(counted, from, at, MAX_TREND_POINTS));
    let first_unix_nano = points.first().map_or(0, |&(time, _)| time);
    points
        .into_iter()
        .map(|(time, lag)| ((time - first_unix_nano) as f64 / NANOS_PER_SEC, lag))
        .collect()
}

/// Every sample time of the series in `[from, at]`, thinned evenly to at most `max_times`
/// (the newest always kept).
fn sample_times(counted: &CountedSeries<'_>, from: u64, at: u64, max_times: usize) -> Vec<u64> {
    let mut times: Vec<u64> = counted
        .iter()
        .flat_map(|(_, series)| series.samples.iter().map(|&(time, _)| time))
        .filter(|&time| time >= from && time <= at)
        .collect();
    times.sort_unstable();
    times.dedup();
    let step = times.len().div_ceil(max_times).max(1);
    let newest = times.last().copied();
    let mut picked: Vec<u64> = times.iter().copied().step_by(step).collect();
    if let Some(newest) = newest
        && picked.last() != Some(&newest)
    {
        // Keeping the newest may exceed `max_times` by one; drop the oldest instead.
        if picked.len() == max_times {
            picked.remove(0);
        }
        picked.push(newest);
    }
    picked
}

/// The total at each of `times`, each series at its latest value then.
fn totals(counted: &CountedSeries<'_>, times: &[u64]) -> Vec<(u64, f64)> {
    times
        .iter()
        .map(|&time| {
            let total = counted
                .iter()
                .filter_map(|(_, series)| series.value_at(time))
                .map(|(_, lag)| lag)
                .sum();
            (time, total)
        })
        .collect()
}

/// Partitions are numbers in practice: order 2 before 10.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}
