//! OTLP metrics → one model `MetricPoint` per data point, for every metric type.

use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    SummaryDataPoint, exponential_histogram_data_point, metric::Data, number_data_point,
};

use super::attributes::convert_attributes;
use super::{
    ConvertLimits, Converted, Invalid, Rejections, check_plausible_time, convert_resource,
    convert_scope,
};
use crate::model::{
    AggregationTemporality, ExponentialBuckets, ExponentialHistogramValue, HistogramValue,
    MetricPoint, NumberValue, PointValue, QuantileValue, Resource, Scope, SummaryValue,
};

/// Rejection messages quote at most this many characters of a metric name.
const MAX_NAME_CHARS_SHOWN: usize = 64;

/// Converts every valid data point; invalid metrics and points are counted and summarised.
pub fn convert_metrics(
    request: ExportMetricsServiceRequest,
    now_unix_nano: u64,
    limits: &ConvertLimits,
) -> Converted<MetricPoint> {
    let mut converter = Converter {
        points: Vec::new(),
        rejections: Rejections::default(),
        now_unix_nano,
        limits,
    };
    let mut num_unknown_service = 0;
    let mut num_limited = 0;
    for (resource_index, resource_metrics) in request.resource_metrics.into_iter().enumerate() {
        let resource = convert_resource(resource_metrics.resource, limits, &mut num_limited);
        let num_before = converter.points.len();
        for (scope_index, scope_metrics) in resource_metrics.scope_metrics.into_iter().enumerate() {
            let scope = convert_scope(scope_metrics.scope, limits, &mut num_limited);
            for (metric_index, metric) in scope_metrics.metrics.into_iter().enumerate() {
                let indices = [resource_index, scope_index, metric_index];
                converter.convert_metric(metric, &resource, &scope, indices);
            }
        }
        if !resource.has_service_name() {
            num_unknown_service += (converter.points.len() - num_before) as u64;
        }
    }
    Converted {
        num_rejected: converter.rejections.num_rejected,
        rejection_message: converter
            .rejections
            .into_message(converter.points.len(), "data points"),
        num_limited_attributes: num_limited
            + converter
                .points
                .iter_mut()
                .map(|point| limits.limit(&mut point.attributes, &mut 0))
                .sum::<u64>(),
        items: converter.points,
        num_unknown_service,
    }
}

/// Where a metric (and optionally one of its points) sits in its request.
struct MetricLocation<'a> {
    /// Resource, scope and metric index.
    indices: [usize; 3],
    name: &'a str,
    point_index_opt: Option<usize>,
}

impl fmt::Display for MetricLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [resource_index, scope_index, metric_index] = self.indices;
        let name_shown = match self.name.char_indices().nth(MAX_NAME_CHARS_SHOWN) {
            Some((cut, _)) => &self.name[..cut],
            None => self.name,
        };
        write!(
            f,
            "resource {resource_index} scope {scope_index} metric {metric_index} ({name_shown:?})"
        )?;
        match self.point_index_opt {
            Some(point_index) => write!(f, " point {point_index}"),
            None => Ok(()),
        }
    }
}

/// What every data point type has besides its value.
struct PointHeader {
    attributes: Vec<KeyValue>,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    flags: u32,
}

/// One metric's context while its points are converted.
struct MetricContext<'a> {
    resource: &'a Arc<Resource>,
    scope: &'a Arc<Scope>,
    indices: [usize; 3],
    name: &'a str,
}

impl MetricContext<'_> {
    fn location(&self, point_index_opt: Option<usize>) -> MetricLocation<'_> {
        MetricLocation {
            indices: self.indices,
            name: self.name,
            point_index_opt,
        }
    }
}

struct Converter<'a> {
    points: Vec<MetricPoint>,
    rejections: Rejections,
    now_unix_nano: u64,
    limits: &'a ConvertLimits,
}

impl Converter<'_> {
    fn convert_metric(
        &mut self,
        metric: Metric,
        resource: &Arc<Resource>,
        scope: &Arc<Scope>,
        indices: [usize; 3],
    ) {
        let context = MetricContext {
            resource,
            scope,
            indices,
            name: &metric.name,
        };
        let num_points = metric.data.as_ref().map_or(0, num_data_points);
        // How many items each rejection counts follows how ingest counts what it received:
        // a metric without data as one item.
        let invalid_opt = if metric.name.is_empty() {
            Some((num_points.max(1), Invalid::EmptyMetricName))
        } else if metric.data.is_none() {
            Some((1, Invalid::NoMetricData))
        } else if num_points == 0 {
            // Nothing to reject, but the sender should hear that it sent an empty metric.
            Some((0, Invalid::NoDataPoints))
        } else {
            None
        };
        if let Some((num_rejected, reason)) = invalid_opt {
            self.rejections
                .reject(num_rejected as u64, context.location(None), &reason);
            return;
        }
        let first_new = self.points.len();
        if let Some(data) = metric.data {
            self.convert_data(data, &context);
        }
        fill_identity(
            &mut self.points[first_new..],
            metric.name,
            metric.description,
            metric.unit,
        );
    }

    fn convert_data(&mut self, data: Data, context: &MetricContext<'_>) {
        match data {
            Data::Gauge(gauge) => self.push_points(context, gauge.data_points, |point| {
                let (header, value) = number_point(point);
                (header, value.map(|value| PointValue::Gauge { value }))
            }),
            Data::Sum(sum) => {
                let temporality = AggregationTemporality::from_otlp(sum.aggregation_temporality);
                self.push_points(context, sum.data_points, |point| {
                    let (header, value) = number_point(point);
                    let value = value.map(|value| PointValue::Sum {
                        value,
                        temporality,
                        is_monotonic: sum.is_monotonic,
                    });
                    (header, value)
                });
            }
            Data::Histogram(histogram) => {
                let temporality =
                    AggregationTemporality::from_otlp(histogram.aggregation_temporality);
                self.push_points(context, histogram.data_points, |point| {
                    histogram_point(point, temporality)
                });
            }
            Data::ExponentialHistogram(histogram) => {
                let temporality =
                    AggregationTemporality::from_otlp(histogram.aggregation_temporality);
                self.push_points(context, histogram.data_points, |point| {
                    exponential_histogram_point(point, temporality)
                });
            }
            Data::Summary(summary) => {
                self.push_points(context, summary.data_points, summary_point);
            }
        }
    }

    fn push_points<P>(
        &mut self,
        context: &MetricContext<'_>,
        data_points: Vec<P>,
        convert: impl Fn(P) -> (PointHeader, Result<PointValue, Invalid>),
    ) {
        self.points.reserve(data_points.len());
        for (point_index, data_point) in data_points.into_iter().enumerate() {
            let (header, value_result) = convert(data_point);
            let checked = self.check_time(&header).and(value_result);
            match checked {
                Ok(value) => self.points.push(MetricPoint {
                    resource: Arc::clone(context.resource),
                    scope: Arc::clone(context.scope),
                    // Filled in once per metric by `fill_identity`.
                    name: String::new(),
                    description: String::new(),
                    unit: String::new(),
                    start_time_unix_nano: header.start_time_unix_nano,
                    time_unix_nano: header.time_unix_nano,
                    attributes: convert_attributes(header.attributes),
                    flags: header.flags,
                    value,
                }),
                Err(reason) => {
                    let location = context.location(Some(point_index));
                    self.rejections.reject(1, location, &reason);
                }
            }
        }
    }

    fn check_time(&self, header: &PointHeader) -> Result<(), Invalid> {
        if header.time_unix_nano == 0 {
            return Err(Invalid::MissingTime {
                field: "time_unix_nano",
            });
        }
        check_plausible_time(
            "time_unix_nano",
            header.time_unix_nano,
            self.now_unix_nano,
            self.limits,
        )
    }
}

fn num_data_points(data: &Data) -> usize {
    match data {
        Data::Gauge(gauge) => gauge.data_points.len(),
        Data::Sum(sum) => sum.data_points.len(),
        Data::Histogram(histogram) => histogram.data_points.len(),
        Data::ExponentialHistogram(histogram) => histogram.data_points.len(),
        Data::Summary(summary) => summary.data_points.len(),
    }
}

/// Moves the metric's strings into its last point and clones them for the others.
fn fill_identity(points: &mut [MetricPoint], name: String, description: String, unit: String) {
    let Some((last, others)) = points.split_last_mut() else {
        return;
    };
    for point in others {
        point.name.clone_from(&name);
        point.description.clone_from(&description);
        point.unit.clone_from(&unit);
    }
    last.name = name;
    last.description = description;
    last.unit = unit;
}

fn number_point(point: NumberDataPoint) -> (PointHeader, Result<NumberValue, Invalid>) {
    let no_recorded_value = point.flags & DataPointFlags::NoRecordedValueMask as u32 != 0;
    let value = match point.value {
        Some(number_data_point::Value::AsInt(value)) => Ok(NumberValue::Int(value)),
        Some(number_data_point::Value::AsDouble(value)) => Ok(NumberValue::Double(value)),
        // OTLP's explicit "no value" (e.g. a Prometheus staleness marker); the flag stays on
        // the point so readers can tell it from a measured NaN.
        None if no_recorded_value => Ok(NumberValue::Double(f64::NAN)),
        None => Err(Invalid::NoNumberValue),
    };
    let header = PointHeader {
        attributes: point.attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        flags: point.flags,
    };
    (header, value)
}

fn histogram_point(
    point: HistogramDataPoint,
    temporality: AggregationTemporality,
) -> (PointHeader, Result<PointValue, Invalid>) {
    let checked = check_buckets(&point.bucket_counts, &point.explicit_bounds);
    let header = PointHeader {
        attributes: point.attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        flags: point.flags,
    };
    let value = checked.map(|()| {
        PointValue::Histogram(HistogramValue {
            count: point.count,
            sum: point.sum,
            min: point.min,
            max: point.max,
            bucket_counts: point.bucket_counts,
            explicit_bounds: point.explicit_bounds,
            temporality,
        })
    });
    (header, value)
}

/// OTLP: `bucket_counts` has one more element than `explicit_bounds`, or both are empty; the
/// bounds increase (bucket i holds values in `(bounds[i-1], bounds[i]]`).
fn check_buckets(bucket_counts: &[u64], explicit_bounds: &[f64]) -> Result<(), Invalid> {
    let num_buckets = bucket_counts.len();
    let num_bounds = explicit_bounds.len();
    let both_empty = num_buckets == 0 && num_bounds == 0;
    if !both_empty && num_buckets != num_bounds + 1 {
        return Err(Invalid::BucketCountMismatch {
            num_buckets,
            num_bounds,
            expected: num_bounds + 1,
        });
    }
    // `<` is false for NaN, so a NaN bound is rejected too.
    let is_increasing = explicit_bounds.windows(2).all(|pair| pair[0] < pair[1]);
    if !is_increasing || explicit_bounds.iter().any(|bound| bound.is_nan()) {
        return Err(Invalid::UnsortedBounds);
    }
    Ok(())
}

fn exponential_histogram_point(
    point: ExponentialHistogramDataPoint,
    temporality: AggregationTemporality,
) -> (PointHeader, Result<PointValue, Invalid>) {
    let header = PointHeader {
        attributes: point.attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        flags: point.flags,
    };
    let value = PointValue::ExponentialHistogram(ExponentialHistogramValue {
        count: point.count,
        sum: point.sum,
        min: point.min,
        max: point.max,
        scale: point.scale,
        zero_count: point.zero_count,
        zero_threshold: point.zero_threshold,
        positive: convert_buckets(point.positive),
        negative: convert_buckets(point.negative),
        temporality,
    });
    (header, Ok(value))
}

fn convert_buckets(
    buckets_opt: Option<exponential_histogram_data_point::Buckets>,
) -> ExponentialBuckets {
    buckets_opt.map_or_else(ExponentialBuckets::default, |buckets| ExponentialBuckets {
        offset: buckets.offset,
        bucket_counts: buckets.bucket_counts,
    })
}

fn summary_point(point: SummaryDataPoint) -> (PointHeader, Result<PointValue, Invalid>) {
    let header = PointHeader {
        attributes: point.attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        flags: point.flags,
    };
    let quantile_values = point
        .quantile_values
        .into_iter()
        .map(|quantile| QuantileValue {
            quantile: quantile.quantile,
            value: quantile.value,
        })
        .collect();
    let value = PointValue::Summary(SummaryValue {
        count: point.count,
        sum: point.sum,
        quantile_values,
    });
    (header, Ok(value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
