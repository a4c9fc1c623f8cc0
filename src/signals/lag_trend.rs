//! Whether a lag series grows, drains or holds *now*, at what rate, and when it will have
//! drained. Pure and clock-free: the caller passes the total lag at each sample time of the
//! trend window; windows are counted back from the newest sample.
//!
//! Two estimates sit side by side. The *current leg* is the last minute of samples since the
//! lag last turned (or settled): it follows a burst and the drain after it within a sample.
//! The *window fit* is a Theil–Sen slope over the whole trend window: a burst or a spike moves
//! it little, and it sees a drain too slow to show within a minute. The current leg decides
//! whenever it moved by more than the noise; the window fit decides only when its rate is too
//! slow to have shown in the current leg. A 5-minute least-squares fit alone reads a jump after
//! a flat stretch as "stable" and the drain after a burst as "growing".

use serde::Serialize;

/// How far back from the newest sample the current leg may reach.
const RECENT_WINDOW_SECS: f64 = 60.0;
/// A change over the trend window below this share of the lag (or the noise) is stable.
const STABLE_SHARE: f64 = 0.05;
/// The noise band is this many times the median distance of a sample from the line through
/// its neighbours: about five standard deviations of Gaussian noise, so that noise alone
/// seldom (well under 1 % of evaluations) passes for a move.
const NOISE_BAND_FACTOR: f64 = 6.0;
/// Fewer distances say too little about the noise (a single turn would pass for it).
const MIN_NOISE_DISTANCES: usize = 5;
/// The narrowest noise band: lag counts whole messages.
const MIN_NOISE_BAND: f64 = 1.0;
/// Points a caller passes at most (thin them evenly): the window fit is quadratic in them.
pub const MAX_TREND_POINTS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Growing,
    /// Nothing waiting counts as stable too.
    Stable,
    Draining,
    /// Fewer than two samples in the trend window.
    Unknown,
}

/// What a lag series says about now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagTrend {
    pub trend: Trend,
    /// Messages per second of the estimate that decided the trend.
    pub rate_per_s: Option<f64>,
    /// Lag over the drain rate, only while draining.
    pub time_to_drain_secs: Option<f64>,
}

impl LagTrend {
    const UNKNOWN: Self = Self {
        trend: Trend::Unknown,
        rate_per_s: None,
        time_to_drain_secs: None,
    };
}

/// The trend of `points`, `(seconds, total lag)` with strictly increasing times, the newest
/// being the lag now; at most [`MAX_TREND_POINTS`].
pub fn lag_trend(points: &[(f64, f64)]) -> LagTrend {
    debug_assert!(points.len() <= MAX_TREND_POINTS);
    let [(first_secs, _), .., (newest_secs, lag)] = *points else {
        return LagTrend::UNKNOWN;
    };
    let noise = noise_band(points);
    let window_secs = newest_secs - first_secs;
    // Nothing waiting does not drain any more, whatever the last minute's slope was.
    let rate_per_s = if lag > 0.0 {
        deciding_rate(points, noise)
    } else {
        0.0
    };
    let trend = classify(rate_per_s * window_secs, lag, noise);
    let time_to_drain_secs =
        (trend == Trend::Draining && rate_per_s < 0.0).then(|| lag / -rate_per_s);
    LagTrend {
        trend,
        rate_per_s: Some(rate_per_s),
        time_to_drain_secs,
    }
}

/// The rate of the current leg when it moved beyond the noise; else the window fit's when that
/// is too slow to have shown in the leg; else the leg's (level now, whatever the window saw).
fn deciding_rate(points: &[(f64, f64)], noise: f64) -> f64 {
    let levels = levels(recent(points));
    let leg = current_leg(&levels, noise);
    let leg_secs = leg[leg.len() - 1].0 - leg[0].0;
    let leg_rate = least_squares_slope(leg);
    if (leg_rate * leg_secs).abs() > noise {
        return leg_rate;
    }
    let window_rate = theil_sen_slope(points);
    if (window_rate * leg_secs).abs() <= noise {
        window_rate
    } else {
        leg_rate
    }
}

/// Growing or draining when `change` over the window exceeds [`STABLE_SHARE`] of the lag and
/// the noise; nothing waiting is stable, whatever the window saw before.
fn classify(change: f64, lag: f64, noise: f64) -> Trend {
    if lag <= 0.0 {
        return Trend::Stable;
    }
    let threshold = (lag * STABLE_SHARE).max(noise);
    if change > threshold {
        Trend::Growing
    } else if change < -threshold {
        Trend::Draining
    } else {
        Trend::Stable
    }
}

/// How far the lag strays between samples without really changing: [`NOISE_BAND_FACTOR`] times
/// the median distance of a sample from the straight line through its two neighbours. That
/// distance is zero for a steady climb or drain at any spacing, and a burst or a spike touches
/// too few samples to move the median. The narrowest band until there are enough samples.
fn noise_band(points: &[(f64, f64)]) -> f64 {
    let mut distances: Vec<f64> = points
        .windows(3)
        .map(|triple| {
            let [(t0, lag0), (t1, lag1), (t2, lag2)] = [triple[0], triple[1], triple[2]];
            let on_line = lag0 + (lag2 - lag0) * (t1 - t0) / (t2 - t0);
            (lag1 - on_line).abs()
        })
        .collect();
    if distances.len() < MIN_NOISE_DISTANCES {
        return MIN_NOISE_BAND;
    }
    median(&mut distances).map_or(MIN_NOISE_BAND, |distance| {
        (distance * NOISE_BAND_FACTOR).max(MIN_NOISE_BAND)
    })
}

/// The samples of the last [`RECENT_WINDOW_SECS`] before the newest, and at least the last two
/// (samples may be minutes apart).
fn recent(points: &[(f64, f64)]) -> &[(f64, f64)] {
    debug_assert!(points.len() >= 2);
    let since_secs = points[points.len() - 1].0 - RECENT_WINDOW_SECS;
    let start = points.partition_point(|&(secs, _)| secs < since_secs);
    &points[start.min(points.len() - 2)..]
}

/// The samples that say something new: a lag refreshed less often than it is reported (the
/// consumer commits every few seconds, the exporter reads every second) is a staircase whose
/// repeated values only restate the last step. The first sample of each level is kept, and the
/// newest too once the lag has stayed level longer than twice its usual step: it has settled.
fn levels(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut firsts: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    for &point in points {
        if firsts.last().is_none_or(|&(_, lag)| lag != point.1) {
            firsts.push(point);
        }
    }
    let newest = points[points.len() - 1];
    let last_change_secs = firsts[firsts.len() - 1].0;
    // Steps between two changes (the first level's start is only where the window begins);
    // with fewer than two, a repeated value is all there is to go by.
    let mut steps: Vec<f64> = firsts
        .windows(2)
        .skip(1)
        .map(|pair| pair[1].0 - pair[0].0)
        .collect();
    let usual_step_secs = if steps.len() >= 2 {
        median(&mut steps).unwrap_or(0.0)
    } else {
        0.0
    };
    if newest.0 - last_change_secs > 2.0 * usual_step_secs {
        firsts.push(newest);
    }
    firsts
}

/// The samples that describe the lag now: the trailing ones within `noise` of the newest when
/// there are two or more (the lag has settled, e.g. back to its level after a spike), else the
/// run since the lag last turned.
fn current_leg(recent: &[(f64, f64)], noise: f64) -> &[(f64, f64)] {
    let newest = recent[recent.len() - 1].1;
    let num_settled = recent
        .iter()
        .rev()
        .take_while(|&&(_, lag)| (lag - newest).abs() <= noise)
        .count();
    if num_settled >= 2 {
        return &recent[recent.len() - num_settled..];
    }
    &recent[run_start(recent, noise)..]
}

/// Where the run that ends at the newest sample began. Walking back, the lag moves away from
/// the newest value (turning back by no more than `noise`); the run starts at the latest sample
/// within `noise` of its far end, so a flat stretch before a jump does not dilute the jump.
fn run_start(recent: &[(f64, f64)], noise: f64) -> usize {
    let newest_index = recent.len() - 1;
    // Walking back, a rising run falls; a falling run is mirrored to read the same way.
    let is_rising = recent[newest_index - 1].1 < recent[newest_index].1;
    let oriented = |index: usize| {
        let lag = recent[index].1;
        if is_rising { lag } else { -lag }
    };
    let mut far_end = oriented(newest_index);
    let mut first_index = newest_index;
    for index in (0..newest_index).rev() {
        if oriented(index) > far_end + noise {
            break;
        }
        far_end = far_end.min(oriented(index));
        first_index = index;
    }
    (first_index..newest_index)
        .rev()
        .find(|&index| oriented(index) <= far_end + noise)
        .unwrap_or(first_index)
}

/// Least-squares slope in messages per second; 0 without two distinct times.
fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let count = points.len() as f64;
    let mean_secs = points.iter().map(|(secs, _)| secs).sum::<f64>() / count;
    let mean_lag = points.iter().map(|(_, lag)| lag).sum::<f64>() / count;
    let covariance: f64 = points
        .iter()
        .map(|(secs, lag)| (secs - mean_secs) * (lag - mean_lag))
        .sum();
    let variance: f64 = points
        .iter()
        .map(|(secs, _)| (secs - mean_secs).powi(2))
        .sum();
    if variance > 0.0 {
        covariance / variance
    } else {
        0.0
    }
}

/// Theil–Sen slope: the median of the slopes between every pair of samples, which a burst or
/// a single spike moves little (unlike a least-squares fit). Quadratic in the points.
fn theil_sen_slope(points: &[(f64, f64)]) -> f64 {
    let mut slopes: Vec<f64> = points
        .iter()
        .enumerate()
        .flat_map(|(index, &(secs0, lag0))| {
            points[index + 1..]
                .iter()
                .map(move |&(secs1, lag1)| (lag1 - lag0) / (secs1 - secs0))
        })
        .collect();
    median(&mut slopes).unwrap_or(0.0)
}

/// The middle value (the upper one of an even count); `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let middle = values.len() / 2;
    let (_, median, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    Some(*median)
}
