//! Where the map's boxes and edges go, computed on the server from [`Layered`] layers: in
//! call direction, left to right or top to bottom, whichever fits a laptop screen
//! ([`SCREEN`]) at the larger scale. Along the call direction a layer is a band as thick as its
//! thickest box and the gap after it as deep as the edge labels that cross it need; across it,
//! boxes and edge placeholders keep their order with fixed separations, pulled towards their
//! neighbours (least squares under the order constraints) so that long edges run straight.
//! An edge is a straight run through every band it crosses (from its own port on the box's
//! side, or through its placeholder's slot) and a curve inside each gap, so it never passes
//! through a box that is not its end. Deterministic: the same input gives the same drawing.

use super::geometry::{Piece, Point, Rect};
use super::layering::{LARGE_ITEMS, Layered, Link};

/// The part of a 1280 × 800 laptop screen the map gets: the page's padding (20 px a side) and
/// the frame's border (1 px a side) off the width, the header and controls off the height.
pub const SCREEN: (f64, f64) = (1238.0, 620.0);
const MARGIN: f64 = 16.0;
/// Room past the last layer for a self-loop.
const LOOP_DEPTH: f64 = 30.0;
const LABEL_PAD: f64 = 8.0;
const ALIGN_PASSES: usize = 8;
const PORT_SPACING: f64 = 10.0;
/// Gaps at either end of an edge where its label may go.
const LABEL_GAPS: usize = 3;

/// Which way calls flow on the drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Right,
    Down,
}

impl Direction {
    fn point(self, rank: f64, order: f64) -> Point {
        match self {
            Direction::Right => Point::new(rank, order),
            Direction::Down => Point::new(order, rank),
        }
    }

    /// A box's extent (along the calls, across them).
    fn extents(self, size: (f64, f64)) -> (f64, f64) {
        match self {
            Direction::Right => size,
            Direction::Down => (size.1, size.0),
        }
    }

    fn min_gap(self) -> f64 {
        match self {
            Direction::Right => 70.0,
            Direction::Down => 46.0,
        }
    }

    fn max_gap(self) -> f64 {
        match self {
            Direction::Right => 280.0,
            Direction::Down => 130.0,
        }
    }

    /// Across the calls, between two boxes / a box and a placeholder / two placeholders.
    fn separations(self) -> (f64, f64, f64) {
        match self {
            Direction::Right => (26.0, 14.0, 10.0),
            Direction::Down => (34.0, 16.0, 12.0),
        }
    }
}

/// One edge as drawn: its pieces from its source to its target, and where its label may sit.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub pieces: Vec<Piece>,
    /// Label centres on the edge, best first, each with the box the label must stay inside
    /// (its gap between two layers).
    pub label_spots: Vec<(Point, Rect)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub direction: Direction,
    /// One per input node, in input order.
    pub nodes: Vec<Rect>,
    /// One per input edge, in input order.
    pub routes: Vec<Route>,
    pub width: f64,
    pub height: f64,
}

impl Layout {
    /// The scale at which the whole drawing fits `screen` (width, height).
    pub fn fit(&self, screen: (f64, f64)) -> f64 {
        (screen.0 / self.width).min(screen.1 / self.height)
    }
}

/// Lays out boxes of `sizes` (width, height) joined by `edges` (indices into `sizes`) whose
/// labels measure `labels` (width, height; one per edge), in whichever direction fits
/// [`SCREEN`] at the larger scale (left to right on a tie).
/// `label_rows` is how many labels deep a gap is made (1 at first; more when labels did not
/// find room).
pub fn layout(
    sizes: &[(f64, f64)],
    edges: &[(usize, usize)],
    labels: &[(f64, f64)],
    label_rows: f64,
) -> Layout {
    let layered = Layered::new(sizes.len(), edges);
    if sizes.len() > PLACE_BOTH_UP_TO {
        let direction = likely_direction(&layered, sizes);
        return place(&layered, sizes, labels, direction, label_rows);
    }
    let right = place(&layered, sizes, labels, Direction::Right, label_rows);
    let down = place(&layered, sizes, labels, Direction::Down, label_rows);
    if down.fit(SCREEN) > right.fit(SCREEN) * 1.02 {
        down
    } else {
        right
    }
}

/// Maps up to this many nodes are placed both ways to pick the better; larger ones by estimate.
const PLACE_BOTH_UP_TO: usize = 80;

/// The direction whose rough extent (boxes and default gaps, no alignment) fits [`SCREEN`]
/// at the larger scale.
fn likely_direction(layered: &Layered, sizes: &[(f64, f64)]) -> Direction {
    let fit = |direction: Direction| {
        let (boxes, mixed, _) = direction.separations();
        let mut along = 0.0;
        let mut across: f64 = 0.0;
        for row in &layered.rows {
            let mut thickest: f64 = 0.0;
            let mut width = 0.0;
            for &item in row {
                if layered.is_placeholder(item) {
                    width += mixed;
                } else {
                    let (rank, order) = direction.extents(sizes[item]);
                    thickest = thickest.max(rank);
                    width += order + boxes;
                }
            }
            along += thickest + direction.min_gap();
            across = across.max(width);
        }
        let corner = direction.point(along, across);
        (SCREEN.0 / corner.x).min(SCREEN.1 / corner.y)
    };
    if fit(Direction::Down) > fit(Direction::Right) * 1.02 {
        Direction::Down
    } else {
        Direction::Right
    }
}

/// Positions along the call direction: where each layer's band starts, its thickness, and
/// the depth of the gap after it.
struct Bands {
    start: Vec<f64>,
    thickness: Vec<f64>,
}

impl Bands {
    fn end(&self, layer: usize) -> f64 {
        self.start[layer] + self.thickness[layer]
    }
}

fn place(
    layered: &Layered,
    sizes: &[(f64, f64)],
    labels: &[(f64, f64)],
    direction: Direction,
    label_rows: f64,
) -> Layout {
    let extents: Vec<(f64, f64)> = sizes.iter().map(|&size| direction.extents(size)).collect();
    let bands = bands(layered, &extents, labels, direction, label_rows);
    let order = order_positions(layered, &extents, direction);
    let nodes: Vec<Rect> = (0..layered.num_nodes)
        .map(|node| {
            let layer = layered.layer_of[node];
            let (along, across) = extents[node];
            let rank = bands.start[layer] + (bands.thickness[layer] - along) / 2.0;
            let corner = direction.point(rank, order[node] - across / 2.0);
            let (width, height) = sizes[node];
            Rect {
                x: corner.x,
                y: corner.y,
                width,
                height,
            }
        })
        .collect();
    let ports = Ports::assign(layered, &order, &extents);
    let routes = layered
        .links
        .iter()
        .enumerate()
        .map(|(edge, link)| match link {
            Link::Chain(chain) => chain_route(
                layered,
                &chain.items,
                chain.reversed,
                &ports.by_segment[edge],
                &bands,
                &extents,
                direction,
            ),
            Link::Loop(node) => loop_route(&nodes[*node], labels[edge], direction),
        })
        .collect();
    let rank_end = bands
        .start
        .last()
        .map_or(MARGIN, |_| bands.end(bands.start.len() - 1))
        + LOOP_DEPTH.max(MARGIN);
    let order_end = (0..layered.layer_of.len())
        .map(|item| order[item] + item_extent(layered, &extents, item) / 2.0)
        .fold(MARGIN, f64::max)
        + MARGIN;
    let corner = direction.point(rank_end, order_end);
    Layout {
        direction,
        nodes,
        routes,
        width: corner.x,
        height: corner.y,
    }
}

fn item_extent(layered: &Layered, extents: &[(f64, f64)], item: usize) -> f64 {
    if layered.is_placeholder(item) {
        0.0
    } else {
        extents[item].1
    }
}

fn bands(
    layered: &Layered,
    extents: &[(f64, f64)],
    labels: &[(f64, f64)],
    direction: Direction,
    label_rows: f64,
) -> Bands {
    let num_layers = layered.rows.len();
    let mut thickness = vec![0.0f64; num_layers];
    for (node, &(along, _)) in extents.iter().enumerate() {
        let layer = layered.layer_of[node];
        thickness[layer] = thickness[layer].max(along);
    }
    let mut gap = vec![direction.min_gap(); num_layers.saturating_sub(1)];
    for (edge, chain) in layered.chains() {
        let need = direction.extents(labels[edge]).0 * label_rows + 2.0 * LABEL_PAD;
        for &item in &chain.items[..chain.items.len() - 1] {
            let layer = layered.layer_of[item];
            gap[layer] = gap[layer].max(need.min(direction.max_gap()));
        }
    }
    let mut start = Vec::with_capacity(num_layers);
    let mut at = MARGIN;
    for (layer, thick) in thickness.iter().enumerate() {
        start.push(at);
        at += thick + gap.get(layer).copied().unwrap_or(0.0);
    }
    Bands { start, thickness }
}

/// Across the call direction, the centre of every item (nodes and placeholders).
fn order_positions(layered: &Layered, extents: &[(f64, f64)], direction: Direction) -> Vec<f64> {
    let (boxes, mixed, placeholders) = direction.separations();
    let separation = |a: usize, b: usize| {
        let gap = match (layered.is_placeholder(a), layered.is_placeholder(b)) {
            (false, false) => boxes,
            (true, true) => placeholders,
            _ => mixed,
        };
        (item_extent(layered, extents, a) + item_extent(layered, extents, b)) / 2.0 + gap
    };
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); layered.layer_of.len()];
    for (_, chain) in layered.chains() {
        for pair in chain.items.windows(2) {
            neighbours[pair[0]].push(pair[1]);
            neighbours[pair[1]].push(pair[0]);
        }
    }
    let mut position = vec![0.0; layered.layer_of.len()];
    for row in &layered.rows {
        let mut at = 0.0;
        for (index, &item) in row.iter().enumerate() {
            if index > 0 {
                at += separation(row[index - 1], item);
            }
            position[item] = at;
        }
    }
    // Large drawings get fewer passes (each moves every placeholder).
    let passes = if layered.layer_of.len() > LARGE_ITEMS {
        3
    } else {
        ALIGN_PASSES
    };
    for pass in 0..passes {
        let layers: Vec<usize> = if pass % 2 == 0 {
            (0..layered.rows.len()).collect()
        } else {
            (0..layered.rows.len()).rev().collect()
        };
        for layer in layers {
            let row = &layered.rows[layer];
            let wanted: Vec<f64> = row
                .iter()
                .map(|&item| {
                    let adjacent = &neighbours[item];
                    if adjacent.is_empty() {
                        position[item]
                    } else {
                        adjacent.iter().map(|&other| position[other]).sum::<f64>()
                            / adjacent.len() as f64
                    }
                })
                .collect();
            let gaps: Vec<f64> = row
                .windows(2)
                .map(|pair| separation(pair[0], pair[1]))
                .collect();
            for (&item, placed) in row.iter().zip(closest_in_order(&wanted, &gaps)) {
                position[item] = placed;
            }
        }
    }
    let low = (0..position.len())
        .map(|item| position[item] - item_extent(layered, extents, item) / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = if low.is_finite() { MARGIN - low } else { 0.0 };
    position.iter().map(|at| at + shift).collect()
}

/// The positions closest (least squares) to `wanted` that keep their order with at least
/// `gaps[i]` between item `i` and `i + 1`: pool adjacent violators on the positions with the
/// gaps taken out.
fn closest_in_order(wanted: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(wanted.len());
    let mut offset = 0.0;
    for index in 0..wanted.len() {
        if index > 0 {
            offset += gaps[index - 1];
        }
        offsets.push(offset);
    }
    // Blocks of (sum, count) whose mean is non-decreasing.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for (value, offset) in wanted.iter().zip(&offsets) {
        blocks.push((value - offset, 1));
        while blocks.len() > 1 {
            let (last_sum, last_count) = blocks[blocks.len() - 1];
            let (prev_sum, prev_count) = blocks[blocks.len() - 2];
            if prev_sum / prev_count as f64 <= last_sum / last_count as f64 {
                break;
            }
            blocks.pop();
            let merged = blocks.last_mut().expect("two blocks");
            *merged = (prev_sum + last_sum, prev_count + last_count);
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (sum, count) in blocks {
        let mean = sum / count as f64;
        for _ in 0..count {
            out.push(mean + offsets[out.len()]);
        }
    }
    out
}

/// A segment's end at a box's side: (where its other end is across the call direction, edge,
/// segment).
type PortEnd = (f64, usize, usize);

/// Where each segment meets the side of a box: one port per segment, spread along the side in
/// the order of the segments' other ends, so no two edges share a start or an end.
struct Ports {
    /// Per (edge, index of the segment in its chain): the port on its upper item's lower side
    /// and on its lower item's upper side, across the call direction.
    by_segment: Vec<Vec<(f64, f64)>>,
}

impl Ports {
    fn assign(layered: &Layered, order: &[f64], extents: &[(f64, f64)]) -> Self {
        let mut by_segment: Vec<Vec<(f64, f64)>> = layered
            .links
            .iter()
            .map(|link| match link {
                Link::Chain(chain) => chain
                    .items
                    .windows(2)
                    .map(|pair| (order[pair[0]], order[pair[1]]))
                    .collect(),
                Link::Loop(_) => Vec::new(),
            })
            .collect();
        // (item, lower side?) → [(other end's position, edge, segment)]
        let mut sides: std::collections::BTreeMap<(usize, bool), Vec<PortEnd>> =
            std::collections::BTreeMap::new();
        for (edge, chain) in layered.chains() {
            for (segment, pair) in chain.items.windows(2).enumerate() {
                sides
                    .entry((pair[0], true))
                    .or_default()
                    .push((order[pair[1]], edge, segment));
                sides
                    .entry((pair[1], false))
                    .or_default()
                    .push((order[pair[0]], edge, segment));
            }
        }
        for ((item, lower_side), mut ends) in sides {
            if layered.is_placeholder(item) {
                continue;
            }
            ends.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let across = extents[item].1;
            let count = ends.len() as f64;
            let spacing = if count > 1.0 {
                PORT_SPACING.min((across - 16.0).max(0.0) / (count - 1.0))
            } else {
                0.0
            };
            for (index, (_, edge, segment)) in ends.into_iter().enumerate() {
                let at = order[item] + (index as f64 - (count - 1.0) / 2.0) * spacing;
                let ports = &mut by_segment[edge][segment];
                if lower_side {
                    ports.0 = at;
                } else {
                    ports.1 = at;
                }
            }
        }
        Self { by_segment }
    }
}

/// A box no label spot is held to.
const ANYWHERE: Rect = Rect {
    x: -1e9,
    y: -1e9,
    width: 2e9,
    height: 2e9,
};

/// An edge through its chain: `ports` per segment (across the call direction, on the upper
/// item's side and the lower item's).
fn chain_route(
    layered: &Layered,
    items: &[usize],
    reversed: bool,
    ports: &[(f64, f64)],
    bands: &Bands,
    extents: &[(f64, f64)],
    direction: Direction,
) -> Route {
    let point = |rank: f64, across: f64| direction.point(rank, across);
    let mut pieces = Vec::new();
    let mut label_spots = Vec::new();
    for (index, pair) in items.windows(2).enumerate() {
        let (upper, lower) = (pair[0], pair[1]);
        let (from_across, to_across) = ports[index];
        let upper_layer = layered.layer_of[upper];
        let lower_layer = layered.layer_of[lower];
        // Through the upper item's band: from its box's side (or the band's start, for a
        // placeholder) to the band's end.
        let upper_from = if layered.is_placeholder(upper) {
            bands.start[upper_layer]
        } else {
            bands.start[upper_layer] + (bands.thickness[upper_layer] + extents[upper].0) / 2.0
        };
        let band_end = bands.end(upper_layer);
        if band_end > upper_from + 0.05 {
            pieces.push(Piece::Line(
                point(upper_from, from_across),
                point(band_end, from_across),
            ));
        }
        let next_start = bands.start[lower_layer];
        let middle = (band_end + next_start) / 2.0;
        let curve = Piece::Cubic(
            point(band_end, from_across),
            point(middle, from_across),
            point(middle, to_across),
            point(next_start, to_across),
        );
        pieces.push(curve);
        let gap_box = band_box(band_end, next_start, direction);
        // A label reads best near an end: spots in the first and last few gaps only.
        let near_an_end = index < LABEL_GAPS || index + LABEL_GAPS >= items.len() - 1;
        if near_an_end {
            for t in [0.5, 0.3, 0.7, 0.15, 0.85] {
                label_spots.push((curve.at(t), gap_box));
            }
        }
        if layered.is_placeholder(lower) {
            if near_an_end {
                // Beside its placeholder, in the band it crosses, if no box is there.
                let band = bands.start[lower_layer];
                label_spots.push((
                    point(band + bands.thickness[lower_layer] / 2.0, to_across),
                    band_box(band, band + bands.thickness[lower_layer], direction),
                ));
            }
        } else {
            let side = next_start + (bands.thickness[lower_layer] - extents[lower].0) / 2.0;
            if side > next_start + 0.05 {
                pieces.push(Piece::Line(
                    point(next_start, to_across),
                    point(side, to_across),
                ));
            }
        }
    }
    let mut pieces = straightened(pieces);
    if reversed {
        pieces = pieces.iter().rev().map(Piece::reversed).collect();
        label_spots.reverse();
    }
    Route {
        pieces,
        label_spots,
    }
}

/// `pieces` with runs that go straight (a curve between equal ends across the calls, and the
/// lines before and after it) drawn as one line: a long edge through aligned placeholders.
fn straightened(pieces: Vec<Piece>) -> Vec<Piece> {
    let straight = |piece: &Piece| {
        let (start, end) = (piece.start(), piece.end());
        (start.x - end.x).abs() < 0.05 || (start.y - end.y).abs() < 0.05
    };
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let piece = if straight(&piece) {
            Piece::Line(piece.start(), piece.end())
        } else {
            piece
        };
        match (out.last_mut(), piece) {
            (Some(Piece::Line(start, end)), Piece::Line(_, next))
                if (start.x - next.x).abs() < 0.05 || (start.y - next.y).abs() < 0.05 =>
            {
                *end = next;
            }
            (_, piece) => out.push(piece),
        }
    }
    out
}

/// The strip between `from` and `to` along the call direction, unbounded across it.
fn band_box(from: f64, to: f64, direction: Direction) -> Rect {
    let a = direction.point(from, ANYWHERE.x);
    let b = direction.point(to, ANYWHERE.right());
    Rect {
        x: a.x.min(b.x),
        y: a.y.min(b.y),
        width: (b.x - a.x).abs(),
        height: (b.y - a.y).abs(),
    }
}

/// A loop out of a box's lower side and back, in the gap after it.
fn loop_route(node: &Rect, label: (f64, f64), direction: Direction) -> Route {
    let (start, c1, c2, end, tip) = match direction {
        Direction::Right => {
            let (x, y) = (node.right(), node.y + node.height / 2.0);
            (
                Point::new(x, y - 8.0),
                Point::new(x + LOOP_DEPTH, y - 20.0),
                Point::new(x + LOOP_DEPTH, y + 20.0),
                Point::new(x, y + 8.0),
                Point::new(x + LOOP_DEPTH * 0.75 + label.0 / 2.0 + 4.0, y),
            )
        }
        Direction::Down => {
            let (x, y) = (node.right() - 18.0, node.bottom());
            (
                Point::new(x - 8.0, y),
                Point::new(x - 20.0, y + LOOP_DEPTH),
                Point::new(x + 20.0, y + LOOP_DEPTH),
                Point::new(x + 8.0, y),
                Point::new(x, y + LOOP_DEPTH * 0.75 + label.1 / 2.0 + 4.0),
            )
        }
    };
    Route {
        pieces: vec![Piece::Cubic(start, c1, c2, end)],
        label_spots: vec![(tip, ANYWHERE)],
    }
}
