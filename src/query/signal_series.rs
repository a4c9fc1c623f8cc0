//! Kafka lag and breaker states over the buckets of a range, for charts: the stored points of
//! the recognised metrics (from one history length before the range, as a past range's
//! signals are read) replayed through a fresh mapper in time order, read at the end of each
//! bucket. The same mapper decides as everywhere else, so a chart's last point is the lag the
//! pages show for the range.

use std::collections::{BTreeMap, VecDeque};

use super::signals::read_points;
use super::{QueryError, QueryService, SeriesBuckets};
use crate::model::{MetricPoint, NANOS_PER_MINUTE, now_unix_nano};
use crate::signals::{BreakerState, SignalMapper, SignalSettings, Transition};

/// Lag and breaker states over a range's buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalHistory {
    /// Each group and topic, in name order.
    pub lag: Vec<LagSeries>,
    /// Each breaker, in name order (service, then breaker).
    pub breakers: Vec<BreakerHistory>,
    /// Some metric had more points than were replayed.
    pub is_truncated: bool,
}

/// A group's total lag on a topic per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct LagSeries {
    pub group: String,
    pub topic: String,
    /// The total at each bucket's end (or now, in the bucket in progress); `None` when no
    /// counted partition reported in the bucket or the minute before it.
    pub values: Vec<Option<f64>>,
}

/// One breaker's states over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerHistory {
    pub service: String,
    pub name: String,
    pub target: Option<String>,
    /// Its state when the range began, if it had reported one by then.
    pub state_at_start: Option<BreakerState>,
    /// Its changes within the range, oldest first.
    pub transitions: Vec<Transition>,
}

impl BreakerHistory {
    /// Its states as `(from, to, state)`: from the range's start (or the first state seen) to
    /// the next change; the last one has no end.
    pub fn stretches(&self, from_unix_nano: u64) -> Vec<(u64, Option<u64>, BreakerState)> {
        let mut starts: Vec<(u64, BreakerState)> = self
            .state_at_start
            .map(|state| (from_unix_nano, state))
            .into_iter()
            .collect();
        starts.extend(self.transitions.iter().map(|t| (t.at_unix_nano, t.to)));
        let ends = starts.iter().skip(1).map(|(at, _)| Some(*at)).chain([None]);
        starts
            .iter()
            .zip(ends)
            .map(|(&(at, state), end)| (at, end, state))
            .collect()
    }
}

impl QueryService {
    /// Lag and breaker states over `buckets` (see the module's doc).
    pub async fn signal_history(
        &self,
        buckets: &SeriesBuckets,
    ) -> Result<SignalHistory, QueryError> {
        let now = now_unix_nano();
        let settings = self.signals.lock().settings().clone();
        let (from_unix_nano, to_unix_nano) = buckets.range().unix_nano_bounds();
        let read_from =
            from_unix_nano.saturating_sub(settings.history_secs.saturating_mul(1_000_000_000));
        let names: Vec<String> = settings.metric_names().map(str::to_owned).collect();
        let buckets = buckets.clone();
        // The replay evaluates every group once a bucket: off the async runtime.
        self.blocking(move |reader| {
            let (points, is_truncated) = read_points(reader, &names, read_from, to_unix_nano)?;
            Ok(history_of(settings, points, &buckets, now, is_truncated))
        })
        .await
    }
}

/// Replays `points` over `buckets` as seen at `now_unix_nano` (pure).
pub fn history_of(
    settings: SignalSettings,
    mut points: Vec<MetricPoint>,
    buckets: &SeriesBuckets,
    now_unix_nano: u64,
    is_truncated: bool,
) -> SignalHistory {
    points.sort_by_key(|point| point.time_unix_nano);
    let mut points: VecDeque<MetricPoint> = points.into();
    let mut mapper = SignalMapper::new(settings);
    let mut observe_before = |mapper: &mut SignalMapper, end: u64| {
        while points.front().is_some_and(|p| p.time_unix_nano < end) {
            if let Some(point) = points.pop_front() {
                mapper.observe(&point);
            }
        }
    };
    let (from, _) = buckets.range().unix_nano_bounds();
    observe_before(&mut mapper, from);
    let mut breakers = Breakers::at_start(&mapper);
    let mut lag: BTreeMap<(String, String), Vec<Option<f64>>> = BTreeMap::new();
    for (index, bucket) in buckets.ranges().into_iter().enumerate() {
        let (start, end) = bucket.unix_nano_bounds();
        if start > now_unix_nano {
            break;
        }
        let end = end.min(now_unix_nano.saturating_add(1));
        observe_before(&mut mapper, end);
        let fresh_since = start.saturating_sub(NANOS_PER_MINUTE);
        for group in mapper.lag(end - 1) {
            let values = lag
                .entry((group.group, group.topic))
                .or_insert_with(|| vec![None; buckets.len()]);
            values[index] = (group.updated_unix_nano >= fresh_since).then_some(group.lag);
        }
        breakers.follow(&mapper, from);
    }
    SignalHistory {
        lag: lag
            .into_iter()
            .map(|((group, topic), values)| LagSeries {
                group,
                topic,
                values,
            })
            .collect(),
        breakers: breakers
            .histories
            .into_values()
            .map(|(history, _)| history)
            .collect(),
        is_truncated,
    }
}

/// Each breaker's history so far, with how many transitions it had made when last looked at
/// (the mapper keeps only its latest ones, so new ones are counted, not searched for).
struct Breakers {
    histories: BTreeMap<(String, String), (BreakerHistory, u64)>,
}

impl Breakers {
    fn at_start(mapper: &SignalMapper) -> Self {
        let histories = mapper
            .breakers()
            .map(|breaker| {
                let history = BreakerHistory {
                    service: breaker.service.clone(),
                    name: breaker.name.clone(),
                    target: breaker.target.clone(),
                    state_at_start: Some(breaker.state),
                    transitions: Vec::new(),
                };
                let num_made = breaker.transitions.len() as u64 + breaker.num_transitions_dropped;
                (
                    (breaker.service.clone(), breaker.name.clone()),
                    (history, num_made),
                )
            })
            .collect();
        Self { histories }
    }

    /// Adds the transitions made since the last look (those from `from` on).
    fn follow(&mut self, mapper: &SignalMapper, from: u64) {
        for breaker in mapper.breakers() {
            let key = (breaker.service.clone(), breaker.name.clone());
            let (history, num_seen) = self.histories.entry(key).or_insert_with(|| {
                let history = BreakerHistory {
                    service: breaker.service.clone(),
                    name: breaker.name.clone(),
                    target: None,
                    state_at_start: None,
                    transitions: Vec::new(),
                };
                (history, 0)
            });
            history.target.clone_from(&breaker.target);
            let num_made = breaker.transitions.len() as u64 + breaker.num_transitions_dropped;
            let num_new = usize::try_from(num_made.saturating_sub(*num_seen)).unwrap_or(usize::MAX);
            let kept_new = breaker.transitions.iter().rev().take(num_new).rev();
            history
                .transitions
                .extend(kept_new.filter(|t| t.at_unix_nano >= from).cloned());
            *num_seen = num_made;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;
    use crate::model::{MinuteRange, UnixMinute};

    const SEC: u64 = 1_000_000_000;

    /// `minute` minutes and `secs` seconds after the epoch.
    fn at(minute: i64, secs: u64) -> u64 {
        UnixMinute(minute).start_unix_nano() + secs * SEC
    }

    fn lag(time_unix_nano: u64, value: f64) -> MetricPoint {
        MetricPoint::test_gauge(
            "orders",
            "kafka.consumer_group.lag",
            time_unix_nano,
            &[
                ("group", "billing"),
                ("topic", "orders"),
                ("partition", "0"),
            ],
            value,
        )
    }

    fn breaker(time_unix_nano: u64, state: &str) -> MetricPoint {
        MetricPoint::test_gauge(
            "orders",
            "resilience4j.circuitbreaker.state",
            time_unix_nano,
            &[("name", "payments"), ("state", state)],
            1.0,
        )
    }

    /// Minutes 100 to 105, one bucket each; now is 30 s into the last.
    fn buckets() -> (SeriesBuckets, u64) {
        let range = MinuteRange::new(UnixMinute(100), UnixMinute(105));
        (SeriesBuckets::new(range, 60), at(104, 30))
    }

    #[test]
    fn lag_is_read_at_each_bucket_end_with_gaps_where_nothing_reported() {
        let (buckets, now) = buckets();
        let points = vec![
            lag(at(101, 20), 30.0),
            lag(at(99, 50), 10.0),
            lag(at(100, 20), 20.0),
            lag(at(104, 10), 50.0),
            // After now: not yet.
            lag(at(104, 40), 90.0),
        ];
        let history = history_of(SignalSettings::default(), points, &buckets, now, false);
        assert_eq!(history.lag.len(), 1);
        let series = &history.lag[0];
        assert_eq!(
            (series.group.as_str(), series.topic.as_str()),
            ("billing", "orders")
        );
        // Minute 102 still has the sample of the minute before; 103 has none.
        assert_eq!(
            series.values,
            [Some(20.0), Some(30.0), Some(30.0), None, Some(50.0)]
        );
    }

    #[test]
    fn breaker_changes_in_the_range_are_all_kept_with_the_state_it_began_in() {
        let (buckets, now) = buckets();
        let settings = SignalSettings {
            // Fewer than the range holds: the mapper lets old ones go between buckets.
            max_transitions_per_breaker: NonZeroUsize::new(2).expect("non-zero"),
            ..SignalSettings::default()
        };
        let points = vec![
            breaker(at(95, 0), "closed"),
            breaker(at(99, 0), "open"),
            breaker(at(99, 30), "closed"),
            breaker(at(101, 30), "open"),
            breaker(at(102, 0), "open"),
            breaker(at(103, 0), "half_open"),
            breaker(at(103, 10), "closed"),
        ];
        let history = history_of(settings, points, &buckets, now, false);
        assert_eq!(history.breakers.len(), 1);
        let payments = &history.breakers[0];
        assert_eq!(payments.state_at_start, Some(BreakerState::Closed));
        let changes: Vec<(u64, BreakerState)> = payments
            .transitions
            .iter()
            .map(|t| (t.at_unix_nano, t.to))
            .collect();
        assert_eq!(
            changes,
            [
                (at(101, 30), BreakerState::Open),
                (at(103, 0), BreakerState::HalfOpen),
                (at(103, 10), BreakerState::Closed),
            ]
        );
        let (from, _) = buckets.range().unix_nano_bounds();
        assert_eq!(
            payments.stretches(from),
            [
                (from, Some(at(101, 30)), BreakerState::Closed),
                (at(101, 30), Some(at(103, 0)), BreakerState::Open),
                (at(103, 0), Some(at(103, 10)), BreakerState::HalfOpen),
                (at(103, 10), None, BreakerState::Closed),
            ]
        );
    }

    #[test]
    fn a_breaker_first_seen_in_the_range_begins_there() {
        let (buckets, now) = buckets();
        let points = vec![breaker(at(102, 5), "open")];
        let history = history_of(SignalSettings::default(), points, &buckets, now, false);
        let payments = &history.breakers[0];
        assert_eq!(payments.state_at_start, None);
        let (from, _) = buckets.range().unix_nano_bounds();
        assert_eq!(
            payments.stretches(from),
            [(at(102, 5), None, BreakerState::Open)]
        );
        assert!(history.lag.is_empty());
    }
}
