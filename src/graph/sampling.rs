//! How many calls one sampled span stands for. OpenTelemetry's consistent probability
//! sampling writes the sampler's rejection threshold `T` in the span's `tracestate`, in the
//! `ot` member's `th` sub-key: 1 to 14 hex digits of a 56-bit number, trailing zeros left out
//! (`ot=th:c` is `T = 0xc0000000000000`, 75 % rejected). A span kept with threshold `T` stands
//! for `2^56 / (2^56 − T)` spans (its adjusted count): `th:c` counts 4, `th:0` counts 1.
//!
//! A `tracestate` without a threshold means the span was not sampled by probability (weight
//! 1); one whose threshold cannot be read is [`Weight::Malformed`] and counts 1 as well, so a
//! bad header never inflates a count.
//!
//! Samplers that write no threshold can be described by configuration ([`SamplingRules`]): an
//! attribute carrying the multiplier (Tempo's `span_multiplier_key`), or a fixed multiplier per
//! service. The map counts whole calls: a span's adjusted count is rounded to a neighbouring
//! integer by a draw from its trace id ([`whole_count`]), unbiased over many traces, and the
//! same for every span of one trace.

use std::collections::BTreeMap;

use crate::model::{AttrValue, Span, TraceId, attr_get, split_mix};

/// `2^56`: thresholds are below it, and no span stands for more spans than this.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
/// The most hex digits a threshold has.
const MAX_THRESHOLD_DIGITS: usize = 14;

/// What a span's `tracestate` says about its sampling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weight {
    /// No `ot` member or no `th` in it: not sampled by probability.
    Unsampled,
    /// Sampled with this rejection threshold (below [`MAX_ADJUSTED_COUNT`]).
    Threshold(u64),
    /// An `ot` member whose threshold cannot be read.
    Malformed,
}

impl Weight {
    /// The weight in `tracestate` (a W3C `tracestate` header value).
    pub fn of(tracestate: &str) -> Self {
        let mut ot_values = tracestate
            .split(',')
            .map(str::trim)
            .filter_map(|member| member.strip_prefix("ot="));
        let Some(ot) = ot_values.next() else {
            return Self::Unsampled;
        };
        if ot_values.next().is_some() {
            // A key appears once in a valid tracestate.
            return Self::Malformed;
        }
        let mut thresholds = ot.split(';').filter_map(|pair| pair.strip_prefix("th:"));
        match (thresholds.next(), thresholds.next()) {
            (None, _) => Self::Unsampled,
            (Some(digits), None) => threshold(digits).map_or(Self::Malformed, Self::Threshold),
            (Some(_), Some(_)) => Self::Malformed,
        }
    }

    /// How many spans this one stands for: `2^56 / (2^56 − T)`, 1 when unsampled or malformed.
    pub fn adjusted_count(self) -> f64 {
        match self {
            Self::Threshold(threshold) => {
                MAX_ADJUSTED_COUNT as f64 / (MAX_ADJUSTED_COUNT - threshold) as f64
            }
            Self::Unsampled | Self::Malformed => 1.0,
        }
    }
}

/// How the map weighs spans that carry no threshold: checked at config load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingRules {
    /// A span (else resource) attribute whose number is the span's adjusted count.
    pub multiplier_key: Option<String>,
    /// A fixed adjusted count for every span of a service (head sampling at a known rate).
    pub service_multipliers: BTreeMap<String, f64>,
}

/// What one span stands for on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanWeight {
    /// Calls (or operations) this span counts for: 1 unless sampled.
    pub count: u64,
    /// Its `tracestate` named a threshold that could not be read (then weighed by the rules).
    pub is_malformed: bool,
}

impl SpanWeight {
    pub const ONE: SpanWeight = SpanWeight {
        count: 1,
        is_malformed: false,
    };
}

impl SamplingRules {
    /// Whether any rule applies besides `tracestate` thresholds.
    pub fn is_empty(&self) -> bool {
        self.multiplier_key.is_none() && self.service_multipliers.is_empty()
    }

    /// The weight of `span` of `service`: its `tracestate` threshold, else the multiplier
    /// attribute, else the service's multiplier, else 1.
    pub fn weigh(&self, span: &Span, service: &str) -> SpanWeight {
        let weight = if span.trace_state.is_empty() {
            Weight::Unsampled
        } else {
            Weight::of(&span.trace_state)
        };
        let adjusted = match weight {
            Weight::Threshold(_) => weight.adjusted_count(),
            Weight::Unsampled | Weight::Malformed => self.configured(span, service).unwrap_or(1.0),
        };
        SpanWeight {
            count: whole_count(adjusted, span.trace_id),
            is_malformed: weight == Weight::Malformed,
        }
    }

    fn configured(&self, span: &Span, service: &str) -> Option<f64> {
        let from_attribute = self.multiplier_key.as_deref().and_then(|key| {
            attr_get(&span.attributes, key)
                .or_else(|| attr_get(&span.resource.attributes, key))
                .and_then(multiplier)
        });
        from_attribute.or_else(|| self.service_multipliers.get(service).copied())
    }
}

/// A multiplier attribute's value: a number from 1 to 2^56 (anything else is ignored).
fn multiplier(value: &AttrValue) -> Option<f64> {
    let number = match value {
        AttrValue::Int(number) => *number as f64,
        AttrValue::Double(number) => *number,
        AttrValue::Str(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    is_multiplier(number).then_some(number)
}

/// Whether `number` can be an adjusted count: finite, at least 1, at most 2^56.
pub fn is_multiplier(number: f64) -> bool {
    number.is_finite() && (1.0..=MAX_ADJUSTED_COUNT as f64).contains(&number)
}

/// `adjusted` (≥ 1) as a whole count: its integer part, plus one with the probability of its
/// fraction, drawn from a hash of the trace id (not its random bits, which a consistent
/// sampler has already conditioned on). Unbiased over traces; equal for a trace's spans.
pub fn whole_count(adjusted: f64, trace_id: TraceId) -> u64 {
    let floor = adjusted.floor();
    let fraction = adjusted - floor;
    let base = floor as u64;
    if fraction <= 0.0 {
        return base.max(1);
    }
    (base + u64::from(uniform(trace_id) < fraction)).max(1)
}

/// A number in `[0, 1)` from the trace id, by SplitMix64 over its two halves.
fn uniform(trace_id: TraceId) -> f64 {
    let bytes = trace_id.as_bytes();
    let (high, low) = bytes.split_at(8);
    let high = u64::from_le_bytes(high.try_into().expect("8 bytes"));
    let low = u64::from_le_bytes(low.try_into().expect("8 bytes"));
    let mixed = split_mix(high ^ split_mix(low));
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

/// The threshold `digits` (1 to 14 hex digits, the rest implied zeros) encode.
fn threshold(digits: &str) -> Option<u64> {
    let valid = (1..=MAX_THRESHOLD_DIGITS).contains(&digits.len())
        && digits.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !valid {
        return None;
    }
    let value = u64::from_str_radix(digits, 16).ok()?;
    Some(value << (4 * (MAX_THRESHOLD_DIGITS - digits.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(tracestate: &str) -> f64 {
        Weight::of(tracestate).adjusted_count()
    }

    #[test]
    fn thresholds_read_with_their_implied_trailing_zeros() {
        assert_eq!(
            Weight::of("ot=th:c"),
            Weight::Threshold(0xc0_0000_0000_0000)
        );
        assert_eq!(
            Weight::of("ot=th:8"),
            Weight::Threshold(0x80_0000_0000_0000)
        );
        assert_eq!(
            Weight::of("ot=th:08"),
            Weight::Threshold(0x08_0000_0000_0000)
        );
        assert_eq!(
            Weight::of("ot=th:ffffffffffffff"),
            Weight::Threshold(MAX_ADJUSTED_COUNT - 1)
        );
        assert_eq!(count("ot=th:c"), 4.0);
        assert_eq!(count("ot=th:8"), 2.0);
        assert_eq!(count("ot=th:C"), 4.0, "hex digits in either case");
        assert_eq!(count("ot=th:ffffffffffffff"), MAX_ADJUSTED_COUNT as f64);
    }

    #[test]
    fn zero_threshold_and_no_threshold_weigh_one() {
        for tracestate in [
            "ot=th:0",
            "ot=th:00000000000000",
            "",
            "vendor=x",
            "ot=rv:abcdef",
        ] {
            assert_eq!(count(tracestate), 1.0, "{tracestate:?}");
        }
        assert_eq!(Weight::of("ot=th:0"), Weight::Threshold(0));
        assert_eq!(Weight::of("ot=rv:abcdef"), Weight::Unsampled);
        assert_eq!(Weight::of("rojo=00f067aa0ba902b7"), Weight::Unsampled);
    }

    #[test]
    fn rounded_thresholds_give_the_probability_they_round() {
        // 1/3 kept: T = 2/3 of 2^56, written with 4 digits (rounded) or all 14.
        assert!((count("ot=th:aaab") - 3.0).abs() < 1e-3);
        assert!((count("ot=th:aaaaaaaaaaaaab") - 3.0).abs() < 1e-12);
        // 10 % kept: T = 0.9 · 2^56 = 0xe6666666666666 (rounded to 0xe666... or 0xe67).
        assert!((count("ot=th:e66666666666") - 10.0).abs() < 1e-9);
        assert!((count("ot=th:e67") - 10.0).abs() < 0.02);
    }

    #[test]
    fn the_ot_member_is_found_among_others_and_its_other_keys() {
        assert_eq!(count("rojo=00f067aa0ba902b7,ot=th:c;rv:1234"), 4.0);
        assert_eq!(count("ot=rv:1234;th:c, congo=t61rcWkgMzE"), 4.0);
        assert_eq!(count("congo=t61rcWkgMzE , ot=p:8;th:8"), 2.0);
    }

    fn span_with(tracestate: &str, attributes: Vec<(String, AttrValue)>) -> Span {
        let mut span =
            crate::graph::fixtures::span("orders", crate::model::SpanKind::Server, 7, 1).build();
        span.trace_state = tracestate.to_owned();
        span.attributes = attributes;
        span
    }

    #[test]
    fn whole_counts_are_unbiased_over_traces_and_equal_within_one() {
        assert_eq!(
            whole_count(1.0, TraceId::from_bytes(&[9; 16]).expect("id")),
            1
        );
        assert_eq!(
            whole_count(4.0, TraceId::from_bytes(&[9; 16]).expect("id")),
            4
        );
        let ids: Vec<TraceId> = (1u64..20_001)
            .map(|n| {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&n.to_be_bytes());
                TraceId::from_bytes(&bytes).expect("id")
            })
            .collect();
        for adjusted in [1.5, 3.000_01, 10.25] {
            let total: u64 = ids.iter().map(|id| whole_count(adjusted, *id)).sum();
            let expected = adjusted * ids.len() as f64;
            assert!(
                (total as f64 - expected).abs() / expected < 0.01,
                "{adjusted}: {total} vs {expected}"
            );
            for id in &ids[..50] {
                let count = whole_count(adjusted, *id);
                assert!(count == adjusted.floor() as u64 || count == adjusted.ceil() as u64);
                assert_eq!(count, whole_count(adjusted, *id), "the same for a trace");
            }
        }
    }

    #[test]
    fn rules_weigh_by_threshold_then_attribute_then_service() {
        let rules = SamplingRules {
            multiplier_key: Some("sampling.multiplier".to_owned()),
            service_multipliers: [("orders".to_owned(), 10.0)].into(),
        };
        let attribute = |value: AttrValue| vec![("sampling.multiplier".to_owned(), value)];
        let weigh = |span: &Span| rules.weigh(span, "orders").count;
        assert_eq!(
            weigh(&span_with("ot=th:c", attribute(AttrValue::Int(2)))),
            4
        );
        assert_eq!(weigh(&span_with("", attribute(AttrValue::Int(2)))), 2);
        assert_eq!(weigh(&span_with("", attribute(AttrValue::Double(8.0)))), 8);
        assert_eq!(
            weigh(&span_with("", attribute(AttrValue::Str("5".into())))),
            5
        );
        // Not a multiplier: the service's.
        for bad in [
            AttrValue::Int(0),
            AttrValue::Int(-3),
            AttrValue::Double(f64::NAN),
            AttrValue::Str("lots".into()),
            AttrValue::Bool(true),
        ] {
            assert_eq!(weigh(&span_with("", attribute(bad))), 10);
        }
        assert_eq!(weigh(&span_with("", Vec::new())), 10);
        assert_eq!(rules.weigh(&span_with("", Vec::new()), "billing").count, 1);
        // A malformed threshold is counted and falls back to the rules.
        let malformed = rules.weigh(&span_with("ot=th:zz", Vec::new()), "billing");
        assert_eq!(
            malformed,
            SpanWeight {
                count: 1,
                is_malformed: true
            }
        );
        let defaults = SamplingRules::default();
        assert_eq!(
            defaults.weigh(&span_with("ot=th:8", Vec::new()), "x").count,
            2
        );
        assert!(defaults.is_empty() && !rules.is_empty());
    }

    #[test]
    fn unreadable_thresholds_are_malformed_and_weigh_one() {
        for tracestate in [
            "ot=th:",
            "ot=th:fffffffffffffff",
            "ot=th:g",
            "ot=th:-1",
            "ot=th:+c",
            "ot=th: c",
            "ot=th:c;th:8",
            "ot=th:c,ot=th:8",
            "ot=th:0x8",
            "ot=th:c\u{0}",
        ] {
            assert_eq!(Weight::of(tracestate), Weight::Malformed, "{tracestate:?}");
            assert_eq!(count(tracestate), 1.0, "{tracestate:?}");
        }
    }
}
