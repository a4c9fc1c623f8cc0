//! The communication-pattern audit of a range ([`crate::graph::audit`]): the map with its
//! breakers placed, the structural insights and the configured gateways and targets in;
//! findings filtered by kind and by the namespace of what they concern out.

use std::collections::{HashMap, HashSet};

use super::{GraphFilter, GraphRange, PlacedGraph, QueryError, QueryService};
use crate::graph::analysis::{self, Insights};
use crate::graph::audit::{self, AuditInput, Finding, FindingKind};

/// Which findings to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Empty: every kind.
    pub kinds: HashSet<FindingKind>,
    /// Findings concerning at least one node of this namespace.
    pub namespace: Option<String>,
}

/// The structural insights and the findings of one range.
#[derive(Debug, Clone)]
pub struct Audit {
    pub insights: Insights,
    pub findings: Vec<Finding>,
}

impl QueryService {
    /// The audit of the map of `range` as `view_filter` narrows it (a namespace, a focus),
    /// its findings kept by `filter`.
    pub async fn audit(
        &self,
        range: GraphRange,
        view_filter: &GraphFilter,
        filter: &FindingFilter,
    ) -> Result<Audit, QueryError> {
        let placed = self.placed_graph(range, view_filter).await?;
        let (insights, findings) = self.audit_of(&placed);
        let namespace_of: HashMap<String, Option<&str>> = placed
            .view
            .nodes
            .iter()
            .map(|(key, placement)| (key.id(), placement.namespace.as_deref()))
            .collect();
        let findings = findings
            .into_iter()
            .filter(|finding| filter.kinds.is_empty() || filter.kinds.contains(&finding.kind))
            .filter(|finding| match &filter.namespace {
                None => true,
                Some(namespace) => finding.subjects.iter().any(|subject| {
                    subject_nodes(subject).any(|node| {
                        namespace_of.get(node).copied().flatten() == Some(namespace.as_str())
                    })
                }),
            })
            .collect();
        Ok(Audit { insights, findings })
    }
}

impl QueryService {
    /// The structural insights and every finding of a placed map, with this service's latency
    /// targets and gateways.
    pub fn audit_of(&self, placed: &PlacedGraph) -> (Insights, Vec<Finding>) {
        let insights = analysis::insights(&placed.view, &self.observed_chains());
        let input = AuditInput {
            gateways: self.gateways.clone(),
            targets: self.targets,
            breaker_edges: placed.overlay.edge_breaker.keys().cloned().collect(),
            breaker_services: placed.overlay.node_breakers.keys().cloned().collect(),
        };
        let findings = audit::audit(&placed.view, &insights, &input);
        (insights, findings)
    }
}

/// The node ids a subject names: itself, or both ends of an edge (`a -> b`).
fn subject_nodes(subject: &str) -> impl Iterator<Item = &str> {
    match subject.split_once(" -> ") {
        Some((source, target)) => vec![source, target].into_iter(),
        None => vec![subject].into_iter(),
    }
}
