//! Metric points of every OTLP type, one record per data point.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Attributes, Resource, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregationTemporality {
    Unspecified,
    Delta,
    Cumulative,
}

impl AggregationTemporality {
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => AggregationTemporality::Delta,
            2 => AggregationTemporality::Cumulative,
            _ => AggregationTemporality::Unspecified,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberValue {
    Int(i64),
    Double(f64),
}

impl NumberValue {
    pub fn as_f64(self) -> f64 {
        match self {
            // Precision loss above 2^53 is acceptable for display and thresholds.
            NumberValue::Int(value) => value as f64,
            NumberValue::Double(value) => value,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramValue {
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub temporality: AggregationTemporality,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExponentialBuckets {
    pub offset: i32,
    pub bucket_counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExponentialHistogramValue {
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: ExponentialBuckets,
    pub negative: ExponentialBuckets,
    pub temporality: AggregationTemporality,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantileValue {
    pub quantile: f64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryValue {
    pub count: u64,
    pub sum: f64,
    pub quantile_values: Vec<QuantileValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PointValue {
    Gauge {
        value: NumberValue,
    },
    Sum {
        value: NumberValue,
        temporality: AggregationTemporality,
        is_monotonic: bool,
    },
    Histogram(HistogramValue),
    ExponentialHistogram(ExponentialHistogramValue),
    Summary(SummaryValue),
}

impl PointValue {
    pub fn kind(&self) -> MetricKind {
        match self {
            PointValue::Gauge { .. } => MetricKind::Gauge,
            PointValue::Sum { .. } => MetricKind::Sum,
            PointValue::Histogram(_) => MetricKind::Histogram,
            PointValue::ExponentialHistogram(_) => MetricKind::ExponentialHistogram,
            PointValue::Summary(_) => MetricKind::Summary,
        }
    }
}

/// One data point of one metric stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub name: String,
    pub description: String,
    pub unit: String,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub attributes: Attributes,
    /// OTLP data point flags (bit 0: no recorded value).
    pub flags: u32,
    pub value: PointValue,
}

impl MetricPoint {
    pub fn service_name(&self) -> &str {
        &self.resource.service_name
    }

    /// A gauge point of `service` with text attributes, for tests.
    #[cfg(test)]
    pub fn test_gauge(
        service: &str,
        name: &str,
        time_unix_nano: u64,
        attributes: &[(&str, &str)],
        value: f64,
    ) -> Self {
        use super::AttrValue;
        Self {
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
            unit: String::new(),
            start_time_unix_nano: 0,
            time_unix_nano,
            attributes: attributes
                .iter()
                .map(|(key, value)| ((*key).to_owned(), AttrValue::Str((*value).to_owned())))
                .collect(),
            flags: 0,
            value: PointValue::Gauge {
                value: NumberValue::Double(value),
            },
        }
    }
}
