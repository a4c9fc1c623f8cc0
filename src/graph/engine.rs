//! [`GraphEngine`]: pairing, per-minute statistics and chain analysis behind one
//! single-threaded, clock-injected API. No I/O, no locks, no threads: the caller owns the
//! engine (e.g. behind a mutex on its own thread), feeds it spans and the wall clock, and
//! stores what [`GraphEngine::tick`] returns.

use crate::model::graph::{NodeKey, NodeKind, NodePlacement};

use super::caller_operations::CallerOperations;
use super::chains::{ChainCounters, ChainLimits, ChainTracker, ObservedChain};
use super::classify::{GraphSpan, SpanRole};
use super::pairing::{Call, CallSink, Pairing, PairingCounters};
use super::services::KnownServices;
use super::settings::GraphSettings;
use super::stats::CallsPerTrace;
use super::window::{
    ClosedMinutes, Window, WindowCounters, WindowEdge, WindowLimits, WindowOperation,
};
use crate::model::{MinuteRange, UnixMinute};

/// Everything the engine counts, for `/metrics` and the health of the map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphCounters {
    pub pairing: PairingCounters,
    pub window: WindowCounters,
    pub chains: ChainCounters,
    /// Calls recorded on edges (paired, single-sided and unpaired).
    pub num_calls: u64,
    /// Times the calls-per-trace counters filled before their TTL.
    pub num_trace_counter_early_rotations: u64,
    /// Times the known-service set filled and started over.
    pub num_known_service_resets: u64,
    pub sampling: SamplingCounters,
}

/// What the engine saw of sampling (see `graph::sampling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplingCounters {
    /// Spans counting for more than one (sampled).
    pub num_weighted_spans: u64,
    /// Spans whose `tracestate` threshold could not be read (weighed as if it had none).
    pub num_malformed: u64,
}

/// A node seen in a window, with where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowNode {
    pub key: NodeKey,
    pub placement: NodePlacement,
}

pub struct GraphEngine {
    pairing: Pairing,
    services: KnownServices,
    window: Window,
    per_trace: CallsPerTrace,
    chains: ChainTracker,
    num_calls: u64,
    sampling: SamplingCounters,
    caller_operations: CallerOperations,
}

/// Records completed calls straight into the open minute.
struct Recorder<'a> {
    window: &'a mut Window,
    per_trace: &'a mut CallsPerTrace,
    num_calls: &'a mut u64,
    caller_operations: &'a mut CallerOperations,
    now_unix_nano: u64,
}

impl CallSink for Recorder<'_> {
    fn record(&mut self, call: Call) {
        debug_assert!(call.target.kind != NodeKind::Client, "clients only call");
        *self.num_calls += 1;
        let caller = self.caller_operations.of(call.trace_id, call.caller_parent);
        self.window.record_call(
            call,
            caller.as_deref().unwrap_or_default(),
            self.per_trace,
            self.now_unix_nano,
        );
    }
}

impl GraphEngine {
    pub fn new(settings: GraphSettings) -> Self {
        let chain_limits = ChainLimits {
            trace_idle_ttl: settings.trace_idle_ttl,
            max_traces: settings.max_chain_traces.get(),
            max_spans: settings.max_chain_spans.get(),
            max_spans_per_trace: settings.max_spans_per_trace.get(),
            num_top_chains: settings.num_top_chains.get(),
            max_age: settings.chain_max_age,
        };
        Self {
            pairing: Pairing::new(
                settings.pairing_ttl,
                settings.max_pending_items.get(),
                settings.max_links_per_span,
            ),
            services: KnownServices::new(settings.max_known_services.get()),
            window: Window::new(WindowLimits {
                max_edges_per_minute: settings.max_edges_per_minute.get(),
                max_operations_per_minute: settings.max_operations_per_minute.get(),
                num_closed_minutes: settings.num_closed_minutes.get(),
                max_lateness_minutes: i64::try_from(settings.max_lateness.as_secs() / 60)
                    .unwrap_or(i64::MAX),
            }),
            per_trace: CallsPerTrace::new(
                settings.trace_idle_ttl,
                settings.max_trace_edge_counters.get(),
            ),
            chains: ChainTracker::new(chain_limits),
            num_calls: 0,
            sampling: SamplingCounters::default(),
            caller_operations: CallerOperations::new(
                u64::try_from(settings.trace_idle_ttl.as_nanos()).unwrap_or(u64::MAX),
                settings.max_trace_edge_counters.get(),
            ),
        }
    }

    /// Processes one batch at wall-clock `now_unix_nano`. Calls are counted in the minute
    /// they started (see [`Window`]). Expires what is due first, so a batch always sees a
    /// current store.
    pub fn ingest(&mut self, spans: Vec<GraphSpan>, now_unix_nano: u64) {
        self.advance(now_unix_nano);
        // The batch's operations first: a client span ends (and is exported) before the
        // server span it was made from, usually in the same batch.
        for span in &spans {
            self.caller_operations.note(span, now_unix_nano);
        }
        let mut recorder = Recorder {
            window: &mut self.window,
            per_trace: &mut self.per_trace,
            num_calls: &mut self.num_calls,
            caller_operations: &mut self.caller_operations,
            now_unix_nano,
        };
        for span in spans {
            self.sampling.num_weighted_spans += u64::from(span.weight.count > 1);
            self.sampling.num_malformed += u64::from(span.weight.is_malformed);
            self.services.observe(&span.service);
            if matches!(span.role, SpanRole::Server | SpanRole::Consumer) {
                recorder.window.record_operation(&span);
            }
            self.chains.observe(&span, now_unix_nano);
            self.pairing
                .ingest(span, now_unix_nano, &self.services, &mut recorder);
        }
    }

    /// Advances the clock: closes finished minutes, expires halves and idle traces. Returns
    /// the rollups of every minute closed since the last tick (also those closed by `ingest`).
    /// Call it every few seconds even without spans, so expiry does not wait for traffic.
    pub fn tick(&mut self, now_unix_nano: u64) -> ClosedMinutes {
        self.advance(now_unix_nano);
        self.window.take_closed()
    }

    /// Edges of the in-memory minutes of `range`, merged and sorted by key. Minutes before
    /// [`GraphEngine::live_since_minute`] are the store's.
    pub fn edges(&self, range: MinuteRange) -> Vec<WindowEdge> {
        self.window.edges(range, None)
    }

    /// [`Self::edges`] from `source` to `target` only (every kind).
    pub fn edges_between(
        &self,
        range: MinuteRange,
        source: &NodeKey,
        target: &NodeKey,
    ) -> Vec<WindowEdge> {
        self.window.edges(range, Some((source, target)))
    }

    /// The first minute of `range` memory holds calls or operations of.
    pub fn first_minute_with_data(&self, range: MinuteRange) -> Option<UnixMinute> {
        self.window.first_minute_with_data(range)
    }

    /// Operations of the in-memory minutes of `range`, merged and sorted.
    pub fn operations(&self, range: MinuteRange) -> Vec<WindowOperation> {
        self.window.operations(range, None)
    }

    /// [`Self::operations`] of `service` only.
    pub fn operations_of(&self, range: MinuteRange, service: &str) -> Vec<WindowOperation> {
        self.window.operations(range, Some(service))
    }

    /// Nodes at either end of the window's edges or with operations in it, sorted by key.
    /// A service's own placement (from its operations) wins over the one its callers saw.
    pub fn nodes(&self, range: MinuteRange) -> Vec<WindowNode> {
        let mut nodes = std::collections::BTreeMap::new();
        for edge in self.edges(range) {
            nodes
                .entry(edge.key.source)
                .or_insert(edge.source_placement);
            nodes
                .entry(edge.key.target)
                .or_insert(edge.target_placement);
        }
        for operation in self.operations(range) {
            let key = NodeKey::service(operation.service);
            nodes.insert(key, operation.placement);
        }
        nodes
            .into_iter()
            .map(|(key, placement)| WindowNode { key, placement })
            .collect()
    }

    /// The longest distinct synchronous chains seen recently, longest first.
    pub fn chains(&self) -> Vec<ObservedChain> {
        self.chains.chains()
    }

    pub fn counters(&self) -> GraphCounters {
        GraphCounters {
            pairing: self.pairing.counters(),
            window: self.window.counters(),
            chains: self.chains.counters(),
            num_calls: self.num_calls,
            num_trace_counter_early_rotations: self.per_trace.num_early_rotations(),
            num_known_service_resets: self.services.num_resets(),
            sampling: self.sampling,
        }
    }

    /// The oldest minute fully held in memory (`None` before the first ingest or tick):
    /// queries for earlier minutes must read the store's rollups.
    pub fn live_since_minute(&self) -> Option<UnixMinute> {
        self.window.live_since_minute()
    }

    /// The minute being filled (`None` before the first ingest or tick).
    pub fn open_minute(&self) -> Option<UnixMinute> {
        self.window.open_minute()
    }

    fn advance(&mut self, now_unix_nano: u64) {
        self.window
            .advance(UnixMinute::of_unix_nano(now_unix_nano).get());
        self.per_trace.rotate_if_due(now_unix_nano);
        self.caller_operations.rotate_if_due(now_unix_nano);
        let mut recorder = Recorder {
            window: &mut self.window,
            per_trace: &mut self.per_trace,
            num_calls: &mut self.num_calls,
            caller_operations: &mut self.caller_operations,
            now_unix_nano,
        };
        self.pairing
            .expire(now_unix_nano, &self.services, &mut recorder);
        self.chains.finish_idle(now_unix_nano, &self.services);
    }
}

#[cfg(test)]
mod tests;
