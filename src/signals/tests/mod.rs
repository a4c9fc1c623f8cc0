//! Fixtures for every recognised name and shape (`lag`, `breakers`), and what holds for both:
//! malformed points never touch lag or breaker state, limits, configurable names.

mod breakers;
mod lag;
mod lag_trend;

use std::sync::Arc;

use super::*;
use crate::model::{
    AttrValue, Attributes, HistogramValue, NumberValue, PointValue, Resource, Scope,
};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn attrs(pairs: &[(&str, AttrValue)]) -> Attributes {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

fn s(text: &str) -> AttrValue {
    AttrValue::Str(text.to_owned())
}

fn i(number: i64) -> AttrValue {
    AttrValue::Int(number)
}

fn point(
    service: &str,
    name: &str,
    time: u64,
    attributes: Attributes,
    value: PointValue,
) -> MetricPoint {
    MetricPoint {
        resource: Arc::new(Resource::from_attributes(
            vec![("service.name".to_owned(), s(service))],
            0,
        )),
        scope: Arc::new(Scope::default()),
        name: name.to_owned(),
        description: String::new(),
        unit: String::new(),
        start_time_unix_nano: T0 - 3600 * SEC,
        time_unix_nano: time,
        attributes,
        flags: 0,
        value,
    }
}

fn gauge(value: f64) -> PointValue {
    PointValue::Gauge {
        value: NumberValue::Double(value),
    }
}

fn int_gauge(value: i64) -> PointValue {
    PointValue::Gauge {
        value: NumberValue::Int(value),
    }
}

fn sum(value: f64, temporality: AggregationTemporality) -> PointValue {
    PointValue::Sum {
        value: NumberValue::Double(value),
        temporality,
        is_monotonic: false,
    }
}

fn mapper() -> SignalMapper {
    SignalMapper::new(SignalSettings::default())
}

fn only_group(mapper: &SignalMapper, at: u64) -> GroupLag {
    let lag = mapper.lag(at);
    assert_eq!(lag.len(), 1, "{lag:#?}");
    lag.into_iter().next().expect("one group")
}

/// One partition's lag at `(seconds after T0, lag)`.
fn lag_series(points: &[(u64, f64)]) -> SignalMapper {
    let mut mapper = mapper();
    for &(secs, lag) in points {
        mapper.observe(&point(
            "collector",
            "kafka.consumer_group.lag",
            T0 + secs * SEC,
            attrs(&[("group", s("g")), ("topic", s("t")), ("partition", i(0))]),
            gauge(lag),
        ));
    }
    mapper
}

/// One partition's lag every `step_secs` from T0.
fn lag_sequence(values: &[f64], step_secs: u64) -> SignalMapper {
    let points: Vec<(u64, f64)> = (0..)
        .step_by(step_secs as usize)
        .zip(values.iter().copied())
        .collect();
    lag_series(&points)
}

fn partition_lags(group: &GroupLag) -> Vec<(String, f64)> {
    group
        .partitions
        .iter()
        .map(|partition| (partition.partition.clone(), partition.lag))
        .collect()
}

fn resilience4j(mapper: &mut SignalMapper, name: &str, time: u64, current: &str) {
    for state in [
        "closed",
        "open",
        "half_open",
        "forced_open",
        "disabled",
        "metrics_only",
    ] {
        mapper.observe(&point(
            "orders",
            name,
            time,
            attrs(&[("name", s("payments")), ("state", s(state))]),
            gauge(if state == current { 1.0 } else { 0.0 }),
        ));
    }
}

fn transitions(breaker: &Breaker) -> Vec<(Option<&str>, &str, u64)> {
    breaker
        .transitions
        .iter()
        .map(|t| {
            (
                t.from.map(BreakerState::as_str),
                t.to.as_str(),
                (t.at_unix_nano - T0) / SEC,
            )
        })
        .collect()
}

fn only_breaker(mapper: &SignalMapper) -> Breaker {
    let breakers: Vec<Breaker> = mapper.breakers().cloned().collect();
    assert_eq!(breakers.len(), 1, "{breakers:#?}");
    breakers.into_iter().next().expect("one breaker")
}

#[test]
fn malformed_points_never_touch_lag_or_breaker_state() {
    let mut mapper = mapper();
    let lag_key = || attrs(&[("group", s("g")), ("topic", s("t")), ("partition", i(0))]);
    mapper.observe(&point(
        "c",
        "kafka.consumer_group.lag",
        T0,
        lag_key(),
        gauge(10.0),
    ));
    resilience4j(
        &mut mapper,
        "resilience4j.circuitbreaker.state",
        T0,
        "closed",
    );

    let histogram = PointValue::Histogram(HistogramValue {
        count: 1,
        sum: Some(1e9),
        min: None,
        max: None,
        bucket_counts: vec![1],
        explicit_bounds: vec![],
        temporality: AggregationTemporality::Cumulative,
    });
    let later = T0 + SEC;
    let bad_lag = [
        (lag_key(), histogram.clone(), Rejection::WrongType),
        (lag_key(), gauge(f64::NAN), Rejection::NotFinite),
        (lag_key(), gauge(f64::INFINITY), Rejection::NotFinite),
        (lag_key(), int_gauge(-5), Rejection::Negative),
        (
            attrs(&[("group", s("g")), ("partition", i(0))]),
            gauge(99.0),
            Rejection::MissingAttribute,
        ),
    ];
    for (attributes, value, reason) in bad_lag {
        let before = mapper.counters().num_rejected(reason);
        mapper.observe(&point(
            "c",
            "kafka.consumer_group.lag",
            later,
            attributes,
            value,
        ));
        assert_eq!(
            mapper.counters().num_rejected(reason),
            before + 1,
            "{reason:?}"
        );
    }
    let mut no_value = point(
        "c",
        "kafka.consumer_group.lag",
        later,
        lag_key(),
        gauge(0.0),
    );
    no_value.flags = 1;
    mapper.observe(&no_value);
    assert_eq!(mapper.counters().num_rejected(Rejection::NoValue), 1);

    let breaker = |attributes: Attributes, value: PointValue| {
        point(
            "orders",
            "resilience4j.circuitbreaker.state",
            later,
            attributes,
            value,
        )
    };
    let bad_breakers = [
        (
            attrs(&[("name", s("payments")), ("state", s("melted"))]),
            gauge(1.0),
            Rejection::UnknownState,
        ),
        (
            attrs(&[("name", s("payments"))]),
            gauge(7.0),
            Rejection::UnknownState,
        ),
        (
            attrs(&[("name", s("payments")), ("state", s("open"))]),
            gauge(f64::NAN),
            Rejection::NotFinite,
        ),
        (
            attrs(&[("name", s("payments")), ("state", s("open"))]),
            histogram,
            Rejection::WrongType,
        ),
        (
            attrs(&[("state", s("open"))]),
            gauge(1.0),
            Rejection::MissingAttribute,
        ),
    ];
    for (attributes, value, reason) in bad_breakers {
        let before = mapper.counters().num_rejected(reason);
        mapper.observe(&breaker(attributes, value));
        assert_eq!(
            mapper.counters().num_rejected(reason),
            before + 1,
            "{reason:?}"
        );
    }
    // An older point than the breaker's last report does not rewrite the present.
    resilience4j(
        &mut mapper,
        "resilience4j.circuitbreaker.state",
        T0 + 5 * SEC,
        "closed",
    );
    resilience4j(
        &mut mapper,
        "resilience4j.circuitbreaker.state",
        T0 + 2 * SEC,
        "open",
    );
    assert!(mapper.counters().num_rejected(Rejection::OutOfOrder) >= 1);

    assert_eq!(only_group(&mapper, later).lag, 10.0);
    let breaker = only_breaker(&mapper);
    assert_eq!(breaker.state, BreakerState::Closed);
    assert_eq!(breaker.transitions.len(), 1);
}

#[test]
fn series_and_breakers_are_bounded_and_overflow_is_counted() {
    let settings = SignalSettings {
        max_lag_series: std::num::NonZeroUsize::new(2).expect("non-zero"),
        max_breakers: std::num::NonZeroUsize::new(1).expect("non-zero"),
        ..SignalSettings::default()
    };
    let mut mapper = SignalMapper::new(settings);
    for partition in 0..5 {
        mapper.observe(&point(
            "c",
            "kafka.consumer_group.lag",
            T0,
            attrs(&[
                ("group", s("g")),
                ("topic", s("t")),
                ("partition", i(partition)),
            ]),
            gauge(1.0),
        ));
    }
    for name in ["a", "b", "c"] {
        mapper.observe(&point(
            "s",
            "circuit_breaker.state",
            T0,
            attrs(&[("name", s(name))]),
            gauge(0.0),
        ));
    }
    assert_eq!(mapper.num_lag_series(), 2);
    assert_eq!(mapper.num_breakers(), 1);
    assert_eq!(mapper.counters().num_rejected(Rejection::TooManySeries), 5);
    // Expiry makes room again.
    mapper.expire(T0 + 2 * 3600 * SEC);
    assert_eq!((mapper.num_lag_series(), mapper.num_breakers()), (0, 0));
}

#[test]
fn names_are_configurable() {
    let settings = SignalSettings {
        lag_metrics: vec!["acme.lag".to_owned()],
        lag_group_attributes: vec!["cg".to_owned()],
        ..SignalSettings::default()
    };
    let mut mapper = SignalMapper::new(settings);
    assert!(!mapper.recognises("kafka.consumer_group.lag"));
    mapper.observe(&point(
        "c",
        "acme.lag",
        T0,
        attrs(&[("cg", s("x")), ("topic", s("t"))]),
        gauge(3.0),
    ));
    assert_eq!(only_group(&mapper, T0).group, "x");
}
