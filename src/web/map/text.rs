//! The map's words: escaping, cut names, and lines whose figures are marked (a `tspan
//! data-figure` per figure, printed by `web::format`), measured before they are drawn so the
//! layout can make room for them.

use std::fmt::Write as _;

use crate::model::figures::NodeTraffic;
use crate::model::graph::{EdgeStats, NodeKey};
use crate::signals::Trend;
use crate::web::format::{
    EdgeFigures, Figure, counted_rate, millis_text, percent_text, sampled_note,
};

/// Width of one character, per text style, at the sizes `static/app.css` gives them.
pub const NODE_LABEL_CHAR: f64 = 8.2;
pub const SMALL_CHAR: f64 = 6.9;
pub const BADGE_CHAR: f64 = 7.7;
/// Width of a badge's pill around `words`.
pub fn pill_width(words: &str) -> f64 {
    words.chars().count() as f64 * BADGE_CHAR + 10.0
}

/// Height of one line of an edge label.
pub const LINE_HEIGHT: f64 = 15.0;
/// Longest node name drawn whole.
pub const MAX_NAME_CHARS: usize = 34;

/// Text for HTML and SVG: the five markup characters escaped, control characters dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other if other.is_control() => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

pub fn cut(label: &str, max_chars: usize) -> String {
    if label.chars().count() <= max_chars {
        return label.to_owned();
    }
    let kept: String = label.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

pub fn trend_arrow(trend: Trend) -> &'static str {
    match trend {
        Trend::Growing => "↑ growing",
        Trend::Draining => "↓ draining",
        Trend::Stable => "→ stable",
        Trend::Unknown => "",
    }
}

/// One line of text whose figures are marked: plain to measure, SVG to draw, a
/// `tspan data-figure` per figure (whose it is, the enclosing `g.node`'s `data-id` or
/// `g.edge`'s `data-subject` says).
#[derive(Debug, Default, Clone)]
pub struct MarkedLine {
    parts: Vec<(Option<Figure>, String)>,
}

impl MarkedLine {
    pub fn text(&mut self, text: impl Into<String>) -> &mut Self {
        self.parts.push((None, text.into()));
        self
    }

    pub fn figure(&mut self, figure: Figure, text: String) -> &mut Self {
        self.parts.push((Some(figure), text));
        self
    }

    pub fn plain(&self) -> String {
        self.parts.iter().map(|(_, text)| text.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn svg(&self) -> String {
        let mut out = String::new();
        for (figure, text) in &self.parts {
            match figure {
                Some(figure) => {
                    let _ = write!(
                        out,
                        r#"<tspan data-figure="{}">{}</tspan>"#,
                        figure.as_str(),
                        escape(text)
                    );
                }
                None => out.push_str(&escape(text)),
            }
        }
        out
    }
}

/// How a line of an edge label looks: figures, or a badge (a coloured pill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    Figures,
    /// An open breaker, growing lag, firing alerts.
    Alarm,
    /// A half-open breaker.
    Warning,
    /// Lag that is not growing.
    Lag,
    /// Compared with an earlier period: an edge or node that is new…
    New,
    /// …one that is gone…
    Gone,
    /// …and what changed on an edge.
    Change,
}

impl LineStyle {
    pub fn class(self) -> &'static str {
        match self {
            LineStyle::Figures => "edge-label",
            LineStyle::Alarm => "badge badge-alarm",
            LineStyle::Warning => "badge badge-warning",
            LineStyle::Lag => "badge badge-lag",
            LineStyle::New => "badge badge-new",
            LineStyle::Gone => "badge badge-gone",
            LineStyle::Change => "badge badge-change",
        }
    }

    fn char_width(self) -> f64 {
        match self {
            LineStyle::Figures => SMALL_CHAR,
            _ => BADGE_CHAR,
        }
    }
}

/// An edge's label: badges first, then its figures.
#[derive(Debug, Default, Clone)]
pub struct EdgeText {
    pub lines: Vec<(LineStyle, MarkedLine)>,
}

impl EdgeText {
    /// Rate and client p95 on the first line, failures and refused calls on a second (each
    /// part only when there is something to say).
    pub fn figures(stats: &EdgeStats, window_secs: f64) -> Self {
        let figures = EdgeFigures::of(stats, window_secs);
        let mut first = MarkedLine::default();
        first.figure(Figure::Rate, figures.rate);
        if stats.client_latency.count() > 0 {
            first
                .text(" · p95 ")
                .figure(Figure::ClientP95, figures.client_p95);
        }
        let mut text = Self::default();
        text.lines.push((LineStyle::Figures, first));
        let mut second = MarkedLine::default();
        if stats.num_failed() > 0 {
            second
                .figure(Figure::ErrorRate, figures.error_rate)
                .text(" err");
        }
        if stats.num_refused() > 0 {
            if !second.is_empty() {
                second.text(" · ");
            }
            second
                .figure(Figure::Refused, figures.refused)
                .text(" refused");
        }
        if !second.is_empty() {
            text.lines.push((LineStyle::Figures, second));
        }
        text
    }

    pub fn badge(&mut self, style: LineStyle, words: String) {
        let mut line = MarkedLine::default();
        line.text(words);
        let at = self
            .lines
            .iter()
            .position(|(style, _)| *style == LineStyle::Figures)
            .unwrap_or(self.lines.len());
        self.lines.insert(at, (style, line));
    }

    /// (width, height) on the map.
    pub fn size(&self) -> (f64, f64) {
        let width = self
            .lines
            .iter()
            .map(|(style, line)| {
                line.plain().chars().count() as f64 * style.char_width()
                    + if *style == LineStyle::Figures {
                        4.0
                    } else {
                        14.0
                    }
            })
            .fold(0.0, f64::max);
        (width, self.lines.len() as f64 * LINE_HEIGHT)
    }
}

/// The second line of a node: its rate and error rate, and its callers' p95 when it is over
/// target.
pub fn node_sub(traffic: NodeTraffic, window_secs: f64) -> MarkedLine {
    let mut line = MarkedLine::default();
    line.figure(
        Figure::Rate,
        counted_rate(traffic.num_requests, traffic.observed_share(), window_secs),
    );
    if traffic.num_errors > 0 {
        line.text(" · ")
            .figure(Figure::ErrorRate, percent_text(traffic.error_rate()))
            .text(" err");
    }
    if let Some(latency) = traffic.latency.filter(|latency| latency.ratio() > 1.0) {
        line.text(format!(" · p95 {}", millis_text(latency.p95_ms * 1e6)));
    }
    line
}

/// A node's hover text: its id and what colours it.
pub fn node_title(key: &NodeKey, traffic: NodeTraffic, window_secs: f64) -> String {
    let mut title = format!(
        "{} · {}",
        key.id(),
        counted_rate(traffic.num_requests, traffic.observed_share(), window_secs)
    );
    if let Some(note) = sampled_note(traffic.observed_share()) {
        let _ = write!(title, " ({note})");
    }
    if traffic.num_requests > 0 {
        let _ = write!(title, " · {} errors", percent_text(traffic.error_rate()));
    }
    if let Some(latency) = traffic.latency {
        let _ = write!(
            title,
            " · p95 {} into it (target {})",
            millis_text(latency.p95_ms * 1e6),
            millis_text(latency.target_ms * 1e6)
        );
    }
    title
}
