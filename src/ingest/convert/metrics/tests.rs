use opentelemetry_proto::tonic::metrics::v1::{Gauge, Histogram, ResourceMetrics, ScopeMetrics};

use super::*;
use crate::ingest::convert::fixtures::{self, END, NOW, START};
use crate::model::{AttrValue, MetricKind, UNKNOWN_SERVICE};

fn convert(metrics: Vec<Metric>) -> Converted<MetricPoint> {
    convert_metrics(
        fixtures::metrics_request(metrics),
        NOW,
        &ConvertLimits::default(),
    )
}

fn gauge(points: Vec<NumberDataPoint>) -> Data {
    Data::Gauge(Gauge {
        data_points: points,
    })
}

fn int_point(value: i64) -> NumberDataPoint {
    fixtures::number_point(number_data_point::Value::AsInt(value))
}

fn histogram(point: HistogramDataPoint) -> Data {
    Data::Histogram(Histogram {
        data_points: vec![point],
        aggregation_temporality: 2,
    })
}

#[test]
fn converts_every_metric_type() {
    let converted = convert(fixtures::every_metric_type());
    assert_eq!(
        converted.num_rejected, 0,
        "{:?}",
        converted.rejection_message
    );
    let kinds: Vec<MetricKind> = converted
        .items
        .iter()
        .map(|point| point.value.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            MetricKind::Gauge,
            MetricKind::Sum,
            MetricKind::Histogram,
            MetricKind::ExponentialHistogram,
            MetricKind::Summary
        ]
    );
    let [gauge, sum, histogram, exponential, summary] =
        converted.items.try_into().expect("five points");

    assert_eq!(gauge.name, "queue.depth");
    assert_eq!(gauge.description, "queue.depth description");
    assert_eq!(gauge.unit, "1");
    assert_eq!(gauge.service_name(), "cart");
    assert_eq!(gauge.scope.name, "io.opentelemetry.http");
    assert_eq!(gauge.start_time_unix_nano, START);
    assert_eq!(gauge.time_unix_nano, END);
    assert_eq!(gauge.flags, 0);
    assert_eq!(
        gauge.attributes,
        vec![("route".to_owned(), AttrValue::Str("/cart".into()))]
    );
    assert_eq!(
        gauge.value,
        PointValue::Gauge {
            value: NumberValue::Int(-3)
        }
    );
    assert_eq!(
        sum.value,
        PointValue::Sum {
            value: NumberValue::Double(2.5),
            temporality: AggregationTemporality::Delta,
            is_monotonic: true,
        }
    );
    let expected_histogram = HistogramValue {
        count: 6,
        sum: Some(12.5),
        min: Some(0.5),
        max: Some(9.0),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![1.0, 5.0],
        temporality: AggregationTemporality::Cumulative,
    };
    assert_eq!(histogram.value, PointValue::Histogram(expected_histogram));
    let expected_exponential = ExponentialHistogramValue {
        count: 6,
        sum: Some(30.0),
        min: Some(-9.0),
        max: Some(11.0),
        scale: 3,
        zero_count: 1,
        zero_threshold: 0.001,
        positive: ExponentialBuckets {
            offset: -2,
            bucket_counts: vec![1, 2],
        },
        negative: ExponentialBuckets {
            offset: 4,
            bucket_counts: vec![2],
        },
        temporality: AggregationTemporality::Delta,
    };
    assert_eq!(
        exponential.value,
        PointValue::ExponentialHistogram(expected_exponential)
    );
    let expected_summary = SummaryValue {
        count: 4,
        sum: 10.0,
        quantile_values: vec![
            QuantileValue {
                quantile: 0.5,
                value: 2.0,
            },
            QuantileValue {
                quantile: 0.99,
                value: 4.0,
            },
        ],
    };
    assert_eq!(summary.value, PointValue::Summary(expected_summary));
}

#[test]
fn every_point_of_a_metric_carries_its_name() {
    let converted = convert(vec![fixtures::metric(
        "queue.depth",
        gauge(vec![int_point(1), int_point(2), int_point(3)]),
    )]);
    let names: Vec<&str> = converted
        .items
        .iter()
        .map(|point| point.name.as_str())
        .collect();
    assert_eq!(names, ["queue.depth"; 3]);
    assert!(converted.items.iter().all(|point| point.unit == "1"));
}

#[test]
fn exponential_histogram_without_buckets_has_empty_ones() {
    let mut metrics = fixtures::every_metric_type();
    let Some(Data::ExponentialHistogram(histogram)) = &mut metrics[3].data else {
        panic!("fixture order changed");
    };
    histogram.data_points[0].positive = None;
    histogram.data_points[0].negative = None;
    let converted = convert(metrics);
    let PointValue::ExponentialHistogram(value) = &converted.items[3].value else {
        panic!("not an exponential histogram");
    };
    assert_eq!(value.positive, ExponentialBuckets::default());
    assert_eq!(value.negative, ExponentialBuckets::default());
}

#[test]
fn rejects_metric_without_name_or_data() {
    let nameless = fixtures::metric("", gauge(vec![int_point(1), int_point(2)]));
    let no_data = Metric {
        data: None,
        ..fixtures::metric("orphan", gauge(Vec::new()))
    };
    let no_points = fixtures::metric("idle", gauge(Vec::new()));
    let converted = convert(vec![nameless, no_data, no_points]);
    assert!(converted.items.is_empty());
    // Two points of the nameless metric, one for the metric without data, none for the empty one.
    assert_eq!(converted.num_rejected, 3);
    assert_eq!(
        converted.rejection_message.as_deref(),
        Some(
            "rejected 3 of 3 data points: resource 0 scope 0 metric 0 (\"\"): metric name is empty; \
             resource 0 scope 0 metric 1 (\"orphan\"): metric has no data; \
             resource 0 scope 0 metric 2 (\"idle\"): metric has no data points"
        )
    );
}

#[test]
fn rejects_points_with_missing_or_absurd_times() {
    let limits = ConvertLimits::default();
    let with_time = |time_unix_nano| NumberDataPoint {
        time_unix_nano,
        ..int_point(1)
    };
    let points = vec![
        with_time(0),
        with_time(limits.min_time_unix_nano - 1),
        with_time(NOW + limits.max_future_skew_nanos + 1),
        with_time(NOW + limits.max_future_skew_nanos),
    ];
    let converted = convert(vec![fixtures::metric("queue.depth", gauge(points))]);
    assert_eq!(converted.items.len(), 1);
    assert_eq!(converted.num_rejected, 3);
    let message = converted.rejection_message.expect("reasons");
    assert!(
        message.starts_with("rejected 3 of 4 data points: "),
        "{message}"
    );
    assert!(message.contains("metric 0 (\"queue.depth\") point 0: time_unix_nano is 0"));
    assert!(message.contains("point 1: absurd timestamp: time_unix_nano"));
    assert!(message.contains("point 2: absurd timestamp: time_unix_nano"));
    assert!(message.contains("s ahead of now"));
}

#[test]
fn number_point_without_value_is_rejected_unless_flagged_no_recorded_value() {
    let empty = NumberDataPoint {
        value: None,
        ..int_point(0)
    };
    let stale = NumberDataPoint {
        value: None,
        flags: DataPointFlags::NoRecordedValueMask as u32,
        ..int_point(0)
    };
    let converted = convert(vec![fixtures::metric("up", gauge(vec![empty, stale]))]);
    assert_eq!(converted.num_rejected, 1);
    assert!(
        converted
            .rejection_message
            .expect("a reason")
            .ends_with("point 0: number data point has no value")
    );
    let [point] = converted.items.try_into().expect("the flagged point");
    assert_eq!(point.flags, 1);
    assert!(
        matches!(point.value, PointValue::Gauge { value: NumberValue::Double(value) } if value.is_nan())
    );
}

#[test]
fn histogram_bucket_rules_follow_otlp() {
    let accepted = [
        fixtures::histogram_point(Vec::new(), Vec::new()),
        fixtures::histogram_point(vec![4], Vec::new()),
        fixtures::histogram_point(vec![1, 2, 3], vec![1.0, 2.0]),
    ];
    for point in accepted {
        let converted = convert(vec![fixtures::metric("h", histogram(point))]);
        assert_eq!(
            converted.items.len(),
            1,
            "{:?}",
            converted.rejection_message
        );
    }
    let rejected = [
        (
            fixtures::histogram_point(vec![1, 2], vec![1.0, 2.0]),
            "histogram has 2 bucket counts for 2 explicit bounds; expected 3",
        ),
        (
            fixtures::histogram_point(Vec::new(), vec![1.0]),
            "histogram has 0 bucket counts for 1 explicit bounds; expected 2",
        ),
        (
            fixtures::histogram_point(vec![1, 2, 3], vec![2.0, 1.0]),
            "histogram explicit bounds must be strictly increasing numbers",
        ),
        (
            fixtures::histogram_point(vec![1, 2], vec![f64::NAN]),
            "histogram explicit bounds must be strictly increasing numbers",
        ),
    ];
    for (point, reason) in rejected {
        let converted = convert(vec![fixtures::metric("h", histogram(point))]);
        let message = converted.rejection_message.expect("a reason");
        assert!(message.ends_with(reason), "{message}");
        assert_eq!(converted.num_rejected, 1);
    }
}

#[test]
fn long_metric_names_are_shortened_in_messages() {
    let name = "x".repeat(500);
    let converted = convert(vec![fixtures::metric(
        &name,
        gauge(vec![NumberDataPoint {
            time_unix_nano: 0,
            ..int_point(1)
        }]),
    )]);
    let message = converted.rejection_message.expect("a reason");
    assert!(message.contains(&format!("(\"{}\")", "x".repeat(MAX_NAME_CHARS_SHOWN))));
    assert!(message.len() < 200, "{message}");
}

#[test]
fn counts_accepted_points_without_a_service_name() {
    let scope_metrics = |metrics| ScopeMetrics {
        scope: None,
        metrics,
        schema_url: String::new(),
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![
            ResourceMetrics {
                resource: Some(fixtures::resource(None)),
                scope_metrics: vec![scope_metrics(fixtures::every_metric_type())],
                schema_url: String::new(),
            },
            ResourceMetrics {
                resource: Some(fixtures::resource(Some("cart"))),
                scope_metrics: vec![scope_metrics(fixtures::every_metric_type())],
                schema_url: String::new(),
            },
        ],
    };
    let converted = convert_metrics(request, NOW, &ConvertLimits::default());
    assert_eq!(converted.items.len(), 10);
    assert_eq!(converted.num_unknown_service, 5);
    assert_eq!(converted.items[0].service_name(), UNKNOWN_SERVICE);
    assert_eq!(converted.items[9].service_name(), "cart");
}
