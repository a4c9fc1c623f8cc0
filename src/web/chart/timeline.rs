//! States over a range as coloured bands, one row each (a breaker closed, half-open, open):
//! every band has a hover `<title>` with its state and times; the part of the range after
//! "now" is left empty behind a "now" line, and a row's time before its first known state is
//! left empty too.

use std::fmt::Write as _;

use super::axis::{self, Swatch, TimeScale, WIDE};
use crate::model::MinuteRange;
use crate::web::format;
use crate::web::map::svg::escape;

/// Room for the rows' names left of the bands.
const LEFT: f64 = 170.0;
const RIGHT: f64 = WIDE - 14.0;
const ROW_HEIGHT: f64 = 24.0;
const BAND_HEIGHT: f64 = 16.0;
/// Characters of a row's name shown before it is cut ("…").
const MAX_NAME_CHARS: usize = 24;

/// One stretch of time in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    pub from_unix_nano: u64,
    /// `None`: still in this state.
    pub to_unix_nano: Option<u64>,
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    pub name: String,
    /// Oldest first, not overlapping.
    pub bands: Vec<Band>,
}

/// Rows of bands over a range; `states` names every state and its colour, for the legend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub title: String,
    pub states: Vec<(&'static str, &'static str)>,
    pub rows: Vec<TimelineRow>,
}

impl Timeline {
    /// The timeline over `range` as inline SVG, cut at `now_unix_nano`.
    pub fn render(&self, range: MinuteRange, now_unix_nano: u64) -> String {
        let entries: Vec<(Swatch, String)> = self
            .states
            .iter()
            .map(|(state, colour)| (Swatch::Band { colour }, (*state).to_owned()))
            .collect();
        let (legend, legend_bottom) = axis::legend(&entries, WIDE);
        let top = legend_bottom + 14.0;
        let bottom = top + ROW_HEIGHT * self.rows.len().max(1) as f64;
        let scale = TimeScale {
            range,
            left: LEFT,
            right: RIGHT,
        };
        let (from, to) = range.unix_nano_bounds();
        let end = to.min(now_unix_nano.max(from));
        let mut out = axis::open("timeline", &self.title, "state", WIDE, bottom + 46.0);
        out.push_str(&legend);
        for (index, row) in self.rows.iter().enumerate() {
            let row_top = top + ROW_HEIGHT * index as f64;
            let _ = write!(
                out,
                r#"<g class="row" data-name="{}"><text class="row-name" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="row-track" x="{LEFT}" y="{:.1}" width="{:.1}" height="{BAND_HEIGHT}"/>"#,
                escape(&row.name),
                LEFT - 8.0,
                row_top + ROW_HEIGHT / 2.0 + 4.0,
                escape(&cut(&row.name)),
                row_top + (ROW_HEIGHT - BAND_HEIGHT) / 2.0,
                RIGHT - LEFT
            );
            for band in &row.bands {
                out.push_str(&self.band(&row.name, band, &scale, (from, end), row_top));
            }
            out.push_str("</g>");
        }
        if self.rows.is_empty() {
            let _ = write!(
                out,
                r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">No data in this range</text>"#,
                (LEFT + RIGHT) / 2.0,
                top + ROW_HEIGHT / 2.0 + 4.0
            );
        }
        if now_unix_nano > from && now_unix_nano < to {
            let x = scale.x(now_unix_nano);
            let _ = write!(
                out,
                r#"<line class="now" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}"/><text class="now-label" x="{x:.1}" y="{:.1}" text-anchor="end">now</text>"#,
                top - 4.0,
                top - 6.0
            );
        }
        out.push_str(&scale.axis(bottom));
        out.push_str(&axis::note(
            "Times in UTC. Empty: no state reported yet.",
            bottom + 38.0,
        ));
        out.push_str("</svg>");
        out
    }

    /// One band, cut to what is shown (`shown`: the range up to now).
    fn band(
        &self,
        name: &str,
        band: &Band,
        scale: &TimeScale,
        shown: (u64, u64),
        row_top: f64,
    ) -> String {
        let (from, end) = shown;
        let start = band.from_unix_nano.max(from);
        let stop = band.to_unix_nano.unwrap_or(end).min(end);
        if stop <= start {
            return String::new();
        }
        let colour = self
            .states
            .iter()
            .find(|(state, _)| *state == band.state)
            .map_or("#8a8f98", |(_, colour)| colour);
        let until = match band.to_unix_nano {
            Some(to) => format::clock_secs_text(to),
            None => "now".to_owned(),
        };
        let x = scale.x(start);
        format!(
            r#"<rect class="band" data-state="{}" x="{x:.1}" y="{:.1}" width="{:.1}" height="{BAND_HEIGHT}" fill="{colour}"><title>{}</title></rect>"#,
            escape(band.state),
            row_top + (ROW_HEIGHT - BAND_HEIGHT) / 2.0,
            (scale.x(stop) - x).max(1.5),
            escape(&format!(
                "{name}: {} {}–{until} UTC",
                band.state,
                format::clock_secs_text(band.from_unix_nano)
            ))
        )
    }
}

/// A row's name cut to fit beside the bands (the whole name is in the row's `data-name`).
fn cut(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_owned();
    }
    let mut cut: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UnixMinute;
    use crate::web::chart::axis::minute_nanos;

    fn timeline(rows: Vec<TimelineRow>) -> Timeline {
        Timeline {
            title: "Breaker states".to_owned(),
            states: vec![("closed", "#2e7d32"), ("open", "#c62828")],
            rows,
        }
    }

    #[test]
    fn bands_are_coloured_by_state_with_their_times_and_cut_at_now() {
        let range = MinuteRange::new(UnixMinute(100), UnixMinute(110));
        let now = minute_nanos(108);
        let chart = timeline(vec![TimelineRow {
            name: "orders · payments".to_owned(),
            bands: vec![
                Band {
                    from_unix_nano: minute_nanos(90),
                    to_unix_nano: Some(minute_nanos(103) + 5_000_000_000),
                    state: "closed",
                },
                Band {
                    from_unix_nano: minute_nanos(103) + 5_000_000_000,
                    to_unix_nano: None,
                    state: "open",
                },
            ],
        }]);
        let svg = chart.render(range, now);
        assert_eq!(svg.matches(r#"<rect class="band""#).count(), 2, "{svg}");
        assert!(svg.contains(r##"data-state="open" x=""##));
        assert!(
            svg.contains(
                r##"fill="#c62828"><title>orders · payments: open 01:43:05–now UTC</title>"##
            ),
            "{svg}"
        );
        assert!(svg.contains("orders · payments: closed 01:30:00–01:43:05 UTC"));
        // The open band ends at now (minute 108 of 100..110: 80 % along).
        let expected_end = LEFT + 0.8 * (RIGHT - LEFT);
        let open = svg.split(r#"data-state="open""#).nth(1).expect("open band");
        let x: f64 = attribute(open, "x");
        let width: f64 = attribute(open, "width");
        assert!((x + width - expected_end).abs() < 0.2, "{x} + {width}");
        assert!(svg.contains(r#"<line class="now""#));
        assert!(
            svg.contains(">closed</text>") && svg.contains(">open</text>"),
            "legend"
        );
        // Seen after the range ended there is no "now".
        assert!(
            !chart
                .render(range, minute_nanos(500))
                .contains("class=\"now\"")
        );
    }

    fn attribute(markup: &str, name: &str) -> f64 {
        let start = markup.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        markup[start..]
            .split('"')
            .next()
            .and_then(|value| value.parse().ok())
            .expect("a number")
    }

    #[test]
    fn names_are_cut_to_fit_and_escaped() {
        let range = MinuteRange::new(UnixMinute(100), UnixMinute(110));
        let hostile = "<script>alert(1)</script> with a very long breaker name";
        let svg = timeline(vec![TimelineRow {
            name: hostile.to_owned(),
            bands: vec![Band {
                from_unix_nano: minute_nanos(101),
                to_unix_nano: None,
                state: "open",
            }],
        }])
        .render(range, minute_nanos(200));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(
            svg.contains(">&lt;script&gt;alert(1)&lt;/scrip…</text>"),
            "{svg}"
        );
        assert!(
            timeline(Vec::new())
                .render(range, minute_nanos(200))
                .contains("No data in this range")
        );
    }
}
