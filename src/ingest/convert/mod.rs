//! Converts decoded OTLP requests into model spans and metric points, validating as it goes.
//!
//! Pure: no I/O, no clock (the caller passes `now`). Requests are taken by value and their
//! strings and vectors moved into the model, since this is the ingest hot path. An invalid item
//! is rejected alone (counted, with its reason summarised for OTLP `partial_success`); the rest
//! of the request is kept.

mod attributes;
#[cfg(test)]
pub(crate) mod fixtures;
mod metrics;
mod traces;

use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;

use crate::model::{IdError, Resource, Scope};

pub use metrics::convert_metrics;
pub use traces::convert_traces;

/// 2000-01-01T00:00:00Z: anything earlier is a clock that was never set, not real telemetry.
const Y2000_UNIX_NANO: u64 = 946_684_800_000_000_000;
const ONE_HOUR_NANOS: u64 = 3_600_000_000_000;
/// How many rejection reasons the summary message spells out.
const MAX_REASONS_SHOWN: usize = 3;

/// Plausibility bounds for timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertLimits {
    /// How far past the receiver's clock an end or point time may be (sender clock skew).
    pub max_future_skew_nanos: u64,
    /// Times before this are rejected as absurd.
    pub min_time_unix_nano: u64,
    /// Attributes kept per span, event, link, resource, scope and point (the rest are dropped
    /// and counted in `dropped_attributes_count`).
    pub max_attributes: usize,
    /// Longest string or bytes attribute value kept, in bytes (longer ones are cut).
    pub max_attribute_value_bytes: usize,
}

/// Default of [`ConvertLimits::max_attributes`].
pub const DEFAULT_MAX_ATTRIBUTES: usize = 128;
/// Default of [`ConvertLimits::max_attribute_value_bytes`].
pub const DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;

impl Default for ConvertLimits {
    fn default() -> Self {
        Self {
            max_future_skew_nanos: ONE_HOUR_NANOS,
            min_time_unix_nano: Y2000_UNIX_NANO,
            max_attributes: DEFAULT_MAX_ATTRIBUTES,
            max_attribute_value_bytes: DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES,
        }
    }
}

/// The outcome of converting one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted<T> {
    pub items: Vec<T>,
    /// Items rejected as invalid: OTLP `rejected_spans` / `rejected_data_points`.
    pub num_rejected: u64,
    /// A summary of the first few reasons, for OTLP `partial_success.error_message`.
    pub rejection_message: Option<String>,
    /// Accepted items whose resource had no `service.name`.
    pub num_unknown_service: u64,
    /// Attributes dropped or cut by the limits.
    pub num_limited_attributes: u64,
}

impl ConvertLimits {
    /// Applies the attribute limits; adds what it dropped to `dropped` and returns how many
    /// attributes it dropped or cut.
    pub(crate) fn limit(
        &self,
        attributes: &mut crate::model::Attributes,
        dropped: &mut u32,
    ) -> u64 {
        let (num_dropped, num_changed) = attributes::limit_attributes(
            attributes,
            self.max_attributes,
            self.max_attribute_value_bytes,
        );
        *dropped = dropped.saturating_add(num_dropped);
        num_changed
    }
}

/// Why one span, metric or data point was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum Invalid {
    #[error("{0}")]
    Id(IdError),
    #[error("parent {0}")]
    ParentId(IdError),
    #[error("{field} is 0")]
    MissingTime { field: &'static str },
    #[error("end_time_unix_nano {end} is before start_time_unix_nano {start}")]
    EndBeforeStart { start: u64, end: u64 },
    #[error("absurd timestamp: {field} {value} is before {min_time_unix_nano}")]
    TooOld {
        field: &'static str,
        value: u64,
        min_time_unix_nano: u64,
    },
    #[error(
        "absurd timestamp: {field} {value} is more than {max_skew_secs} s ahead of now ({now})"
    )]
    TooFarAhead {
        field: &'static str,
        value: u64,
        max_skew_secs: u64,
        now: u64,
    },
    #[error("metric name is empty")]
    EmptyMetricName,
    #[error("metric has no data")]
    NoMetricData,
    #[error("metric has no data points")]
    NoDataPoints,
    #[error("number data point has no value")]
    NoNumberValue,
    #[error(
        "histogram has {num_buckets} bucket counts for {num_bounds} explicit bounds; expected {expected}"
    )]
    BucketCountMismatch {
        num_buckets: usize,
        num_bounds: usize,
        expected: usize,
    },
    #[error("histogram explicit bounds must be strictly increasing numbers")]
    UnsortedBounds,
}

/// Rejects a time before `limits.min_time_unix_nano` or too far past `now_unix_nano`.
fn check_plausible_time(
    field: &'static str,
    value: u64,
    now_unix_nano: u64,
    limits: &ConvertLimits,
) -> Result<(), Invalid> {
    if value < limits.min_time_unix_nano {
        return Err(Invalid::TooOld {
            field,
            value,
            min_time_unix_nano: limits.min_time_unix_nano,
        });
    }
    if value > now_unix_nano.saturating_add(limits.max_future_skew_nanos) {
        return Err(Invalid::TooFarAhead {
            field,
            value,
            max_skew_secs: limits.max_future_skew_nanos / 1_000_000_000,
            now: now_unix_nano,
        });
    }
    Ok(())
}

/// Counts rejections and keeps the first few reasons with where they happened.
#[derive(Debug, Default)]
struct Rejections {
    num_rejected: u64,
    num_reasons: usize,
    first_reasons: Vec<String>,
}

impl Rejections {
    /// Records `num_items` rejected items (0 for a warning) for one reason at `location`.
    fn reject(&mut self, num_items: u64, location: impl fmt::Display, reason: &Invalid) {
        self.num_rejected += num_items;
        self.num_reasons += 1;
        if self.first_reasons.len() < MAX_REASONS_SHOWN {
            self.first_reasons.push(format!("{location}: {reason}"));
        }
    }

    /// "rejected 2 of 5 spans: resource 0 scope 0 span 1: …; …; and 4 more".
    fn into_message(self, num_accepted: usize, noun: &str) -> Option<String> {
        if self.num_reasons == 0 {
            return None;
        }
        let num_total = num_accepted as u64 + self.num_rejected;
        let mut message = format!(
            "rejected {} of {num_total} {noun}: {}",
            self.num_rejected,
            self.first_reasons.join("; ")
        );
        let num_unshown = self.num_reasons - self.first_reasons.len();
        if num_unshown > 0 {
            message.push_str(&format!("; and {num_unshown} more"));
        }
        Some(message)
    }
}

/// The resource, limited; adds the attributes it dropped or cut to `num_limited`.
fn convert_resource(
    resource_opt: Option<OtlpResource>,
    limits: &ConvertLimits,
    num_limited: &mut u64,
) -> Arc<Resource> {
    let resource = resource_opt.unwrap_or_default();
    let mut attributes = attributes::convert_attributes(resource.attributes);
    let mut dropped = resource.dropped_attributes_count;
    *num_limited += limits.limit(&mut attributes, &mut dropped);
    Arc::new(Resource::from_attributes(attributes, dropped))
}

fn convert_scope(
    scope_opt: Option<InstrumentationScope>,
    limits: &ConvertLimits,
    num_limited: &mut u64,
) -> Arc<Scope> {
    let scope = scope_opt.unwrap_or_default();
    let mut attributes = attributes::convert_attributes(scope.attributes);
    let mut dropped_attributes_count = scope.dropped_attributes_count;
    *num_limited += limits.limit(&mut attributes, &mut dropped_attributes_count);
    Arc::new(Scope {
        name: scope.name,
        version: scope.version,
        attributes,
        dropped_attributes_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_one_hour_and_year_2000() {
        let limits = ConvertLimits::default();
        assert_eq!(limits.max_future_skew_nanos, 3600 * 1_000_000_000);
        // 10957 days from 1970-01-01 to 2000-01-01.
        assert_eq!(limits.min_time_unix_nano, 10_957 * 86_400 * 1_000_000_000);
    }

    #[test]
    fn message_lists_three_reasons_then_counts_the_rest() {
        let mut rejections = Rejections::default();
        for index in 0..5 {
            rejections.reject(1, format_args!("span {index}"), &Invalid::NoNumberValue);
        }
        let message = rejections.into_message(7, "spans").expect("rejections");
        assert_eq!(
            message,
            "rejected 5 of 12 spans: span 0: number data point has no value; \
             span 1: number data point has no value; span 2: number data point has no value; \
             and 2 more"
        );
    }

    #[test]
    fn no_rejections_no_message() {
        assert_eq!(Rejections::default().into_message(3, "spans"), None);
    }

    #[test]
    fn missing_resource_and_scope_are_empty() {
        let resource = convert_resource(None, &ConvertLimits::default(), &mut 0);
        assert_eq!(resource.service_name, crate::model::UNKNOWN_SERVICE);
        assert!(!resource.has_service_name());
        assert_eq!(
            *convert_scope(None, &ConvertLimits::default(), &mut 0),
            Scope::default()
        );
    }
}
