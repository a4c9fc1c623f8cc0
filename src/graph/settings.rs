//! The engine's limits and timeouts. Every bound that keeps live state finite is here, with
//! its default; the config layer maps its `*_secs` / `max_*` fields onto these.

use std::num::NonZeroUsize;
use std::time::Duration;

/// Limits of the graph engine. `NonZero*` where zero would make a structure useless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// How long a client or server half waits for its counterpart (Tempo's `wait`).
    pub pairing_ttl: Duration,
    /// Halves waiting at most; when full, the oldest is let go as unpaired first.
    pub max_pending_items: NonZeroUsize,
    /// Links of one consumer span followed to find producers; 0 disables link pairing.
    pub max_links_per_span: usize,
    /// Distinct edges recorded per minute; calls on further edges are counted, not recorded.
    pub max_edges_per_minute: NonZeroUsize,
    /// Distinct (service, operation) pairs recorded per minute.
    pub max_operations_per_minute: NonZeroUsize,
    /// Closed minutes kept in memory besides the open one (the live window).
    pub num_closed_minutes: NonZeroUsize,
    /// A call that started longer ago than this (by its span time) is too late for the map:
    /// counted, not drawn (its spans are still stored). Later calls within this go to their
    /// minute, in memory or merged into the stored rollups.
    pub max_lateness: Duration,
    /// (trace, edge) call counters per generation, for calls per trace (chatty pairs).
    pub max_trace_edge_counters: NonZeroUsize,
    /// A trace with no new span for this long is complete: its chain is computed, its call
    /// counters may go.
    pub trace_idle_ttl: Duration,
    /// Traces buffered at once for chain analysis.
    pub max_chain_traces: NonZeroUsize,
    /// Spans buffered at once for chain analysis, over all traces.
    pub max_chain_spans: NonZeroUsize,
    /// Spans buffered per trace (a runaway trace cannot take the whole buffer).
    pub max_spans_per_trace: NonZeroUsize,
    /// Distinct longest chains kept.
    pub num_top_chains: NonZeroUsize,
    /// A kept chain not seen again for this long is forgotten.
    pub chain_max_age: Duration,
    /// Service names remembered to map `peer.service` onto instrumented services.
    pub max_known_services: NonZeroUsize,
}

const fn non_zero(value: usize) -> NonZeroUsize {
    match NonZeroUsize::new(value) {
        Some(value) => value,
        None => panic!("default limits are not zero"),
    }
}

impl Default for GraphSettings {
    fn default() -> Self {
        Self {
            pairing_ttl: Duration::from_secs(10),
            max_pending_items: non_zero(100_000),
            max_links_per_span: 128,
            max_edges_per_minute: non_zero(10_000),
            max_operations_per_minute: non_zero(10_000),
            num_closed_minutes: non_zero(60),
            max_lateness: Duration::from_secs(24 * 3_600),
            max_trace_edge_counters: non_zero(200_000),
            trace_idle_ttl: Duration::from_secs(15),
            max_chain_traces: non_zero(50_000),
            max_chain_spans: non_zero(500_000),
            max_spans_per_trace: non_zero(5_000),
            num_top_chains: non_zero(20),
            chain_max_age: Duration::from_secs(3_600),
            max_known_services: non_zero(10_000),
        }
    }
}
