//! The communication-pattern audit of a range ([`crate::graph::audit`]): the map with its
//! breakers placed, the structural insights and the configured gateways and targets in;
//! findings filtered by kind and by the namespace of what they concern out. The trace-based
//! kinds share one bounded read of stored traces (`traces`).

mod traces;

use std::collections::{HashMap, HashSet};

use super::{GraphFilter, GraphRange, QueryError, QueryService, ServiceSummary, SignalOverlay};
use crate::graph::analysis::{self, Insights};
use crate::graph::audit::{self, AuditInput, EndpointPattern, Finding, FindingKind, ServedLoad};
use crate::model::graph::NodeKind;

/// Which findings to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Empty: every kind.
    pub kinds: HashSet<FindingKind>,
    /// Findings concerning at least one node of this namespace.
    pub namespace: Option<String>,
}

/// What the audit holds the system to (`[insights]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    /// The API gateways outside traffic should enter through; empty: the busiest entry.
    pub gateways: Vec<String>,
    /// Attributes read as a correlation id.
    pub correlation_keys: Vec<String>,
    /// Names that are hard-coded addresses besides IP literals.
    pub endpoint_patterns: Vec<EndpointPattern>,
    /// Requests per second one instance of a service should serve at most.
    pub max_requests_per_instance: f64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            gateways: Vec::new(),
            correlation_keys: Vec::new(),
            endpoint_patterns: Vec::new(),
            max_requests_per_instance: audit::MAX_REQUESTS_PER_INSTANCE,
        }
    }
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
        let (insights, mut findings) = self.audit_of(&placed.view, &placed.overlay);
        let wanted = |kind| filter.kinds.is_empty() || filter.kinds.contains(&kind);
        let mut versioned = Vec::new();
        if wanted(FindingKind::DeprecatedApiVersion) || wanted(FindingKind::TargetMissed) {
            let services = self.services_on(range, &placed.view).await?;
            findings.extend(self.instances_overloaded(&services));
            if wanted(FindingKind::DeprecatedApiVersion) {
                versioned = traces::versioned_services(&services);
            }
        }
        let follow_ids = wanted(FindingKind::CorrelationIdGap)
            && !self.audit_settings.correlation_keys.is_empty();
        let services: Vec<String> = versioned.iter().map(|(name, _)| name.clone()).collect();
        // The newest traces serve the correlation ids and the map's findings' examples.
        let sample = self.trace_sample(range, services).await?;
        for ((service, operations), traces) in versioned.iter().zip(&sample.of_services) {
            let calls = traces::calls_into(service, traces);
            findings.extend(audit::deprecated_versions(service, operations, &calls));
        }
        let newest = self.newest_calls(&sample.newest, &placed.view, follow_ids);
        if follow_ids {
            findings.extend(audit::correlation_gaps(&newest.carried));
        }
        audit::attach_examples(&mut findings, &newest.edges);
        findings.sort_by(audit::by_severity);
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
    /// The figures of the services on `view` over `range`.
    async fn services_on(
        &self,
        range: GraphRange,
        view: &analysis::GraphView,
    ) -> Result<Vec<ServiceSummary>, QueryError> {
        let on_map = service_names(view);
        Ok(self
            .services(range, None)
            .await?
            .into_iter()
            .filter(|summary| on_map.contains(summary.name.as_str()))
            .collect())
    }

    /// The services serving more per instance than `[insights] max_requests_per_instance`.
    fn instances_overloaded(&self, services: &[ServiceSummary]) -> Vec<Finding> {
        let served: Vec<ServedLoad> = services
            .iter()
            .map(|summary| {
                let operations = summary.operations.iter().map(|(_, stats)| stats);
                ServedLoad::of(&summary.name, operations)
            })
            .collect();
        audit::instances_overloaded(&served, self.audit_settings.max_requests_per_instance)
    }

    /// The structural insights and every finding of a placed map, with this service's latency
    /// targets and gateways.
    pub fn audit_of(
        &self,
        view: &analysis::GraphView,
        overlay: &SignalOverlay,
    ) -> (Insights, Vec<Finding>) {
        let insights = analysis::insights(view, &self.observed_chains());
        let input = AuditInput {
            gateways: self.audit_settings.gateways.clone(),
            targets: self.targets,
            breaker_edges: overlay.edge_breaker.keys().cloned().collect(),
            breaker_services: overlay.node_breakers.keys().cloned().collect(),
            endpoint_patterns: self.audit_settings.endpoint_patterns.clone(),
        };
        let findings = audit::audit(view, &insights, &input);
        (insights, findings)
    }
}

/// The names of the services on `view`.
fn service_names(view: &analysis::GraphView) -> HashSet<&str> {
    view.nodes
        .iter()
        .filter(|(key, _)| key.kind == NodeKind::Service)
        .map(|(key, _)| key.name.as_str())
        .collect()
}

/// The node ids a subject names: itself, or both ends of an edge (`a -> b`).
fn subject_nodes(subject: &str) -> impl Iterator<Item = &str> {
    match subject.split_once(" -> ") {
        Some((source, target)) => vec![source, target].into_iter(),
        None => vec![subject].into_iter(),
    }
}
