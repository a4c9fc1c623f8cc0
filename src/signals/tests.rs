//! Fixtures for every recognised name and shape, trends over sequences, breaker transitions,
//! and malformed points that must not touch lag or breaker state.

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

fn partition_lags(group: &GroupLag) -> Vec<(String, f64)> {
    group
        .partitions
        .iter()
        .map(|partition| (partition.partition.clone(), partition.lag))
        .collect()
}

#[test]
fn kafkametrics_lag_per_partition_sums_to_the_group_total() {
    let mut mapper = mapper();
    for (partition, lag) in [(0, 10), (1, 5), (2, 0)] {
        mapper.observe(&point(
            "otel-collector",
            "kafka.consumer_group.lag",
            T0,
            attrs(&[
                ("group", s("inventory")),
                ("topic", s("orders.created")),
                ("partition", i(partition)),
            ]),
            int_gauge(lag),
        ));
    }
    let group = only_group(&mapper, T0);
    assert_eq!(group.group, "inventory");
    assert_eq!(group.topic, "orders.created");
    assert_eq!(group.reporter, "otel-collector");
    assert_eq!(group.lag, 15.0);
    assert_eq!(
        partition_lags(&group),
        vec![("0".into(), 10.0), ("1".into(), 5.0), ("2".into(), 0.0)]
    );
    assert_eq!(group.trend, Trend::Unknown);
    assert_eq!(mapper.counters().num_lag_points, 3);
}

#[test]
fn a_group_level_sum_stands_in_only_when_no_partition_reports() {
    let mut mapper = mapper();
    let group_topic = || attrs(&[("group", s("billing")), ("topic", s("payments"))]);
    mapper.observe(&point(
        "collector",
        "kafka.consumer_group.lag_sum",
        T0,
        group_topic(),
        int_gauge(40),
    ));
    assert_eq!(only_group(&mapper, T0).lag, 40.0);
    assert!(only_group(&mapper, T0).partitions.is_empty());

    let mut with_partition = group_topic();
    with_partition.push(("partition".to_owned(), i(3)));
    mapper.observe(&point(
        "collector",
        "kafka.consumer_group.lag",
        T0 + SEC,
        with_partition,
        int_gauge(25),
    ));
    // Partitions win; the sum is not added on top of them.
    assert_eq!(only_group(&mapper, T0 + SEC).lag, 25.0);
}

#[test]
fn kafka_exporter_names_through_the_prometheus_receiver() {
    let mut mapper = mapper();
    for (partition, lag) in [("0", 7.0), ("10", 3.0), ("2", 1.0)] {
        mapper.observe(&point(
            "kafka-exporter",
            "kafka_consumergroup_lag",
            T0,
            attrs(&[
                ("consumergroup", s("notifications")),
                ("topic", s("orders.created")),
                ("partition", s(partition)),
            ]),
            gauge(lag),
        ));
    }
    let group = only_group(&mapper, T0);
    assert_eq!((group.group.as_str(), group.lag), ("notifications", 11.0));
    let order: Vec<String> = partition_lags(&group).into_iter().map(|(p, _)| p).collect();
    assert_eq!(order, ["0", "2", "10"], "partitions in numeric order");
}

#[test]
fn client_metrics_without_a_group_are_the_reporting_consumers_own() {
    let mut mapper = mapper();
    for (partition, lag) in [(0, 4.0), (1, 6.0)] {
        mapper.observe(&point(
            "inventory",
            "kafka.consumer.records_lag",
            T0,
            attrs(&[
                ("client-id", s("consumer-inventory-1")),
                ("topic", s("orders.created")),
                ("partition", i(partition)),
            ]),
            sum(lag, AggregationTemporality::Cumulative),
        ));
    }
    mapper.observe(&point(
        "notifications",
        "kafka.consumer.records_lag_max",
        T0,
        attrs(&[("topic", s("orders.created"))]),
        gauge(9.0),
    ));
    let lag = mapper.lag(T0);
    let summary: Vec<(&str, f64, usize)> = lag
        .iter()
        .map(|group| (group.group.as_str(), group.lag, group.partitions.len()))
        .collect();
    assert_eq!(summary, [("inventory", 10.0, 2), ("notifications", 9.0, 0)]);
}

#[test]
fn delta_sums_accumulate_and_cumulative_sums_are_taken_as_they_are() {
    let mut mapper = mapper();
    let key = || {
        attrs(&[
            ("messaging.consumer.group.name", s("audit")),
            ("messaging.destination.name", s("events")),
            ("messaging.destination.partition.id", s("0")),
        ])
    };
    for (step, delta) in [(0, 5.0), (1, 3.0), (2, -6.0)] {
        mapper.observe(&point(
            "audit",
            "messaging.kafka.consumer.lag",
            T0 + step * SEC,
            key(),
            sum(delta, AggregationTemporality::Delta),
        ));
    }
    assert_eq!(only_group(&mapper, T0 + 2 * SEC).lag, 2.0);
    assert_eq!(
        only_group(&mapper, T0 + SEC).lag,
        8.0,
        "as of an earlier time"
    );
    // A delta that would take the lag below zero is refused and changes nothing.
    mapper.observe(&point(
        "audit",
        "messaging.kafka.consumer.lag",
        T0 + 3 * SEC,
        key(),
        sum(-10.0, AggregationTemporality::Delta),
    ));
    assert_eq!(only_group(&mapper, T0 + 3 * SEC).lag, 2.0);
    assert_eq!(mapper.counters().num_rejected(Rejection::Negative), 1);
}

fn lag_sequence(values: &[f64], step_secs: u64) -> SignalMapper {
    let mut mapper = mapper();
    for (index, &lag) in values.iter().enumerate() {
        mapper.observe(&point(
            "collector",
            "kafka.consumer_group.lag",
            T0 + index as u64 * step_secs * SEC,
            attrs(&[("group", s("g")), ("topic", s("t")), ("partition", i(0))]),
            gauge(lag),
        ));
    }
    mapper
}

#[test]
fn trend_follows_a_sequence_of_points() {
    let at = |count: usize| T0 + (count as u64 - 1) * 15 * SEC;

    let growing = [0.0, 100.0, 200.0, 300.0, 400.0, 500.0];
    let group = only_group(&lag_sequence(&growing, 15), at(growing.len()));
    assert_eq!(group.trend, Trend::Growing);
    let rate = group.rate_per_s.expect("rate");
    assert!((rate - 100.0 / 15.0).abs() < 1e-9, "{rate}");
    assert_eq!(group.time_to_drain_secs, None);

    let draining = [600.0, 500.0, 400.0, 300.0];
    let group = only_group(&lag_sequence(&draining, 15), at(draining.len()));
    assert_eq!(group.trend, Trend::Draining);
    let drain = group.time_to_drain_secs.expect("time to drain");
    assert!((drain - 300.0 / (100.0 / 15.0)).abs() < 1e-6, "{drain}");

    let stable = [1000.0, 1004.0, 998.0, 1001.0, 1000.0];
    assert_eq!(
        only_group(&lag_sequence(&stable, 15), at(stable.len())).trend,
        Trend::Stable
    );

    let drained = [50.0, 20.0, 0.0];
    let group = only_group(&lag_sequence(&drained, 15), at(drained.len()));
    assert_eq!((group.lag, group.time_to_drain_secs), (0.0, Some(0.0)));
    assert_eq!(group.trend, Trend::Stable, "nothing waiting");

    // Only the trend window counts: an old climb does not make a flat present grow.
    let mut values = vec![0.0, 1000.0, 2000.0];
    values.extend([2000.0; 30]);
    assert_eq!(
        only_group(&lag_sequence(&values, 15), at(values.len())).trend,
        Trend::Stable
    );
}

#[test]
fn history_is_the_total_over_time() {
    let mapper = lag_sequence(&[10.0, 20.0, 30.0], 10);
    let group = only_group(&mapper, T0 + 20 * SEC);
    assert_eq!(
        group.history,
        vec![(T0, 10.0), (T0 + 10 * SEC, 20.0), (T0 + 20 * SEC, 30.0)]
    );
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
fn resilience4j_gauges_record_every_transition_with_its_time() {
    for name in [
        "resilience4j.circuitbreaker.state",
        "resilience4j_circuitbreaker_state",
    ] {
        let mut mapper = mapper();
        for (secs, state) in [
            (0, "closed"),
            (10, "closed"),
            (20, "open"),
            (30, "half_open"),
            (40, "closed"),
        ] {
            resilience4j(&mut mapper, name, T0 + secs * SEC, state);
        }
        let breaker = only_breaker(&mapper);
        assert_eq!(
            (breaker.service.as_str(), breaker.name.as_str()),
            ("orders", "payments")
        );
        assert_eq!(breaker.state, BreakerState::Closed);
        assert_eq!(breaker.since_unix_nano, T0 + 40 * SEC);
        assert_eq!(
            transitions(&breaker),
            [
                (None, "closed", 0),
                (Some("closed"), "open", 20),
                (Some("open"), "half_open", 30),
                (Some("half_open"), "closed", 40),
            ],
            "{name}"
        );
    }
}

#[test]
fn our_convention_reads_numbers_or_a_state_attribute_and_a_target() {
    let mut mapper = mapper();
    let key = || {
        attrs(&[
            ("circuit_breaker.name", s("provider")),
            ("peer.service", s("payment-provider")),
        ])
    };
    mapper.observe(&point(
        "payments",
        "circuit_breaker.state",
        T0,
        key(),
        int_gauge(1),
    ));
    mapper.observe(&point(
        "payments",
        "circuit_breaker.state",
        T0 + SEC,
        key(),
        int_gauge(2),
    ));
    let mut named = key();
    named.push(("state".to_owned(), s("CLOSED")));
    mapper.observe(&point(
        "payments",
        "circuit_breaker.state",
        T0 + 2 * SEC,
        named,
        int_gauge(1),
    ));
    let breaker = only_breaker(&mapper);
    assert_eq!(breaker.target.as_deref(), Some("payment-provider"));
    assert_eq!(
        transitions(&breaker),
        [
            (None, "open", 0),
            (Some("open"), "half_open", 1),
            (Some("half_open"), "closed", 2)
        ]
    );
}

#[test]
fn polly_events_move_the_state_as_deltas_or_cumulative_increments() {
    let event = |name: &str| {
        attrs(&[
            ("pipeline.name", s("provider-pipeline")),
            ("event.name", s(name)),
            ("event.severity", s("Error")),
        ])
    };
    let mut delta = mapper();
    let mut cumulative = mapper();
    let steps = [
        (0, "OnCircuitOpened", 1.0),
        (5, "OnRetry", 3.0),
        (10, "OnCircuitHalfOpened", 1.0),
        (11, "OnCircuitClosed", 1.0),
    ];
    for (secs, name, count) in steps {
        let time = T0 + secs * SEC;
        delta.observe(&point(
            "checkout",
            "resilience.polly.strategy.events",
            time,
            event(name),
            sum(count, AggregationTemporality::Delta),
        ));
        cumulative.observe(&point(
            "checkout",
            "resilience.polly.strategy.events",
            time,
            event(name),
            sum(count, AggregationTemporality::Cumulative),
        ));
    }
    // A cumulative counter repeating its value is no new event.
    cumulative.observe(&point(
        "checkout",
        "resilience.polly.strategy.events",
        T0 + 20 * SEC,
        event("OnCircuitOpened"),
        sum(1.0, AggregationTemporality::Cumulative),
    ));
    let expected = [
        (None, "open", 0),
        (Some("open"), "half_open", 10),
        (Some("half_open"), "closed", 11),
    ];
    assert_eq!(transitions(&only_breaker(&delta)), expected);
    assert_eq!(transitions(&only_breaker(&cumulative)), expected);
    assert_eq!(only_breaker(&cumulative).name, "provider-pipeline");
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
