//! Whether a figure of an edge or a service (rate, error rate, p95) departs from its baseline.
//! Pure and clock-free: the query layer reads the windows, this module only judges them.
//!
//! The baseline of a window `[from, to)` of length `L` is what was stored around the same
//! time of day a day before and a week before: for each of the two references, the window
//! `[from, to)` moved back by it and its [`NEIGHBOURS`] neighbours on each side (`L` apart),
//! so five samples per reference ([`history_range`]). Per reference, the samples with enough
//! calls give a median and a median absolute deviation (MAD, robust to one odd sample: a
//! spike yesterday does not move the baseline). A value departs from a reference by
//!
//! `score = (now − median) / max(1.4826 × MAD, RELATIVE_FLOOR × median, sampling noise, absolute floor)`
//!
//! and is an anomaly when it departs from **every** reference with samples by [`MIN_SCORE`] or
//! more, in the same direction (the milder departure is reported). So a daily pattern (the
//! same shape yesterday and last week) is usual, a Monday morning that only yesterday's Sunday
//! lacks is usual as long as last Monday had it, and a level shift is an anomaly until a day of
//! it is history. Limits are in docs/anomalies.md.

use serde::Serialize;

use crate::model::{MinuteRange, UnixMinute};

pub const DAY_MINUTES: i64 = 24 * 60;
pub const WEEK_MINUTES: i64 = 7 * DAY_MINUTES;
/// Windows on each side of the same one a day (a week) before that are samples too: the
/// neighbourhood makes the spread honest where the daily curve is steep.
pub const NEIGHBOURS: i64 = 2;
/// Samples a reference needs (of its five) to be a baseline.
pub const MIN_SAMPLES: usize = 3;
/// Calls a window needs: for its error rate or p95 to be a sample (or judged), and, in the
/// window or its baseline, for its rate to be judged.
pub const MIN_CALLS: u64 = 20;
/// Robust standard deviations a value must be from every baseline.
pub const MIN_SCORE: f64 = 4.0;
/// The least spread assumed, as a share of the baseline: with [`MIN_SCORE`], a value within
/// ×0.5–×1.5 of a flat baseline is never an anomaly.
pub const RELATIVE_FLOOR: f64 = 0.125;
/// Error rates closer than this (2 percentage points per [`MIN_SCORE`]) are not told apart.
pub const ERROR_RATE_FLOOR: f64 = 0.02;
/// P95s closer than this (ms per [`MIN_SCORE`]) are not told apart.
pub const P95_FLOOR_MS: f64 = 2.0;
/// The MAD of normally distributed samples times this estimates their standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

/// A figure judged against its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Calls per second.
    Rate,
    /// Failed over attempted calls (0–1).
    ErrorRate,
    /// The 95th percentile latency in milliseconds.
    P95Ms,
}

impl Figure {
    pub const ALL: [Figure; 3] = [Figure::Rate, Figure::ErrorRate, Figure::P95Ms];

    pub fn name(self) -> &'static str {
        match self {
            Figure::Rate => "rate",
            Figure::ErrorRate => "error_rate",
            Figure::P95Ms => "p95_ms",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|figure| figure.name() == name)
    }

    fn absolute_floor(self) -> f64 {
        match self {
            Figure::Rate => 0.0,
            Figure::ErrorRate => ERROR_RATE_FLOOR,
            Figure::P95Ms => P95_FLOOR_MS,
        }
    }
}

/// Where a baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    DayBefore,
    WeekBefore,
}

impl Reference {
    pub const ALL: [Reference; 2] = [Reference::DayBefore, Reference::WeekBefore];

    pub fn minutes_earlier(self) -> i64 {
        match self {
            Reference::DayBefore => DAY_MINUTES,
            Reference::WeekBefore => WEEK_MINUTES,
        }
    }

    /// As the map's badge says it.
    pub fn words(self) -> &'static str {
        match self {
            Reference::DayBefore => "yesterday",
            Reference::WeekBefore => "last week",
        }
    }
}

/// The minutes whose windows are `now`'s samples for `reference`: `now` moved back by it,
/// widened by [`NEIGHBOURS`] windows of `now`'s length on each side; split into windows of that
/// length, oldest first.
pub fn history_range(now: MinuteRange, reference: Reference) -> MinuteRange {
    let widen = NEIGHBOURS * now.num_minutes();
    let back = reference.minutes_earlier();
    MinuteRange::new(
        UnixMinute(now.from().get() - back - widen),
        UnixMinute(now.to().get() - back + widen),
    )
}

/// One window's figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// `None` when the figure is undefined (no calls: no error rate, no p95).
    pub value: Option<f64>,
    /// The calls behind it: all calls for a rate, attempted ones for an error rate, timed ones
    /// for a p95.
    pub calls: u64,
    /// The seconds the window covers.
    pub secs: f64,
}

/// A window's baseline samples per reference, `None` for a window with nothing stored at all
/// (no history then — not the same as no calls).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub day_before: Vec<Option<Sample>>,
    pub week_before: Vec<Option<Sample>>,
}

impl History {
    fn of(&self, reference: Reference) -> &[Option<Sample>] {
        match reference {
            Reference::DayBefore => &self.day_before,
            Reference::WeekBefore => &self.week_before,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// A value beside one reference's baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Departure {
    pub now: f64,
    /// The reference's median.
    pub baseline: f64,
    /// Robust standard deviations from it, signed.
    pub score: f64,
    pub reference: Reference,
}

impl Departure {
    pub fn direction(&self) -> Direction {
        if self.score < 0.0 {
            Direction::Down
        } else {
            Direction::Up
        }
    }

    /// `now / baseline`; `None` when the baseline is 0.
    pub fn ratio(&self) -> Option<f64> {
        (self.baseline != 0.0).then(|| self.now / self.baseline)
    }
}

/// What [`judge`] says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Neither reference has [`MIN_SAMPLES`] samples: too little history to tell.
    NoBaseline,
    /// Too few calls now (or, for a rate, now and before) to tell.
    TooFewCalls,
    /// Within the baseline of at least one reference (the milder departure).
    Usual(Departure),
    Anomaly(Departure),
}

/// A reference's samples of `figure`, summarised.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    mad: f64,
    median_calls: f64,
}

/// Whether `now` departs from its baseline in `history`.
pub fn judge(figure: Figure, now: &Sample, history: &History) -> Verdict {
    let spreads: Vec<(Reference, Spread)> = Reference::ALL
        .into_iter()
        .filter_map(|reference| Some((reference, spread(figure, history.of(reference))?)))
        .collect();
    if spreads.is_empty() {
        return Verdict::NoBaseline;
    }
    let calls = match figure {
        // A rate that fell to nothing is judged on the calls it had.
        Figure::Rate => spreads
            .iter()
            .map(|(_, spread)| spread.median_calls)
            .fold(now.calls as f64, f64::max),
        Figure::ErrorRate | Figure::P95Ms => now.calls as f64,
    };
    let Some(value) = now.value.filter(|_| calls >= MIN_CALLS as f64) else {
        return Verdict::TooFewCalls;
    };
    let departures: Vec<Departure> = spreads
        .iter()
        .map(|(reference, spread)| Departure {
            now: value,
            baseline: spread.median,
            score: (value - spread.median) / scale(figure, spread, now),
            reference: *reference,
        })
        .collect();
    let Some(mildest) = departures
        .iter()
        .min_by(|a, b| a.score.abs().total_cmp(&b.score.abs()))
        .copied()
    else {
        return Verdict::NoBaseline;
    };
    let agree = departures
        .iter()
        .all(|departure| departure.direction() == mildest.direction());
    if agree && mildest.score.abs() >= MIN_SCORE {
        Verdict::Anomaly(mildest)
    } else {
        Verdict::Usual(mildest)
    }
}

/// Median, MAD and median calls of the samples that count; `None` below [`MIN_SAMPLES`].
fn spread(figure: Figure, samples: &[Option<Sample>]) -> Option<Spread> {
    let counted: Vec<&Sample> = samples
        .iter()
        .flatten()
        .filter(|sample| figure == Figure::Rate || sample.calls >= MIN_CALLS)
        .collect();
    let values: Vec<f64> = counted.iter().filter_map(|sample| sample.value).collect();
    if values.len() < MIN_SAMPLES {
        return None;
    }
    let median_value = median(values.clone());
    let deviations = values.iter().map(|value| (value - median_value).abs());
    Some(Spread {
        median: median_value,
        mad: median(deviations.collect()),
        median_calls: median(counted.iter().map(|sample| sample.calls as f64).collect()),
    })
}

/// The spread a departure is measured in: the baseline's own (MAD), but never less than a
/// share of the baseline, the sampling noise of `now`, or the figure's absolute floor.
fn scale(figure: Figure, spread: &Spread, now: &Sample) -> f64 {
    let noise = match figure {
        // Poisson: the calls the baseline expects in `now`'s seconds vary by their root.
        Figure::Rate => (spread.median * now.secs).max(1.0).sqrt() / now.secs.max(1.0),
        // Binomial, with at least one failure's share assumed (a 0 % baseline is no certainty).
        Figure::ErrorRate => {
            let calls = now.calls.max(1) as f64;
            let share = spread.median.max(1.0 / calls).min(0.5);
            (share * (1.0 - share) / calls).sqrt()
        }
        // The sketch's 0.5 % relative error is far below the relative floor.
        Figure::P95Ms => 0.0,
    };
    (MAD_TO_SIGMA * spread.mad)
        .max(RELATIVE_FLOOR * spread.median.abs())
        .max(noise)
        .max(figure.absolute_floor())
        .max(f64::MIN_POSITIVE)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => 0.0,
        len if len % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

#[cfg(test)]
#[path = "anomaly_tests.rs"]
mod tests;
