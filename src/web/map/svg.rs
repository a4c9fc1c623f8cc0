//! The map as SVG: one `g.node` per node and one `g.edge` per edge, placed by `layout`,
//! labelled where `labels` finds room. A node's and an edge's colour is the worse of its error
//! rate and its p95 against the latency targets; a node's second line is its
//! [`NodeTraffic`] (for a service, what it served itself), an edge's label its attempted
//! calls: the figures every page shows, printed by `web::format` and marked the same way.
//! Open breakers, growing lag and firing alerts are badges (coloured pills) on the edge or
//! node they concern; lag sits on the topic → consumer edge. Every name is span data: all
//! text goes through [`escape`].

use std::collections::HashMap;
use std::fmt::Write as _;

use super::changes::MapChanges;
use super::geometry::{Rect, Tenths, path_data};
use super::labels;
use super::layout::{self, Layout};
use super::text::{
    EdgeText, LINE_HEIGHT, LineStyle, MAX_NAME_CHARS, NODE_LABEL_CHAR, SMALL_CHAR, cut, node_sub,
    node_title, pill_width,
};
pub use super::text::{escape, trend_arrow};
use crate::graph::analysis::GraphView;
use crate::links;
use crate::model::figures::{LatencyTargets, NodeTraffic};
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodeKind};
use crate::query::{FigureSource, SignalOverlay};
use crate::signals::Trend;
use crate::web::format::{edge_subject, health_of};

pub const NODE_HEIGHT: f64 = 46.0;
const MIN_NODE_WIDTH: f64 = 90.0;
/// The smallest scale at which the map's smallest text (12 px) still reads at 11 px, with a
/// little room for the browser's rounding of the frame.
const READABLE_SCALE: f64 = 11.1 / 12.0;
/// Maps with more edges than this draw no wider hover twin of each edge (it doubled a
/// 1,000-edge map's bytes), and no label that found no room (the edge's title has it).
const HIT_PATHS_UP_TO: usize = 300;
/// Room a node's badges take above its box.
const BADGE_RISE: f64 = 10.0;

/// Firing alerts by what they concern: node ids, and (source id, target id) of edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FiringAlerts {
    pub nodes: HashMap<String, usize>,
    pub edges: HashMap<(String, String), usize>,
}

impl FiringAlerts {
    /// From firing alerts' labels: `source` and `target` name an edge, `service` with
    /// `target` the edge out of that service, `service` alone the service.
    pub fn from_labels<'a>(
        alerts: impl IntoIterator<Item = &'a std::collections::BTreeMap<String, String>>,
    ) -> Self {
        let mut firing = Self::default();
        for labels in alerts {
            let source = labels.get("source").cloned().or_else(|| {
                labels
                    .get("service")
                    .map(|name| NodeKey::service(name).id())
            });
            match (source, labels.get("target")) {
                (Some(source), Some(target)) => {
                    *firing.edges.entry((source, target.clone())).or_default() += 1;
                }
                (Some(node), None) => *firing.nodes.entry(node).or_default() += 1,
                (None, _) => {}
            }
        }
        firing
    }

    fn on_edge(&self, key: &EdgeKey) -> usize {
        self.edges
            .get(&(key.source.id(), key.target.id()))
            .copied()
            .unwrap_or(0)
    }
}

/// What the map is drawn with besides the graph: every node's figures
/// ([`crate::model::figures::node_traffic`]; a node missing from it served nothing in the
/// range), lag and breakers, firing alerts, the latency targets.
pub struct MapMarks<'a> {
    pub overlay: &'a SignalOverlay,
    pub traffic: &'a HashMap<NodeKey, NodeTraffic>,
    pub alerts: &'a FiringAlerts,
    pub targets: LatencyTargets,
    /// Folded namespaces drawn as one node each ([`super::groups`]).
    pub groups: &'a HashMap<NodeKey, super::groups::GroupNode>,
    /// Compared with an earlier period: what changed ([`super::changes`]).
    pub changes: Option<&'a MapChanges>,
}

/// What a node shows.
struct NodeText {
    label: String,
    sub: super::text::MarkedLine,
    title: String,
    health: &'static str,
    badges: Vec<(LineStyle, String)>,
    /// A folded namespace: where a click opens it.
    group_href: Option<String>,
    /// Its class when compared with an earlier period (" diff-new").
    change_class: &'static str,
}

/// The map before it is written out: what every node and edge says, where it all goes.
pub(super) struct Plan {
    nodes: Vec<NodeText>,
    /// Edges drawn (both ends on the map), as (index in the view, source, target).
    drawn: Vec<(usize, usize, usize)>,
    texts: Vec<EdgeText>,
    pub layout: Layout,
    /// The room each drawn edge's label got (`None`: on hover only).
    pub spots: Vec<Option<Rect>>,
}

pub(super) fn plan(view: &GraphView, marks: &MapMarks) -> Plan {
    let index: HashMap<&NodeKey, usize> = view
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key, i))
        .collect();
    let nodes: Vec<NodeText> = view
        .nodes
        .iter()
        .map(|(key, _)| node_text(key, view.window_secs, marks))
        .collect();
    let sizes: Vec<(f64, f64)> = nodes.iter().map(node_size).collect();
    let drawn: Vec<(usize, usize, usize)> = view
        .edges
        .iter()
        .enumerate()
        .filter_map(|(edge, (key, _))| {
            Some((edge, *index.get(&key.source)?, *index.get(&key.target)?))
        })
        .collect();
    let texts: Vec<EdgeText> = drawn
        .iter()
        .map(|&(edge, _, _)| {
            let (key, stats) = &view.edges[edge];
            edge_text(key, stats, view.window_secs, marks)
        })
        .collect();
    let label_sizes: Vec<(f64, f64)> = texts.iter().map(EdgeText::size).collect();
    let pairs: Vec<(usize, usize)> = drawn.iter().map(|&(_, s, t)| (s, t)).collect();
    let priority = label_priority(&drawn, &texts, view);
    let lay_out = |label_rows: f64| {
        let layout = layout::layout(&sizes, &pairs, &label_sizes, label_rows);
        let obstacles: Vec<Rect> = layout
            .nodes
            .iter()
            .zip(&nodes)
            .map(|(rect, node)| grown_by_badges(rect, !node.badges.is_empty()))
            .collect();
        let spots = labels::place(&layout, &obstacles, &label_sizes, &priority);
        (layout, spots)
    };
    let (mut layout, mut spots) = lay_out(1.0);
    // Labels left without room get deeper gaps, as long as the map still reads on a laptop.
    for label_rows in [1.6, 2.2] {
        if spots.iter().all(Option::is_some) || layout.fit(layout::SCREEN) < READABLE_SCALE {
            break;
        }
        let (deeper, deeper_spots) = lay_out(label_rows);
        if deeper.fit(layout::SCREEN) < READABLE_SCALE {
            break;
        }
        (layout, spots) = (deeper, deeper_spots);
    }
    Plan {
        nodes,
        drawn,
        texts,
        layout,
        spots,
    }
}

/// The whole map; node and edge links keep `range_query` (see [`links::with_range`]).
pub fn render(view: &GraphView, marks: &MapMarks, range_query: &str) -> String {
    let Plan {
        nodes,
        drawn,
        texts,
        layout,
        spots,
        ..
    } = plan(view, marks);
    // About what a node and an edge with its label take (a 4,300-edge map is 3.7 MB).
    let mut out = String::with_capacity(900 * (view.nodes.len() + view.edges.len()) + 1024);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="map-svg" class="map direction-{direction}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Service dependency map"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs><g class="edges">"##,
        direction = match layout.direction {
            layout::Direction::Right => "right",
            layout::Direction::Down => "down",
        },
        w = layout.width.ceil(),
        h = layout.height.ceil(),
    );
    for (position, &(edge, _, _)) in drawn.iter().enumerate() {
        draw_edge(
            &mut out,
            view,
            edge,
            &layout.routes[position],
            &texts[position],
            spots[position],
            marks,
            range_query,
        );
    }
    out.push_str(r#"</g><g class="nodes">"#);
    for (position, (key, _)) in view.nodes.iter().enumerate() {
        draw_node(
            &mut out,
            key,
            &nodes[position],
            &layout.nodes[position],
            range_query,
        );
    }
    out.push_str("</g></svg>");
    out
}

fn node_text(key: &NodeKey, window_secs: f64, marks: &MapMarks) -> NodeText {
    let traffic = marks.traffic.get(key).copied().unwrap_or_default();
    let mut badges = Vec::new();
    if let Some(&count) = marks.alerts.nodes.get(&key.id()) {
        badges.push((LineStyle::Alarm, format!("{count} firing")));
    }
    for breaker in marks.overlay.node_breakers.get(key).into_iter().flatten() {
        if breaker.state.is_open() {
            badges.push((
                LineStyle::Alarm,
                format!("breaker {} OPEN", cut(&breaker.name, 16)),
            ));
        }
    }
    if marks.overlay.metrics.nodes.contains(key) {
        badges.push((LineStyle::Lag, "from metrics".to_owned()));
    }
    badges.extend(marks.changes.and_then(|changes| changes.node_badge(key)));
    let group = marks.groups.get(key);
    NodeText {
        label: group.map_or_else(
            || cut(&key.name, MAX_NAME_CHARS),
            |group| cut(&group.label, MAX_NAME_CHARS),
        ),
        group_href: group.map(|group| group.href.clone()),
        sub: node_sub(traffic, window_secs),
        title: node_title(key, traffic, window_secs),
        health: health_of(traffic.error_rate(), traffic.latency),
        badges,
        change_class: marks.changes.map_or("", |changes| changes.node_class(key)),
    }
}

fn node_size(node: &NodeText) -> (f64, f64) {
    let label = node.label.chars().count() as f64 * NODE_LABEL_CHAR;
    let sub = node.sub.plain().chars().count() as f64 * SMALL_CHAR;
    let badges: f64 = node
        .badges
        .iter()
        .map(|(_, words)| pill_width(words) + 8.0)
        .sum();
    (
        (label.max(sub).max(badges) + 24.0).max(MIN_NODE_WIDTH),
        NODE_HEIGHT,
    )
}

fn grown_by_badges(rect: &Rect, has_badges: bool) -> Rect {
    if !has_badges {
        return *rect;
    }
    Rect {
        y: rect.y - BADGE_RISE,
        height: rect.height + BADGE_RISE,
        ..*rect
    }
}

/// An edge's label: its badges (breaker, lag, firing alerts), then its figures.
fn edge_text(key: &EdgeKey, stats: &EdgeStats, window_secs: f64, marks: &MapMarks) -> EdgeText {
    let mut text = EdgeText::figures(stats, window_secs);
    if let Some(breaker) = marks.overlay.edge_breaker.get(key) {
        let name = cut(&breaker.name, 18);
        if breaker.state.is_open() {
            text.badge(LineStyle::Alarm, format!("breaker {name} OPEN"));
        } else if breaker.state.as_str() == "half_open" {
            text.badge(LineStyle::Warning, format!("breaker {name} half-open"));
        }
    }
    if let Some(lag) = marks.overlay.edge_lag.get(key) {
        let style = if lag.trend == Trend::Growing {
            LineStyle::Alarm
        } else {
            LineStyle::Lag
        };
        let words = format!("lag {:.0} {}", lag.lag, trend_arrow(lag.trend));
        text.badge(style, words.trim_end().to_owned());
    }
    match marks.overlay.metrics.edges.get(key) {
        Some(figures) if figures.disagrees => {
            text.badge(LineStyle::Warning, "traces ≠ metrics".to_owned());
        }
        Some(figures) if figures.source == FigureSource::Metrics => {
            text.badge(LineStyle::Lag, "from metrics".to_owned());
        }
        _ => {}
    }
    if let Some(words) = marks.overlay.anomalies.get(key) {
        text.badge(LineStyle::Warning, words.clone());
    }
    let firing = marks.alerts.on_edge(key);
    if firing > 0 {
        text.badge(LineStyle::Alarm, format!("{firing} firing"));
    }
    if let Some(changes) = marks.changes {
        changes.mark_edge(key, &mut text);
    }
    text
}

/// Positions in `drawn` ordered by how much their label matters: badges, then failures,
/// then traffic.
fn label_priority(
    drawn: &[(usize, usize, usize)],
    texts: &[EdgeText],
    view: &GraphView,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..drawn.len()).collect();
    let key = |position: usize| {
        let stats = &view.edges[drawn[position].0].1;
        let alarms = texts[position]
            .lines
            .iter()
            .filter(|(style, _)| *style != LineStyle::Figures)
            .count();
        (
            std::cmp::Reverse(alarms),
            std::cmp::Reverse(stats.num_failed() + stats.num_refused()),
            std::cmp::Reverse(stats.num_requests),
            position,
        )
    };
    order.sort_by_key(|&position| key(position));
    order
}

#[allow(clippy::too_many_arguments)]
fn draw_edge(
    out: &mut String,
    view: &GraphView,
    edge: usize,
    route: &layout::Route,
    text: &EdgeText,
    spot: Option<Rect>,
    marks: &MapMarks,
    range_query: &str,
) {
    let (key, stats) = &view.edges[edge];
    let health = health_of(stats.error_rate(), marks.targets.load(key, stats));
    let d = path_data(&route.pieces);
    let mut title = format!(
        "{} → {} ({}): {}",
        key.source.name,
        key.target.name,
        key.kind.as_str(),
        text.lines
            .iter()
            .map(|(_, line)| line.plain())
            .collect::<Vec<_>>()
            .join(" · ")
    );
    if let Some(note) = crate::web::format::sampled_note(stats.observed_share()) {
        let _ = write!(title, " ({note})");
    }
    let _ = write!(
        out,
        r#"<a href="{href}"><g class="edge health-{health} kind-{kind}{change}" data-source="{source_id}" data-target="{target_id}" data-subject="{subject}"><title>{title}</title>{hit}<path class="line" d="{d}" marker-end="url(#arrow)"/>"#,
        // A wider invisible twin to point at, on maps small enough to afford it.
        hit = if view.edges.len() <= HIT_PATHS_UP_TO {
            format!(r#"<path class="hit" d="{d}"/>"#)
        } else {
            String::new()
        },
        href = escape(&links::with_range(&links::edge(key), range_query)),
        kind = key.kind.as_str(),
        change = marks.changes.map_or("", |changes| changes.edge_class(key)),
        source_id = escape(&key.source.id()),
        target_id = escape(&key.target.id()),
        subject = escape(&edge_subject(key)),
        title = escape(&title),
    );
    let (spot, class) = match spot {
        Some(spot) => (spot, "label"),
        // On a map too large for hover twins, the edge's title alone says what its label
        // would have (a 4,300-edge mesh leaves some 1,500 labels without room).
        None if view.edges.len() > HIT_PATHS_UP_TO => {
            out.push_str("</g></a>");
            return;
        }
        None => {
            // No free room: shown while the edge is hovered, where its first spot is.
            let (width, height) = text.size();
            let centre = route
                .label_spots
                .first()
                .map_or(super::geometry::Point::new(0.0, 0.0), |spot| spot.0);
            (Rect::centred(centre, width, height), "label hover-only")
        }
    };
    let _ = write!(
        out,
        r#"<g class="{class}" transform="translate({x},{y})"><rect class="label-back" width="{w}" height="{h}" rx="3"/>"#,
        x = Tenths(spot.x),
        y = Tenths(spot.y),
        w = Tenths(spot.width),
        h = Tenths(spot.height),
    );
    for (line_index, (style, line)) in text.lines.iter().enumerate() {
        let top = line_index as f64 * LINE_HEIGHT;
        if *style != LineStyle::Figures {
            let width = pill_width(&line.plain());
            let _ = write!(
                out,
                r#"<rect class="pill {class}" x="{x}" y="{y}" width="{width}" height="{h}" rx="7"/>"#,
                class = style.class(),
                x = Tenths((spot.width - width) / 2.0),
                y = Tenths(top + 0.5),
                width = Tenths(width),
                h = Tenths(LINE_HEIGHT - 1.0),
            );
        }
        let _ = write!(
            out,
            r#"<text class="{class}" x="{x}" y="{y}">{words}</text>"#,
            class = style.class(),
            x = Tenths(spot.width / 2.0),
            y = Tenths(top + LINE_HEIGHT - 4.0),
            words = line.svg(),
        );
    }
    out.push_str("</g></g></a>");
}

fn draw_node(out: &mut String, key: &NodeKey, node: &NodeText, rect: &Rect, range_query: &str) {
    let alerting = if node.badges.is_empty() {
        ""
    } else {
        " has-badges"
    };
    let (href, kind) = match &node.group_href {
        Some(href) => (href.clone(), "group"),
        None => (
            links::with_range(&links::node(key), range_query),
            key.kind.as_str(),
        ),
    };
    let _ = write!(
        out,
        r#"<a href="{href}"><g class="node kind-{kind} health-{health}{alerting}{change}" data-id="{id}" transform="translate({x},{y})"><title>{title}</title>"#,
        href = escape(&href),
        health = node.health,
        change = node.change_class,
        id = escape(&key.id()),
        x = Tenths(rect.x),
        y = Tenths(rect.y),
        title = escape(&node.title),
    );
    if node.group_href.is_some() {
        let _ = write!(
            out,
            // A stack of boxes, inside the node's own box.
            r#"<rect class="shape group-back" x="5" y="0" width="{w:.1}" height="{h}" rx="8"/><rect class="shape" x="0" y="4" width="{w:.1}" height="{h}" rx="8"/>"#,
            w = rect.width - 5.0,
            h = rect.height - 4.0,
        );
    } else {
        shape(out, key.kind, rect.width, rect.height);
    }
    // A database's lid takes the top of its box.
    let lowered = if key.kind == NodeKind::Database {
        2.5
    } else {
        0.0
    };
    let _ = write!(
        out,
        r#"<text class="node-label" x="{cx}" y="{label_y}">{label}</text><text class="node-sub" x="{cx}" y="{sub_y}">{sub}</text>"#,
        cx = Tenths(rect.width / 2.0),
        label_y = Tenths(20.0 + lowered),
        sub_y = Tenths(37.0 + lowered),
        label = escape(&node.label),
        sub = node.sub.svg(),
    );
    let mut right = rect.width - 4.0;
    for (style, words) in &node.badges {
        let width = pill_width(words);
        let x = right - width;
        let _ = write!(
            out,
            r#"<rect class="pill {class}" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="15" rx="7"/><text class="{class}" x="{cx:.1}" y="{ty:.1}">{words}</text>"#,
            class = style.class(),
            y = -BADGE_RISE,
            cx = x + width / 2.0,
            ty = -BADGE_RISE + 11.0,
            words = escape(words),
        );
        right = x - 4.0;
    }
    out.push_str("</g></a>");
}

fn shape(out: &mut String, kind: NodeKind, width: f64, height: f64) {
    let _ = match kind {
        NodeKind::Service => write!(
            out,
            r#"<rect class="shape" width="{width:.1}" height="{height}" rx="8"/>"#
        ),
        NodeKind::Database => {
            let (w, h, r) = (width, height, 5.0);
            write!(
                out,
                r#"<path class="shape" d="M0,{r} A{half:.1},{r} 0 0 1 {w:.1},{r} L{w:.1},{bottom} A{half:.1},{r} 0 0 1 0,{bottom} Z"/><path class="rim" d="M0,{r} A{half:.1},{r} 0 0 0 {w:.1},{r}"/>"#,
                half = w / 2.0,
                bottom = h - r,
            )
        }
        NodeKind::Topic => write!(
            out,
            r#"<polygon class="shape" points="10,0 {right:.1},0 {width:.1},{mid} {right:.1},{height} 10,{height} 0,{mid}"/>"#,
            right = width - 10.0,
            mid = height / 2.0,
        ),
        NodeKind::External => write!(
            out,
            r#"<rect class="shape dashed" width="{width:.1}" height="{height}" rx="2"/>"#
        ),
        NodeKind::Client => write!(
            out,
            r#"<rect class="shape" width="{width:.1}" height="{height}" rx="{}"/>"#,
            height / 2.0
        ),
    };
}

#[cfg(test)]
#[path = "svg_tests.rs"]
mod tests;
