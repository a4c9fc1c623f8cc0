//! Per-minute buckets of edge and operation statistics, by the minute a call *happened* (its
//! start time), not the minute it arrived: the open minute plus the last `num_closed_minutes`
//! closed ones in memory, merged on query. Each minute is turned into store rollups when it
//! closes and handed out by [`Window::take_closed`].
//!
//! A call that arrives after its minute closed (exporter batching, a Collector draining a
//! backlog, a slow clock) is added to its minute while memory holds it, and that minute is
//! handed out again, whole, at the next close (stores replace a minute's rollups). Older
//! calls, up to `max_lateness_minutes` back, are collected per minute and handed out as late
//! additions the store merges into what it holds. Calls older still are counted as too late;
//! calls stamped after the open minute (a clock ahead) are counted in the open minute.
//!
//! Bounded: at most `max_edges_per_minute` edges and `max_operations_per_minute` operations per
//! minute, and as many again over all late minutes; calls and spans beyond are counted, not
//! recorded.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::model::graph::{
    EdgeKey, EdgeRollup, EdgeStats, NodeKey, NodePlacement, OperationRollup, OperationStats,
};
use crate::model::{MinuteRange, UnixMinute};

use super::classify::GraphSpan;
use super::hash::{FastMap, FoldBuildHasher, PrehashedBuildHasher};
use super::minute_bucket::{EdgeEntry, Limits, MinuteBucket, Recorded};
use super::pairing::Call;
use super::stats::{CallsPerTrace, EdgeAgg, LiveEdgeKey, OperationAgg, TraceCalls};

/// Rollups handed to the store since the last [`Window::take_closed`], oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClosedMinutes {
    /// Whole minutes: they replace what this process stored for the same minute and key.
    pub edges: Vec<EdgeRollup>,
    pub operations: Vec<OperationRollup>,
    /// Late calls of minutes memory no longer holds: added to what is stored.
    pub late_edges: Vec<EdgeRollup>,
    pub late_operations: Vec<OperationRollup>,
    /// Every call counted since the last hand-out and no longer in the open minute, once:
    /// the increments of cumulative counters (`edges` repeats a minute that changed).
    pub counted_edges: Vec<EdgeRollup>,
}

impl ClosedMinutes {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
            && self.operations.is_empty()
            && self.late_edges.is_empty()
            && self.late_operations.is_empty()
    }

    fn append(&mut self, other: ClosedMinutes) {
        self.edges.extend(other.edges);
        self.operations.extend(other.operations);
        self.late_edges.extend(other.late_edges);
        self.late_operations.extend(other.late_operations);
        self.counted_edges.extend(other.counted_edges);
    }
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
    /// Spans whose `service.instance.id` was not counted: their operation's (256) or their
    /// minute's (65,536) set of instances was full.
    pub num_instances_over_limit: u64,
    /// Spans whose `service.version` was not kept (versions per operation and minute full).
    pub num_versions_over_limit: u64,
    /// Calls counted in their edge's "other operations" (operation pairs per edge full).
    pub num_calls_over_operation_split_limit: u64,
    pub num_minutes_closed: u64,
    /// Closed minutes whose rollups were dropped because nobody took them for
    /// `num_closed_minutes` minutes (`tick` not called).
    pub num_minutes_unreported: u64,
    /// Calls or spans not recorded because two identities shared a 64-bit fingerprint.
    pub num_fingerprint_collisions: u64,
    /// Calls and spans added to a minute that had already closed (still in memory).
    pub num_late: u64,
    /// Calls and spans of minutes older than memory, handed to the store to merge.
    pub num_late_merged: u64,
    /// Calls and spans older than `max_lateness_minutes`: not on the map (still stored).
    pub num_too_late: u64,
    /// Calls and spans stamped after the open minute, counted in the open minute.
    pub num_clock_ahead: u64,
}

/// Where a call or span of a given minute goes.
enum Slot {
    Open,
    Closed(i64),
    Late(i64),
    TooLate,
}

/// How far back the window takes calls.
#[derive(Debug, Clone, Copy)]
pub struct WindowLimits {
    pub max_edges_per_minute: usize,
    pub max_operations_per_minute: usize,
    /// Closed minutes kept in memory besides the open one.
    pub num_closed_minutes: usize,
    /// Calls older than this many minutes before the open one are too late for the map.
    pub max_lateness_minutes: i64,
}

pub struct Window {
    open: MinuteBucket,
    /// Closed minutes still in memory that had data.
    closed: BTreeMap<i64, MinuteBucket>,
    /// Late calls of minutes before [`Window::live_since_minute`], until handed out.
    late: BTreeMap<i64, MinuteBucket>,
    /// Edges and operations over all of `late` (they share one budget).
    late_sizes: (usize, usize),
    /// Calls added to closed minutes in memory since the last hand-out, merged (their minutes
    /// are handed out whole; these are what is new in them).
    late_in_memory: MinuteBucket,
    unreported: VecDeque<ClosedMinutes>,
    /// The clock has been seen (the open minute is real).
    started: bool,
    limits: WindowLimits,
    fingerprints: FoldBuildHasher,
    counters: WindowCounters,
}

impl Window {
    pub fn new(limits: WindowLimits) -> Self {
        Self {
            open: MinuteBucket::new(i64::MIN),
            closed: BTreeMap::new(),
            late: BTreeMap::new(),
            late_sizes: (0, 0),
            late_in_memory: MinuteBucket::new(0),
            unreported: VecDeque::new(),
            started: false,
            limits,
            fingerprints: FoldBuildHasher::default(),
            counters: WindowCounters::default(),
        }
    }

    pub fn counters(&self) -> WindowCounters {
        self.counters
    }

    /// The minute being filled, once the clock has been seen.
    pub fn open_minute(&self) -> Option<UnixMinute> {
        self.started.then_some(UnixMinute(self.open.minute))
    }

    /// The oldest minute memory holds this process's counts of: `num_closed_minutes` before
    /// the open one. Also minutes before this process started: what it counts for them (late
    /// calls) is held here like any other minute, while earlier processes' counts of them are
    /// in the store under their own instance ids.
    pub fn live_since_minute(&self) -> Option<UnixMinute> {
        self.started
            .then(|| UnixMinute(self.oldest_kept(self.open.minute)))
    }

    fn oldest_kept(&self, open_minute: i64) -> i64 {
        let num_closed = i64::try_from(self.limits.num_closed_minutes).unwrap_or(i64::MAX);
        open_minute.saturating_sub(num_closed)
    }

    /// Moves the open minute forward to `minute`, closing the one that was open and handing
    /// out (at the next [`Window::take_closed`]) every minute changed since. A clock going
    /// backwards keeps the open minute.
    pub fn advance(&mut self, minute: i64) {
        if !self.started {
            self.started = true;
            self.open.minute = minute;
            return;
        }
        if minute <= self.open.minute {
            return;
        }
        let mut finished = std::mem::replace(&mut self.open, MinuteBucket::new(minute));
        self.counters.num_minutes_closed += 1;
        // The finished minute's rollups are built once: handed out below as new, whole.
        let finished_edges = finished.edge_rollups();
        let finished_operations = finished.operation_rollups();
        finished.dirty = false;
        if !finished.is_empty() {
            self.closed.insert(finished.minute, finished);
        }
        let mut handed_out = self.hand_out_changes();
        let late_in_memory = std::mem::replace(&mut self.late_in_memory, MinuteBucket::new(0));
        let mut counted_edges = finished_edges.clone();
        counted_edges.extend(late_in_memory.edge_rollups());
        counted_edges.extend(handed_out.late_edges.iter().cloned());
        handed_out.counted_edges = counted_edges;
        // Oldest first: the finished minute is the newest.
        handed_out.edges.extend(finished_edges);
        handed_out.operations.extend(finished_operations);
        if !handed_out.is_empty() {
            self.unreported.push_back(handed_out);
        }
        let oldest_kept = self.oldest_kept(minute);
        self.closed = self.closed.split_off(&oldest_kept);
        while self.unreported.len() > self.limits.num_closed_minutes {
            self.unreported.pop_front();
            self.counters.num_minutes_unreported += 1;
        }
    }

    /// Every closed minute changed since it was last handed out (whole), and the late calls;
    /// the minute that just closed is the caller's.
    fn hand_out_changes(&mut self) -> ClosedMinutes {
        let mut changes = ClosedMinutes::default();
        for bucket in self.closed.values_mut().filter(|bucket| bucket.dirty) {
            bucket.dirty = false;
            changes.edges.extend(bucket.edge_rollups());
            changes.operations.extend(bucket.operation_rollups());
        }
        self.late_sizes = (0, 0);
        for bucket in std::mem::take(&mut self.late).into_values() {
            changes.late_edges.extend(bucket.edge_rollups());
            changes.late_operations.extend(bucket.operation_rollups());
        }
        changes
    }

    /// Rollups of the minutes closed or changed since the last call.
    pub fn take_closed(&mut self) -> ClosedMinutes {
        let mut closed = ClosedMinutes::default();
        for minute in self.unreported.drain(..) {
            closed.append(minute);
        }
        closed
    }

    /// Which bucket a call or span of `minute` belongs in (and counts what is unusual).
    fn slot(&mut self, minute: i64) -> Slot {
        let open = self.open.minute;
        if minute >= open {
            self.counters.num_clock_ahead += u64::from(minute > open);
            return Slot::Open;
        }
        let live_since = self.live_since_minute().map_or(open, UnixMinute::get);
        if minute >= live_since {
            self.counters.num_late += 1;
            return Slot::Closed(minute);
        }
        if minute >= open.saturating_sub(self.limits.max_lateness_minutes) {
            self.counters.num_late_merged += 1;
            return Slot::Late(minute);
        }
        self.counters.num_too_late += 1;
        Slot::TooLate
    }

    /// The bucket of `slot` with the limits that apply to it: late minutes share one budget.
    fn bucket(&mut self, slot: Slot) -> Option<(&mut MinuteBucket, Limits)> {
        let mut limits = Limits {
            max_edges: self.limits.max_edges_per_minute,
            max_operations: self.limits.max_operations_per_minute,
        };
        let bucket = match slot {
            Slot::Open => &mut self.open,
            Slot::Closed(minute) => self
                .closed
                .entry(minute)
                .or_insert_with(|| MinuteBucket::new(minute)),
            Slot::Late(minute) => {
                let (num_edges, num_operations) = self.late_sizes;
                let bucket = self
                    .late
                    .entry(minute)
                    .or_insert_with(|| MinuteBucket::new(minute));
                limits.max_edges =
                    (limits.max_edges + bucket.edges.len()).saturating_sub(num_edges);
                limits.max_operations = (limits.max_operations + bucket.operations.len())
                    .saturating_sub(num_operations);
                bucket
            }
            Slot::TooLate => return None,
        };
        Some((bucket, limits))
    }

    /// Records a call in the minute it started.
    /// `caller` is the operation the call was made from ("" when unknown).
    pub fn record_call(
        &mut self,
        call: Call,
        caller: &str,
        per_trace: &mut CallsPerTrace,
        now_unix_nano: u64,
    ) {
        let fingerprint = self
            .fingerprints
            .hash_one((&call.source, &call.target, call.kind));
        let slot = self.slot(UnixMinute::of_unix_nano(call.start_unix_nano).get());
        let is_late = matches!(slot, Slot::Late(_));
        if matches!(slot, Slot::Closed(_)) {
            // What is new in a closed minute, for cumulative counters (its calls-per-trace
            // fields are left out: nothing reads them there).
            let limits = Limits {
                max_edges: self.limits.max_edges_per_minute,
                max_operations: self.limits.max_operations_per_minute,
            };
            let untracked = |_| TraceCalls {
                is_first_in_minute: false,
                num_calls: 1,
            };
            self.late_in_memory
                .record_call(&call, caller, fingerprint, untracked, limits);
        }
        let Some((bucket, limits)) = self.bucket(slot) else {
            return;
        };
        let num_before = bucket.edges.len();
        let trace_calls =
            |minute| per_trace.record(call.trace_id, fingerprint, minute, now_unix_nano);
        let recorded = bucket.record_call(&call, caller, fingerprint, trace_calls, limits);
        let num_added = bucket.edges.len() - num_before;
        if is_late {
            self.late_sizes.0 += num_added;
        }
        match recorded {
            Recorded::Yes | Recorded::InstanceOverLimit | Recorded::VersionOverLimit => {}
            Recorded::OperationsOverLimit => {
                self.counters.num_calls_over_operation_split_limit += 1
            }
            Recorded::OverLimit => self.counters.num_calls_over_edge_limit += 1,
            Recorded::Collision => self.counters.num_fingerprint_collisions += 1,
        }
    }

    /// Records a SERVER or CONSUMER span as a request of its operation, in the minute it
    /// started.
    pub fn record_operation(&mut self, span: &GraphSpan) {
        let fingerprint = self.fingerprints.hash_one((&*span.service, &*span.name));
        let slot = self.slot(UnixMinute::of_unix_nano(span.start_time_unix_nano).get());
        let is_late = matches!(slot, Slot::Late(_));
        let Some((bucket, limits)) = self.bucket(slot) else {
            return;
        };
        let num_before = bucket.operations.len();
        let recorded = bucket.record_operation(span, fingerprint, limits);
        let num_added = bucket.operations.len() - num_before;
        if is_late {
            self.late_sizes.1 += num_added;
        }
        match recorded {
            Recorded::Yes => {}
            Recorded::InstanceOverLimit => self.counters.num_instances_over_limit += 1,
            Recorded::VersionOverLimit => self.counters.num_versions_over_limit += 1,
            Recorded::OperationsOverLimit => {}
            Recorded::OverLimit => self.counters.num_spans_over_operation_limit += 1,
            Recorded::Collision => self.counters.num_fingerprint_collisions += 1,
        }
    }

    /// The first minute of `range` memory holds data of.
    pub fn first_minute_with_data(&self, range: MinuteRange) -> Option<UnixMinute> {
        self.buckets(range)
            .find(|bucket| !bucket.is_empty())
            .map(|bucket| UnixMinute(bucket.minute))
    }

    fn buckets(&self, range: MinuteRange) -> impl Iterator<Item = &MinuteBucket> {
        self.closed
            .range(range.from().get()..range.to().get())
            .map(|(_, bucket)| bucket)
            .chain(std::iter::once(&self.open))
            .filter(move |bucket| range.contains(UnixMinute(bucket.minute)))
    }

    /// Edges of the minutes of `range` held in memory (only those from and to
    /// `between_opt`'s nodes, every kind, when it names them: the others are skipped before
    /// they are copied), merged, sorted by key.
    pub fn edges(
        &self,
        range: MinuteRange,
        between_opt: Option<(&NodeKey, &NodeKey)>,
    ) -> Vec<WindowEdge> {
        let keep = |key: &LiveEdgeKey| {
            between_opt
                .is_none_or(|(source, target)| key.source.is(source) && key.target.is(target))
        };
        let add = |sum: &mut EdgeAgg, agg: &EdgeAgg| {
            sum.stats.merge(&agg.stats);
            // The newest placement wins (buckets are visited oldest first).
            sum.source_placement = Arc::clone(&agg.source_placement);
            sum.target_placement = Arc::clone(&agg.target_placement);
        };
        // Merged by the buckets' own fingerprints (no hashing of names); an edge whose
        // fingerprint another edge took in an earlier minute is merged by its key instead.
        let mut merged: HashMap<u64, (&LiveEdgeKey, EdgeAgg), PrehashedBuildHasher> =
            HashMap::default();
        let mut shared: FastMap<&LiveEdgeKey, EdgeAgg> = FastMap::default();
        for bucket in self.buckets(range) {
            for (fingerprint, EdgeEntry { key, agg }) in &bucket.edges {
                if !keep(key) {
                    continue;
                }
                match merged.entry(*fingerprint) {
                    Entry::Occupied(mut entry) if entry.get().0 == key => {
                        add(&mut entry.get_mut().1, agg)
                    }
                    Entry::Occupied(_) => match shared.entry(key) {
                        Entry::Occupied(mut entry) => add(entry.get_mut(), agg),
                        Entry::Vacant(entry) => {
                            entry.insert(agg.clone());
                        }
                    },
                    Entry::Vacant(entry) => {
                        entry.insert((key, agg.clone()));
                    }
                }
            }
        }
        let mut edges: Vec<WindowEdge> = merged
            .into_values()
            .chain(shared)
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

    /// Operations of the minutes of `range` held in memory (only `service_opt`'s when it
    /// names one: the others are skipped before they are copied), merged, sorted by service
    /// then operation.
    pub fn operations(
        &self,
        range: MinuteRange,
        service_opt: Option<&str>,
    ) -> Vec<WindowOperation> {
        let mut merged: FastMap<(&str, &str), OperationAgg> = FastMap::default();
        for bucket in self.buckets(range) {
            for entry in bucket.operations.values() {
                if service_opt.is_some_and(|service| *entry.service != *service) {
                    continue;
                }
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
