//! What both charts share: the value axis's "nice" ticks, the time axis (UTC, ticks on whole
//! minutes), the legend laid out in rows, and the frame around a plot. Sizes are in the SVG's
//! own units: a line chart is [`WIDTH`] wide, a timeline [`WIDE`], and each scales to its
//! container (`width="100%"`; the stylesheet sets the containers' widths), so its text reads
//! at about the stylesheet's size at 1280 px and does not grow much beyond.

use std::fmt::Write as _;

use crate::model::{MinuteRange, UnixMinute};
use crate::web::format;
use crate::web::map::svg::escape;

/// The width of a line chart's view box.
pub const WIDTH: f64 = 600.0;
/// The width of a timeline's view box: it spans a page (up to 1200 px).
pub const WIDE: f64 = 1000.0;
/// Where legend rows start, below the title.
const LEGEND_TOP: f64 = 40.0;
const LEGEND_ROW: f64 = 18.0;
/// Roughly how wide a character of legend text is (12 px system font), to wrap rows.
const CHAR_WIDTH: f64 = 6.6;

/// The ticks of a value axis from zero to at least `max`: a step of 1, 2, 2.5 or 5 times a
/// power of ten giving at most `max_ticks` steps, and the ticks. `integral` keeps steps whole
/// (counts of messages). A `max` that is zero or not a number gives the axis of 0 to 1.
pub fn value_ticks(max: f64, max_ticks: usize, integral: bool) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let mut step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|multiple| multiple * magnitude)
        .find(|step| *step >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    if integral {
        step = step.max(1.0).round();
    }
    let num_steps = (max / step - 1e-9).ceil().max(1.0) as usize;
    let ticks = (0..=num_steps).map(|index| index as f64 * step).collect();
    (step, ticks)
}

/// Minutes between time ticks, the smallest that gives at most the ticks asked for.
const TIME_STEPS_MINUTES: [i64; 14] = [
    1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
];
const MINUTES_PER_DAY: i64 = 1440;

/// The minutes of `range` (its end included) to tick, on multiples of a round step in UTC,
/// each with its label: the time of day, or the day where a tick starts one on a range longer
/// than a day.
pub fn time_ticks(range: MinuteRange, max_ticks: usize) -> Vec<(UnixMinute, String)> {
    let num_minutes = range.num_minutes().max(1);
    let step = TIME_STEPS_MINUTES
        .into_iter()
        .find(|step| num_minutes / step < i64::try_from(max_ticks).unwrap_or(i64::MAX))
        .unwrap_or(TIME_STEPS_MINUTES[TIME_STEPS_MINUTES.len() - 1]);
    let first = range.from().get().div_euclid(step) * step;
    let first = if first < range.from().get() {
        first + step
    } else {
        first
    };
    (first..=range.to().get())
        .step_by(usize::try_from(step).unwrap_or(1))
        .map(|minute| {
            let at = UnixMinute(minute).start_unix_nano();
            let label = if num_minutes > MINUTES_PER_DAY && minute % MINUTES_PER_DAY == 0 {
                format::day_text(at)
            } else {
                format::clock_text(at)
            };
            (UnixMinute(minute), label)
        })
        .collect()
}

/// The horizontal scale of a plot: the nanoseconds of a range over `[left, right]`.
#[derive(Debug, Clone, Copy)]
pub struct TimeScale {
    pub range: MinuteRange,
    pub left: f64,
    pub right: f64,
}

impl TimeScale {
    /// Where `unix_nano` is (clamped to the plot).
    pub fn x(&self, unix_nano: u64) -> f64 {
        let (from, to) = self.range.unix_nano_bounds();
        let span = to.saturating_sub(from).max(1) as f64;
        let share = unix_nano.clamp(from, to).saturating_sub(from) as f64 / span;
        self.left + share * (self.right - self.left)
    }

    /// The time ticks and their labels below a plot whose baseline is at `bottom`.
    pub fn axis(&self, bottom: f64) -> String {
        let mut out = format!(
            r#"<line class="axis" x1="{:.1}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}"/>"#,
            self.left, self.right
        );
        for (minute, label) in time_ticks(self.range, 7) {
            let x = self.x(minute.start_unix_nano());
            // The outermost labels stay inside the chart.
            let anchor = if x - self.left < 16.0 {
                "start"
            } else if self.right - x < 16.0 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                out,
                r#"<line class="tick" x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick-x" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                bottom + 4.0,
                bottom + 17.0,
                escape(&label)
            );
        }
        out
    }
}

/// How a legend entry shows what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    Line { colour: &'static str, dashed: bool },
    Band { colour: &'static str },
}

/// Legend entries in rows under the title, wrapped at the chart's `width`; returns the
/// markup and where the rows end.
pub fn legend(entries: &[(Swatch, String)], width: f64) -> (String, f64) {
    let mut out = String::from(r#"<g class="legend">"#);
    let (mut x, mut y) = (4.0, LEGEND_TOP);
    for (swatch, text) in entries {
        let entry_width = 24.0 + text.chars().count() as f64 * CHAR_WIDTH + 16.0;
        if x > 4.0 && x + entry_width > width - 4.0 {
            x = 4.0;
            y += LEGEND_ROW;
        }
        let mark = match swatch {
            Swatch::Line { colour, dashed } => format!(
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2.5"{}/>"#,
                y - 4.0,
                x + 18.0,
                y - 4.0,
                if *dashed {
                    r#" stroke-dasharray="5 3""#
                } else {
                    ""
                }
            ),
            Swatch::Band { colour } => format!(
                r#"<rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="{colour}"/>"#,
                y - 9.0
            ),
        };
        let _ = write!(
            out,
            r#"<g class="entry">{mark}<text x="{:.1}" y="{y:.1}">{}</text></g>"#,
            x + 24.0,
            escape(text)
        );
        x += entry_width;
    }
    out.push_str("</g>");
    (
        out,
        if entries.is_empty() {
            LEGEND_TOP - 14.0
        } else {
            y
        },
    )
}

/// The opening of a chart's SVG of `width` by `height` with its title; `kind` names it for
/// styles and tests.
pub fn open(kind: &str, title: &str, unit: &str, width: f64, height: f64) -> String {
    let title = escape(title);
    format!(
        r#"<svg class="chart {kind}" viewBox="0 0 {width} {height:.0}" width="100%" role="img" aria-label="{title}" data-unit="{}"><text class="chart-title" x="4" y="18">{title}</text>"#,
        escape(unit)
    )
}

/// A line of small print under a plot.
pub fn note(text: &str, y: f64) -> String {
    format!(
        r#"<text class="note" x="4" y="{y:.1}">{}</text>"#,
        escape(text)
    )
}

/// "09:03–09:04 UTC", or "09:04–now UTC" for a bucket still in progress.
pub fn bucket_label(bucket: MinuteRange, now_unix_nano: u64) -> String {
    let (from, to) = bucket.unix_nano_bounds();
    let end = if to > now_unix_nano {
        "now".to_owned()
    } else {
        format::clock_text(to)
    };
    format!("{}–{end} UTC", format::clock_text(from))
}

/// Whether `bucket` is still in progress at `now_unix_nano` (it has begun, not ended).
fn in_progress(bucket: MinuteRange, now_unix_nano: u64) -> bool {
    let (from, to) = bucket.unix_nano_bounds();
    from <= now_unix_nano && now_unix_nano < to
}

/// Which of `buckets` is in progress at `now_unix_nano`, if one is.
pub fn index_in_progress(buckets: &[MinuteRange], now_unix_nano: u64) -> Option<usize> {
    buckets
        .iter()
        .position(|bucket| in_progress(*bucket, now_unix_nano))
}

/// A minute's start, for tests.
#[cfg(test)]
pub fn minute_nanos(minute: i64) -> u64 {
    UnixMinute(minute).start_unix_nano()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round_and_cover_the_maximum() {
        assert_eq!(
            value_ticks(9.3, 5, false),
            (2.0, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
        );
        assert_eq!(
            value_ticks(1.0, 4, false),
            (0.25, vec![0.0, 0.25, 0.5, 0.75, 1.0])
        );
        assert_eq!(
            value_ticks(0.0, 4, false).1,
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(value_ticks(f64::NAN, 4, false).1.last(), Some(&1.0));
        let (step, ticks) = value_ticks(1234.0, 4, false);
        assert_eq!(step, 500.0);
        assert_eq!(ticks.last(), Some(&1500.0));
        // Counts keep whole steps.
        assert_eq!(value_ticks(2.0, 4, true), (1.0, vec![0.0, 1.0, 2.0]));
        assert_eq!(value_ticks(2.0, 4, false).0, 0.5);
    }

    #[test]
    fn time_ticks_fall_on_round_utc_minutes() {
        // 2026-12-05 09:02 to 09:17 (minute 29_941_025 is 09:05).
        let nine_five = 1_796_461_500 / 60;
        let range = MinuteRange::new(UnixMinute(nine_five - 3), UnixMinute(nine_five + 12));
        let labels: Vec<String> = time_ticks(range, 7)
            .into_iter()
            .map(|(_, label)| label)
            .collect();
        assert_eq!(labels, ["09:05", "09:10", "09:15"]);
        let five = MinuteRange::new(UnixMinute(nine_five), UnixMinute(nine_five + 5));
        assert_eq!(time_ticks(five, 7).len(), 6, "every minute, both ends");
        // Over two days, midnight shows the day.
        let days = MinuteRange::new(UnixMinute(nine_five), UnixMinute(nine_five + 2 * 1440));
        let labels: Vec<String> = time_ticks(days, 7).into_iter().map(|(_, l)| l).collect();
        assert!(labels.contains(&"Dec 6".to_owned()), "{labels:?}");
        assert!(labels.len() <= 7, "{labels:?}");
    }

    #[test]
    fn the_scale_places_times_and_labels_buckets() {
        let range = MinuteRange::new(UnixMinute(10), UnixMinute(20));
        let scale = TimeScale {
            range,
            left: 50.0,
            right: 150.0,
        };
        assert_eq!(scale.x(minute_nanos(10)), 50.0);
        assert_eq!(scale.x(minute_nanos(15)), 100.0);
        assert_eq!(scale.x(minute_nanos(99)), 150.0, "clamped");
        let bucket = MinuteRange::new(UnixMinute(19), UnixMinute(20));
        assert_eq!(bucket_label(bucket, minute_nanos(30)), "00:19–00:20 UTC");
        assert_eq!(bucket_label(bucket, minute_nanos(19) + 5), "00:19–now UTC");
        assert!(in_progress(bucket, minute_nanos(19) + 5));
        assert!(!in_progress(bucket, minute_nanos(20)));
        assert!(!in_progress(bucket, minute_nanos(18)), "not begun");
    }

    #[test]
    fn legend_rows_wrap_and_names_are_escaped() {
        let entries: Vec<(Swatch, String)> = (0..8)
            .map(|index| {
                (
                    Swatch::Line {
                        colour: "#000",
                        dashed: false,
                    },
                    format!("<series {index}> with a longish name"),
                )
            })
            .collect();
        let (markup, bottom) = legend(&entries, WIDTH);
        assert!(bottom > LEGEND_TOP + LEGEND_ROW, "wrapped: {bottom}");
        assert!(markup.contains("&lt;series 3&gt;"));
        assert!(!markup.contains("<series"));
    }
}
