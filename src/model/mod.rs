//! Domain types free of wire and storage formats: ids, attributes, spans and metric points.
//!
//! Ingest converts OTLP into these; the store and the graph engine read only these.

mod attr;
pub mod figures;
pub mod graph;
mod ids;
mod metric;
mod minute;
pub mod sketch;
mod span;

pub use attr::{AttrValue, Attributes, attr_get};
pub use ids::{IdError, SpanId, TraceId};
pub use metric::{
    AggregationTemporality, ExponentialBuckets, ExponentialHistogramValue, HistogramValue,
    MetricKind, MetricPoint, NumberValue, PointValue, QuantileValue, SummaryValue,
};
pub use minute::{MinuteRange, NANOS_PER_MINUTE, UnixMinute};
pub use sketch::{
    LatencySketch, MAX_BUCKET_INDEX, RELATIVE_ACCURACY, SketchError, SketchSum, bucket_index,
    bucket_value_nanos,
};
pub use span::{Event, Link, Resource, Scope, Span, SpanKind, StatusCode, UNKNOWN_SERVICE};

/// Everything one export request contributed, after validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub spans: Vec<Span>,
    pub metric_points: Vec<MetricPoint>,
}

impl Batch {
    /// Items count against the pipeline's capacity: one per span and one per metric point.
    pub fn num_items(&self) -> usize {
        self.spans.len() + self.metric_points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.num_items() == 0
    }
}

/// Wall-clock time as nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// SplitMix64: a well-spread, deterministic mix of a number, for seeded test data, generated
/// load and the demo's randomness (no dependency, same output everywhere).
pub fn split_mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// A Unix time in nanoseconds as RFC 3339 (UTC, nanoseconds kept), or `None` out of range.
pub fn rfc3339(unix_nano: u64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nano))
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time; `None` when it is not one or lies
/// before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let time =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp_nanos()).ok()
}
