//! What the trace-based kinds of the audit read from stored traces, in one bounded read: the
//! newest traces of the range (correlation ids, and example traces for the findings drawn
//! from the map) and the newest holding each service that
//! serves a route in two versions (who calls which version), each search bounded like the
//! edge page's split.

use std::collections::BTreeMap;

use super::super::edge_split::{MAX_SPANS, newest_traces_query};
use super::super::{GraphRange, QueryError, QueryService, ServiceSummary};
use crate::graph::analysis::GraphView;
use crate::graph::audit::{self, CallerCalls, CarriedCall, TraceEdges};
use crate::graph::trace_calls;
use crate::model::graph::{NodeKey, NodeKind};
use crate::model::{Span, attr_get};

/// Services whose callers' versions are read from traces, at most (one search each).
pub const MAX_VERSIONED_SERVICES: usize = 5;

/// One trace, as whole spans.
type Trace = Vec<Span>;

/// The traces the audit reads, from one read of the store.
#[derive(Debug, Default)]
pub(super) struct TraceSample {
    /// The newest traces of the range.
    pub newest: Vec<Trace>,
    /// The newest traces holding each asked service, in the order asked.
    pub of_services: Vec<Vec<Trace>>,
}

impl QueryService {
    /// The newest traces of `range` and those holding each of `services`, in one read.
    pub(super) async fn trace_sample(
        &self,
        range: GraphRange,
        services: Vec<String>,
    ) -> Result<TraceSample, QueryError> {
        let bounds = range.minutes.unix_nano_bounds();
        let mut queries = Vec::with_capacity(services.len() + 1);
        queries.push(newest_traces_query(None, bounds));
        queries.extend(
            services
                .iter()
                .map(|service| newest_traces_query(Some(service), bounds)),
        );
        let mut read = self
            .whole_trace_read(move |reader| reader.search_trace_spans_of_each(&queries, MAX_SPANS))
            .await?
            .into_iter();
        let newest = read.next().unwrap_or_default();
        Ok(TraceSample {
            newest,
            of_services: read.collect(),
        })
    }

    /// What the newest traces' calls give the audit, in one pass over them: each trace's
    /// edges and nodes (examples for the map's findings) and, when `follow_ids`, the calls
    /// into services whose caller carried a correlation id (on its client span or the
    /// operation it called from), with whether the callee's span kept it.
    pub(super) fn newest_calls(
        &self,
        traces: &[Trace],
        view: &GraphView,
        follow_ids: bool,
    ) -> NewestCalls {
        let services = super::service_names(view);
        let has_id = |span: Option<&Span>| {
            span.is_some_and(|span| {
                self.audit_settings
                    .correlation_keys
                    .iter()
                    .any(|key| attr_get(&span.attributes, key).is_some())
            })
        };
        let mut found = NewestCalls::default();
        for spans in traces {
            let Some(first) = spans.first() else { continue };
            let mut edges = TraceEdges {
                trace_id: first.trace_id.to_hex(),
                ..TraceEdges::default()
            };
            for call in trace_calls(spans, |name| services.contains(name)) {
                edges.failed |= call.is_error;
                edges
                    .edges
                    .insert(audit::edge_between(&call.source, &call.target));
                edges.nodes.insert(call.source.id());
                edges.nodes.insert(call.target.id());
                let Some(callee) = call.callee else { continue };
                if !follow_ids
                    || call.target.kind != NodeKind::Service
                    || !(has_id(call.caller) || has_id(call.caller_operation))
                {
                    continue;
                }
                found.carried.push(CarriedCall {
                    caller: call.source.id(),
                    callee: call.target.id(),
                    kept: has_id(Some(callee)),
                    trace_id: callee.trace_id.to_hex(),
                });
            }
            found.edges.push(edges);
        }
        found
    }
}

/// What [`QueryService::newest_calls`] finds.
#[derive(Debug, Default)]
pub(super) struct NewestCalls {
    /// One per trace read.
    pub edges: Vec<TraceEdges>,
    /// Calls that carried a correlation id into a service.
    pub carried: Vec<CarriedCall>,
}

/// The first [`MAX_VERSIONED_SERVICES`] of `services` serving a route in two versions, with
/// their operations' requests.
pub(super) fn versioned_services(services: &[ServiceSummary]) -> Vec<(String, Vec<(String, u64)>)> {
    services
        .iter()
        .filter_map(|summary| {
            let operations: Vec<(String, u64)> = summary
                .operations
                .iter()
                .map(|(name, stats)| (name.clone(), stats.num_requests))
                .collect();
            (!audit::versioned_routes(&operations).is_empty())
                .then(|| (summary.name.clone(), operations))
        })
        .take(MAX_VERSIONED_SERVICES)
        .collect()
}

/// The calls into `service` in `traces`, per caller and operation.
pub(super) fn calls_into(service: &str, traces: &[Trace]) -> Vec<CallerCalls> {
    let target = NodeKey::service(service);
    let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
    for spans in traces {
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
    counted
        .into_iter()
        .map(|((caller, operation), num_calls)| CallerCalls {
            caller,
            operation,
            num_calls,
        })
        .collect()
}
