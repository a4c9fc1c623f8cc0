//! Lag per partition and group for every recognised name and shape, and its history.

use super::*;

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

#[test]
fn history_is_the_total_over_time() {
    let mapper = lag_sequence(&[10.0, 20.0, 30.0], 10);
    let group = only_group(&mapper, T0 + 20 * SEC);
    assert_eq!(
        group.history,
        vec![(T0, 10.0), (T0 + 10 * SEC, 20.0), (T0 + 20 * SEC, 30.0)]
    );
}
