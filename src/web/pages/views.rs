//! The askama views of the dashboards. Text is escaped by askama; the only markup passed
//! through unescaped is the map's SVG, which `map::svg` builds with every name escaped, and
//! the charts' and sparklines' SVG, which `web::chart` and [`sparkline`] build likewise.

use askama::Template;
use askama_web::WebTemplate;

use crate::links;
use crate::web::format::Mark;

pub const NAV: [(&str, &str); 7] = [
    (links::MAP, "Map"),
    (links::SERVICES, "Services"),
    (links::TRACES, "Traces"),
    (links::KAFKA, "Kafka"),
    (links::BREAKERS, "Breakers"),
    (links::INSIGHTS, "Insights"),
    (links::ALERTS, "Alerts"),
];

/// What every page's frame needs.
#[derive(Debug, Clone)]
pub struct Frame {
    pub title: String,
    pub section: &'static str,
    pub nav: Vec<(&'static str, &'static str)>,
    /// The time range the request named, kept by every link to a page that reads one.
    pub range_query: String,
    /// The time picker at the top of a page that reads a range.
    pub range_bar: Option<RangeBar>,
}

/// A page's time picker: the window (or custom range) the URL names, and the other parameters
/// a new choice keeps.
#[derive(Debug, Clone)]
pub struct RangeBar {
    pub action: String,
    pub windows: Vec<&'static str>,
    /// The selected window; empty when a custom range is shown.
    pub window: String,
    pub from: String,
    pub to: String,
    pub kept: Vec<(String, String)>,
}

impl Frame {
    pub fn new(title: impl Into<String>, section: &'static str) -> Self {
        Self {
            title: title.into(),
            section,
            nav: NAV.to_vec(),
            range_query: String::new(),
            range_bar: None,
        }
    }

    /// Keeps the range `query_string` names in the page's links, and shows a picker for it
    /// on `path` (the page's own path) when `picker` is set.
    pub fn ranged(mut self, path: &str, query_string: &str, picker: bool) -> Self {
        self.range_query = crate::web::params::range_query(query_string);
        if picker {
            self.range_bar = Some(RangeBar::of(path, query_string));
        }
        self
    }

    /// `href` with this page's time range, when `href` leads to a page that reads one.
    pub fn keep(&self, href: &str) -> String {
        crate::links::with_range(href, &self.range_query)
    }
}

impl RangeBar {
    fn of(path: &str, query_string: &str) -> Self {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query_string).unwrap_or_default();
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let (from, to) = (value("from"), value("to"));
        let window = match value("window") {
            _ if crate::web::params::names_custom_range(&pairs) => String::new(),
            window if window.is_empty() => crate::web::params::DEFAULT_WINDOW.to_owned(),
            window => window,
        };
        let kept = pairs
            .into_iter()
            .filter(|(key, value)| {
                !matches!(key.as_str(), "window" | "from" | "to") && !value.is_empty()
            })
            .collect();
        Self {
            action: path.to_owned(),
            windows: crate::web::params::window_names(),
            window,
            from,
            to,
            kept,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "map.html")]
pub struct MapPage {
    pub frame: Frame,
    pub windows: Vec<&'static str>,
    pub window: String,
    pub from: String,
    pub to: String,
    pub namespace: String,
    pub focus: String,
    pub depth: usize,
    pub summary: String,
    pub is_empty: bool,
    pub has_filter: bool,
    pub grpc_addr: String,
    pub http_addr: String,
    pub refresh_url: String,
    /// Every node of the map in the range, for the Focus box's suggestions.
    pub node_ids: Vec<String>,
    /// When namespaces are folded: what the map shows, and the link to every node.
    pub fold_note: String,
    /// Where the Audit select ([`MapFindings`]) is loaded from once the map shows.
    pub findings_url: String,
    pub show_all_href: String,
    /// The latency targets the colours hold p95 against, in words.
    pub targets: String,
    /// What the map is compared with (`compare`), the choices, and a deploy compared.
    pub compare: String,
    pub compare_choices: Vec<(&'static str, &'static str)>,
    pub deploy: String,
    /// The range's newest deploys: what, and the map compared before and after it.
    pub deploys: Vec<(String, String)>,
    /// What the comparison found, when comparing.
    pub diff_note: String,
    pub svg: String,
}

/// The map's Audit select: findings to mark on the map (text, href, shown now).
#[derive(Template, WebTemplate)]
#[template(path = "map_findings.html")]
pub struct MapFindings {
    pub findings: Vec<(String, String, bool)>,
}

/// Sections a page loads after itself (each `Section::loaded_from`), swapped in for their
/// placeholders.
#[derive(Template, WebTemplate)]
#[template(path = "sections_fragment.html")]
pub struct SectionsFragment {
    pub frame: Frame,
    pub sections: Vec<Section>,
}

/// One cell of a table: text, optionally a link or a coloured pill.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
    pub pill: Option<&'static str>,
    pub numeric: bool,
    /// An inline SVG sparkline, built from numbers only (see `sparkline`).
    pub spark: Option<String>,
    /// A button posting to this path (e.g. expiring a silence).
    pub post: Option<String>,
    /// Which figure the text is, for tests and scripts (`data-figure`, `data-subject`).
    pub mark: Option<Mark>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn number(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            numeric: true,
            ..Self::default()
        }
    }

    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            href: Some(href.into()),
            ..Self::default()
        }
    }

    pub fn spark(svg: String, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            spark: Some(svg),
            ..Self::default()
        }
    }

    pub fn button(text: impl Into<String>, post: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            post: Some(post.into()),
            ..Self::default()
        }
    }

    pub fn pill(text: impl Into<String>, class: &'static str) -> Self {
        Self {
            text: text.into(),
            pill: Some(class),
            ..Self::default()
        }
    }

    /// The same cell, its text marked as `mark`'s figure.
    pub fn marked(self, mark: Mark) -> Self {
        Self {
            mark: Some(mark),
            ..self
        }
    }
}

/// One headline figure above a page's tables.
#[derive(Debug, Clone)]
pub struct Card {
    pub label: String,
    pub value: String,
    /// Which figure `value` is, for tests and scripts.
    pub mark: Option<Mark>,
}

impl Card {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            mark: None,
        }
    }

    pub fn marked(label: impl Into<String>, value: impl Into<String>, mark: Mark) -> Self {
        Self {
            mark: Some(mark),
            ..Self::new(label, value)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    /// What to say when there are no rows.
    pub empty: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Inline SVG charts shown above the table (`web::chart`, every name escaped there).
    pub charts: Vec<String>,
    /// A line under the title saying what the section is about.
    pub note: String,
    /// Where the section is loaded from once the page shows, when it costs more than the rest
    /// of its page (see [`SectionsFragment`]); the page then holds only its title.
    pub loaded_from: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub numeric: bool,
    /// Where clicking the heading sorts the table by this column.
    pub sort_href: Option<String>,
}

/// A sparkline of `values` (oldest first) as inline SVG; red dots where `alerts` is set.
/// Only numbers go into the markup.
pub fn sparkline(values: &[f64], alerts: &[bool]) -> String {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 24.0;
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let step = WIDTH / (values.len().max(2) - 1) as f64;
    let point = |index: usize, value: f64| {
        (
            index as f64 * step,
            HEIGHT - 2.0 - value / max * (HEIGHT - 4.0),
        )
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let (x, y) = point(index, *value);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let mut out = format!(
        r##"<svg class="spark" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" aria-hidden="true"><polyline fill="none" stroke="#2457c5" stroke-width="1.5" points="{}"/>"##,
        points.join(" ")
    );
    for (index, (value, alert)) in values.iter().zip(alerts).enumerate() {
        if *alert {
            let (x, y) = point(index, *value);
            out.push_str(&format!(
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.2" fill="#c62828"/>"##
            ));
        }
    }
    out.push_str("</svg>");
    out
}

/// One input of a page's search form.
#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub name: &'static str,
    /// What was searched (a checkbox is ticked when not empty).
    pub value: String,
    pub placeholder: &'static str,
    pub size: usize,
    pub input: Input,
}

/// What kind of input a [`Field`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text,
    /// Sends `name=true` when ticked, nothing otherwise.
    Checkbox,
    /// `(value, text)` of each choice.
    Select(Vec<(&'static str, &'static str)>),
    /// Carried along unseen (the page's time range).
    Hidden,
}

impl Field {
    pub fn text(label: &'static str, name: &'static str, value: String) -> Self {
        Self {
            label,
            name,
            value,
            placeholder: "",
            size: 10,
            input: Input::Text,
        }
    }

    pub fn with_hint(self, placeholder: &'static str, size: usize) -> Self {
        Self {
            placeholder,
            size,
            ..self
        }
    }

    pub fn with_input(self, input: Input) -> Self {
        Self { input, ..self }
    }
}

impl Section {
    pub fn new(
        title: impl Into<String>,
        empty: impl Into<String>,
        columns: &[(&'static str, bool)],
    ) -> Self {
        Self {
            title: title.into(),
            empty: empty.into(),
            columns: columns
                .iter()
                .map(|&(name, numeric)| Column {
                    name,
                    numeric,
                    sort_href: None,
                })
                .collect(),
            rows: Vec::new(),
            charts: Vec::new(),
            note: String::new(),
            loaded_from: None,
        }
    }

    /// Makes the columns at `links`' positions sortable (an empty link leaves one as is).
    pub fn sortable(&mut self, links: Vec<String>) {
        for (column, link) in self.columns.iter_mut().zip(links) {
            column.sort_href = (!link.is_empty()).then_some(link);
        }
    }
}

/// Every page that is headings, cards and tables.
#[derive(Template, WebTemplate)]
#[template(path = "table.html")]
pub struct TablePage {
    pub frame: Frame,
    pub heading: String,
    pub intro: String,
    pub cards: Vec<Card>,
    /// A GET search form above the tables, when not empty.
    pub form: Vec<Field>,
    pub form_action: String,
    /// What was wrong with the search, shown above the form.
    pub form_error: String,
    /// `(text, href)` of related pages, under the heading.
    pub related: Vec<(String, String)>,
    pub sections: Vec<Section>,
}

impl TablePage {
    pub fn new(frame: Frame, heading: impl Into<String>, intro: impl Into<String>) -> Self {
        Self {
            frame,
            heading: heading.into(),
            intro: intro.into(),
            cards: Vec::new(),
            form: Vec::new(),
            form_action: String::new(),
            form_error: String::new(),
            related: Vec::new(),
            sections: Vec::new(),
        }
    }
}

/// The silence form as shown: matcher rows (name, operator, value) and the rest.
#[derive(Debug, Clone, Default)]
pub struct SilenceForm {
    pub rows: Vec<(String, String, String)>,
    pub duration: String,
    pub created_by: String,
    pub comment: String,
    /// What was wrong with the last submission.
    pub message: String,
}

impl SilenceForm {
    pub fn empty(num_rows: usize) -> Self {
        Self {
            rows: vec![(String::new(), "=".to_owned(), String::new()); num_rows],
            duration: "2h".to_owned(),
            ..Self::default()
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub frame: Frame,
    pub intro: String,
    pub cards: Vec<Card>,
    pub sections: Vec<Section>,
    pub form: SilenceForm,
    pub operators: [&'static str; 4],
    pub csrf: String,
}

impl AlertsPage {
    pub fn new(frame: Frame, csrf: String, intro: impl Into<String>, form: SilenceForm) -> Self {
        Self {
            frame,
            csrf,
            intro: intro.into(),
            cards: Vec::new(),
            sections: Vec::new(),
            form,
            operators: ["=", "!=", "=~", "!~"],
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub frame: Frame,
    pub heading: String,
    pub message: String,
    /// `(label, href)` of the same page over longer ranges, when its range held nothing.
    pub widen: Vec<(String, String)>,
}

/// One span of the waterfall.
#[derive(Debug, Clone)]
pub struct WaterfallSpan {
    pub service: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub indent: usize,
    pub left: String,
    pub width: String,
    pub colour: String,
    pub duration: String,
    pub is_error: bool,
    pub is_critical: bool,
    pub attributes: Vec<(String, String)>,
    pub events: Vec<String>,
    pub links: Vec<String>,
}

/// What the waterfall of a trace too long to show whole says at the top (counts as text, with
/// thousands separators).
#[derive(Debug, Clone)]
pub struct TraceCut {
    pub num_shown: String,
    pub num_spans: String,
    /// The trace's first page in the JSON API.
    pub api_url: String,
    pub page_size: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "trace.html")]
pub struct TracePage {
    pub frame: Frame,
    pub trace_id: String,
    pub cards: Vec<Card>,
    /// Set when `spans` are the trace's first ones only.
    pub cut: Option<TraceCut>,
    pub spans: Vec<WaterfallSpan>,
}
