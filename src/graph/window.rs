//! Per-minute buckets of edge and operation statistics: the open minute plus the last
//! `num_closed_minutes` closed ones in memory, merged on query; each minute is turned into
//! store rollups when it closes and handed out by [`Window::take_closed`].
//!
//! A minute is the wall-clock minute in which the engine *processed* the call (not the span's
//! own timestamps), so late or skewed spans never reopen a closed minute. Bounded: at most
//! `max_edges_per_minute` edges and `max_operations_per_minute` operations per minute; calls
//! and spans beyond are counted, not recorded.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::model::graph::{
    EdgeKey, EdgeRollup, EdgeStats, NodePlacement, OperationRollup, OperationStats,
};

use super::classify::GraphSpan;
use super::hash::{FastMap, FoldBuildHasher, PrehashedBuildHasher};
use super::pairing::Call;
use super::stats::{self, CallsPerTrace, EdgeAgg, LiveEdgeKey, OperationAgg};

/// Rollups of minutes that closed since the last [`Window::take_closed`], oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClosedMinutes {
    pub edges: Vec<EdgeRollup>,
    pub operations: Vec<OperationRollup>,
}

/// One edge merged over a range of minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEdge {
    pub key: EdgeKey,
    pub source_placement: NodePlacement,
    pub target_placement: NodePlacement,
    pub stats: EdgeStats,
}

/// One operation merged over a range of minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOperation {
    pub service: String,
    pub operation: String,
    pub placement: NodePlacement,
    pub stats: OperationStats,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounters {
    /// Calls not recorded because their minute already had `max_edges_per_minute` edges.
    pub num_calls_over_edge_limit: u64,
    /// Spans not recorded because their minute had `max_operations_per_minute` operations.
    pub num_spans_over_operation_limit: u64,
    pub num_minutes_closed: u64,
    /// Closed minutes whose rollups were dropped because nobody took them for
    /// `num_closed_minutes` minutes (`tick` not called).
    pub num_minutes_unreported: u64,
    /// Calls or spans not recorded because two identities shared a 64-bit fingerprint.
    pub num_fingerprint_collisions: u64,
}

/// Maps keyed by a keyed 64-bit fingerprint of the identity (one hash per call, none of it on
/// strings twice); the identity is kept in the entry and compared on every hit, so a
/// fingerprint collision is detected (and counted), never merged.
struct MinuteBucket {
    minute: i64,
    edges: HashMap<u64, EdgeEntry, PrehashedBuildHasher>,
    operations: HashMap<u64, OperationEntry, PrehashedBuildHasher>,
}

struct EdgeEntry {
    key: LiveEdgeKey,
    agg: EdgeAgg,
}

struct OperationEntry {
    service: Arc<str>,
    operation: Box<str>,
    agg: OperationAgg,
}

impl MinuteBucket {
    fn new(minute: i64) -> Self {
        Self {
            minute,
            edges: HashMap::default(),
            operations: HashMap::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.operations.is_empty()
    }

    fn rollups(&self) -> ClosedMinutes {
        let mut edges: Vec<EdgeRollup> = self
            .edges
            .values()
            .map(|entry| EdgeRollup {
                minute: self.minute,
                key: entry.key.to_key(),
                source_placement: (*entry.agg.source_placement).clone(),
                target_placement: (*entry.agg.target_placement).clone(),
                stats: entry.agg.stats.clone(),
            })
            .collect();
        edges.sort_by(|left, right| left.key.cmp(&right.key));
        let mut operations: Vec<OperationRollup> = self
            .operations
            .values()
            .map(|entry| OperationRollup {
                minute: self.minute,
                service: entry.service.to_string(),
                placement: (*entry.agg.placement).clone(),
                operation: entry.operation.to_string(),
                stats: entry.agg.stats.clone(),
            })
            .collect();
        operations.sort_by(|left, right| {
            (&left.service, &left.operation).cmp(&(&right.service, &right.operation))
        });
        ClosedMinutes { edges, operations }
    }
}

pub struct Window {
    open: MinuteBucket,
    /// Oldest first; only minutes that had data.
    closed: VecDeque<MinuteBucket>,
    unreported: VecDeque<ClosedMinutes>,
    first_minute_opt: Option<i64>,
    max_edges_per_minute: usize,
    max_operations_per_minute: usize,
    num_closed_minutes: usize,
    fingerprints: FoldBuildHasher,
    counters: WindowCounters,
}

impl Window {
    pub fn new(
        max_edges_per_minute: usize,
        max_operations_per_minute: usize,
        num_closed_minutes: usize,
    ) -> Self {
        Self {
            open: MinuteBucket::new(i64::MIN),
            closed: VecDeque::new(),
            unreported: VecDeque::new(),
            first_minute_opt: None,
            max_edges_per_minute,
            max_operations_per_minute,
            num_closed_minutes,
            fingerprints: FoldBuildHasher::default(),
            counters: WindowCounters::default(),
        }
    }

    pub fn counters(&self) -> WindowCounters {
        self.counters
    }

    /// The minute being filled, once the clock has been seen.
    pub fn open_minute(&self) -> Option<i64> {
        self.first_minute_opt.map(|_| self.open.minute)
    }

    /// The oldest minute whose data is complete in memory: the first minute the engine saw,
    /// or the oldest kept closed minute once the window is full.
    pub fn live_since_minute(&self) -> Option<i64> {
        let first = self.first_minute_opt?;
        let oldest_kept = self
            .open
            .minute
            .saturating_sub(self.num_closed_minutes as i64);
        Some(first.max(oldest_kept))
    }

    /// Moves the open minute forward to `minute`, closing the one that was open. A clock
    /// going backwards keeps the open minute (a closed minute is never reopened).
    pub fn advance(&mut self, minute: i64) {
        if self.first_minute_opt.is_none() {
            self.first_minute_opt = Some(minute);
            self.open.minute = minute;
            return;
        }
        if minute <= self.open.minute {
            return;
        }
        let finished = std::mem::replace(&mut self.open, MinuteBucket::new(minute));
        self.counters.num_minutes_closed += 1;
        if !finished.is_empty() {
            self.unreported.push_back(finished.rollups());
            self.closed.push_back(finished);
        }
        let oldest_kept = minute.saturating_sub(self.num_closed_minutes as i64);
        while self
            .closed
            .front()
            .is_some_and(|bucket| bucket.minute < oldest_kept)
        {
            self.closed.pop_front();
        }
        while self.unreported.len() > self.num_closed_minutes {
            self.unreported.pop_front();
            self.counters.num_minutes_unreported += 1;
        }
    }

    /// Rollups of the minutes closed since the last call.
    pub fn take_closed(&mut self) -> ClosedMinutes {
        let mut closed = ClosedMinutes::default();
        for minute in self.unreported.drain(..) {
            closed.edges.extend(minute.edges);
            closed.operations.extend(minute.operations);
        }
        closed
    }

    pub fn record_call(&mut self, call: Call, per_trace: &mut CallsPerTrace, now_unix_nano: u64) {
        let Call {
            trace_id,
            source,
            target,
            kind,
            source_placement,
            target_placement,
            facts,
            consumer_group,
        } = call;
        let fingerprint = self.fingerprints.hash_one((&source, &target, kind));
        let minute = self.open.minute;
        let group_opt = consumer_group.as_deref();
        if let Some(entry) = self.open.edges.get_mut(&fingerprint) {
            let key = &entry.key;
            if key.source != source || key.target != target || key.kind != kind {
                self.counters.num_fingerprint_collisions += 1;
                return;
            }
            let trace_calls = per_trace.record(trace_id, fingerprint, minute, now_unix_nano);
            stats::record_call(&mut entry.agg.stats, &facts, group_opt, trace_calls);
            return;
        }
        if self.open.edges.len() >= self.max_edges_per_minute {
            self.counters.num_calls_over_edge_limit += 1;
            return;
        }
        let trace_calls = per_trace.record(trace_id, fingerprint, minute, now_unix_nano);
        let mut agg = EdgeAgg {
            stats: EdgeStats::default(),
            source_placement,
            target_placement,
        };
        stats::record_call(&mut agg.stats, &facts, group_opt, trace_calls);
        let key = LiveEdgeKey {
            source,
            target,
            kind,
        };
        self.open.edges.insert(fingerprint, EdgeEntry { key, agg });
    }

    /// Records a SERVER or CONSUMER span as a request of its operation.
    pub fn record_operation(&mut self, span: &GraphSpan) {
        let fingerprint = self.fingerprints.hash_one((&*span.service, &*span.name));
        if let Some(entry) = self.open.operations.get_mut(&fingerprint) {
            if *entry.service != *span.service || entry.operation != span.name {
                self.counters.num_fingerprint_collisions += 1;
                return;
            }
            stats::record_operation(&mut entry.agg.stats, span);
            return;
        }
        if self.open.operations.len() >= self.max_operations_per_minute {
            self.counters.num_spans_over_operation_limit += 1;
            return;
        }
        let mut agg = OperationAgg {
            stats: OperationStats::default(),
            placement: Arc::clone(&span.placement),
        };
        stats::record_operation(&mut agg.stats, span);
        let entry = OperationEntry {
            service: Arc::clone(&span.service),
            operation: span.name.clone(),
            agg,
        };
        self.open.operations.insert(fingerprint, entry);
    }

    fn buckets(&self, from_minute: i64, to_minute: i64) -> impl Iterator<Item = &MinuteBucket> {
        self.closed
            .iter()
            .chain(std::iter::once(&self.open))
            .filter(move |bucket| (from_minute..=to_minute).contains(&bucket.minute))
    }

    /// Edges of the minutes `from_minute..=to_minute` held in memory, merged, sorted by key.
    pub fn edges(&self, from_minute: i64, to_minute: i64) -> Vec<WindowEdge> {
        let mut merged: FastMap<&LiveEdgeKey, EdgeAgg> = FastMap::default();
        for bucket in self.buckets(from_minute, to_minute) {
            for EdgeEntry { key, agg } in bucket.edges.values() {
                merged
                    .entry(key)
                    .and_modify(|sum| {
                        sum.stats.merge(&agg.stats);
                        // The newest placement wins (buckets are visited oldest first).
                        sum.source_placement = Arc::clone(&agg.source_placement);
                        sum.target_placement = Arc::clone(&agg.target_placement);
                    })
                    .or_insert_with(|| agg.clone());
            }
        }
        let mut edges: Vec<WindowEdge> = merged
            .into_iter()
            .map(|(key, agg)| WindowEdge {
                key: key.to_key(),
                source_placement: (*agg.source_placement).clone(),
                target_placement: (*agg.target_placement).clone(),
                stats: agg.stats,
            })
            .collect();
        edges.sort_by(|left, right| left.key.cmp(&right.key));
        edges
    }

    /// Operations of the minutes `from_minute..=to_minute` held in memory, merged, sorted by
    /// service then operation.
    pub fn operations(&self, from_minute: i64, to_minute: i64) -> Vec<WindowOperation> {
        let mut merged: FastMap<(&str, &str), OperationAgg> = FastMap::default();
        for bucket in self.buckets(from_minute, to_minute) {
            for entry in bucket.operations.values() {
                let agg = &entry.agg;
                merged
                    .entry((&entry.service, &entry.operation))
                    .and_modify(|sum| {
                        sum.stats.merge(&agg.stats);
                        sum.placement = Arc::clone(&agg.placement);
                    })
                    .or_insert_with(|| agg.clone());
            }
        }
        let mut operations: Vec<WindowOperation> = merged
            .into_iter()
            .map(|((service, operation), agg)| WindowOperation {
                service: service.to_owned(),
                operation: operation.to_owned(),
                placement: (*agg.placement).clone(),
                stats: agg.stats,
            })
            .collect();
        operations.sort_by(|left, right| {
            (&left.service, &left.operation).cmp(&(&right.service, &right.operation))
        });
        operations
    }
}
