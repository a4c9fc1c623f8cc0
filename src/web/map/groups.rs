//! Large maps folded by namespace: above [`FOLD_ABOVE_NODES`] nodes, every namespace not asked
//! for (`expand`) becomes one group node whose figures are its members' summed (its latency
//! the worst member's), and the edges between namespaces are merged per (source, target,
//! kind); calls inside a folded namespace are left to its members' pages.

use std::collections::{BTreeSet, HashMap};

use crate::graph::analysis::GraphView;
use crate::model::figures::NodeTraffic;
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodePlacement};

/// Maps with more nodes than this open folded.
pub const FOLD_ABOVE_NODES: usize = 60;
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

/// Folds `view` when it has more than [`FOLD_ABOVE_NODES`] nodes in two namespaces or more;
/// otherwise hands it back whole.
pub fn fold(view: GraphView, traffic: HashMap<NodeKey, NodeTraffic>, expand: &Expand) -> Folded {
    let namespace_of = |placement: &NodePlacement| {
        placement
            .namespace
            .clone()
            .unwrap_or_else(|| NO_NAMESPACE.to_owned())
    };
    let namespaces: BTreeSet<String> = view
        .nodes
        .iter()
        .map(|(_, placement)| namespace_of(placement))
        .collect();
    if view.nodes.len() <= FOLD_ABOVE_NODES || namespaces.len() < 2 || *expand == Expand::All {
        return Folded {
            view,
            groups: HashMap::new(),
            traffic,
        };
    }
    let mut shown_as: HashMap<NodeKey, NodeKey> = HashMap::new();
    let mut groups: HashMap<NodeKey, Group> = HashMap::new();
    let mut nodes: Vec<(NodeKey, NodePlacement)> = Vec::new();
    let mut folded_traffic: HashMap<NodeKey, NodeTraffic> = HashMap::new();
    for (key, placement) in view.nodes {
        let namespace = namespace_of(&placement);
        let own = traffic.get(&key).copied().unwrap_or_default();
        if expand.opens(&namespace) {
            folded_traffic.insert(key.clone(), own);
            shown_as.insert(key.clone(), key.clone());
            nodes.push((key, placement));
            continue;
        }
        let group = group_key(&namespace);
        shown_as.insert(key, group.clone());
        let sum = folded_traffic.entry(group.clone()).or_default();
        sum.num_requests += own.num_requests;
        sum.num_errors += own.num_errors;
        if let Some(latency) = own.latency {
            sum.keep_worse_latency(latency);
        }
        let entry = groups.entry(group.clone()).or_insert_with(|| {
            nodes.push((group.clone(), placement.clone()));
            Group {
                namespace,
                num_members: 0,
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
        let folded = fold(mesh(), HashMap::new(), &Expand::parse(""));
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
    fn an_opened_namespace_shows_its_nodes_and_all_shows_everything() {
        let opened = fold(mesh(), HashMap::new(), &Expand::parse("billing"));
        assert_eq!(
            opened.view.nodes.len(),
            36,
            "35 billing nodes and the shop group"
        );
        assert_eq!(Expand::parse("billing").with("shop"), "billing,shop");
        let all = fold(mesh(), HashMap::new(), &Expand::parse("all"));
        assert_eq!((all.view.nodes.len(), all.groups.len()), (70, 0));
    }
}
