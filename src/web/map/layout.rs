//! A layered layout of the map, in call direction (left to right), computed on the server:
//! cycles are broken by reversing DFS back edges (for layering only), layers are longest paths
//! from the callers, and the order inside a layer follows barycenter sweeps. Boxes never
//! overlap by construction: a layer is as wide as its widest box plus a gap, and boxes in a
//! layer are stacked with a gap. Deterministic: the same input gives the same coordinates.

use std::collections::HashMap;

pub const NODE_HEIGHT: f64 = 46.0;
const MIN_NODE_WIDTH: f64 = 96.0;
const MAX_NODE_WIDTH: f64 = 230.0;
/// Width of one label character at the map's font size.
const CHAR_WIDTH: f64 = 7.0;
const LAYER_GAP: f64 = 210.0;
const ROW_GAP: f64 = 34.0;
const MARGIN: f64 = 24.0;
const SWEEPS: usize = 6;

/// A box placed on the map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub layer: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One per input node, in input order.
    pub nodes: Vec<Placed>,
    pub width: f64,
    pub height: f64,
}

/// The width a label needs, within bounds (long names are cut when drawn).
pub fn node_width(label: &str) -> f64 {
    (label.chars().count() as f64 * CHAR_WIDTH + 28.0).clamp(MIN_NODE_WIDTH, MAX_NODE_WIDTH)
}

/// Characters of a label that fit in a box of the widest kind.
pub fn max_label_chars() -> usize {
    ((MAX_NODE_WIDTH - 28.0) / CHAR_WIDTH) as usize
}

/// Lays out `labels.len()` nodes joined by `edges` (indices into `labels`).
pub fn layout(labels: &[&str], edges: &[(usize, usize)]) -> Layout {
    let num_nodes = labels.len();
    let forward = acyclic_edges(num_nodes, edges);
    let layers = longest_path_layers(num_nodes, &forward);
    let num_layers = layers.iter().copied().max().map_or(0, |max| max + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); num_layers];
    for (node, &layer) in layers.iter().enumerate() {
        rows[layer].push(node);
    }
    order_rows(&mut rows, &forward, &layers);

    let widths: Vec<f64> = labels.iter().map(|label| node_width(label)).collect();
    let layer_widths: Vec<f64> = rows
        .iter()
        .map(|row| row.iter().map(|&node| widths[node]).fold(0.0, f64::max))
        .collect();
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let column_height = tallest * NODE_HEIGHT + (tallest - 1.0).max(0.0) * ROW_GAP;
    let mut placed = vec![
        Placed {
            x: 0.0,
            y: 0.0,
            width: 0.0,
            height: NODE_HEIGHT,
            layer: 0,
        };
        num_nodes
    ];
    let mut x = MARGIN;
    for (layer, row) in rows.iter().enumerate() {
        let count = row.len() as f64;
        let height = count * NODE_HEIGHT + (count - 1.0).max(0.0) * ROW_GAP;
        let mut y = MARGIN + (column_height - height) / 2.0;
        for &node in row {
            placed[node] = Placed {
                // Centred in its layer's column.
                x: x + (layer_widths[layer] - widths[node]) / 2.0,
                y,
                width: widths[node],
                height: NODE_HEIGHT,
                layer,
            };
            y += NODE_HEIGHT + ROW_GAP;
        }
        x += layer_widths[layer] + LAYER_GAP;
    }
    Layout {
        nodes: placed,
        width: (x - LAYER_GAP + MARGIN).max(2.0 * MARGIN),
        height: column_height + 2.0 * MARGIN,
    }
}

/// The edges with DFS back edges reversed and self-loops dropped: a DAG over the same nodes.
fn acyclic_edges(num_nodes: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut adjacent: Vec<Vec<usize>> = vec![Vec::new(); num_nodes];
    for &(source, target) in edges {
        if source != target {
            adjacent[source].push(target);
        }
    }
    for targets in &mut adjacent {
        targets.sort_unstable();
        targets.dedup();
    }
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; num_nodes];
    let mut forward = Vec::with_capacity(edges.len());
    for start in 0..num_nodes {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&target) = adjacent[node].get(*next) {
                *next += 1;
                match state[target] {
                    0 => {
                        forward.push((node, target));
                        state[target] = 1;
                        stack.push((target, 0));
                    }
                    1 => forward.push((target, node)),
                    _ => forward.push((node, target)),
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    forward
}

/// Layer of each node: the longest path to it from a node nobody calls.
fn longest_path_layers(num_nodes: usize, forward: &[(usize, usize)]) -> Vec<usize> {
    let mut in_degree = vec![0usize; num_nodes];
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); num_nodes];
    for &(source, target) in forward {
        in_degree[target] += 1;
        outgoing[source].push(target);
    }
    let mut layer = vec![0usize; num_nodes];
    let mut ready: Vec<usize> = (0..num_nodes).filter(|&n| in_degree[n] == 0).collect();
    ready.reverse();
    while let Some(node) = ready.pop() {
        for &target in &outgoing[node] {
            layer[target] = layer[target].max(layer[node] + 1);
            in_degree[target] -= 1;
            if in_degree[target] == 0 {
                ready.push(target);
            }
        }
    }
    layer
}

/// Barycenter sweeps: each node moves towards the mean position of its neighbours in the
/// previous (then next) layer, which untangles most crossings of a service map.
fn order_rows(rows: &mut [Vec<usize>], forward: &[(usize, usize)], layers: &[usize]) {
    let mut neighbours: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(source, target) in forward {
        if layers[source] != layers[target] {
            neighbours.entry(source).or_default().push(target);
            neighbours.entry(target).or_default().push(source);
        }
    }
    let mut position: HashMap<usize, f64> = HashMap::new();
    for row in rows.iter() {
        for (index, &node) in row.iter().enumerate() {
            position.insert(node, index as f64);
        }
    }
    for sweep in 0..SWEEPS {
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward {
            (1..rows.len()).collect()
        } else {
            (0..rows.len().saturating_sub(1)).rev().collect()
        };
        for layer in order {
            let reference = if downward { layer - 1 } else { layer + 1 };
            let mut keyed: Vec<(f64, usize)> = rows[layer]
                .iter()
                .map(|&node| {
                    let adjacent: Vec<f64> = neighbours
                        .get(&node)
                        .into_iter()
                        .flatten()
                        .filter(|other| layers[**other] == reference)
                        .map(|other| position[other])
                        .collect();
                    let key = if adjacent.is_empty() {
                        position[&node]
                    } else {
                        adjacent.iter().sum::<f64>() / adjacent.len() as f64
                    };
                    (key, node)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[layer] = keyed.into_iter().map(|(_, node)| node).collect();
            for (index, &node) in rows[layer].iter().enumerate() {
                position.insert(node, index as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &Placed, b: &Placed) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    #[test]
    fn calls_flow_left_to_right_and_cycles_still_get_layers() {
        // user → gateway → orders → payments → orders (a cycle), orders → db
        let labels = ["client:user", "gateway", "orders", "payments", "orders-db"];
        let edges = [(0, 1), (1, 2), (2, 3), (3, 2), (2, 4)];
        let layout = layout(&labels, &edges);
        let layer = |n: usize| layout.nodes[n].layer;
        assert_eq!([layer(0), layer(1), layer(2)], [0, 1, 2]);
        assert_eq!(layer(3), 3);
        assert_eq!(layer(4), 3);
        assert!(layout.nodes[1].x > layout.nodes[0].x);
    }

    #[test]
    fn the_same_input_gives_the_same_layout() {
        let labels = ["a", "b", "c", "d", "e"];
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 0)];
        assert_eq!(layout(&labels, &edges), layout(&labels, &edges));
    }

    #[test]
    fn no_two_boxes_overlap_on_a_200_node_map() {
        let names: Vec<String> = (0..200)
            .map(|n| format!("service-{n}-{}", "x".repeat(n % 23)))
            .collect();
        let labels: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut edges = Vec::new();
        let mut seed = 11u64;
        for _ in 0..600 {
            seed = crate::model::split_mix(seed);
            let source = (seed % 200) as usize;
            let target = ((seed >> 20) % 200) as usize;
            edges.push((source, target));
        }
        let layout = layout(&labels, &edges);
        for (i, a) in layout.nodes.iter().enumerate() {
            assert!(
                a.x >= 0.0
                    && a.y >= 0.0
                    && a.x + a.width <= layout.width
                    && a.y + a.height <= layout.height
            );
            for b in &layout.nodes[i + 1..] {
                assert!(!overlaps(a, b), "{a:?} overlaps {b:?}");
            }
        }
    }
}
