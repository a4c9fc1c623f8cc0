//! Binary encoding of metric point values of every type (the `value` column of point
//! partitions), with the same primitives and exactness rules as [`super::codec`].

use crate::model::{
    AggregationTemporality, ExponentialBuckets, ExponentialHistogramValue, HistogramValue,
    NumberValue, PointValue, QuantileValue, SummaryValue,
};
use crate::store::StoreError;

use super::codec::{Decoder, corrupt, put_f64, put_i64, put_varint};

const TAG_GAUGE: u8 = 1;
const TAG_SUM: u8 = 2;
const TAG_HISTOGRAM: u8 = 3;
const TAG_EXPONENTIAL_HISTOGRAM: u8 = 4;
const TAG_SUMMARY: u8 = 5;

pub(crate) fn encode_point_value(buf: &mut Vec<u8>, value: &PointValue) {
    match value {
        PointValue::Gauge { value } => {
            buf.push(TAG_GAUGE);
            put_number(buf, *value);
        }
        PointValue::Sum {
            value,
            temporality,
            is_monotonic,
        } => {
            buf.push(TAG_SUM);
            put_number(buf, *value);
            buf.push(temporality_code(*temporality));
            buf.push(u8::from(*is_monotonic));
        }
        PointValue::Histogram(histogram) => {
            buf.push(TAG_HISTOGRAM);
            put_histogram(buf, histogram);
        }
        PointValue::ExponentialHistogram(histogram) => {
            buf.push(TAG_EXPONENTIAL_HISTOGRAM);
            put_exponential_histogram(buf, histogram);
        }
        PointValue::Summary(summary) => {
            buf.push(TAG_SUMMARY);
            put_varint(buf, summary.count);
            put_f64(buf, summary.sum);
            put_varint(buf, summary.quantile_values.len() as u64);
            for quantile in &summary.quantile_values {
                put_f64(buf, quantile.quantile);
                put_f64(buf, quantile.value);
            }
        }
    }
}

pub(crate) fn decode_point_value(blob: &[u8]) -> Result<PointValue, StoreError> {
    let mut decoder = Decoder::new(blob);
    let value = match decoder.u8()? {
        TAG_GAUGE => PointValue::Gauge {
            value: decoder.number()?,
        },
        TAG_SUM => PointValue::Sum {
            value: decoder.number()?,
            temporality: decoder.temporality()?,
            is_monotonic: decoder.bool()?,
        },
        TAG_HISTOGRAM => PointValue::Histogram(decoder.histogram()?),
        TAG_EXPONENTIAL_HISTOGRAM => {
            PointValue::ExponentialHistogram(decoder.exponential_histogram()?)
        }
        TAG_SUMMARY => PointValue::Summary(decoder.summary()?),
        _ => return Err(corrupt("unknown point type")),
    };
    if !decoder.is_empty() {
        return Err(corrupt("trailing bytes after point value"));
    }
    Ok(value)
}

fn put_number(buf: &mut Vec<u8>, value: NumberValue) {
    match value {
        NumberValue::Int(number) => {
            buf.push(0);
            put_i64(buf, number);
        }
        NumberValue::Double(number) => {
            buf.push(1);
            put_f64(buf, number);
        }
    }
}

fn put_opt_f64(buf: &mut Vec<u8>, value: Option<f64>) {
    match value {
        None => buf.push(0),
        Some(number) => {
            buf.push(1);
            put_f64(buf, number);
        }
    }
}

fn put_counts(buf: &mut Vec<u8>, counts: &[u64]) {
    put_varint(buf, counts.len() as u64);
    for count in counts {
        put_varint(buf, *count);
    }
}

fn temporality_code(temporality: AggregationTemporality) -> u8 {
    match temporality {
        AggregationTemporality::Unspecified => 0,
        AggregationTemporality::Delta => 1,
        AggregationTemporality::Cumulative => 2,
    }
}

fn put_histogram(buf: &mut Vec<u8>, histogram: &HistogramValue) {
    put_varint(buf, histogram.count);
    put_opt_f64(buf, histogram.sum);
    put_opt_f64(buf, histogram.min);
    put_opt_f64(buf, histogram.max);
    put_counts(buf, &histogram.bucket_counts);
    put_varint(buf, histogram.explicit_bounds.len() as u64);
    for bound in &histogram.explicit_bounds {
        put_f64(buf, *bound);
    }
    buf.push(temporality_code(histogram.temporality));
}

fn put_exponential_histogram(buf: &mut Vec<u8>, histogram: &ExponentialHistogramValue) {
    put_varint(buf, histogram.count);
    put_opt_f64(buf, histogram.sum);
    put_opt_f64(buf, histogram.min);
    put_opt_f64(buf, histogram.max);
    put_i64(buf, i64::from(histogram.scale));
    put_varint(buf, histogram.zero_count);
    put_f64(buf, histogram.zero_threshold);
    for buckets in [&histogram.positive, &histogram.negative] {
        put_i64(buf, i64::from(buckets.offset));
        put_counts(buf, &buckets.bucket_counts);
    }
    buf.push(temporality_code(histogram.temporality));
}

impl Decoder<'_> {
    fn bool(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("bad bool")),
        }
    }

    fn number(&mut self) -> Result<NumberValue, StoreError> {
        match self.u8()? {
            0 => Ok(NumberValue::Int(self.i64()?)),
            1 => Ok(NumberValue::Double(self.f64()?)),
            _ => Err(corrupt("bad number tag")),
        }
    }

    fn opt_f64(&mut self) -> Result<Option<f64>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.f64().map(Some),
            _ => Err(corrupt("bad option tag")),
        }
    }

    fn counts(&mut self) -> Result<Vec<u64>, StoreError> {
        let num_counts = self.count()?;
        (0..num_counts).map(|_| self.varint()).collect()
    }

    fn temporality(&mut self) -> Result<AggregationTemporality, StoreError> {
        match self.u8()? {
            0 => Ok(AggregationTemporality::Unspecified),
            1 => Ok(AggregationTemporality::Delta),
            2 => Ok(AggregationTemporality::Cumulative),
            _ => Err(corrupt("bad temporality")),
        }
    }

    fn histogram(&mut self) -> Result<HistogramValue, StoreError> {
        let count = self.varint()?;
        let sum = self.opt_f64()?;
        let min = self.opt_f64()?;
        let max = self.opt_f64()?;
        let bucket_counts = self.counts()?;
        let num_bounds = self.count()?;
        let explicit_bounds = (0..num_bounds)
            .map(|_| self.f64())
            .collect::<Result<_, _>>()?;
        Ok(HistogramValue {
            count,
            sum,
            min,
            max,
            bucket_counts,
            explicit_bounds,
            temporality: self.temporality()?,
        })
    }

    fn exponential_histogram(&mut self) -> Result<ExponentialHistogramValue, StoreError> {
        Ok(ExponentialHistogramValue {
            count: self.varint()?,
            sum: self.opt_f64()?,
            min: self.opt_f64()?,
            max: self.opt_f64()?,
            scale: self.i32()?,
            zero_count: self.varint()?,
            zero_threshold: self.f64()?,
            positive: self.exponential_buckets()?,
            negative: self.exponential_buckets()?,
            temporality: self.temporality()?,
        })
    }

    fn exponential_buckets(&mut self) -> Result<ExponentialBuckets, StoreError> {
        Ok(ExponentialBuckets {
            offset: self.i32()?,
            bucket_counts: self.counts()?,
        })
    }

    fn summary(&mut self) -> Result<SummaryValue, StoreError> {
        let count = self.varint()?;
        let sum = self.f64()?;
        let num_quantiles = self.count()?;
        let quantile_values = (0..num_quantiles)
            .map(|_| {
                Ok(QuantileValue {
                    quantile: self.f64()?,
                    value: self.f64()?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(SummaryValue {
            count,
            sum,
            quantile_values,
        })
    }
}
