//! The map as SVG: one `g.node` per node and one `g.edge` per edge, laid out by `layout`,
//! health-coloured, shaped by kind, with edge labels (rate, client p95, error rate, calls
//! refused by a breaker), Kafka lag on topic → consumer edges and breaker badges (colour and
//! text). A node's colour and second line are its [`NodeTraffic`] (for a service, what it
//! served itself), an edge's its attempted calls: the figures every page shows, printed by
//! `web::format` and marked the same way. Every name is span data: all text goes through
//! [`escape`].

use std::collections::HashMap;
use std::fmt::Write as _;

use super::layout::{self, Layout, Placed};
use crate::graph::analysis::GraphView;
use crate::links;
use crate::model::figures::NodeTraffic;
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodeKind};
use crate::query::SignalOverlay;
use crate::signals::Trend;
use crate::web::format::{EdgeFigures, Figure, edge_subject, health_class, percent_text, rate_of};

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

fn cut(label: &str, max_chars: usize) -> String {
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
#[derive(Debug, Default)]
struct MarkedLine {
    parts: Vec<(Option<Figure>, String)>,
}

impl MarkedLine {
    fn text(&mut self, text: impl Into<String>) -> &mut Self {
        self.parts.push((None, text.into()));
        self
    }

    fn figure(&mut self, figure: Figure, text: String) -> &mut Self {
        self.parts.push((Some(figure), text));
        self
    }

    fn plain(&self) -> String {
        self.parts.iter().map(|(_, text)| text.as_str()).collect()
    }

    fn svg(&self) -> String {
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

/// An edge's label: its rate, client p95 and error rate, and the calls a breaker refused
/// (each part only when there is something to say).
fn edge_label(stats: &EdgeStats, window_secs: f64) -> MarkedLine {
    let figures = EdgeFigures::of(stats, window_secs);
    let mut line = MarkedLine::default();
    line.figure(Figure::Rate, figures.rate);
    if stats.client_latency.count() > 0 {
        line.text(" · p95 ")
            .figure(Figure::ClientP95, figures.client_p95);
    }
    if stats.num_failed() > 0 {
        line.text(" · ")
            .figure(Figure::ErrorRate, figures.error_rate)
            .text(" err");
    }
    if stats.num_refused() > 0 {
        line.text(" · ")
            .figure(Figure::Refused, figures.refused)
            .text(" refused");
    }
    line
}

/// The second line of a node: its rate and error rate, or a topic's lag.
fn node_sub(
    key: &NodeKey,
    traffic: NodeTraffic,
    window_secs: f64,
    overlay: &SignalOverlay,
) -> MarkedLine {
    let mut line = MarkedLine::default();
    if key.kind == NodeKind::Topic && overlay.edge_lag.keys().any(|edge| edge.source == *key) {
        let lag: f64 = overlay
            .edge_lag
            .iter()
            .filter(|(edge, _)| edge.source == *key)
            .map(|(_, lag)| lag.lag)
            .sum();
        line.text(format!("lag {lag:.0}"));
        return line;
    }
    line.figure(Figure::Rate, rate_of(traffic.num_requests, window_secs));
    if traffic.num_errors > 0 {
        line.text(" · ")
            .figure(Figure::ErrorRate, percent_text(traffic.error_rate()))
            .text(" err");
    }
    line
}

fn shape(out: &mut String, kind: NodeKind, width: f64, height: f64) {
    let _ = match kind {
        NodeKind::Service => write!(
            out,
            r#"<rect class="shape" width="{width}" height="{height}" rx="8"/>"#
        ),
        NodeKind::Database => {
            let (w, h, r) = (width, height, 7.0);
            write!(
                out,
                r#"<path class="shape" d="M0,{r} A{half},{r} 0 0 1 {w},{r} L{w},{bottom} A{half},{r} 0 0 1 0,{bottom} Z"/><path class="rim" d="M0,{r} A{half},{r} 0 0 0 {w},{r}"/>"#,
                half = w / 2.0,
                bottom = h - r,
            )
        }
        NodeKind::Topic => write!(
            out,
            r#"<polygon class="shape" points="10,0 {right},0 {width},{mid} {right},{height} 10,{height} 0,{mid}"/>"#,
            right = width - 10.0,
            mid = height / 2.0,
        ),
        NodeKind::External => write!(
            out,
            r#"<rect class="shape dashed" width="{width}" height="{height}" rx="2"/>"#
        ),
        NodeKind::Client => write!(
            out,
            r#"<rect class="shape" width="{width}" height="{height}" rx="{}"/>"#,
            height / 2.0
        ),
    };
}

/// What a node shows: its (possibly cut) name, its second line, and its health class.
struct NodeLines {
    label: String,
    sub: MarkedLine,
    health: &'static str,
}

/// The whole map: nodes laid out (boxes as wide as their longer line), then drawn. `traffic`
/// holds every node's figures ([`crate::model::figures::node_traffic`]); a node missing
/// from it served nothing in the range.
pub fn render(
    view: &GraphView,
    overlay: &SignalOverlay,
    traffic: &HashMap<NodeKey, NodeTraffic>,
    range_query: &str,
) -> String {
    let index: HashMap<&NodeKey, usize> = view
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key, i))
        .collect();
    let lines: Vec<NodeLines> = view
        .nodes
        .iter()
        .map(|(key, _)| {
            let served = traffic.get(key).copied().unwrap_or_default();
            NodeLines {
                label: cut(&key.name, layout::max_label_chars()),
                sub: node_sub(key, served, view.window_secs, overlay),
                health: health_class(served.error_rate()),
            }
        })
        .collect();
    let plain_subs: Vec<String> = lines.iter().map(|line| line.sub.plain()).collect();
    let widest: Vec<&str> = lines
        .iter()
        .zip(&plain_subs)
        .map(|(line, sub)| {
            if sub.chars().count() > line.label.chars().count() {
                sub.as_str()
            } else {
                line.label.as_str()
            }
        })
        .collect();
    let edges: Vec<(usize, usize)> = view
        .edges
        .iter()
        .filter_map(|(key, _)| Some((*index.get(&key.source)?, *index.get(&key.target)?)))
        .collect();
    let layout = layout::layout(&widest, &edges);
    draw(view, overlay, &index, &lines, &layout, range_query)
}

/// The SVG; node and edge links keep `range_query` (see [`links::with_range`]).
fn draw(
    view: &GraphView,
    overlay: &SignalOverlay,
    index: &HashMap<&NodeKey, usize>,
    lines: &[NodeLines],
    layout: &Layout,
    range_query: &str,
) -> String {
    let bottom = layout.height;
    let mut out = String::with_capacity(256 * (view.nodes.len() + view.edges.len()) + 1024);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="map-svg" class="map" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Service dependency map"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs><g class="edges">"##,
        w = layout.width.ceil(),
        h = (layout.height + 70.0).ceil(),
    );
    for (key, stats) in &view.edges {
        let (Some(&source), Some(&target)) = (index.get(&key.source), index.get(&key.target))
        else {
            continue;
        };
        edge(
            &mut out,
            key,
            stats,
            view.window_secs,
            overlay,
            &layout.nodes[source],
            &layout.nodes[target],
            bottom,
            range_query,
        );
    }
    out.push_str(r#"</g><g class="nodes">"#);
    for (position, (key, _)) in view.nodes.iter().enumerate() {
        let placed = &layout.nodes[position];
        let NodeLines { label, sub, health } = &lines[position];
        let _ = write!(
            out,
            r#"<a href="{href}"><g class="node kind-{kind} health-{health}" data-id="{id}" transform="translate({x:.1},{y:.1})"><title>{title}</title>"#,
            href = escape(&links::with_range(&links::node(key), range_query)),
            kind = key.kind.as_str(),
            id = escape(&key.id()),
            x = placed.x,
            y = placed.y,
            title = escape(&key.id()),
        );
        shape(&mut out, key.kind, placed.width, placed.height);
        let _ = write!(
            out,
            r#"<text class="node-label" x="{cx:.1}" y="19">{label}</text><text class="node-sub" x="{cx:.1}" y="35">{sub}</text></g></a>"#,
            cx = placed.width / 2.0,
            label = escape(label),
            sub = sub.svg(),
        );
    }
    out.push_str("</g></svg>");
    out
}

#[allow(clippy::too_many_arguments)]
fn edge(
    out: &mut String,
    key: &EdgeKey,
    stats: &EdgeStats,
    window_secs: f64,
    overlay: &SignalOverlay,
    source: &Placed,
    target: &Placed,
    bottom: f64,
    range_query: &str,
) {
    let (x1, y1) = (source.x + source.width, source.y + source.height / 2.0);
    let (x2, y2) = (target.x, target.y + target.height / 2.0);
    let path = if target.layer > source.layer {
        let bend = (x2 - x1) / 2.0;
        format!(
            "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
            x1 + bend,
            x2 - bend
        )
    } else {
        // Back or same-layer edges (cycles) go round underneath the map.
        let low = bottom + 40.0;
        format!(
            "M{x1:.1},{y1:.1} C{:.1},{low:.1} {:.1},{low:.1} {x2:.1},{y2:.1}",
            x1 + 120.0,
            x2 - 120.0
        )
    };
    let (label_x, label_y) = if target.layer > source.layer {
        ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 6.0)
    } else {
        ((x1 + x2) / 2.0, bottom + 24.0)
    };
    let health = health_class(stats.error_rate());
    let _ = write!(
        out,
        r#"<a href="{href}"><g class="edge health-{health} kind-{kind}" data-source="{source_id}" data-target="{target_id}" data-subject="{subject}"><title>{title}</title><path class="line" d="{path}" marker-end="url(#arrow)"/><text class="edge-label" x="{label_x:.1}" y="{label_y:.1}">{label}</text>"#,
        href = escape(&links::with_range(&links::edge(key), range_query)),
        kind = key.kind.as_str(),
        source_id = escape(&key.source.id()),
        target_id = escape(&key.target.id()),
        subject = escape(&edge_subject(key)),
        title = escape(&format!(
            "{} → {} ({})",
            key.source.name,
            key.target.name,
            key.kind.as_str()
        )),
        label = edge_label(stats, window_secs).svg(),
    );
    let mut badge_y = label_y + 15.0;
    if let Some(lag) = overlay.edge_lag.get(key) {
        let _ = write!(
            out,
            r#"<text class="lag-label trend-{trend:?}" x="{label_x:.1}" y="{badge_y:.1}">lag {lag:.0} {arrow}</text>"#,
            trend = lag.trend,
            lag = lag.lag,
            arrow = trend_arrow(lag.trend),
        );
        badge_y += 15.0;
    }
    if let Some(breaker) = overlay.edge_breaker.get(key) {
        let state = breaker.state.as_str();
        let text = match breaker.state.is_open() {
            true => format!("⛔ breaker {} OPEN", cut(&breaker.name, 24)),
            false => format!(
                "breaker {} {}",
                cut(&breaker.name, 24),
                state.replace('_', "-")
            ),
        };
        let _ = write!(
            out,
            r#"<text class="breaker breaker-{state}" x="{label_x:.1}" y="{badge_y:.1}">{text}</text>"#,
            text = escape(&text),
        );
    }
    out.push_str("</g></a>");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::figures::node_traffic;
    use crate::model::graph::{EdgeKind, NodePlacement, OperationStats};

    /// user → gateway → orders → payments (30 calls refused by a breaker), orders →
    /// postgres, orders → topic → inventory, payments → orders (a cycle); all latencies
    /// fixed. The services' figures are their operations'.
    fn small_shop() -> (GraphView, SignalOverlay, HashMap<NodeKey, NodeTraffic>) {
        let service = |name: &str| NodeKey::service(name.to_owned());
        let node = |kind, name: &str| NodeKey::new(kind, name);
        let edges = [
            (
                node(NodeKind::Client, "user"),
                service("gateway"),
                EdgeKind::Http,
                600,
                0,
            ),
            (
                service("gateway"),
                service("orders"),
                EdgeKind::Grpc,
                600,
                12,
            ),
            (
                service("orders"),
                service("payments"),
                EdgeKind::Http,
                580,
                40,
            ),
            (
                service("payments"),
                service("orders"),
                EdgeKind::Http,
                30,
                0,
            ),
            (
                service("orders"),
                node(NodeKind::Database, "postgresql orders-db:5432/orders"),
                EdgeKind::Database,
                1200,
                0,
            ),
            (
                service("orders"),
                node(NodeKind::Topic, "kafka orders.created"),
                EdgeKind::Messaging,
                560,
                0,
            ),
            (
                node(NodeKind::Topic, "kafka orders.created"),
                service("inventory"),
                EdgeKind::Messaging,
                560,
                0,
            ),
        ];
        let mut nodes: Vec<(NodeKey, NodePlacement)> = Vec::new();
        let mut view_edges = Vec::new();
        for (source, target, kind, requests, errors) in edges {
            for key in [&source, &target] {
                if !nodes.iter().any(|(known, _)| known == key) {
                    nodes.push((key.clone(), NodePlacement::default()));
                }
            }
            let num_refused = if target == service("payments") { 30 } else { 0 };
            let mut stats = EdgeStats {
                num_requests: requests,
                num_errors: errors,
                num_short_circuited: num_refused,
                ..EdgeStats::default()
            };
            for millis in [4, 8, 15, 16, 23, 42] {
                stats.client_latency.record(millis * 1_000_000);
            }
            view_edges.push((
                EdgeKey {
                    source,
                    target,
                    kind,
                },
                stats,
            ));
        }
        let view = GraphView {
            nodes,
            edges: view_edges,
            window_secs: 300.0,
        };
        let operations = |num_requests, num_errors| OperationStats {
            num_requests,
            num_errors,
            ..OperationStats::default()
        };
        let served = [
            ("gateway", operations(600, 12)),
            ("orders", operations(630, 12)),
            ("payments", operations(550, 10)),
            ("inventory", operations(560, 0)),
        ];
        let traffic = node_traffic(
            &view.edges,
            served.iter().map(|(name, stats)| (*name, stats)),
        );
        (view, SignalOverlay::default(), traffic)
    }

    /// The `data-figure` texts inside the group that `opening` starts, in order.
    fn marked(svg: &str, opening: &str) -> Vec<String> {
        let start = svg.find(opening).expect("the group is drawn");
        let group = &svg[start..];
        let group = &group[..group.find("</g>").unwrap_or(group.len())];
        group
            .split("<tspan data-figure=")
            .skip(1)
            .map(|part| {
                let text = &part[part.find('>').map_or(0, |at| at + 1)..];
                text[..text.find('<').unwrap_or(0)].to_owned()
            })
            .collect()
    }

    #[test]
    fn a_service_shows_what_it_served_and_an_edge_its_refused_calls_beside_its_errors() {
        let (view, overlay, traffic) = small_shop();
        let svg = render(&view, &overlay, &traffic, "");
        assert_eq!(
            marked(&svg, r#"data-id="service:payments""#),
            ["1.8/s", "1.8 %"],
            "its own operations, not the 40 failed calls into it: {svg}"
        );
        assert_eq!(
            marked(
                &svg,
                r#"data-source="service:orders" data-target="service:payments""#
            ),
            ["1.9/s", "23.1 ms", "1.8 %", "30"],
            "10 failed of 550 attempted, 30 refused beside them"
        );
        assert!(svg.contains("health-warn") && !svg.contains("/min"));
    }

    #[test]
    fn the_small_shop_map_matches_the_committed_svg() {
        let (view, overlay, traffic) = small_shop();
        let rendered = render(&view, &overlay, &traffic, "");
        assert_eq!(
            rendered,
            render(&view, &overlay, &traffic, ""),
            "deterministic"
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/map_small_shop.svg");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != rendered {
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &rendered).expect("write golden");
                return;
            }
            panic!(
                "tests/golden/map_small_shop.svg is out of date: commit the new version (run with UPDATE_GOLDEN=1)"
            );
        }
    }

    #[test]
    fn names_are_escaped_in_every_text_and_attribute() {
        let hostile = "<script>alert('x')</script>\"&";
        let key = EdgeKey {
            source: NodeKey::service(hostile.to_owned()),
            target: NodeKey::service("b".to_owned()),
            kind: EdgeKind::Http,
        };
        let view = GraphView {
            nodes: vec![
                (key.source.clone(), NodePlacement::default()),
                (key.target.clone(), NodePlacement::default()),
            ],
            edges: vec![(
                key,
                EdgeStats {
                    num_requests: 1,
                    ..EdgeStats::default()
                },
            )],
            window_secs: 60.0,
        };
        let overlay = SignalOverlay::default();
        let svg = render(&view, &overlay, &HashMap::new(), "");
        assert!(
            !svg.contains("<script>") && !svg.contains("'x'") && !svg.contains("\"&"),
            "{svg}"
        );
        assert!(
            svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"),
            "{svg}"
        );
        assert_eq!(svg.matches("class=\"node ").count(), 2);
        assert_eq!(svg.matches("class=\"edge ").count(), 1);
    }
}
