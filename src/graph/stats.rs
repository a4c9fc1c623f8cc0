//! How one call or one operation span adds to the mergeable statistics, and the short-lived
//! calls-per-(trace, edge) counts behind `num_traces` / `max_calls_per_trace` (chatty pairs).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use crate::model::TraceId;
use crate::model::graph::{EdgeKey, EdgeKind, EdgeStats, NodePlacement, OperationStats};

use super::classify::{GraphSpan, NodeRef};
use super::generations::Generations;
use super::hash::{FoldBuildHasher, PrehashedBuildHasher};
use super::pairing::{Call, CallFacts, CallSides};

/// An edge with shared node names (the engine's in-memory form of `model::EdgeKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LiveEdgeKey {
    pub source: NodeRef,
    pub target: NodeRef,
    pub kind: EdgeKind,
}

impl LiveEdgeKey {
    /// Whether this is the edge from `source` to `target` of `kind`.
    pub fn is_edge(&self, source: &NodeRef, target: &NodeRef, kind: EdgeKind) -> bool {
        self.source == *source && self.target == *target && self.kind == kind
    }

    pub fn to_key(&self) -> EdgeKey {
        EdgeKey {
            source: self.source.to_key(),
            target: self.target.to_key(),
            kind: self.kind,
        }
    }
}

/// One edge in one minute: statistics and where its ends live.
#[derive(Debug, Clone)]
pub struct EdgeAgg {
    pub stats: EdgeStats,
    pub source_placement: Arc<NodePlacement>,
    pub target_placement: Arc<NodePlacement>,
}

/// One operation of one service in one minute.
#[derive(Debug, Clone)]
pub struct OperationAgg {
    pub stats: OperationStats,
    pub placement: Arc<NodePlacement>,
}

/// Where a call stands in its trace, for the chatty-pair fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceCalls {
    /// The first call of this trace on this edge in this minute.
    pub is_first_in_minute: bool,
    /// Calls this trace has made on this edge so far (including this one).
    pub num_calls: u64,
}

/// Adds one observed call on an edge, counting for `facts.weight` calls (sampling). A call
/// refused by the caller's open breaker counts as a failed call (whatever status its span
/// set) and records no latency: it never reached the target, and its near-zero wait would
/// pull the client percentiles below the server's.
pub fn record_call(
    stats: &mut EdgeStats,
    facts: &CallFacts,
    consumer_group: Option<&str>,
    trace_calls: TraceCalls,
) {
    let weight = facts.weight.max(1);
    let counted = |is: bool| if is { weight } else { 0 };
    stats.num_requests += weight;
    stats.num_unobserved += weight - 1;
    stats.num_errors += counted(facts.is_error || facts.is_short_circuited);
    stats.num_retries += counted(facts.is_retry);
    stats.num_short_circuited += counted(facts.is_short_circuited);
    match facts.sides {
        CallSides::Complete => {}
        CallSides::ClientOnly => stats.num_client_only += weight,
        CallSides::ServerOnly => stats.num_server_only += weight,
    }
    if !facts.is_short_circuited {
        record_latencies(stats, facts, weight);
    }
    // A sampled trace stands for `weight` traces like it.
    stats.num_traces += counted(trace_calls.is_first_in_minute);
    stats.max_calls_per_trace = stats.max_calls_per_trace.max(trace_calls.num_calls);
    if let Some(group) = consumer_group
        && !stats.consumer_groups.iter().any(|known| known == group)
    {
        stats.add_consumer_group(group);
    }
}

/// Adds a call to its edge's split by operation (the caller's, the callee's); false when the
/// pair did not fit and went to the edge's other operations.
pub fn record_split(stats: &mut EdgeStats, call: &Call, caller: &str) -> bool {
    let facts = &call.facts;
    let weight = facts.weight.max(1);
    let (split, own) = stats.split_mut(caller, &call.callee_operation);
    split.num_requests += weight;
    if facts.is_error || facts.is_short_circuited {
        split.num_errors += weight;
    }
    if !facts.is_short_circuited
        && let Some(nanos) = facts.client_nanos.or(facts.server_nanos)
    {
        split.latency.record_n(nanos, weight);
    }
    own
}

fn record_latencies(stats: &mut EdgeStats, facts: &CallFacts, weight: u64) {
    if let Some(nanos) = facts.client_nanos {
        stats.client_latency.record_n(nanos, weight);
    }
    if let Some(nanos) = facts.server_nanos {
        stats.server_latency.record_n(nanos, weight);
    }
    if let Some(nanos) = facts.publish_consume_nanos {
        stats.publish_consume_latency.record_n(nanos, weight);
    }
}

/// Adds one observed operation span, counting for its weight (sampling), to the operation and
/// to its service's version. False when the version did not fit ([`MAX_VERSIONS`]).
///
/// [`MAX_VERSIONS`]: crate::model::graph::MAX_VERSIONS
pub fn record_operation(stats: &mut OperationStats, span: &GraphSpan) -> bool {
    let weight = span.weight.count.max(1);
    let errors = if span.is_error { weight } else { 0 };
    let nanos = span.duration_nanos();
    stats.num_requests += weight;
    stats.num_unobserved += weight - 1;
    stats.num_errors += errors;
    stats.latency.record_n(nanos, weight);
    let Some(version) = span.version.as_deref() else {
        return true;
    };
    let Some(of_version) = stats.version_mut(version) else {
        return false;
    };
    of_version.num_requests += weight;
    of_version.num_errors += errors;
    of_version.latency.record_n(nanos, weight);
    true
}

#[derive(Debug, Clone, Copy)]
struct TraceEdgeCount {
    num_calls: u32,
    /// The minute of the last call; counts only need to tell minutes apart.
    minute: u32,
}

/// Calls per (trace, edge), kept while the trace is active (one to two TTLs, see
/// [`Generations`]): O(1) per call, bounded by `2 × max_entries`, no per-entry timers.
/// Keyed by a keyed 64-bit fingerprint of (trace, edge): 16-byte entries, one hash; two
/// pairs sharing a fingerprint (odds ~n²/2⁶⁵) would only share a count.
pub struct CallsPerTrace {
    counts: Generations<u64, TraceEdgeCount, PrehashedBuildHasher>,
    fingerprints: FoldBuildHasher,
}

impl CallsPerTrace {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        let ttl_nanos = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        Self {
            counts: Generations::new(ttl_nanos, max_entries),
            fingerprints: FoldBuildHasher::default(),
        }
    }

    /// Times the counters filled up before their TTL (calls of a trace spread over two
    /// generations then count as two traces: `num_traces` is over-, chattiness
    /// under-estimated, never the reverse).
    pub fn num_early_rotations(&self) -> u64 {
        self.counts.num_early_rotations()
    }

    pub fn rotate_if_due(&mut self, now_unix_nano: u64) {
        self.counts.rotate_if_due(now_unix_nano, drop);
    }

    /// Counts one call of `trace_id` on the edge with `edge_fingerprint` in `minute`.
    pub fn record(
        &mut self,
        trace_id: TraceId,
        edge_fingerprint: u64,
        minute: i64,
        now_unix_nano: u64,
    ) -> TraceCalls {
        let key = self.fingerprints.hash_one((trace_id, edge_fingerprint));
        // Wraps every 8 000 years; only equality matters.
        let minute = minute as u32;
        if let Some(count) = self.counts.get_mut(&key) {
            return count_call(count, minute);
        }
        let mut count = TraceEdgeCount {
            num_calls: 0,
            minute: minute.wrapping_sub(1),
        };
        let trace_calls = count_call(&mut count, minute);
        self.counts.insert(key, count, now_unix_nano, drop);
        trace_calls
    }
}

fn count_call(count: &mut TraceEdgeCount, minute: u32) -> TraceCalls {
    count.num_calls = count.num_calls.saturating_add(1);
    let is_first_in_minute = count.minute != minute;
    count.minute = minute;
    TraceCalls {
        is_first_in_minute,
        num_calls: u64::from(count.num_calls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fixtures::{SECOND, trace};

    #[test]
    fn a_refused_call_is_failed_and_records_no_latency() {
        let facts = |is_short_circuited: bool| CallFacts {
            sides: CallSides::Complete,
            is_error: false,
            is_retry: false,
            is_short_circuited,
            client_nanos: Some(100_000),
            server_nanos: None,
            publish_consume_nanos: None,
            weight: 1,
        };
        let first = TraceCalls {
            is_first_in_minute: true,
            num_calls: 1,
        };
        let mut stats = EdgeStats::default();
        record_call(&mut stats, &facts(true), None, first);
        record_call(&mut stats, &facts(false), None, first);
        assert_eq!((stats.num_requests, stats.num_errors), (2, 1));
        assert_eq!(stats.num_short_circuited, 1);
        assert_eq!(stats.client_latency.count(), 1);
        assert_eq!(stats.error_rate(), Some(0.0));
    }

    #[test]
    fn a_sampled_call_counts_for_its_weight_and_is_marked_unobserved() {
        let call = |weight: u64, is_error: bool, client_nanos: u64| CallFacts {
            sides: CallSides::ClientOnly,
            is_error,
            is_retry: is_error,
            is_short_circuited: false,
            client_nanos: Some(client_nanos),
            server_nanos: None,
            publish_consume_nanos: None,
            weight,
        };
        let first = TraceCalls {
            is_first_in_minute: true,
            num_calls: 1,
        };
        let mut stats = EdgeStats::default();
        // Three calls seen from 25 % sampled traces (each stands for 4), one of them failed,
        // and one unsampled call.
        record_call(&mut stats, &call(4, false, 1_000_000), None, first);
        record_call(&mut stats, &call(4, true, 9_000_000), None, first);
        record_call(&mut stats, &call(4, false, 1_000_000), None, first);
        record_call(&mut stats, &call(1, false, 1_000_000), None, first);
        assert_eq!(stats.num_requests, 13);
        assert_eq!(stats.num_requests - stats.num_unobserved, 4, "observed");
        assert_eq!((stats.num_errors, stats.num_retries), (4, 4));
        assert_eq!(stats.num_client_only, 13);
        assert_eq!(stats.num_traces, 13);
        assert_eq!(stats.client_latency.count(), 13);
        assert_eq!(stats.error_rate(), Some(4.0 / 13.0));
        // The sketch is weighted too: 9 calls of 1 ms, 4 of 9 ms.
        let counts: Vec<u64> = stats
            .client_latency
            .buckets()
            .iter()
            .map(|(_, count)| *count)
            .collect();
        assert_eq!(counts, [9, 4]);
        // Merging keeps the estimate and what was observed.
        let mut merged = stats.clone();
        merged.merge(&stats);
        assert_eq!((merged.num_requests, merged.num_unobserved), (26, 18));
    }

    #[test]
    fn an_operation_counts_for_its_span_weight() {
        let mut span =
            crate::graph::fixtures::span("orders", crate::model::SpanKind::Server, 1, 1).build();
        span.trace_state = "ot=th:c".to_owned();
        let graph_span = GraphSpan::from_span(&span);
        let mut stats = OperationStats::default();
        record_operation(&mut stats, &graph_span);
        record_operation(&mut stats, &graph_span);
        assert_eq!((stats.num_requests, stats.num_unobserved), (8, 6));
        assert_eq!(stats.latency.count(), 8);
    }

    #[test]
    fn counts_calls_per_trace_and_first_calls_per_minute() {
        let mut per_trace = CallsPerTrace::new(Duration::from_secs(10), 100);
        let first = per_trace.record(trace(1), 7, 5, 0);
        assert_eq!(
            first,
            TraceCalls {
                is_first_in_minute: true,
                num_calls: 1
            }
        );
        let second = per_trace.record(trace(1), 7, 5, SECOND);
        assert_eq!(
            second,
            TraceCalls {
                is_first_in_minute: false,
                num_calls: 2
            }
        );
        assert!(per_trace.record(trace(1), 8, 5, SECOND).is_first_in_minute);
        assert!(per_trace.record(trace(2), 7, 5, SECOND).is_first_in_minute);
        let next_minute = per_trace.record(trace(1), 7, 6, 2 * SECOND);
        assert!(next_minute.is_first_in_minute);
        assert_eq!(next_minute.num_calls, 3, "the trace's total carries over");
    }

    #[test]
    fn generations_forget_after_two_ttls_and_stay_bounded() {
        let mut per_trace = CallsPerTrace::new(Duration::from_secs(10), 4);
        per_trace.record(trace(1), 7, 5, 0);
        per_trace.rotate_if_due(10 * SECOND);
        assert_eq!(per_trace.record(trace(1), 7, 5, 10 * SECOND).num_calls, 2);
        per_trace.rotate_if_due(20 * SECOND);
        per_trace.rotate_if_due(30 * SECOND);
        assert_eq!(per_trace.record(trace(1), 7, 5, 30 * SECOND).num_calls, 1);

        for number in 0..100 {
            per_trace.record(trace(number), 7, 5, 31 * SECOND);
            assert!(per_trace.counts.len() <= 8);
        }
        assert!(per_trace.num_early_rotations() > 0);
    }
}
