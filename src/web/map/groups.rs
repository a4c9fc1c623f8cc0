//! Large maps folded: above [`FOLD_ABOVE_NODES`] nodes, every namespace not asked for
//! (`expand`) becomes one group node whose figures are its members' summed (its latency the
//! worst member's), and the edges between groups are merged per (source, target, kind); calls
//! inside a group are left to its members' pages. When the nodes left to draw one by one are
//! still more than [`FOLD_ABOVE_NODES`] (one namespace of 300 services, or an opened one),
//! the ones that need attention first stay (marked by a breaker, lag or alert, then the worst
//! health, errors, calls) as long as their edges stay about [`FOLDED_EDGES`], and the quieter
//! rest of each namespace folds into one group node.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::graph::analysis::GraphView;
use crate::model::figures::NodeTraffic;
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodePlacement};
use crate::web::format::health_of;

/// Maps with more nodes than this open folded; at most this many are drawn one by one.
pub const FOLD_ABOVE_NODES: usize = 60;
/// Edges a folded map draws at most, about: a dense mesh gets fewer nodes drawn one by one.
pub const FOLDED_EDGES: usize = 200;
const NO_NAMESPACE: &str = "(no namespace)";

/// Which namespaces are open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expand {
    All,
    Namespaces(BTreeSet<String>),
}

impl Expand {
    /// From the map's `expand` parameter: `all`, or namespaces separated by commas.
    pub fn parse(value: &str) -> Self {
        if value.trim() == "all" {
            return Expand::All;
        }
        Expand::Namespaces(
            value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    fn opens(&self, namespace: &str) -> bool {
        match self {
            Expand::All => true,
            Expand::Namespaces(names) => names.contains(namespace),
        }
    }

    /// The parameter's value with `namespace` opened too.
    pub fn with(&self, namespace: &str) -> String {
        match self {
            Expand::All => "all".to_owned(),
            Expand::Namespaces(names) => {
                let mut names = names.clone();
                names.insert(namespace.to_owned());
                names.into_iter().collect::<Vec<_>>().join(",")
            }
        }
    }
}

/// How a group node is drawn: its words and the map with its namespace opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNode {
    pub label: String,
    pub href: String,
}

/// A group node: the namespace it folds and how many nodes are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub namespace: String,
    pub num_members: usize,
    /// The quieter nodes of a namespace otherwise drawn, rather than a whole namespace.
    pub is_rest: bool,
}

/// The map with folded namespaces, each group's figures added to `traffic`.
pub struct Folded {
    pub view: GraphView,
    pub groups: HashMap<NodeKey, Group>,
    pub traffic: HashMap<NodeKey, NodeTraffic>,
}

/// The group node of a namespace.
pub fn group_key(namespace: &str) -> NodeKey {
    NodeKey::service(format!("namespace {namespace}"))
}

/// The group node of a namespace's quieter nodes.
pub fn rest_key(namespace: &str) -> NodeKey {
    NodeKey::service(format!("quieter in {namespace}"))
}

fn namespace_of(placement: &NodePlacement) -> String {
    placement
        .namespace
        .clone()
        .unwrap_or_else(|| NO_NAMESPACE.to_owned())
}

/// Folds `view` when it has more than [`FOLD_ABOVE_NODES`] nodes; otherwise hands it back
/// whole. `marked` nodes (a breaker, lag or a firing alert on them) are drawn first.
pub fn fold(
    view: GraphView,
    traffic: HashMap<NodeKey, NodeTraffic>,
    expand: &Expand,
    marked: &HashSet<NodeKey>,
) -> Folded {
    if view.nodes.len() <= FOLD_ABOVE_NODES || *expand == Expand::All {
        return Folded {
            view,
            groups: HashMap::new(),
            traffic,
        };
    }
    let (shown_one_by_one, folded_whole) = split_by_namespace(&view, expand);
    let kept = needing_attention(&shown_one_by_one, &view.edges, &traffic, marked);
    let mut shown_as: HashMap<NodeKey, NodeKey> = HashMap::new();
    let mut groups: HashMap<NodeKey, Group> = HashMap::new();
    let mut nodes: Vec<(NodeKey, NodePlacement)> = Vec::new();
    let mut folded_traffic: HashMap<NodeKey, NodeTraffic> = HashMap::new();
    for (key, placement) in view.nodes {
        let namespace = namespace_of(&placement);
        let own = traffic.get(&key).copied().unwrap_or_default();
        if kept.contains(&key) {
            folded_traffic.insert(key.clone(), own);
            shown_as.insert(key.clone(), key.clone());
            nodes.push((key, placement));
            continue;
        }
        let is_rest = !folded_whole.contains(&namespace);
        let group = if is_rest {
            rest_key(&namespace)
        } else {
            group_key(&namespace)
        };
        shown_as.insert(key, group.clone());
        let sum = folded_traffic.entry(group.clone()).or_default();
        sum.num_requests += own.num_requests;
        sum.num_unobserved += own.num_unobserved;
        sum.num_errors += own.num_errors;
        if let Some(latency) = own.latency {
            sum.keep_worse_latency(latency);
        }
        let entry = groups.entry(group.clone()).or_insert_with(|| {
            nodes.push((group.clone(), placement.clone()));
            Group {
                namespace,
                num_members: 0,
                is_rest,
            }
        });
        entry.num_members += 1;
    }
    Folded {
        view: GraphView {
            nodes,
            edges: merged_edges(view.edges, &shown_as, &groups),
            window_secs: view.window_secs,
        },
        groups,
        traffic: folded_traffic,
    }
}

/// The nodes of namespaces drawn one by one (all of them when the map has one namespace),
/// and the namespaces folded whole.
fn split_by_namespace<'a>(
    view: &'a GraphView,
    expand: &Expand,
) -> (Vec<&'a NodeKey>, BTreeSet<String>) {
    let namespaces: BTreeSet<String> = view
        .nodes
        .iter()
        .map(|(_, placement)| namespace_of(placement))
        .collect();
    let single = namespaces.len() < 2;
    let folded_whole: BTreeSet<String> = namespaces
        .into_iter()
        .filter(|namespace| !single && !expand.opens(namespace))
        .collect();
    let shown = view
        .nodes
        .iter()
        .filter(|(_, placement)| !folded_whole.contains(&namespace_of(placement)))
        .map(|(key, _)| key)
        .collect();
    (shown, folded_whole)
}

/// At most [`FOLD_ABOVE_NODES`] of `nodes`: marked ones first, then by worst health, errors and
/// calls (ties by id, so the same figures keep the same nodes), while the edges between them
/// (and two to the rest for each) stay within [`FOLDED_EDGES`].
fn needing_attention(
    nodes: &[&NodeKey],
    edges: &[(EdgeKey, EdgeStats)],
    traffic: &HashMap<NodeKey, NodeTraffic>,
    marked: &HashSet<NodeKey>,
) -> HashSet<NodeKey> {
    let mut neighbours: HashMap<&NodeKey, Vec<&NodeKey>> = HashMap::new();
    for (key, _) in edges {
        neighbours.entry(&key.source).or_default().push(&key.target);
        neighbours.entry(&key.target).or_default().push(&key.source);
    }
    let health_rank = |own: &NodeTraffic| {
        let error_rate =
            (own.num_requests > 0).then(|| own.num_errors as f64 / own.num_requests as f64);
        match health_of(error_rate, own.latency) {
            "bad" => 3,
            "warn" => 2,
            "ok" => 1,
            _ => 0,
        }
    };
    let mut ranked: Vec<(bool, u8, u64, u64, &NodeKey)> = nodes
        .iter()
        .map(|&key| {
            let own = traffic.get(key).copied().unwrap_or_default();
            (
                marked.contains(key),
                health_rank(&own),
                own.num_errors,
                own.num_requests,
                key,
            )
        })
        .collect();
    ranked.sort_by(|a, b| {
        (b.0, b.1, b.2, b.3)
            .cmp(&(a.0, a.1, a.2, a.3))
            .then_with(|| a.4.cmp(b.4))
    });
    let mut kept: HashSet<NodeKey> = HashSet::new();
    let mut num_edges = 0;
    for (.., key) in ranked {
        let adjacent = neighbours.get(key).map_or(&[][..], Vec::as_slice);
        let inside = adjacent
            .iter()
            .filter(|other| kept.contains(**other))
            .count();
        // Calls to and from the rest: two merged edges at most.
        let to_rest = 2 * usize::from(inside < adjacent.len());
        if kept.len() == FOLD_ABOVE_NODES || num_edges + inside + to_rest > FOLDED_EDGES {
            break;
        }
        num_edges += inside + to_rest;
        kept.insert(key.clone());
    }
    kept
}

/// Each edge between the nodes it is shown as, merged per (source, target, kind) in first-seen
/// order; calls inside a group left out.
fn merged_edges(
    edges: Vec<(EdgeKey, EdgeStats)>,
    shown_as: &HashMap<NodeKey, NodeKey>,
    groups: &HashMap<NodeKey, Group>,
) -> Vec<(EdgeKey, EdgeStats)> {
    let mut merged: HashMap<EdgeKey, EdgeStats> = HashMap::new();
    let mut order: Vec<EdgeKey> = Vec::new();
    for (key, stats) in edges {
        let source = shown_as.get(&key.source).cloned().unwrap_or(key.source);
        let target = shown_as.get(&key.target).cloned().unwrap_or(key.target);
        if source == target && groups.contains_key(&source) {
            continue;
        }
        let shown = EdgeKey {
            source,
            target,
            kind: key.kind,
        };
        merged
            .entry(shown.clone())
            .or_insert_with(|| {
                order.push(shown);
                EdgeStats::default()
            })
            .merge(&stats);
    }
    order
        .into_iter()
        .map(|key| {
            let stats = merged.remove(&key).unwrap_or_default();
            (key, stats)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::EdgeKind;

    fn mesh() -> GraphView {
        let placed = |namespace: &str| NodePlacement {
            namespace: Some(namespace.to_owned()),
            environment: None,
        };
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for number in 0..70 {
            let namespace = if number < 35 { "shop" } else { "billing" };
            nodes.push((NodeKey::service(format!("s{number}")), placed(namespace)));
            if number > 0 {
                edges.push((
                    EdgeKey {
                        source: NodeKey::service(format!("s{}", number - 1)),
                        target: NodeKey::service(format!("s{number}")),
                        kind: EdgeKind::Http,
                    },
                    EdgeStats {
                        num_requests: 10,
                        num_errors: 1,
                        ..EdgeStats::default()
                    },
                ));
            }
        }
        GraphView {
            nodes,
            edges,
            window_secs: 60.0,
        }
    }

    #[test]
    fn a_large_map_folds_its_namespaces_and_keeps_the_calls_between_them() {
        let folded = fold(mesh(), HashMap::new(), &Expand::parse(""), &HashSet::new());
        assert_eq!(folded.view.nodes.len(), 2);
        assert_eq!(folded.view.edges.len(), 1, "{:?}", folded.view.edges);
        let (key, stats) = &folded.view.edges[0];
        assert_eq!(
            (key.source.clone(), key.target.clone(), stats.num_requests),
            (group_key("shop"), group_key("billing"), 10)
        );
        assert_eq!(folded.groups[&group_key("shop")].num_members, 35);
    }

    #[test]
    fn one_large_namespace_draws_the_nodes_needing_attention_and_folds_the_quieter_rest() {
        let mut view = mesh();
        for (_, placement) in &mut view.nodes {
            placement.namespace = Some("shop".to_owned());
        }
        // Calls grow with the number; s3 fails, s5 is marked (an open breaker), both quiet.
        let mut traffic: HashMap<NodeKey, NodeTraffic> = (0..70)
            .map(|number| {
                let own = NodeTraffic {
                    num_requests: 100 + number,
                    num_errors: 0,
                    latency: None,
                    ..NodeTraffic::default()
                };
                (NodeKey::service(format!("s{number}")), own)
            })
            .collect();
        traffic
            .get_mut(&NodeKey::service("s3"))
            .expect("s3")
            .num_errors = 20;
        let marked = HashSet::from([NodeKey::service("s5")]);
        let folded = fold(view, traffic, &Expand::parse(""), &marked);
        let drawn: HashSet<&NodeKey> = folded.view.nodes.iter().map(|(key, _)| key).collect();
        assert_eq!(drawn.len(), FOLD_ABOVE_NODES + 1, "60 nodes and one group");
        for kept in ["s3", "s5", "s69", "s12"] {
            assert!(drawn.contains(&NodeKey::service(kept)), "{kept} is drawn");
        }
        for quiet in ["s0", "s1", "s11"] {
            assert!(
                !drawn.contains(&NodeKey::service(quiet)),
                "{quiet} is folded"
            );
        }
        let rest = &folded.groups[&rest_key("shop")];
        assert_eq!((rest.num_members, rest.is_rest), (10, true));
        assert_eq!(
            folded.traffic[&rest_key("shop")].num_requests,
            (0..12)
                .filter(|n| *n != 3 && *n != 5)
                .map(|n| 100 + n)
                .sum::<u64>()
        );
        // The chain s0 → … → s69 keeps its calls from the quieter nodes into the drawn ones.
        assert!(folded.view.edges.iter().any(
            |(key, _)| key.source == rest_key("shop") && key.target == NodeKey::service("s12")
        ));
    }

    #[test]
    fn a_dense_namespace_draws_fewer_nodes_one_by_one() {
        let mut view = mesh();
        view.edges.clear();
        for source in 0..70 {
            for target in 0..70 {
                if source != target {
                    let key = EdgeKey {
                        source: NodeKey::service(format!("s{source}")),
                        target: NodeKey::service(format!("s{target}")),
                        kind: EdgeKind::Http,
                    };
                    view.edges.push((key, EdgeStats::default()));
                }
            }
        }
        for (_, placement) in &mut view.nodes {
            placement.namespace = Some("shop".to_owned());
        }
        let folded = fold(view, HashMap::new(), &Expand::parse(""), &HashSet::new());
        let drawn_edges = folded.view.edges.len();
        assert!(
            drawn_edges <= FOLDED_EDGES + 2,
            "{drawn_edges} edges drawn of a complete mesh"
        );
        assert!(folded.view.nodes.len() > 5, "{:?}", folded.view.nodes);
    }

    #[test]
    fn an_opened_namespace_shows_its_nodes_and_all_shows_everything() {
        let opened = fold(
            mesh(),
            HashMap::new(),
            &Expand::parse("billing"),
            &HashSet::new(),
        );
        assert_eq!(
            opened.view.nodes.len(),
            36,
            "35 billing nodes and the shop group"
        );
        assert_eq!(Expand::parse("billing").with("shop"), "billing,shop");
        let all = fold(
            mesh(),
            HashMap::new(),
            &Expand::parse("all"),
            &HashSet::new(),
        );
        assert_eq!((all.view.nodes.len(), all.groups.len()), (70, 0));
    }
}
