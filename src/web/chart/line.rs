//! A time-series line chart over the buckets of a range: one value per bucket and series
//! (`None` where the bucket has none: the line breaks there), drawn at the bucket's middle.
//! The bucket still in progress is shaded, its segment dashed and its point hollow; an
//! overlay (the same buckets an earlier day) is grey and dashed under the series. Each bucket
//! has an invisible hover target whose `<title>` gives every series' value then.

use std::fmt::Write as _;

use super::axis::{self, Swatch};
use super::plot::{LEFT, PLOT_HEIGHT, Plot, RIGHT};
pub use super::series::{Series, Unit};
use crate::query::SeriesBuckets;
use crate::web::format;
use crate::web::map::svg::escape;

/// Distinct colours, taken in order by series without one of their own.
const PALETTE: [&str; 8] = [
    "#2457c5", "#e8710a", "#7b3fc4", "#00897b", "#c2185b", "#6d4c41", "#5c6bc0", "#9e9d24",
];
/// The colour of errors in every chart.
pub const ERRORS_COLOUR: &str = "#c62828";
const OVERLAY_COLOUR: &str = "#8a8f98";

/// A chart of series over a range's buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub unit: Unit,
    pub series: Vec<Series>,
    /// The same buckets of an earlier period, grey and dashed, named in the legend.
    pub overlay: Option<Series>,
    /// Said under the chart, after the times' zone.
    pub note: Option<String>,
    /// Moments marked across the plot (deploys): when, a short label, a hover title.
    pub markers: Vec<Marker>,
}

/// A moment marked on a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub unix_nano: u64,
    pub label: String,
    pub title: String,
}

impl LineChart {
    pub fn new(title: impl Into<String>, unit: Unit) -> Self {
        Self {
            title: title.into(),
            unit,
            series: Vec::new(),
            overlay: None,
            note: None,
            markers: Vec::new(),
        }
    }

    /// The chart over `buckets` as inline SVG; buckets that have not begun by `now_unix_nano`
    /// are left empty.
    pub fn render(&self, buckets: &SeriesBuckets, now_unix_nano: u64) -> String {
        let colours: Vec<&'static str> = self
            .series
            .iter()
            .enumerate()
            .map(|(index, series)| series.colour.unwrap_or(PALETTE[index % PALETTE.len()]))
            .collect();
        let in_progress = axis::index_in_progress(&buckets.ranges(), now_unix_nano);
        let (legend, legend_bottom) =
            axis::legend(&self.legend(&colours, in_progress), axis::WIDTH);
        let peak = self
            .series
            .iter()
            .chain(&self.overlay)
            .filter_map(Series::peak)
            .fold(0.0, f64::max);
        let plot = Plot::new(
            buckets,
            now_unix_nano,
            legend_bottom + 30.0,
            peak,
            self.unit,
        );
        let mut out = axis::open(
            "line",
            &self.title,
            self.unit.label(),
            axis::WIDTH,
            plot.bottom + 46.0,
        );
        out.push_str(&legend);
        out.push_str(&plot.frame(self.unit));
        if let Some(overlay) = &self.overlay {
            let _ = write!(
                out,
                r#"<g class="overlay" data-name="{}" stroke="{OVERLAY_COLOUR}" stroke-dasharray="5 4" fill="none">{}</g>"#,
                escape(&overlay.name),
                plot.lines(overlay, false)
            );
        }
        for (series, colour) in self.series.iter().zip(&colours) {
            let _ = write!(
                out,
                r#"<g class="series" data-name="{}" stroke="{colour}" fill="{colour}">{}{}</g>"#,
                escape(&series.name),
                plot.lines(series, true),
                plot.points(series)
            );
        }
        if self
            .series
            .iter()
            .chain(&self.overlay)
            .all(|series| series.peak().is_none())
        {
            let _ = write!(
                out,
                r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">No data in this range</text>"#,
                (LEFT + RIGHT) / 2.0,
                plot.top + PLOT_HEIGHT / 2.0
            );
        }
        for marker in &self.markers {
            out.push_str(&plot.marker(marker.unix_nano, &marker.label, &marker.title));
        }
        for (index, bucket) in plot.begun_buckets() {
            let label = axis::bucket_label(bucket, now_unix_nano);
            out.push_str(&plot.hover_target(bucket, &self.hover_text(index, label)));
        }
        out.push_str(&axis::note(&self.note_text(&plot), plot.bottom + 38.0));
        out.push_str("</svg>");
        out
    }

    /// Each series with its peak over the finished buckets (the one in progress may rest on
    /// a few seconds), when above zero, then the overlay.
    fn legend(
        &self,
        colours: &[&'static str],
        in_progress: Option<usize>,
    ) -> Vec<(Swatch, String)> {
        let finished = in_progress.unwrap_or(usize::MAX);
        let mut entries: Vec<(Swatch, String)> = self
            .series
            .iter()
            .zip(colours)
            .map(|(series, colour)| {
                let peak = series.peak_before(finished).filter(|peak| *peak > 0.0);
                let text = match peak {
                    Some(peak) => format!("{} · peak {}", series.name, self.unit.value_text(peak)),
                    None => series.name.clone(),
                };
                let swatch = Swatch::Line {
                    colour,
                    dashed: false,
                };
                (swatch, text)
            })
            .collect();
        if let Some(overlay) = &self.overlay {
            let swatch = Swatch::Line {
                colour: OVERLAY_COLOUR,
                dashed: true,
            };
            entries.push((swatch, overlay.name.clone()));
        }
        entries
    }

    /// "09:03–09:04 UTC · p50 3.1 ms · p95 23.1 ms · …", "–" where a series has no value.
    fn hover_text(&self, index: usize, label: String) -> String {
        let mut text = label;
        for series in self.series.iter().chain(&self.overlay) {
            let value = series.value(index).map_or_else(
                || format::NONE.to_owned(),
                |value| self.unit.value_text(value),
            );
            let _ = write!(text, " · {} {value}", series.name);
        }
        text
    }

    fn note_text(&self, plot: &Plot) -> String {
        let mut text = "Times in UTC.".to_owned();
        if let Some(index) = plot.in_progress {
            let label = axis::bucket_label(plot.buckets[index], plot.now_unix_nano);
            let so_far = match self.unit {
                Unit::Rate(_) => "per second so far",
                _ => "so far",
            };
            let _ = write!(
                text,
                " Shaded: {}, still in progress ({so_far}).",
                label.trim_end_matches(" UTC")
            );
        }
        if let Some(note) = &self.note {
            let _ = write!(text, " {note}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MinuteRange, UnixMinute};
    use crate::web::chart::axis::minute_nanos;

    /// Five one-minute buckets from minute 100; "now" 30 s into the last one.
    fn five_minutes() -> (SeriesBuckets, u64) {
        let range = MinuteRange::new(UnixMinute(100), UnixMinute(105));
        (
            SeriesBuckets::new(range, 60),
            minute_nanos(104) + 30_000_000_000,
        )
    }

    fn count(markup: &str, needle: &str) -> usize {
        markup.matches(needle).count()
    }

    #[test]
    fn a_chart_has_time_and_value_ticks_its_unit_and_hover_values() {
        let (buckets, now) = five_minutes();
        let mut chart = LineChart::new("Latency", Unit::Millis);
        chart.series = vec![
            Series::new(
                "p50",
                vec![Some(2.0), Some(3.0), Some(2.5), Some(2.0), Some(2.2)],
            ),
            Series::new(
                "p95",
                vec![Some(20.0), Some(23.1), Some(19.0), Some(21.0), Some(22.0)],
            ),
        ];
        let svg = chart.render(&buckets, now);
        assert!(
            svg.starts_with(r#"<svg class="chart line" viewBox="0 0 600 "#),
            "{svg}"
        );
        assert!(svg.contains(r#"width="100%""#));
        assert!(svg.contains(r#"data-unit="ms""#));
        assert!(svg.contains(r#"<text class="unit" x="4""#) && svg.contains(">ms</text>"));
        assert_eq!(count(&svg, r#"class="tick-x""#), 6, "01:40 to 01:45");
        assert!(
            svg.contains(">01:40</text>") && svg.contains(">01:45</text>"),
            "{svg}"
        );
        // 0, 10, 20, 30 ms.
        assert_eq!(count(&svg, r#"class="tick-y""#), 4, "{svg}");
        assert!(svg.contains(">30</text>"), "{svg}");
        assert_eq!(count(&svg, r#"<rect class="hover""#), 5);
        assert!(
            svg.contains("<title>01:41–01:42 UTC · p50 3.0 ms · p95 23.1 ms</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("p95 · peak 23.1 ms"),
            "the legend gives the peak: {svg}"
        );
        assert_ne!(
            PALETTE[0], PALETTE[1],
            "series without a colour of their own differ"
        );
        assert!(svg.contains(&format!(r#"stroke="{}""#, PALETTE[1])));
    }

    #[test]
    fn the_bucket_in_progress_is_marked_and_its_segment_dashed() {
        let (buckets, now) = five_minutes();
        let mut chart = LineChart::new("Requests", Unit::Rate("req/s"));
        chart.series = vec![Series::new("requests", vec![Some(4.0); 5])];
        let svg = chart.render(&buckets, now);
        assert_eq!(count(&svg, r#"<rect class="partial""#), 1, "{svg}");
        assert!(svg.contains(">in progress</text>"));
        assert_eq!(count(&svg, r#"class="line in-progress""#), 1);
        assert_eq!(count(&svg, r#"class="point in-progress""#), 1);
        assert!(svg.contains("01:44–now UTC · requests 4.0/s"), "{svg}");
        assert!(svg.contains("Shaded: 01:44–now, still in progress (per second so far)."));
        // A few seconds into a bucket are no peak.
        chart.series = vec![Series::new(
            "requests",
            vec![Some(4.0), Some(5.0), Some(4.0), Some(4.0), Some(9.0)],
        )];
        let svg = chart.render(&buckets, now);
        assert!(svg.contains(">requests · peak 5.0/s</text>"), "{svg}");
        assert!(
            svg.contains(">10.0</text>"),
            "the axis still covers it: {svg}"
        );
        // The same range seen after it ended has no bucket in progress.
        let svg = chart.render(&buckets, minute_nanos(200));
        assert!(
            !svg.contains("partial") && !svg.contains("in-progress"),
            "{svg}"
        );
        // Buckets that have not begun get neither a point nor a hover target.
        let svg = chart.render(&buckets, minute_nanos(102) + 1);
        assert_eq!(count(&svg, r#"<rect class="hover""#), 3);
        assert_eq!(count(&svg, "<circle"), 3);
    }

    #[test]
    fn a_bucket_without_a_value_breaks_the_line() {
        let (buckets, now) = five_minutes();
        let mut chart = LineChart::new("Latency", Unit::Millis);
        chart.series = vec![Series::new(
            "p95",
            vec![Some(5.0), Some(6.0), None, Some(7.0), None],
        )];
        let svg = chart.render(&buckets, now);
        let path = svg
            .split(r#"<path class="line" fill="none" stroke-width="2" d=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a path");
        assert_eq!(count(path, "M"), 2, "two runs: {path}");
        assert_eq!(count(path, "L"), 1, "{path}");
        assert_eq!(count(&svg, "<circle"), 3, "the lone value still shows");
        assert!(svg.contains("01:42–01:43 UTC · p95 –"), "{svg}");
        assert!(
            !svg.contains("in-progress"),
            "no value in the bucket in progress"
        );
        // Nothing at all: the chart says so.
        chart.series = vec![Series::new("p95", vec![None; 5])];
        assert!(
            chart
                .render(&buckets, now)
                .contains("No data in this range")
        );
    }

    #[test]
    fn many_buckets_get_points_only_where_the_line_cannot_show_a_value() {
        let range = MinuteRange::new(UnixMinute(0), UnixMinute(60));
        let buckets = SeriesBuckets::new(range, 60);
        let mut values = vec![Some(1.0); 60];
        values[10] = None;
        values[12] = None;
        let mut chart = LineChart::new("Requests", Unit::Rate("req/s"));
        chart.series = vec![Series::new("requests", values)];
        let svg = chart.render(&buckets, minute_nanos(59) + 1);
        assert_eq!(
            count(&svg, "<circle"),
            2,
            "the lone bucket 11 and the one in progress: {svg}"
        );
        assert_eq!(count(&svg, r#"class="point in-progress""#), 1);
        // Nothing before the bucket in progress: no peak to claim.
        chart.series = vec![Series::new(
            "requests",
            [vec![Some(0.0); 59], vec![Some(3.0)]].concat(),
        )];
        let svg = chart.render(&buckets, minute_nanos(59) + 1);
        assert!(svg.contains(">requests</text>"), "{svg}");
    }

    #[test]
    fn names_are_escaped_everywhere() {
        let (buckets, now) = five_minutes();
        let hostile = "<img src=x onerror=alert(1)> \"q\"";
        let mut chart = LineChart::new(hostile, Unit::Rate("req/s"));
        chart.series = vec![Series::new(hostile, vec![Some(1.0); 5])];
        chart.overlay = Some(Series::new(hostile, vec![Some(1.0); 5]));
        chart.note = Some(hostile.to_owned());
        let svg = chart.render(&buckets, now);
        assert!(!svg.contains("<img"), "{svg}");
        assert!(!svg.contains("\"q\""), "{svg}");
        assert!(svg.contains("&lt;img src=x onerror=alert(1)&gt; &quot;q&quot;"));
    }

    #[test]
    fn an_overlay_is_drawn_grey_dashed_and_named_only_when_given() {
        let (buckets, now) = five_minutes();
        let mut chart = LineChart::new("Requests", Unit::Rate("req/s"));
        chart.series = vec![Series::new("requests", vec![Some(4.0); 5])];
        let without = chart.render(&buckets, now);
        assert!(!without.contains(r#"class="overlay""#));
        assert!(!without.contains("earlier"));
        chart.overlay = Some(Series::new(
            "requests 1 day earlier",
            vec![Some(8.0), Some(8.0), None, Some(8.0), Some(8.0)],
        ));
        let with = chart.render(&buckets, now);
        assert_eq!(
            count(
                &with,
                r#"<g class="overlay" data-name="requests 1 day earlier" stroke="#
            ),
            1
        );
        assert!(
            with.contains(&format!(
                r#"stroke="{OVERLAY_COLOUR}" stroke-width="2.5" stroke-dasharray"#
            )),
            "{with}"
        );
        assert!(
            with.contains(">requests 1 day earlier</text>"),
            "in the legend"
        );
        assert!(
            with.contains("· requests 1 day earlier 8.0/s</title>"),
            "{with}"
        );
        // The axis covers the overlay too: 0 to 8.
        assert!(with.contains(">8</text>"), "{with}");
    }

    #[test]
    fn message_counts_keep_whole_ticks() {
        let (buckets, now) = five_minutes();
        let mut chart = LineChart::new("Lag", Unit::Messages);
        chart.series = vec![Series::new(
            "billing",
            vec![Some(1.0), Some(2.0), None, None, None],
        )];
        let svg = chart.render(&buckets, now);
        assert!(svg.contains(">messages</text>"));
        assert!(!svg.contains(">0.5</text>"), "{svg}");
        assert!(svg.contains("billing 2</title>"), "{svg}");
    }
}
