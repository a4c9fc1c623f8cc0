//! The layers of a layered map drawing (after Sugiyama et al., as Graphviz `dot` and ELK do):
//! cycles broken by reversing DFS back edges, layers from longest paths, an edge that spans
//! several layers cut into segments through one placeholder ("dummy") per layer it crosses,
//! and the order inside each layer chosen by barycenter sweeps, keeping the sweep with the
//! fewest crossings. Placeholders are what keeps an edge out of the nodes it passes: they
//! reserve its own slot in every layer it crosses. A dense mesh would need hundreds of
//! thousands of them (300 services each calling any other: 275 layers, ~400k placeholders),
//! so they are handed out under [`PLACEHOLDER_BUDGET`], shortest edges first; an edge left
//! without is drawn straight across the layers it spans and may pass boxes on its way.

use std::collections::HashMap;

const SWEEPS: usize = 12;
/// Items (nodes and placeholders) beyond which a drawing is large: fewer sweeps here, fewer
/// alignment passes in `layout`.
pub const LARGE_ITEMS: usize = 4_000;
/// Placeholders one drawing may have: beyond it the longest edges get none.
pub const PLACEHOLDER_BUDGET: usize = 12_000;

/// The items of every layer in order: nodes `0..num_nodes`, then placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Layered {
    pub num_nodes: usize,
    pub layer_of: Vec<usize>,
    pub rows: Vec<Vec<usize>>,
    /// Per input edge: its items from the upper end to the lower one, or its node.
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Chain(Chain),
    /// An edge from a node to itself.
    Loop(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The upper node, its placeholders in layer order, the lower node.
    pub items: Vec<usize>,
    /// The edge points from the lower node to the upper one (it closed a cycle).
    pub reversed: bool,
}

impl Layered {
    pub fn is_placeholder(&self, item: usize) -> bool {
        item >= self.num_nodes
    }

    /// Layers the graph of `num_nodes` nodes and `edges` (pairs of node indices).
    pub fn new(num_nodes: usize, edges: &[(usize, usize)]) -> Self {
        let forward = acyclic_edges(num_nodes, edges);
        let mut layer_of = longest_path_layers(num_nodes, &forward);
        let num_layers = layer_of.iter().copied().max().map_or(0, |max| max + 1);
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); num_layers];
        for (node, &layer) in layer_of.iter().enumerate() {
            rows[layer].push(node);
        }
        let crossed = |&(source, target): &(usize, usize)| {
            layer_of[source]
                .abs_diff(layer_of[target])
                .saturating_sub(1)
        };
        let longest_placed = longest_within_budget(edges.iter().map(crossed));
        let mut links = Vec::with_capacity(edges.len());
        for &(source, target) in edges {
            if source == target {
                links.push(Link::Loop(source));
                continue;
            }
            let reversed = layer_of[source] > layer_of[target];
            let (upper, lower) = if reversed {
                (target, source)
            } else {
                (source, target)
            };
            let mut items = vec![upper];
            let (first, last) = (layer_of[upper] + 1, layer_of[lower]);
            if last.saturating_sub(first) <= longest_placed {
                for (layer, row) in rows.iter_mut().enumerate().take(last).skip(first) {
                    let placeholder = layer_of.len();
                    layer_of.push(layer);
                    row.push(placeholder);
                    items.push(placeholder);
                }
            }
            items.push(lower);
            links.push(Link::Chain(Chain { items, reversed }));
        }
        let mut layered = Self {
            num_nodes,
            layer_of,
            rows,
            links,
        };
        layered.order_rows();
        layered
    }

    /// Every edge's chain (self-loops have none), with the edge's index.
    pub fn chains(&self) -> impl Iterator<Item = (usize, &Chain)> + '_ {
        self.links
            .iter()
            .enumerate()
            .filter_map(|(edge, link)| match link {
                Link::Chain(chain) => Some((edge, chain)),
                Link::Loop(_) => None,
            })
    }

    /// Segments between consecutive layers, as (upper item, lower item).
    fn segments(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.chains()
            .flat_map(|(_, chain)| chain.items.windows(2).map(|pair| (pair[0], pair[1])))
    }

    /// Barycenter sweeps down and up; the order with the fewest crossings wins.
    fn order_rows(&mut self) {
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); self.layer_of.len()];
        let mut down: Vec<Vec<usize>> = vec![Vec::new(); self.layer_of.len()];
        for (upper, lower) in self.segments() {
            down[upper].push(lower);
            up[lower].push(upper);
        }
        let mut position = vec![0.0; self.layer_of.len()];
        let index_rows = |rows: &[Vec<usize>], position: &mut [f64]| {
            for row in rows {
                for (index, &item) in row.iter().enumerate() {
                    position[item] = index as f64;
                }
            }
        };
        index_rows(&self.rows, &mut position);
        let mut best = (self.crossings(&position), self.rows.clone());
        // Large drawings get fewer sweeps: each counts every crossing.
        let sweeps = if self.layer_of.len() > LARGE_ITEMS {
            3
        } else {
            SWEEPS
        };
        for sweep in 0..sweeps {
            let downward = sweep % 2 == 0;
            let layers: Vec<usize> = if downward {
                (1..self.rows.len()).collect()
            } else {
                (0..self.rows.len().saturating_sub(1)).rev().collect()
            };
            for layer in layers {
                let neighbours = if downward { &up } else { &down };
                let mut keyed: Vec<(f64, usize)> = self.rows[layer]
                    .iter()
                    .map(|&item| {
                        let adjacent = &neighbours[item];
                        let key = if adjacent.is_empty() {
                            position[item]
                        } else {
                            adjacent.iter().map(|&other| position[other]).sum::<f64>()
                                / adjacent.len() as f64
                        };
                        (key, item)
                    })
                    .collect();
                // Stable on ties: the previous order decides.
                keyed.sort_by(|a, b| {
                    a.0.total_cmp(&b.0)
                        .then(position[a.1].total_cmp(&position[b.1]))
                });
                self.rows[layer] = keyed.into_iter().map(|(_, item)| item).collect();
                for (index, &item) in self.rows[layer].iter().enumerate() {
                    position[item] = index as f64;
                }
            }
            let crossings = self.crossings(&position);
            if crossings < best.0 {
                best = (crossings, self.rows.clone());
            }
        }
        self.rows = best.1;
    }

    /// How many pairs of segments cross, counted per pair of layers by inversions.
    fn crossings(&self, position: &[f64]) -> usize {
        let mut by_layer: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for (upper, lower) in self.segments() {
            by_layer
                .entry(self.layer_of[upper])
                .or_default()
                .push((position[upper] as usize, position[lower] as usize));
        }
        by_layer
            .into_values()
            .map(|mut pairs| {
                pairs.sort_unstable();
                count_inversions(pairs.into_iter().map(|(_, lower)| lower).collect())
            })
            .sum()
    }
}

/// The most layers an edge may cross with placeholders so that all edges crossing that many or
/// fewer fit [`PLACEHOLDER_BUDGET`] (`usize::MAX` when every edge fits).
fn longest_within_budget(crossed: impl Iterator<Item = usize>) -> usize {
    let mut crossed: Vec<usize> = crossed.filter(|&layers| layers > 0).collect();
    if crossed.iter().sum::<usize>() <= PLACEHOLDER_BUDGET {
        return usize::MAX;
    }
    crossed.sort_unstable();
    let mut used = 0;
    let mut longest = 0;
    for (index, &layers) in crossed.iter().enumerate() {
        used += layers;
        // Edges crossing the same number of layers are all placed or none is.
        let last_of_length = crossed.get(index + 1) != Some(&layers);
        if used > PLACEHOLDER_BUDGET {
            break;
        }
        if last_of_length {
            longest = layers;
        }
    }
    longest
}

/// Pairs `i < j` with `values[i] > values[j]` (merge sort).
fn count_inversions(mut values: Vec<usize>) -> usize {
    fn sort(values: &mut [usize], scratch: &mut Vec<usize>) -> usize {
        if values.len() < 2 {
            return 0;
        }
        let middle = values.len() / 2;
        let mut count = sort(&mut values[..middle], scratch) + sort(&mut values[middle..], scratch);
        scratch.clear();
        let (mut left, mut right) = (0, middle);
        while left < middle && right < values.len() {
            if values[right] < values[left] {
                count += middle - left;
                scratch.push(values[right]);
                right += 1;
            } else {
                scratch.push(values[left]);
                left += 1;
            }
        }
        scratch.extend_from_slice(&values[left..middle]);
        scratch.extend_from_slice(&values[right..]);
        values.copy_from_slice(scratch);
        count
    }
    sort(&mut values, &mut Vec::new())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_edge_gets_one_placeholder_per_layer_it_crosses_and_a_cycle_edge_is_reversed() {
        // a → b → c → d, a → d (crosses b's and c's layers), d → b (closes a cycle).
        let layered = Layered::new(4, &[(0, 1), (1, 2), (2, 3), (0, 3), (3, 1), (2, 2)]);
        assert_eq!(&layered.layer_of[..4], [0, 1, 2, 3]);
        let chain = |edge: usize| match &layered.links[edge] {
            Link::Chain(chain) => chain.clone(),
            Link::Loop(_) => panic!("not a loop"),
        };
        let long = chain(3);
        assert_eq!(long.items.len(), 4);
        assert!(
            long.items[1..3]
                .iter()
                .all(|&item| layered.is_placeholder(item))
        );
        assert_eq!(
            long.items[1..3]
                .iter()
                .map(|&item| layered.layer_of[item])
                .collect::<Vec<_>>(),
            [1, 2]
        );
        let back = chain(4);
        assert!(back.reversed && back.items.first() == Some(&1) && back.items.last() == Some(&3));
        assert_eq!(layered.links[5], Link::Loop(2), "a self-loop has no chain");
    }

    #[test]
    fn sweeps_untangle_a_crossing() {
        // Two callers whose callees start in the crossed order.
        let layered = Layered::new(4, &[(0, 3), (1, 2)]);
        let position = |item: usize| {
            let layer = layered.layer_of[item];
            layered.rows[layer].iter().position(|&other| other == item)
        };
        assert_eq!(
            position(0) < position(1),
            position(3) < position(2),
            "{layered:?}"
        );
    }

    #[test]
    fn a_dense_mesh_gets_placeholders_for_its_shortest_edges_only() {
        // A chain 0 → 1 → … → 99 (99 layers deep) and every node calling every later one.
        let edges: Vec<(usize, usize)> = (0..100)
            .flat_map(|source| (source + 1..100).map(move |target| (source, target)))
            .collect();
        let layered = Layered::new(100, &edges);
        let placeholders = layered.layer_of.len() - layered.num_nodes;
        assert!(
            placeholders <= PLACEHOLDER_BUDGET,
            "{placeholders} placeholders"
        );
        let crossed_with_placeholders = |chain: &Chain| chain.items.len() - 2;
        let spans: Vec<(usize, usize)> = layered
            .chains()
            .map(|(edge, chain)| {
                let (source, target) = edges[edge];
                (target - source - 1, crossed_with_placeholders(chain))
            })
            .collect();
        let longest_placed = spans
            .iter()
            .filter(|(crossed, placed)| *crossed > 0 && placed == crossed)
            .map(|(crossed, _)| *crossed)
            .max()
            .expect("short edges placed");
        assert!(longest_placed >= 5, "placed up to {longest_placed}");
        for (crossed, placed) in spans {
            assert!(
                placed == crossed && crossed <= longest_placed
                    || placed == 0 && crossed > longest_placed,
                "an edge crossing {crossed} layers got {placed} placeholders"
            );
        }
    }

    #[test]
    fn inversions_are_counted() {
        assert_eq!(count_inversions(vec![0, 1, 2]), 0);
        assert_eq!(count_inversions(vec![2, 1, 0]), 3);
        assert_eq!(count_inversions(vec![1, 0, 1, 0]), 3);
    }
}
