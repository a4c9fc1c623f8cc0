//! The communication-pattern audit of a range ([`crate::graph::audit`]): the map with its
//! breakers placed, the structural insights and the configured gateways and targets in;
//! findings filtered by kind and by the namespace of what they concern out.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::edge_split::{MAX_SPANS, newest_traces_query};
use super::{GraphFilter, GraphRange, QueryError, QueryService, SignalOverlay};
use crate::graph::analysis::{self, Insights};
use crate::graph::audit::{self, AuditInput, CallerCalls, CarriedCall, Finding, FindingKind};
use crate::graph::trace_calls;
use crate::model::graph::{NodeKey, NodeKind};
use crate::model::{Span, attr_get};

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
        let (insights, mut findings) = self.audit_of(&placed.view, &placed.overlay);
        let wanted = |kind| filter.kinds.is_empty() || filter.kinds.contains(&kind);
        if wanted(FindingKind::DeprecatedApiVersion) {
            findings.extend(self.deprecated_versions(range, &placed.view).await?);
        }
        if wanted(FindingKind::CorrelationIdGap) && !self.correlation_keys.is_empty() {
            let calls = self.carried_calls(range, &placed.view).await?;
            findings.extend(audit::correlation_gaps(&calls));
        }
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

/// Services whose callers' versions are read from traces, at most (each one bounded read).
pub const MAX_VERSIONED_SERVICES: usize = 5;

impl QueryService {
    /// Routes served in two versions and the callers still on an older one: the services'
    /// operations from the map, who calls which from the newest stored traces of each such
    /// service (bounded like the edge page's split).
    async fn deprecated_versions(
        &self,
        range: GraphRange,
        view: &analysis::GraphView,
    ) -> Result<Vec<Finding>, QueryError> {
        let on_map = service_names(view);
        let mut findings = Vec::new();
        let services = self.services(range, None).await?;
        let versioned = services
            .iter()
            .filter(|summary| on_map.contains(summary.name.as_str()))
            .filter_map(|summary| {
                let operations: Vec<(String, u64)> = summary
                    .operations
                    .iter()
                    .map(|(name, stats)| (name.clone(), stats.num_requests))
                    .collect();
                (!audit::versioned_routes(&operations).is_empty())
                    .then(|| (summary.name.clone(), operations))
            });
        for (service, operations) in versioned.take(MAX_VERSIONED_SERVICES) {
            let calls = self.calls_into(range, &service).await?;
            findings.extend(audit::deprecated_versions(&service, &operations, &calls));
        }
        Ok(findings)
    }

    /// The newest stored traces of `range` (holding `service`, when given), bounded like the
    /// edge page's split.
    async fn newest_traces(
        &self,
        range: GraphRange,
        service: Option<&str>,
    ) -> Result<Vec<Vec<Span>>, QueryError> {
        let query = newest_traces_query(service, range.minutes.unix_nano_bounds());
        self.whole_trace_read(move |reader| reader.search_trace_spans(&query, MAX_SPANS))
            .await
    }

    /// Calls into services whose caller carried a correlation id (on its client span or the
    /// operation it called from), in the newest stored traces, and whether the callee's span
    /// kept it.
    async fn carried_calls(
        &self,
        range: GraphRange,
        view: &analysis::GraphView,
    ) -> Result<Vec<CarriedCall>, QueryError> {
        let services = service_names(view);
        let has_id = |span: Option<&Span>| {
            span.is_some_and(|span| {
                self.correlation_keys
                    .iter()
                    .any(|key| attr_get(&span.attributes, key).is_some())
            })
        };
        let mut carried = Vec::new();
        for spans in &self.newest_traces(range, None).await? {
            for call in trace_calls(spans, |name| services.contains(name)) {
                let Some(callee) = call.callee else { continue };
                if call.target.kind != NodeKind::Service
                    || !(has_id(call.caller) || has_id(call.caller_operation))
                {
                    continue;
                }
                carried.push(CarriedCall {
                    caller: call.source.id(),
                    callee: call.target.id(),
                    kept: has_id(Some(callee)),
                    trace_id: callee.trace_id.to_hex(),
                });
            }
        }
        Ok(carried)
    }

    /// The calls into `service` found in the newest stored traces holding it, per caller and
    /// operation.
    async fn calls_into(
        &self,
        range: GraphRange,
        service: &str,
    ) -> Result<Vec<CallerCalls>, QueryError> {
        let traces = self.newest_traces(range, Some(service)).await?;
        let target = NodeKey::service(service);
        let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
        for spans in &traces {
            for call in trace_calls(spans, |name| name == service) {
                if call.target != target {
                    continue;
                }
                if let Some(callee) = call.callee {
                    *counted
                        .entry((call.source.id(), callee.name.clone()))
                        .or_default() += 1;
                }
            }
        }
        Ok(counted
            .into_iter()
            .map(|((caller, operation), num_calls)| CallerCalls {
                caller,
                operation,
                num_calls,
            })
            .collect())
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
            gateways: self.gateways.clone(),
            targets: self.targets,
            breaker_edges: overlay.edge_breaker.keys().cloned().collect(),
            breaker_services: overlay.node_breakers.keys().cloned().collect(),
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
