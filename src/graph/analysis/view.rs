//! The input of the analyses — a snapshot of the map that any producer can build — and the
//! indexed form they share: nodes numbered in id order, parallel edges merged per node pair,
//! and the direction in which a failure travels across each edge.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use crate::model::TraceId;
use crate::model::graph::{EdgeKey, EdgeKind, EdgeStats, NodeKey, NodeKind, NodePlacement};

/// A snapshot of the dependency map over one window, as the analyses read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphView {
    /// Every node and where it lives. Edge endpoints missing here are analysed all the same.
    pub nodes: Vec<(NodeKey, NodePlacement)>,
    /// One entry per (source, target, kind) with its statistics over the window.
    pub edges: Vec<(EdgeKey, EdgeStats)>,
    /// Length of the window the statistics cover; a rate is `num_requests / window_secs`.
    pub window_secs: f64,
}

impl GraphView {
    /// Requests per second over the window, 0 when the window is empty or invalid.
    pub(super) fn rate_per_s(&self, num_requests: u64) -> f64 {
        rate_per_s(num_requests, self.window_secs)
    }
}

/// The hop sequence of one call chain seen in one trace, caller first, as the engine extracts
/// it (synchronous hops only, so its length is how deep a request blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedChain {
    pub trace_id: TraceId,
    pub services: Vec<String>,
}

fn rate_per_s(num_requests: u64, window_secs: f64) -> f64 {
    if window_secs.is_finite() && window_secs > 0.0 {
        num_requests as f64 / window_secs
    } else {
        0.0
    }
}

/// Every edge from one node to another, whatever its kind, merged into one.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Link {
    pub source: usize,
    pub target: usize,
    /// The kinds seen on this pair with their requests, busiest first (ties in kind order).
    pub kinds: Vec<(EdgeKind, u64)>,
    pub num_requests: u64,
    /// The end whose failure harms the other end (`dependent`). The callee for calls and
    /// publishes; the topic for topic → consumer deliveries.
    pub dependency: usize,
    pub dependent: usize,
}

impl Link {
    fn new(
        keys: &[&NodeKey],
        (source, target): (usize, usize),
        kind: EdgeKind,
        num_requests: u64,
    ) -> Self {
        let (dependency, dependent) = if keys[source].kind == NodeKind::Topic {
            (source, target)
        } else {
            (target, source)
        };
        Self {
            source,
            target,
            kinds: vec![(kind, num_requests)],
            num_requests,
            dependency,
            dependent,
        }
    }

    /// Adds edges of this pair; they arrive sorted by kind.
    fn add(&mut self, kind: EdgeKind, num_requests: u64) {
        self.num_requests += num_requests;
        match self.kinds.last_mut() {
            Some((last_kind, last_requests)) if *last_kind == kind => {
                *last_requests += num_requests
            }
            _ => self.kinds.push((kind, num_requests)),
        }
    }

    /// The kind that stands for this link among those `accept` allows: the busiest one.
    pub fn busiest_kind(&self, accept: impl Fn(EdgeKind) -> bool) -> Option<EdgeKind> {
        self.kinds
            .iter()
            .map(|(kind, _)| *kind)
            .find(|kind| accept(*kind))
    }

    pub fn has_synchronous_kind(&self) -> bool {
        self.busiest_kind(EdgeKind::is_synchronous).is_some()
    }

    pub fn is_self_loop(&self) -> bool {
        self.source == self.target
    }
}

/// A [`GraphView`] numbered for graph algorithms. Node indices follow id order, so sorting by
/// index is sorting by id.
#[derive(Debug)]
pub(super) struct IndexedGraph<'a> {
    pub keys: Vec<&'a NodeKey>,
    pub ids: Vec<String>,
    /// Sorted by (source, target).
    pub links: Vec<Link>,
    /// Indices into `links` of each node's outgoing links, by target.
    pub outgoing: Vec<Vec<usize>>,
    /// Indices into `links` of the links through which each node's failure spreads.
    pub dependents: Vec<Vec<usize>>,
    pub total_requests_per_s: f64,
    pub window_secs: f64,
}

impl<'a> IndexedGraph<'a> {
    pub fn new(view: &'a GraphView) -> Self {
        let (ids, keys) = number_nodes(view);
        let number_by_key: HashMap<&NodeKey, usize> = keys
            .iter()
            .enumerate()
            .map(|(node, key)| (*key, node))
            .collect();
        let number_of = |key: &NodeKey| number_by_key.get(key).copied();
        let links = merge_links(view, &keys, number_of);
        let mut outgoing = vec![Vec::new(); keys.len()];
        let mut dependents = vec![Vec::new(); keys.len()];
        for (link_index, link) in links.iter().enumerate() {
            outgoing[link.source].push(link_index);
            dependents[link.dependency].push(link_index);
        }
        let total_requests = links.iter().map(|link| link.num_requests).sum();
        Self {
            keys,
            ids,
            links,
            outgoing,
            dependents,
            total_requests_per_s: view.rate_per_s(total_requests),
            window_secs: view.window_secs,
        }
    }

    pub fn num_nodes(&self) -> usize {
        self.keys.len()
    }

    pub fn index_of(&self, key: &NodeKey) -> Option<usize> {
        self.ids.binary_search(&key.id()).ok()
    }

    pub fn kind(&self, node: usize) -> NodeKind {
        self.keys[node].kind
    }

    pub fn rate_per_s(&self, num_requests: u64) -> f64 {
        rate_per_s(num_requests, self.window_secs)
    }
}

/// Every node of the view once, edge endpoints included, in id order: (ids, keys).
fn number_nodes(view: &GraphView) -> (Vec<String>, Vec<&NodeKey>) {
    let unique_keys: HashSet<&NodeKey> = view
        .nodes
        .iter()
        .map(|(key, _)| key)
        .chain(
            view.edges
                .iter()
                .flat_map(|(edge, _)| [&edge.source, &edge.target]),
        )
        .collect();
    let mut numbered: Vec<(String, &NodeKey)> =
        unique_keys.into_iter().map(|key| (key.id(), key)).collect();
    numbered.sort_unstable_by(|left, right| left.0.cmp(&right.0));
    numbered.into_iter().unzip()
}

/// The view's edges merged per (source, target), sorted by it.
fn merge_links(
    view: &GraphView,
    keys: &[&NodeKey],
    number_of: impl Fn(&NodeKey) -> Option<usize>,
) -> Vec<Link> {
    let mut edges: Vec<(usize, usize, EdgeKind, u64)> = view
        .edges
        .iter()
        .filter_map(|(edge, stats)| {
            let endpoints = number_of(&edge.source).zip(number_of(&edge.target));
            debug_assert!(endpoints.is_some(), "every edge endpoint is numbered");
            let (source, target) = endpoints?;
            Some((source, target, edge.kind, stats.num_requests))
        })
        .collect();
    edges.sort_unstable();
    let mut links: Vec<Link> = Vec::new();
    for (source, target, kind, num_requests) in edges {
        match links.last_mut() {
            Some(link) if (link.source, link.target) == (source, target) => {
                link.add(kind, num_requests);
            }
            _ => links.push(Link::new(keys, (source, target), kind, num_requests)),
        }
    }
    for link in &mut links {
        // Stable: equal counts keep kind order.
        link.kinds
            .sort_by_key(|(_, num_requests)| Reverse(*num_requests));
    }
    links
}
