//! Longest synchronous call chains observed in real traces.
//!
//! While a trace is active its skeleton (span id → parent, service, role, edge kind, peer)
//! is buffered; once no span of it arrived for `trace_idle_ttl`, its longest chain of service
//! hops over HTTP/gRPC is computed and offered to the top-N list of distinct chains.
//! A hop is a SERVER span under a CLIENT span (or under another service's span) over a
//! synchronous edge; consumers and anything under a producer start a new chain (asynchronous);
//! a synchronous client whose server never reported in the trace adds its peer as the last node.
//! Bounded in traces, in buffered spans overall and per trace; overflow is counted. Every
//! second of engine time the sampling is set from the span rate offered: a stream of `r`
//! spans/s fills `r × trace_idle_ttl` spans, so when that exceeds half the buffer only one
//! trace in 2^k is followed, chosen by the trace id's random low bits (all spans of a trace or
//! none, as in OpenTelemetry's probability sampling). Rare long chains recur, so a sample finds
//! them; a full buffer refusing whole bursts would not.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::model::graph::{EdgeKind, NodeKey, NodeKind};
use crate::model::{SpanId, TraceId};

use super::classify::{GraphSpan, NodeRef, Peer, SpanRole};
use super::hash::FastMap;
use super::services::KnownServices;

const NIL: u32 = u32::MAX;

/// One distinct chain, with the latest trace that showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedChain {
    /// The services called one after the other (and a final virtual peer), caller first.
    pub nodes: Vec<NodeKey>,
    pub trace_id: TraceId,
    pub num_observed: u64,
    pub last_seen_unix_nano: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainCounters {
    pub num_traces_analysed: u64,
    /// One trace in this many is followed now (1 until the buffer overflows).
    pub sample_one_in: u64,
    /// Spans not buffered because `max_chain_traces` other traces were active.
    pub num_spans_over_trace_limit: u64,
    /// Spans not buffered because of `max_chain_spans` or `max_spans_per_trace`.
    pub num_spans_over_limit: u64,
    pub num_traces_active: u64,
    pub num_spans_buffered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLimits {
    pub trace_idle_ttl: Duration,
    pub max_traces: usize,
    pub max_spans: usize,
    pub max_spans_per_trace: usize,
    pub num_top_chains: usize,
    pub max_age: Duration,
}

struct SkeletonSpan {
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    service: Arc<str>,
    role: SpanRole,
    edge_kind: EdgeKind,
    /// Synchronous clients only: the peer, for a chain ending outside the instrumented world.
    peer: Option<Peer>,
}

struct TraceSkeleton {
    spans: Vec<SkeletonSpan>,
    last_seen_unix_nano: u64,
}

struct TopChain {
    nodes: Vec<NodeRef>,
    trace_id: TraceId,
    num_observed: u64,
    last_seen_unix_nano: u64,
}

/// Sampling never drops below one trace in 2^16.
const MAX_SAMPLE_SHIFT: u32 = 16;
/// How often the sampling is derived anew from the offered span rate.
const SAMPLING_PERIOD_NANOS: u64 = 1_000_000_000;

pub struct ChainTracker {
    traces: FastMap<TraceId, TraceSkeleton>,
    /// Follow traces whose low `sample_shift` bits are zero.
    sample_shift: u32,
    period_started_at_unix_nano: u64,
    num_offered_in_period: u64,
    /// Traces to look at, by the time they may have gone idle (one entry per trace).
    idle_queue: VecDeque<(TraceId, u64)>,
    num_spans: usize,
    idle_ttl_nanos: u64,
    max_age_nanos: u64,
    limits: ChainLimits,
    top: Vec<TopChain>,
    counters: ChainCounters,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl ChainTracker {
    pub fn new(limits: ChainLimits) -> Self {
        Self {
            traces: FastMap::default(),
            sample_shift: 0,
            period_started_at_unix_nano: 0,
            num_offered_in_period: 0,
            idle_queue: VecDeque::new(),
            num_spans: 0,
            idle_ttl_nanos: nanos(limits.trace_idle_ttl),
            max_age_nanos: nanos(limits.max_age),
            limits,
            top: Vec::new(),
            counters: ChainCounters::default(),
        }
    }

    pub fn counters(&self) -> ChainCounters {
        ChainCounters {
            sample_one_in: 1 << self.sample_shift,
            num_traces_active: self.traces.len() as u64,
            num_spans_buffered: self.num_spans as u64,
            ..self.counters
        }
    }

    /// The distinct chains kept, longest first.
    pub fn chains(&self) -> Vec<ObservedChain> {
        let mut chains: Vec<ObservedChain> = self
            .top
            .iter()
            .map(|chain| ObservedChain {
                nodes: chain.nodes.iter().map(NodeRef::to_key).collect(),
                trace_id: chain.trace_id,
                num_observed: chain.num_observed,
                last_seen_unix_nano: chain.last_seen_unix_nano,
            })
            .collect();
        chains.sort_by(|left, right| {
            (right.nodes.len(), right.last_seen_unix_nano)
                .cmp(&(left.nodes.len(), left.last_seen_unix_nano))
        });
        chains
    }

    pub fn observe(&mut self, span: &GraphSpan, now_unix_nano: u64) {
        self.num_offered_in_period += 1;
        if !self.is_sampled(span.trace_id) {
            return;
        }
        if self.num_spans >= self.limits.max_spans {
            self.counters.num_spans_over_limit += 1;
            return;
        }
        if let Some(trace) = self.traces.get_mut(&span.trace_id) {
            if trace.spans.len() >= self.limits.max_spans_per_trace {
                self.counters.num_spans_over_limit += 1;
                return;
            }
            trace.spans.push(skeleton_span(span));
            trace.last_seen_unix_nano = now_unix_nano;
        } else {
            if self.traces.len() >= self.limits.max_traces {
                self.counters.num_spans_over_trace_limit += 1;
                return;
            }
            let trace = TraceSkeleton {
                spans: vec![skeleton_span(span)],
                last_seen_unix_nano: now_unix_nano,
            };
            self.traces.insert(span.trace_id, trace);
            let deadline = now_unix_nano.saturating_add(self.idle_ttl_nanos);
            self.idle_queue.push_back((span.trace_id, deadline));
        }
        self.num_spans += 1;
    }

    fn is_sampled(&self, trace_id: TraceId) -> bool {
        let mask = (1u64 << self.sample_shift) - 1;
        let bytes = trace_id.as_bytes();
        let mut low = [0u8; 8];
        low.copy_from_slice(&bytes[8..]);
        u64::from_be_bytes(low) & mask == 0
    }

    /// Once per sampling period: follow one trace in 2^k, the least k for which the offered
    /// rate would fill at most half the span buffer.
    fn adjust_sampling(&mut self, now_unix_nano: u64) {
        let elapsed_nanos = now_unix_nano.saturating_sub(self.period_started_at_unix_nano);
        if elapsed_nanos < SAMPLING_PERIOD_NANOS {
            return;
        }
        let idle_periods = self.idle_ttl_nanos as f64 / elapsed_nanos as f64;
        let num_expected_spans = self.num_offered_in_period as f64 * idle_periods;
        let num_budget_spans = (self.limits.max_spans / 2).max(1) as f64;
        self.sample_shift = if num_expected_spans <= num_budget_spans {
            0
        } else {
            let shift = (num_expected_spans / num_budget_spans).log2().ceil();
            (shift as u32).min(MAX_SAMPLE_SHIFT)
        };
        self.period_started_at_unix_nano = now_unix_nano;
        self.num_offered_in_period = 0;
    }

    /// Analyses every trace idle at `now_unix_nano`, and forgets chains not seen for `max_age`.
    pub fn finish_idle(&mut self, now_unix_nano: u64, services: &KnownServices) {
        self.adjust_sampling(now_unix_nano);
        while let Some(&(trace_id, deadline)) = self.idle_queue.front() {
            if deadline > now_unix_nano {
                break;
            }
            self.idle_queue.pop_front();
            let Some(trace) = self.traces.get(&trace_id) else {
                continue;
            };
            let idle_at = trace
                .last_seen_unix_nano
                .saturating_add(self.idle_ttl_nanos);
            if idle_at > now_unix_nano {
                self.idle_queue.push_back((trace_id, idle_at));
                continue;
            }
            if let Some(trace) = self.traces.remove(&trace_id) {
                self.num_spans -= trace.spans.len();
                self.counters.num_traces_analysed += 1;
                if let Some(nodes) = longest_chain(&trace.spans, services) {
                    self.offer(nodes, trace_id, now_unix_nano);
                }
            }
        }
        let oldest_kept = now_unix_nano.saturating_sub(self.max_age_nanos);
        self.top
            .retain(|chain| chain.last_seen_unix_nano >= oldest_kept);
    }

    /// Keeps the `num_top_chains` longest distinct chains; a new one replaces the shortest
    /// (the least recently seen among equals) only if it is longer.
    fn offer(&mut self, nodes: Vec<NodeRef>, trace_id: TraceId, now_unix_nano: u64) {
        if let Some(known) = self.top.iter_mut().find(|chain| chain.nodes == nodes) {
            known.num_observed += 1;
            known.trace_id = trace_id;
            known.last_seen_unix_nano = now_unix_nano;
            return;
        }
        let chain = TopChain {
            nodes,
            trace_id,
            num_observed: 1,
            last_seen_unix_nano: now_unix_nano,
        };
        if self.top.len() < self.limits.num_top_chains {
            self.top.push(chain);
            return;
        }
        let shortest = self
            .top
            .iter_mut()
            .min_by_key(|kept| (kept.nodes.len(), kept.last_seen_unix_nano));
        if let Some(shortest) = shortest.filter(|kept| kept.nodes.len() < chain.nodes.len()) {
            *shortest = chain;
        }
    }
}

fn skeleton_span(span: &GraphSpan) -> SkeletonSpan {
    SkeletonSpan {
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        service: Arc::clone(&span.service),
        role: span.role,
        edge_kind: span.edge_kind,
        peer: match span.role {
            SpanRole::Client if span.edge_kind.is_synchronous() => span.peer.clone(),
            _ => None,
        },
    }
}

/// How a span relates to its parent's chain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A new chain starts at this span's service.
    Start,
    /// Same service, same chain.
    Continue,
    /// A synchronous call into this span's service: the chain grows by one.
    Hop,
}

fn step(span: &SkeletonSpan, parent_opt: Option<&SkeletonSpan>) -> Step {
    let Some(parent) = parent_opt else {
        return Step::Start;
    };
    if span.role == SpanRole::Consumer || parent.role == SpanRole::Producer {
        return Step::Start;
    }
    let is_same_service = span.service == parent.service;
    if span.role == SpanRole::Server {
        let is_synchronous = span.edge_kind.is_synchronous()
            || (parent.role == SpanRole::Client && parent.edge_kind.is_synchronous());
        if parent.role == SpanRole::Client || !is_same_service {
            return if is_synchronous {
                Step::Hop
            } else {
                Step::Start
            };
        }
        return Step::Continue;
    }
    if is_same_service {
        Step::Continue
    } else {
        Step::Start
    }
}

/// Per span: nodes in its chain, the span that added the chain's last node, and for such
/// spans the span that added the node before.
struct ChainLinks {
    len: Vec<u32>,
    tail: Vec<u32>,
    prev_tail: Vec<u32>,
}

/// The longest chain of at least two nodes in one trace's skeleton.
fn longest_chain(spans: &[SkeletonSpan], services: &KnownServices) -> Option<Vec<NodeRef>> {
    let mut position: FastMap<SpanId, u32> = FastMap::default();
    for (index, span) in spans.iter().enumerate() {
        position.entry(span.span_id).or_insert(index as u32);
    }
    let parent_of: Vec<u32> = spans
        .iter()
        .map(|span| {
            span.parent_span_id
                .and_then(|parent| position.get(&parent).copied())
                .unwrap_or(NIL)
        })
        .collect();
    let links = link_chains(spans, &parent_of);

    let mut has_server_child = vec![false; spans.len()];
    for (index, span) in spans.iter().enumerate() {
        if span.role == SpanRole::Server && parent_of[index] != NIL {
            has_server_child[parent_of[index] as usize] = true;
        }
    }
    // (nodes, end span, the peer ending the chain outside the instrumented world)
    let mut best: Option<(u32, usize, Option<&Peer>)> = None;
    for (index, span) in spans.iter().enumerate() {
        let leaf_peer = span.peer.as_ref().filter(|_| !has_server_child[index]);
        let len = links.len[index] + u32::from(leaf_peer.is_some());
        if best.is_none_or(|(best_len, _, _)| len > best_len) {
            best = Some((len, index, leaf_peer));
        }
    }
    let (len, end, leaf_peer) = best.filter(|(len, _, _)| *len >= 2)?;
    let mut nodes = Vec::with_capacity(len as usize);
    let mut tail = links.tail[end];
    while tail != NIL {
        let service = Arc::clone(&spans[tail as usize].service);
        nodes.push(NodeRef {
            kind: NodeKind::Service,
            name: service,
        });
        tail = links.prev_tail[tail as usize];
    }
    nodes.reverse();
    nodes.extend(leaf_peer.map(|peer| services.resolve(peer)));
    debug_assert_eq!(nodes.len(), len as usize);
    Some(nodes)
}

/// Computes every span's chain, parents before children, without recursion; a parent cycle
/// (malformed input) is cut where it closes.
fn link_chains(spans: &[SkeletonSpan], parent_of: &[u32]) -> ChainLinks {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Unvisited,
        InProgress,
        Done,
    }
    let num_spans = spans.len();
    let mut links = ChainLinks {
        len: vec![0; num_spans],
        tail: vec![NIL; num_spans],
        prev_tail: vec![NIL; num_spans],
    };
    let mut state = vec![State::Unvisited; num_spans];
    let mut path: Vec<u32> = Vec::new();
    for start in 0..num_spans as u32 {
        let mut cursor = start;
        while state[cursor as usize] == State::Unvisited {
            state[cursor as usize] = State::InProgress;
            path.push(cursor);
            match parent_of[cursor as usize] {
                NIL => break,
                parent => cursor = parent,
            }
        }
        while let Some(popped) = path.pop() {
            let index = popped as usize;
            let parent = parent_of[index];
            let parent_opt =
                (parent != NIL && state[parent as usize] == State::Done).then_some(parent as usize);
            let relation = step(&spans[index], parent_opt.map(|parent| &spans[parent]));
            match (relation, parent_opt) {
                (Step::Continue, Some(parent)) => {
                    links.len[index] = links.len[parent];
                    links.tail[index] = links.tail[parent];
                }
                (Step::Hop, Some(parent)) => {
                    links.len[index] = links.len[parent] + 1;
                    links.tail[index] = popped;
                    links.prev_tail[index] = links.tail[parent];
                }
                _ => {
                    links.len[index] = 1;
                    links.tail[index] = popped;
                }
            }
            state[index] = State::Done;
        }
    }
    links
}

#[cfg(test)]
mod tests;
