//! The plot of a [`LineChart`](super::LineChart): where each bucket and value goes, the grid
//! with its value ticks and unit, the bucket in progress shaded, the lines (broken at gaps,
//! dashed into the bucket in progress), the points and the hover targets.

use std::fmt::Write as _;

use super::axis::{self, TimeScale, WIDTH};
use super::series::{Series, Unit};
use crate::model::MinuteRange;
use crate::query::SeriesBuckets;
use crate::web::format;
use crate::web::map::svg::escape;

pub(super) const LEFT: f64 = 56.0;
pub(super) const RIGHT: f64 = WIDTH - 14.0;
pub(super) const PLOT_HEIGHT: f64 = 150.0;
const MAX_VALUE_TICKS: usize = 4;
/// More buckets than this, and points are drawn only where the line cannot show a value.
const MAX_BUCKETS_WITH_POINTS: usize = 30;

/// Where things go in one chart's plot.
pub(super) struct Plot {
    pub(super) buckets: Vec<MinuteRange>,
    pub(super) now_unix_nano: u64,
    scale: TimeScale,
    pub(super) top: f64,
    pub(super) bottom: f64,
    step: f64,
    ticks: Vec<f64>,
    /// The x of each bucket's middle.
    centres: Vec<f64>,
    pub(super) in_progress: Option<usize>,
}

impl Plot {
    pub(super) fn new(
        buckets: &SeriesBuckets,
        now_unix_nano: u64,
        top: f64,
        peak: f64,
        unit: Unit,
    ) -> Self {
        let scale = TimeScale {
            range: buckets.range(),
            left: LEFT,
            right: RIGHT,
        };
        let (step, ticks) = axis::value_ticks(peak, MAX_VALUE_TICKS, unit == Unit::Messages);
        let ranges = buckets.ranges();
        let centres = ranges
            .iter()
            .map(|bucket| {
                let (from, to) = bucket.unix_nano_bounds();
                scale.x(from / 2 + to / 2)
            })
            .collect();
        Self {
            in_progress: axis::index_in_progress(&ranges, now_unix_nano),
            buckets: ranges,
            now_unix_nano,
            scale,
            top,
            bottom: top + PLOT_HEIGHT,
            step,
            ticks,
            centres,
        }
    }

    /// A vertical marker at `unix_nano` (a deploy) with its short `label` above the plot and
    /// its `title` on hover; nothing outside the range.
    pub(super) fn marker(&self, unix_nano: u64, label: &str, title: &str) -> String {
        let (from, to) = self.scale.range.unix_nano_bounds();
        if !(from..to).contains(&unix_nano) {
            return String::new();
        }
        let x = self.scale.x(unix_nano);
        format!(
            r#"<g class="marker deploy-marker"><title>{title}</title><line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}"/><text x="{text_x:.1}" y="{text_y:.1}" text-anchor="{anchor}">{label}</text></g>"#,
            title = escape(title),
            label = escape(label),
            top = self.top - 6.0,
            bottom = self.bottom,
            text_x = x + if x > RIGHT - 80.0 { -3.0 } else { 3.0 },
            text_y = self.top - 8.0,
            anchor = if x > RIGHT - 80.0 { "end" } else { "start" },
        )
    }

    pub(super) fn y(&self, value: f64) -> f64 {
        let y_max = self.ticks.last().copied().unwrap_or(1.0);
        self.bottom - (value / y_max).clamp(0.0, 1.0) * PLOT_HEIGHT
    }

    pub(super) fn has_begun(&self, index: usize) -> bool {
        self.buckets
            .get(index)
            .is_some_and(|bucket| bucket.unix_nano_bounds().0 <= self.now_unix_nano)
    }

    pub(super) fn begun_buckets(&self) -> impl Iterator<Item = (usize, MinuteRange)> + '_ {
        (0..self.buckets.len())
            .filter(|index| self.has_begun(*index))
            .map(|index| (index, self.buckets[index]))
    }

    /// The unit, the value grid with its ticks, the bucket in progress shaded, the time axis.
    pub(super) fn frame(&self, unit: Unit) -> String {
        let mut out = format!(
            r#"<text class="unit" x="4" y="{:.1}">{}</text>"#,
            self.top - 12.0,
            escape(unit.label())
        );
        for tick in &self.ticks {
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" y1="{0:.1}" x2="{RIGHT}" y2="{0:.1}"/><text class="tick-y" x="{1:.1}" y="{2:.1}" text-anchor="end">{3}</text>"#,
                self.y(*tick),
                LEFT - 6.0,
                self.y(*tick) + 4.0,
                escape(&format::tick_text(*tick, self.step))
            );
        }
        if let Some(index) = self.in_progress {
            let x = self.scale.x(self.buckets[index].unix_nano_bounds().0);
            let _ = write!(
                out,
                r#"<rect class="partial" x="{x:.1}" y="{:.1}" width="{:.1}" height="{PLOT_HEIGHT}"/><text class="partial-label" x="{RIGHT}" y="{:.1}" text-anchor="end">in progress</text>"#,
                self.top,
                (RIGHT - x).max(1.0),
                self.top - 12.0
            );
        }
        out.push_str(&self.scale.axis(self.bottom));
        out
    }

    /// A bucket's invisible hover target with its values.
    pub(super) fn hover_target(&self, bucket: MinuteRange, text: &str) -> String {
        let (from, to) = bucket.unix_nano_bounds();
        let x = self.scale.x(from);
        format!(
            r#"<rect class="hover" x="{x:.1}" y="{:.1}" width="{:.1}" height="{PLOT_HEIGHT}"><title>{}</title></rect>"#,
            self.top,
            (self.scale.x(to) - x).max(1.0),
            escape(text)
        )
    }

    /// The paths of a series: solid through the finished buckets (broken where one has no
    /// value), and, when `marks_progress`, dashed into the bucket in progress (an overlay's
    /// buckets are all finished).
    pub(super) fn lines(&self, series: &Series, marks_progress: bool) -> String {
        let in_progress = self.in_progress.filter(|_| marks_progress);
        let finished = in_progress.unwrap_or(self.centres.len());
        let mut path = String::new();
        let mut is_drawing = false;
        for (index, x) in self.centres.iter().enumerate().take(finished) {
            match series.value(index).filter(|_| self.has_begun(index)) {
                Some(value) => {
                    let command = if is_drawing { 'L' } else { 'M' };
                    let _ = write!(path, "{command}{x:.1},{:.1} ", self.y(value));
                    is_drawing = true;
                }
                None => is_drawing = false,
            }
        }
        let mut out = String::new();
        if !path.is_empty() {
            let _ = write!(
                out,
                r#"<path class="line" fill="none" stroke-width="2" d="{}"/>"#,
                path.trim_end()
            );
        }
        let partial = in_progress.and_then(|index| {
            let previous = index.checked_sub(1)?;
            Some((
                (self.centres[previous], series.value(previous)?),
                (self.centres[index], series.value(index)?),
            ))
        });
        if let Some(((x1, v1), (x2, v2))) = partial {
            let _ = write!(
                out,
                r#"<path class="line in-progress" fill="none" stroke-width="2" stroke-dasharray="4 3" opacity="0.6" d="M{x1:.1},{:.1} L{x2:.1},{:.1}"/>"#,
                self.y(v1),
                self.y(v2)
            );
        }
        out
    }

    /// A point on each bucket with a value when there are few buckets, else only where the
    /// line cannot show it (between two gaps); hollow in the bucket in progress.
    pub(super) fn points(&self, series: &Series) -> String {
        let is_dense = self.buckets.len() > MAX_BUCKETS_WITH_POINTS;
        let is_alone = |index: usize| {
            index
                .checked_sub(1)
                .and_then(|before| series.value(before))
                .is_none()
                && series.value(index + 1).is_none()
        };
        let mut out = String::new();
        for (index, _) in self.begun_buckets() {
            let is_shown = !is_dense || is_alone(index) || Some(index) == self.in_progress;
            if let Some(value) = series.value(index).filter(|_| is_shown) {
                let class = if Some(index) == self.in_progress {
                    "point in-progress"
                } else {
                    "point"
                };
                let _ = write!(
                    out,
                    r#"<circle class="{class}" cx="{:.1}" cy="{:.1}" r="2.6"/>"#,
                    self.centres[index],
                    self.y(value)
                );
            }
        }
        out
    }
}
