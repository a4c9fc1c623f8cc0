//! Builders for small graph views in the analyses' unit tests. Nodes are named by API id
//! (`service:a`, `topic:kafka orders`), and every edge endpoint becomes a node.

use crate::model::TraceId;
use crate::model::graph::{EdgeKey, EdgeKind, EdgeStats, NodeKey, NodePlacement};

use super::view::{GraphView, ObservedChain};

pub fn key(id: &str) -> NodeKey {
    NodeKey::parse_id(id).expect("fixture ids are kind:name")
}

pub fn trace_id(seed: u8) -> TraceId {
    TraceId::from_bytes(&[seed; 16]).expect("fixture trace ids are not all zero")
}

pub fn chain(seed: u8, services: &[&str]) -> ObservedChain {
    ObservedChain {
        trace_id: trace_id(seed),
        services: services.iter().map(|name| (*name).to_owned()).collect(),
    }
}

/// A view over a 60 s window, so 60 requests are 1 request/s.
pub struct ViewBuilder {
    view: GraphView,
}

impl ViewBuilder {
    pub fn new() -> Self {
        Self {
            view: GraphView {
                window_secs: 60.0,
                ..GraphView::default()
            },
        }
    }

    pub fn node(mut self, id: &str) -> Self {
        let node_key = key(id);
        if !self.view.nodes.iter().any(|(known, _)| *known == node_key) {
            self.view.nodes.push((node_key, NodePlacement::default()));
        }
        self
    }

    /// An edge whose calls each came from a different trace.
    pub fn edge(self, source: &str, target: &str, kind: EdgeKind, num_requests: u64) -> Self {
        self.edge_with_traces(source, target, kind, num_requests, num_requests, 1)
    }

    pub fn http(self, source: &str, target: &str, num_requests: u64) -> Self {
        self.edge(source, target, EdgeKind::Http, num_requests)
    }

    pub fn edge_with_traces(
        self,
        source: &str,
        target: &str,
        kind: EdgeKind,
        num_requests: u64,
        num_traces: u64,
        max_calls_per_trace: u64,
    ) -> Self {
        let stats = EdgeStats {
            num_requests,
            num_traces,
            max_calls_per_trace,
            ..EdgeStats::default()
        };
        self.with_stats(source, target, kind, stats)
    }

    /// An edge with the given figures.
    pub fn with_stats(self, source: &str, target: &str, kind: EdgeKind, stats: EdgeStats) -> Self {
        let mut builder = self.node(source).node(target);
        let edge_key = EdgeKey {
            source: key(source),
            target: key(target),
            kind,
        };
        builder.view.edges.push((edge_key, stats));
        builder
    }

    pub fn build(self) -> GraphView {
        self.view
    }
}
