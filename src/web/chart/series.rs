//! What a chart draws: named series of one value per bucket, and the unit they are in (which
//! names the axis and prints hover values).

use crate::web::format;

/// What a chart's values are, which names its axis and prints its hover values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Per second, named on the axis ("req/s", "calls/s").
    Rate(&'static str),
    Millis,
    /// Percent (values from 0 to 100).
    Percent,
    Messages,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Rate(label) => label,
            Unit::Millis => "ms",
            Unit::Percent => "%",
            Unit::Messages => "messages",
        }
    }

    pub(super) fn value_text(self, value: f64) -> String {
        match self {
            Unit::Rate(_) => format::rate_text(value),
            Unit::Millis => format::millis_text(value * 1e6),
            Unit::Percent => format::percent_text(Some(value / 100.0)),
            Unit::Messages => format::messages_text(value),
        }
    }
}

/// One named line: a value per bucket, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub(super) colour: Option<&'static str>,
}

impl Series {
    pub fn new(name: impl Into<String>, values: Vec<Option<f64>>) -> Self {
        Self {
            name: name.into(),
            values,
            colour: None,
        }
    }

    pub fn coloured(self, colour: &'static str) -> Self {
        Self {
            colour: Some(colour),
            ..self
        }
    }

    pub(super) fn value(&self, index: usize) -> Option<f64> {
        self.values
            .get(index)
            .copied()
            .flatten()
            .filter(|value| value.is_finite())
    }

    pub(super) fn peak(&self) -> Option<f64> {
        self.peak_before(self.values.len())
    }

    /// The largest value of the buckets before `end`.
    pub(super) fn peak_before(&self, end: usize) -> Option<f64> {
        (0..end.min(self.values.len()))
            .filter_map(|index| self.value(index))
            .reduce(f64::max)
    }
}
