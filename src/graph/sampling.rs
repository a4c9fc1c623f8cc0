//! How many calls one sampled span stands for. OpenTelemetry's consistent probability
//! sampling writes the sampler's rejection threshold `T` in the span's `tracestate`, in the
//! `ot` member's `th` sub-key: 1 to 14 hex digits of a 56-bit number, trailing zeros left out
//! (`ot=th:c` is `T = 0xc0000000000000`, 75 % rejected). A span kept with threshold `T` stands
//! for `2^56 / (2^56 − T)` spans (its adjusted count): `th:c` counts 4, `th:0` counts 1.
//!
//! A `tracestate` without a threshold means the span was not sampled by probability (weight
//! 1); one whose threshold cannot be read is [`Weight::Malformed`] and counts 1 as well, so a
//! bad header never inflates a count.

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
