//! The calls one whole stored trace holds, by the rules of `pairing` applied to all its spans
//! at once (no TTL, nothing pending): which spans made each call, for drill-downs that split an
//! edge by the operations and answers behind it. The live map never uses this; it must agree
//! with `pairing` on the edge of every call.
//!
//! - A CLIENT span and the SERVER spans under it: one call `service → service` each (of the
//!   client's kind, or the server's when the client's is `other`).
//! - A CLIENT span without a server (database calls, calls an open breaker refused, servers
//!   that never reported): one call to the peer it names, a logical name of a known service
//!   being that service; a client naming no peer is no call.
//! - A SERVER span whose parent is no waiting client span: a call from `client:user`.
//! - A PRODUCER: `service → topic`; a CONSUMER: `topic → service`, its producer being its
//!   parent or a linked span of the same trace.

use std::collections::HashMap;

use crate::model::graph::{EdgeKind, NodeKey, NodeKind};
use crate::model::{Span, SpanId};

use super::classify::{GraphSpan, SpanRole};
use super::naming::CLIENT_USER_NAME;
use super::sampling::SamplingRules;

/// Ancestors followed at most to find a call's operation (broken data may make spans each
/// other's parents).
const MAX_ANCESTORS: usize = 64;

/// One call on one edge, with the spans that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceCall<'a> {
    pub source: NodeKey,
    pub target: NodeKey,
    pub kind: EdgeKind,
    /// The span that made the call: its client or producer; for a consumer, its producer
    /// when the trace holds it; none for calls from `client:user`.
    pub caller: Option<&'a Span>,
    /// The span that answered: its server or consumer, when one did.
    pub callee: Option<&'a Span>,
    /// The operation the caller made the call in: the nearest SERVER or CONSUMER span above
    /// the caller (for a consumer, above its producer) in its own service, else the topmost
    /// span above it there.
    pub caller_operation: Option<&'a Span>,
    /// When the call happened, as the map counts it: its calling side's start (the
    /// consumer's, for a consumer).
    pub start_unix_nano: u64,
    /// What the caller waited (the client's or producer's duration), else what the answering
    /// side spent; none for refused calls.
    pub duration_nanos: Option<u64>,
    /// Either side reported an error (never a refused call: those are counted apart).
    pub is_error: bool,
    /// Refused by the caller's open breaker: it never reached the target.
    pub is_refused: bool,
}

/// Every call of the trace whose spans are `spans`; `is_service` tells whether a name is an
/// instrumented service's (a logical peer name of one is that service).
pub fn trace_calls(spans: &[Span], is_service: impl Fn(&str) -> bool) -> Vec<TraceCall<'_>> {
    let trace = Trace::new(spans);
    let mut num_servers_of: HashMap<usize, usize> = HashMap::new();
    for (index, span) in trace.graph.iter().enumerate() {
        if span.role == SpanRole::Server
            && let Some(parent) = trace.waiting_client(index)
        {
            *num_servers_of.entry(parent).or_default() += 1;
        }
    }
    let mut calls = Vec::new();
    for (index, span) in trace.graph.iter().enumerate() {
        match span.role {
            SpanRole::Client if num_servers_of.contains_key(&index) => {}
            SpanRole::Client | SpanRole::Producer => {
                let Some(peer) = &span.peer else { continue };
                let target = if peer.is_logical_name
                    && peer.node.kind == NodeKind::External
                    && is_service(&peer.node.name)
                {
                    NodeKey::service(&*peer.node.name)
                } else {
                    peer.node.to_key()
                };
                calls.push(trace.call_out(index, target, None));
            }
            SpanRole::Server => match trace.waiting_client(index) {
                Some(client) => {
                    calls.push(trace.call_out(client, trace.service(index), Some(index)));
                }
                None => calls.push(trace.call_from_user(index)),
            },
            SpanRole::Consumer => {
                if let Some(call) = trace.consumed(index) {
                    calls.push(call);
                }
            }
            SpanRole::Internal => {}
        }
    }
    calls
}

/// A trace's spans with their classification and an index by span id.
struct Trace<'a> {
    spans: &'a [Span],
    graph: Vec<GraphSpan>,
    by_id: HashMap<SpanId, usize>,
}

impl<'a> Trace<'a> {
    fn new(spans: &'a [Span]) -> Self {
        Self {
            spans,
            graph: GraphSpan::from_spans(spans, &SamplingRules::default()),
            by_id: spans
                .iter()
                .enumerate()
                .map(|(index, span)| (span.span_id, index))
                .collect(),
        }
    }

    fn parent(&self, index: usize) -> Option<usize> {
        let parent = self.graph[index].parent_span_id?;
        self.by_id.get(&parent).copied()
    }

    fn service(&self, index: usize) -> NodeKey {
        NodeKey::service(&*self.graph[index].service)
    }

    /// The parent of a server span when it is a client span that waits for its server (not a
    /// database call, not refused), as pairing's clients do.
    fn waiting_client(&self, server: usize) -> Option<usize> {
        let parent = self.parent(server)?;
        let client = &self.graph[parent];
        (client.role == SpanRole::Client
            && client.edge_kind != EdgeKind::Database
            && !client.is_short_circuited)
            .then_some(parent)
    }

    /// The operation span `index` runs in: see [`TraceCall::caller_operation`].
    fn operation_above(&self, index: usize) -> Option<usize> {
        let service = &self.graph[index].service;
        let mut topmost = None;
        let mut current = index;
        for _ in 0..MAX_ANCESTORS {
            let Some(parent) = self.parent(current) else {
                break;
            };
            let span = &self.graph[parent];
            if span.service != *service {
                break;
            }
            if matches!(span.role, SpanRole::Server | SpanRole::Consumer) {
                return Some(parent);
            }
            topmost = Some(parent);
            current = parent;
        }
        topmost
    }

    /// A call made by the client or producer at `caller`, answered by the server at `callee`.
    fn call_out(&self, caller: usize, target: NodeKey, callee: Option<usize>) -> TraceCall<'a> {
        let client = &self.graph[caller];
        let kind = match (client.edge_kind, callee) {
            (EdgeKind::Other, Some(server)) => self.graph[server].edge_kind,
            (kind, _) => kind,
        };
        let is_refused = client.is_short_circuited;
        let callee_failed = callee.is_some_and(|server| self.graph[server].is_error);
        TraceCall {
            source: self.service(caller),
            target,
            kind,
            caller: Some(&self.spans[caller]),
            callee: callee.map(|server| &self.spans[server]),
            caller_operation: self.operation_above(caller).map(|index| &self.spans[index]),
            start_unix_nano: client.start_time_unix_nano,
            duration_nanos: (!is_refused).then(|| client.duration_nanos()),
            is_error: !is_refused && (client.is_error || callee_failed),
            is_refused,
        }
    }

    /// A server span whose caller never reported (or a root): a call from `client:user`.
    fn call_from_user(&self, server: usize) -> TraceCall<'a> {
        let span = &self.graph[server];
        TraceCall {
            source: NodeKey::new(NodeKind::Client, CLIENT_USER_NAME),
            target: self.service(server),
            kind: span.edge_kind,
            caller: None,
            callee: Some(&self.spans[server]),
            caller_operation: None,
            start_unix_nano: span.start_time_unix_nano,
            duration_nanos: Some(span.duration_nanos()),
            is_error: span.is_error,
            is_refused: false,
        }
    }

    /// The consumer span at `consumer` taking a message from its topic.
    fn consumed(&self, consumer: usize) -> Option<TraceCall<'a>> {
        let span = &self.graph[consumer];
        let topic = span.peer.as_ref()?;
        let linked = span
            .links
            .iter()
            .filter(|link| link.trace_id == span.trace_id)
            .map(|link| link.span_id);
        let producer = span
            .parent_span_id
            .into_iter()
            .chain(linked)
            .filter_map(|id| self.by_id.get(&id).copied())
            .find(|candidate| self.graph[*candidate].role == SpanRole::Producer);
        Some(TraceCall {
            source: topic.node.to_key(),
            target: self.service(consumer),
            kind: EdgeKind::Messaging,
            caller: producer.map(|index| &self.spans[index]),
            callee: Some(&self.spans[consumer]),
            caller_operation: producer
                .and_then(|index| self.operation_above(index))
                .map(|index| &self.spans[index]),
            start_unix_nano: span.start_time_unix_nano,
            duration_nanos: Some(span.duration_nanos()),
            is_error: span.is_error,
            is_refused: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fixtures::{MILLI, shop_trace, span};
    use crate::model::SpanKind;

    fn edge_of(call: &TraceCall<'_>) -> String {
        format!("{} -> {}", call.source, call.target)
    }

    #[test]
    fn a_trace_holds_the_calls_pairing_would_count_with_their_spans() {
        let spans = shop_trace(1);
        let calls = trace_calls(&spans, |name| name == "payments");
        let edges: Vec<String> = calls.iter().map(edge_of).collect();
        assert_eq!(
            edges,
            [
                "client:user -> service:gateway",
                "service:gateway -> service:orders",
                "service:orders -> database:postgresql orders-db",
                "service:orders -> topic:kafka orders.created",
                "topic:kafka orders.created -> service:notifications",
                "service:orders -> service:payments",
            ]
        );
        fn name(span: Option<&Span>) -> Option<&str> {
            span.map(|span| span.name.as_str())
        }
        // Paired: the client's wait, an error on either side, the operation it was made in.
        let paired = &calls[1];
        assert_eq!((paired.kind, paired.is_error), (EdgeKind::Http, true));
        assert_eq!(name(paired.callee), Some("POST /orders"));
        assert_eq!(name(paired.caller_operation), Some("POST /api/orders"));
        assert_eq!(paired.duration_nanos, Some(80 * MILLI));
        // Through an internal span, up to the server span of the same service.
        assert_eq!(name(calls[2].caller_operation), Some("POST /orders"));
        assert_eq!(calls[2].kind, EdgeKind::Database);
        // The consumer: its producer is its caller, the producer's operation its caller's.
        let consumed = &calls[4];
        assert_eq!(name(consumed.caller), Some("send orders.created"));
        assert_eq!(name(consumed.caller_operation), Some("POST /orders"));
        assert_eq!(consumed.start_unix_nano, spans[6].start_time_unix_nano);
        assert_eq!(consumed.duration_nanos, Some(5 * MILLI));
        // Refused: no latency and not an error, to the logical name's service.
        let refused = &calls[5];
        assert!(refused.is_refused && !refused.is_error);
        assert_eq!(refused.duration_nanos, None);
        // Without the payments service known, its logical name stays a virtual peer.
        let calls = trace_calls(&spans, |_| false);
        assert_eq!(
            edge_of(&calls[5]),
            "service:orders -> external:payments",
            "{calls:#?}"
        );
    }

    #[test]
    fn a_server_without_its_client_is_called_by_the_user_and_loops_end() {
        let spans = vec![
            span("orders", SpanKind::Server, 2, 3)
                .parent(2)
                .http()
                .build(),
            // Each other's parents: the walk up stops.
            span("orders", SpanKind::Internal, 2, 10).parent(11).build(),
            span("orders", SpanKind::Internal, 2, 11).parent(10).build(),
            span("orders", SpanKind::Client, 2, 12)
                .parent(10)
                .attr("db.system.name", "redis")
                .build(),
        ];
        let calls = trace_calls(&spans, |_| true);
        let edges: Vec<String> = calls.iter().map(edge_of).collect();
        assert_eq!(
            edges,
            [
                "client:user -> service:orders",
                "service:orders -> database:redis"
            ]
        );
        assert_eq!(calls[0].caller, None);
        assert!(calls[1].caller_operation.is_some());
    }
}
