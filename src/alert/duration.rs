//! Durations as people write them in alerting configs: `250ms`, `30s`, `5m`, `4h`, `1d`, or a
//! sum such as `1h30m` (Prometheus and Alertmanager spell them the same way).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A [`Duration`] read from and written as `30s`, `5m`, `1h30m`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
];

impl Span {
    pub const fn secs(secs: u64) -> Self {
        Span(Duration::from_secs(secs))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("`{text}` is not a duration (use e.g. 30s, 5m, 1h30m, 250ms)");
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(invalid());
        }
        if rest == "0" {
            return Ok(Span(Duration::ZERO));
        }
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            let (_, millis) = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .ok_or_else(invalid)?;
            total_ms = number
                .checked_mul(*millis)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(invalid)?;
            rest = &rest[unit_len..];
        }
        Ok(Span(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for Span {
    /// The shortest exact spelling: `90s` → `1m30s`, `0` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return f.write_str("0s");
        }
        for (name, size) in UNITS.iter().rev().filter(|(name, _)| *name != "w") {
            if millis >= *size {
                write!(f, "{}{name}", millis / size)?;
                millis %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_alerting_durations() {
        for (text, millis, printed) in [
            ("30s", 30_000, "30s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("250ms", 250, "250ms"),
            ("90s", 90_000, "90s"),
            ("0", 0, "0s"),
            ("1d", 86_400_000, "1d"),
        ] {
            let span = Span::parse(text).expect(text);
            assert_eq!(span.0, Duration::from_millis(millis), "{text}");
            if text != "90s" {
                assert_eq!(span.to_string(), printed, "{text}");
            }
        }
        assert_eq!(Span::parse("90s").expect("90s").to_string(), "1m30s");
        for bad in ["", "5", "m", "5x", "-5s", "5 m", "99999999999999999999d"] {
            let err = Span::parse(bad).expect_err(bad);
            assert!(err.contains("not a duration"), "{bad}: {err}");
        }
    }
}
