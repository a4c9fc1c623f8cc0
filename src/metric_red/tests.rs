//! Delta and cumulative temporality, resets, exponential buckets, naming and bounds.

use std::sync::Arc;

use super::*;
use crate::model::{
    AttrValue, Attributes, ExponentialBuckets, ExponentialHistogramValue, HistogramValue,
    PointValue, Resource, Scope,
};

const T0: u64 = 1_700_000_040_000_000_000;
const SEC: u64 = 1_000_000_000;
const BOUNDS_S: [f64; 4] = [0.005, 0.025, 0.1, 0.5];

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), AttrValue::Str((*value).to_owned())))
        .collect()
}

fn explicit(buckets: [u64; 5], temporality: AggregationTemporality) -> PointValue {
    PointValue::Histogram(HistogramValue {
        count: buckets.iter().sum(),
        sum: None,
        min: None,
        max: None,
        bucket_counts: buckets.to_vec(),
        explicit_bounds: BOUNDS_S.to_vec(),
        temporality,
    })
}

fn point(
    service: &str,
    name: &str,
    start: u64,
    time: u64,
    attributes: Attributes,
    value: PointValue,
) -> MetricPoint {
    MetricPoint {
        resource: Arc::new(Resource::from_attributes(
            vec![(
                "service.name".to_owned(),
                AttrValue::Str(service.to_owned()),
            )],
            0,
        )),
        scope: Arc::new(Scope::default()),
        name: name.to_owned(),
        description: String::new(),
        unit: "s".to_owned(),
        start_time_unix_nano: start,
        time_unix_nano: time,
        attributes,
        flags: 0,
        value,
    }
}

fn server(
    start: u64,
    time: u64,
    buckets: [u64; 5],
    temporality: AggregationTemporality,
) -> MetricPoint {
    point(
        "checkout",
        "http.server.request.duration",
        start,
        time,
        attrs(&[("http.request.method", "GET"), ("http.route", "/cart")]),
        explicit(buckets, temporality),
    )
}

fn whole(red: &MetricRed) -> RedView {
    red.view(MinuteRange::covering_unix_nano(0, T0 + 7_200 * SEC))
}

fn served(view: &RedView) -> (u64, u64) {
    let stats = &view.operations[&("checkout".to_owned(), "GET /cart".to_owned())];
    (stats.num_requests, stats.num_errors)
}

#[test]
fn delta_points_add_up() {
    let mut red = MetricRed::new(0);
    for minute in 0..3 {
        let time = T0 + minute * 60 * SEC;
        red.observe(&server(
            time - 60 * SEC,
            time,
            [1, 2, 3, 0, 0],
            AggregationTemporality::Delta,
        ));
    }
    assert_eq!(served(&whole(&red)), (18, 0));
    // Each increment stays in its own minute.
    let first = red.view(MinuteRange::single(UnixMinute::of_unix_nano(T0)));
    assert_eq!(served(&first), (6, 0));
}

#[test]
fn cumulative_points_count_their_differences_and_a_reset_counts_whole() {
    let mut red = MetricRed::new(T0 - 120 * SEC);
    let start = T0 - 60 * SEC;
    let cumulative = AggregationTemporality::Cumulative;
    red.observe(&server(start, T0, [1, 1, 0, 0, 0], cumulative));
    red.observe(&server(start, T0 + 60 * SEC, [3, 4, 1, 0, 0], cumulative));
    // The process restarted: a new start time and smaller counts.
    let restart = T0 + 90 * SEC;
    red.observe(&server(
        restart,
        T0 + 120 * SEC,
        [2, 0, 0, 0, 0],
        cumulative,
    ));
    red.observe(&server(
        restart,
        T0 + 180 * SEC,
        [5, 0, 0, 0, 1],
        cumulative,
    ));
    assert_eq!(served(&whole(&red)), (2 + 6 + 2 + 4, 0));
    assert_eq!(red.counters().num_resets, 1);
    // A count that went down under the same start time is a reset too.
    red.observe(&server(
        restart,
        T0 + 240 * SEC,
        [1, 0, 0, 0, 0],
        cumulative,
    ));
    assert_eq!(red.counters().num_resets, 2);
    assert_eq!(served(&whole(&red)).0, 15);
    // A re-sent older point is not counted again.
    red.observe(&server(
        restart,
        T0 + 180 * SEC,
        [5, 0, 0, 0, 1],
        cumulative,
    ));
    assert_eq!(served(&whole(&red)).0, 15);
}

#[test]
fn a_cumulative_series_older_than_the_accumulator_only_sets_the_baseline() {
    let mut red = MetricRed::new(T0);
    let cumulative = AggregationTemporality::Cumulative;
    red.observe(&server(
        T0 - 3_600 * SEC,
        T0 + SEC,
        [100, 0, 0, 0, 0],
        cumulative,
    ));
    assert!(whole(&red).operations.is_empty());
    red.observe(&server(
        T0 - 3_600 * SEC,
        T0 + 61 * SEC,
        [107, 0, 0, 0, 0],
        cumulative,
    ));
    assert_eq!(served(&whole(&red)), (7, 0));
}

#[test]
fn latency_comes_from_the_buckets() {
    let mut red = MetricRed::new(0);
    // 90 calls in (5 ms, 25 ms], 10 in (100 ms, 500 ms].
    red.observe(&server(
        T0,
        T0,
        [0, 90, 0, 10, 0],
        AggregationTemporality::Delta,
    ));
    let view = whole(&red);
    let stats = &view.operations[&("checkout".to_owned(), "GET /cart".to_owned())];
    let p50_ms = stats.latency.quantile_nanos(0.5).expect("p50") / 1e6;
    let p95_ms = stats.latency.quantile_nanos(0.95).expect("p95") / 1e6;
    assert!((p50_ms - 15.0).abs() < 0.5, "p50 {p50_ms}");
    assert!((p95_ms - 300.0).abs() < 10.0, "p95 {p95_ms}");
}

fn exponential(
    scale: i32,
    offset: i32,
    counts: &[u64],
    temporality: AggregationTemporality,
) -> PointValue {
    PointValue::ExponentialHistogram(ExponentialHistogramValue {
        count: counts.iter().sum(),
        sum: None,
        min: None,
        max: None,
        scale,
        zero_count: 0,
        zero_threshold: 0.0,
        positive: ExponentialBuckets {
            offset,
            bucket_counts: counts.to_vec(),
        },
        negative: ExponentialBuckets::default(),
        temporality,
    })
}

#[test]
fn exponential_buckets_give_latency_and_survive_a_downscale() {
    let mut red = MetricRed::new(0);
    let cumulative = AggregationTemporality::Cumulative;
    let series = |time: u64, value: PointValue| {
        let mut series = point(
            "checkout",
            "rpc.server.duration",
            T0,
            time,
            attrs(&[("rpc.service", "Cart"), ("rpc.method", "Add")]),
            value,
        );
        series.unit = "ms".to_owned();
        series
    };
    // Milliseconds at scale 0: bucket 3 is (8, 16], bucket 6 is (64, 128].
    red.observe(&series(T0, exponential(0, 3, &[10, 0, 0, 2], cumulative)));
    // The SDK downscaled to -1: bucket 1 is (4, 16], bucket 3 is (64, 256].
    red.observe(&series(
        T0 + 60 * SEC,
        exponential(-1, 1, &[30, 0, 2], cumulative),
    ));
    let view = whole(&red);
    let stats = &view.operations[&("checkout".to_owned(), "Cart/Add".to_owned())];
    assert_eq!(stats.num_requests, 32);
    assert_eq!(red.counters().num_resets, 0);
    let p50_ms = stats.latency.quantile_nanos(0.5).expect("p50") / 1e6;
    assert!((4.0..=16.0).contains(&p50_ms), "p50 {p50_ms}");
    let p99_ms = stats.latency.quantile_nanos(0.99).expect("p99") / 1e6;
    assert!((64.0..=256.0).contains(&p99_ms), "p99 {p99_ms}");
}

#[test]
fn client_histograms_name_edges_like_the_trace_path_and_errors_come_from_attributes() {
    let mut red = MetricRed::new(0);
    let delta = AggregationTemporality::Delta;
    let client = |attributes: &[(&str, &str)], buckets| {
        point(
            "frontend",
            "http.client.request.duration",
            T0,
            T0,
            attrs(attributes),
            explicit(buckets, delta),
        )
    };
    red.observe(&client(&[("peer.service", "checkout")], [4, 0, 0, 0, 0]));
    red.observe(&client(
        &[("peer.service", "checkout"), ("error.type", "timeout")],
        [0, 0, 0, 0, 1],
    ));
    red.observe(&client(
        &[("server.address", "api.stripe.com"), ("server.port", "443")],
        [2, 0, 0, 0, 0],
    ));
    red.observe(&client(&[], [2, 0, 0, 0, 0]));
    let mut db = point(
        "frontend",
        "db.client.operation.duration",
        T0,
        T0,
        attrs(&[
            ("db.system.name", "postgresql"),
            ("server.address", "db"),
            ("db.namespace", "shop"),
        ]),
        explicit([1, 0, 0, 0, 0], delta),
    );
    db.attributes
        .push(("server.port".to_owned(), AttrValue::Int(5432)));
    red.observe(&db);
    let view = whole(&red);
    let edges: Vec<(String, bool, u64, u64)> = view
        .edges
        .iter()
        .map(|(edge, stats)| {
            (
                edge.target.node.id(),
                edge.target.is_logical_name,
                stats.num_requests,
                stats.num_errors,
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            ("database:postgresql db:5432/shop".to_owned(), false, 1, 0),
            ("external:api.stripe.com:443".to_owned(), false, 2, 0),
            ("external:checkout".to_owned(), true, 5, 1),
        ]
    );
    assert_eq!(red.counters().num_rejected(RedRejection::NoPeer), 1);
}

#[test]
fn server_status_codes_and_consumers() {
    let mut red = MetricRed::new(0);
    let delta = AggregationTemporality::Delta;
    let mut failed = server(T0, T0, [3, 0, 0, 0, 0], delta);
    failed
        .attributes
        .push(("http.response.status_code".to_owned(), AttrValue::Int(503)));
    red.observe(&failed);
    let mut not_found = server(T0, T0, [2, 0, 0, 0, 0], delta);
    not_found
        .attributes
        .push(("http.response.status_code".to_owned(), AttrValue::Int(404)));
    red.observe(&not_found);
    assert_eq!(served(&whole(&red)), (5, 3));

    let consumer = point(
        "billing",
        "messaging.process.duration",
        T0,
        T0,
        attrs(&[
            ("messaging.system", "kafka"),
            ("messaging.destination.name", "orders"),
        ]),
        explicit([1, 0, 0, 0, 0], delta),
    );
    red.observe(&consumer);
    let view = whole(&red);
    let edge = view.edges.keys().next().expect("topic edge");
    assert_eq!(
        (edge.source.id(), edge.target.node.id()),
        (
            "topic:kafka orders".to_owned(),
            "service:billing".to_owned()
        )
    );
    assert!(
        view.operations
            .contains_key(&("billing".to_owned(), "process orders".to_owned()))
    );
}

#[test]
fn bounds_are_counted_not_exceeded() {
    let mut red = MetricRed::new(0);
    let cumulative = AggregationTemporality::Cumulative;
    for index in 0..MAX_SERIES + 3 {
        let mut series = server(T0, T0, [1, 0, 0, 0, 0], cumulative);
        series
            .attributes
            .push(("http.route".to_owned(), AttrValue::Str(format!("/{index}"))));
        series.attributes.remove(1);
        red.observe(&series);
    }
    assert_eq!(red.num_series(), MAX_SERIES);
    assert_eq!(red.counters().num_rejected(RedRejection::TooManySeries), 3);
    let view = whole(&red);
    assert_eq!(view.operations.len(), MAX_KEYS_PER_MINUTE);
    assert_eq!(
        red.counters().num_rejected(RedRejection::TooManyKeys),
        (MAX_SERIES - MAX_KEYS_PER_MINUTE) as u64
    );

    // Minutes: an hour and the one in progress; an older point is refused and counted.
    let mut red = MetricRed::new(0);
    let delta = AggregationTemporality::Delta;
    for minute in 0..MAX_MINUTES as u64 + 5 {
        red.observe(&server(T0, T0 + minute * 60 * SEC, [1, 0, 0, 0, 0], delta));
    }
    assert_eq!(served(&whole(&red)).0, MAX_MINUTES as u64);
    red.observe(&server(T0, T0, [1, 0, 0, 0, 0], delta));
    assert_eq!(red.counters().num_rejected(RedRejection::TooOld), 1);
    red.expire(T0 + (MAX_MINUTES as u64 + 5) * 60 * SEC + 3_600 * SEC);
    assert!(whole(&red).operations.is_empty());
}

#[test]
fn unusable_points_are_counted() {
    let mut red = MetricRed::new(0);
    let mut no_value = server(T0, T0, [1, 0, 0, 0, 0], AggregationTemporality::Delta);
    no_value.flags = 1;
    red.observe(&no_value);
    red.observe(&server(
        T0,
        T0,
        [1, 0, 0, 0, 0],
        AggregationTemporality::Unspecified,
    ));
    let mut gauge =
        MetricPoint::test_gauge("checkout", "http.server.request.duration", T0, &[], 1.0);
    gauge.unit = "s".to_owned();
    red.observe(&gauge);
    red.observe(&MetricPoint::test_gauge(
        "checkout",
        "orders.placed",
        T0,
        &[],
        1.0,
    ));
    assert_eq!(red.counters().num_rejected(RedRejection::NoValue), 1);
    assert_eq!(
        red.counters()
            .num_rejected(RedRejection::UnknownTemporality),
        1
    );
    assert_eq!(red.counters().num_rejected(RedRejection::WrongType), 1);
    assert!(whole(&red).operations.is_empty());
}

#[test]
fn a_cumulative_difference_keeps_its_values_within_the_points_extremes() {
    let mut red = MetricRed::new(0);
    let cumulative = AggregationTemporality::Cumulative;
    // Everything in the first bucket (≤ 5 ms), whose middle would be 2.5 ms without extremes.
    let mut first = server(T0, T0, [4, 0, 0, 0, 0], cumulative);
    let mut second = server(T0, T0 + 60 * SEC, [10, 0, 0, 0, 0], cumulative);
    for (point, max) in [(&mut first, 0.004), (&mut second, 0.0045)] {
        let PointValue::Histogram(histogram) = &mut point.value else {
            unreachable!()
        };
        (histogram.min, histogram.max) = (Some(0.004), Some(max));
    }
    red.observe(&first);
    red.observe(&second);
    let stats = &whole(&red).operations[&("checkout".to_owned(), "GET /cart".to_owned())];
    let p95_ms = stats.latency.quantile_nanos(0.95).expect("p95") / 1e6;
    assert!((4.0..=4.6).contains(&p95_ms), "p95 {p95_ms}");
}
