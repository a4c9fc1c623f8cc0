//! One minute of edge and operation statistics: the calls and spans of one minute, bounded
//! by the limits the caller passes, and turned into store rollups.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::graph::{EdgeRollup, EdgeStats, OperationRollup, OperationStats};

use super::classify::GraphSpan;
use super::hash::PrehashedBuildHasher;
use super::pairing::Call;
use super::stats::{self, EdgeAgg, LiveEdgeKey, OperationAgg, TraceCalls};

/// Maps keyed by a keyed 64-bit fingerprint of the identity (one hash per call, none of it on
/// strings twice); the identity is kept in the entry and compared on every hit, so a
/// fingerprint collision is detected (and counted), never merged.
pub(super) struct MinuteBucket {
    pub(super) minute: i64,
    /// Instance hashes held over all operations (bounded by [`MAX_INSTANCES_PER_MINUTE`]).
    num_instances: usize,
    pub(super) edges: HashMap<u64, EdgeEntry, PrehashedBuildHasher>,
    pub(super) operations: HashMap<u64, OperationEntry, PrehashedBuildHasher>,
    /// Changed since it was last handed out.
    pub(super) dirty: bool,
}

pub(super) struct EdgeEntry {
    pub(super) key: LiveEdgeKey,
    pub(super) agg: EdgeAgg,
}

pub(super) struct OperationEntry {
    pub(super) service: Arc<str>,
    pub(super) operation: Box<str>,
    pub(super) agg: OperationAgg,
    /// The `service.instance.id` hashes that served it this minute, sorted; its
    /// `instance_minutes` is their number.
    instances: Vec<u64>,
}

/// Distinct instances counted per operation and minute at most.
pub(super) const MAX_INSTANCES_PER_OPERATION: usize = 256;
/// Instances counted over all operations of a minute at most (8 bytes each).
pub(super) const MAX_INSTANCES_PER_MINUTE: usize = 65_536;

impl OperationEntry {
    /// Counts a request of `instance` (0: none, not counted) as served by that instance this
    /// minute; false when a new instance did not fit (`num_instances` of the bucket is at its
    /// limit too): neither it nor its request is counted, so the rate per instance holds.
    fn count_instance(&mut self, span: &GraphSpan, num_instances: &mut usize) -> bool {
        let instance = span.instance;
        if instance == 0 {
            return true;
        }
        if let Err(at) = self.instances.binary_search(&instance) {
            if self.instances.len() >= MAX_INSTANCES_PER_OPERATION
                || *num_instances >= MAX_INSTANCES_PER_MINUTE
            {
                return false;
            }
            self.instances.insert(at, instance);
            *num_instances += 1;
            self.agg.stats.instance_minutes += 1;
        }
        self.agg.stats.instance_requests += span.weight.count.max(1);
        true
    }
}

impl MinuteBucket {
    pub(super) fn new(minute: i64) -> Self {
        Self {
            minute,
            num_instances: 0,
            edges: HashMap::default(),
            operations: HashMap::default(),
            dirty: false,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.operations.is_empty()
    }

    pub(super) fn edge_rollups(&self) -> Vec<EdgeRollup> {
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
        edges
    }

    pub(super) fn operation_rollups(&self) -> Vec<OperationRollup> {
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
        operations
    }
}

/// How many edges and operations a bucket may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_edges: usize,
    pub(super) max_operations: usize,
}

/// What became of a call or span offered to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    Yes,
    /// The bucket already held as many edges (or operations) as it may.
    OverLimit,
    /// Recorded, but its instance not counted: the operation's or the minute's set is full.
    InstanceOverLimit,
    /// Recorded, but its `service.version` not kept: the operation holds as many as it may.
    VersionOverLimit,
    /// Recorded, its operation pair counted among the edge's other operations.
    OperationsOverLimit,
    /// Another identity has the same fingerprint: not merged.
    Collision,
}

impl MinuteBucket {
    /// Records one call; `fingerprint` identifies its edge, `trace_calls` says where the call
    /// stands in its trace (asked only when the call is recorded, with this bucket's minute).
    pub(super) fn record_call(
        &mut self,
        call: &Call,
        caller: &str,
        fingerprint: u64,
        trace_calls: impl FnOnce(i64) -> TraceCalls,
        limits: Limits,
    ) -> Recorded {
        let group_opt = call.consumer_group.as_deref();
        self.dirty = true;
        if let Some(entry) = self.edges.get_mut(&fingerprint) {
            if !entry.key.is_edge(&call.source, &call.target, call.kind) {
                return Recorded::Collision;
            }
            let trace_calls = trace_calls(self.minute);
            stats::record_call(&mut entry.agg.stats, &call.facts, group_opt, trace_calls);
            return split_kept(stats::record_split(&mut entry.agg.stats, call, caller));
        }
        if self.edges.len() >= limits.max_edges {
            return Recorded::OverLimit;
        }
        let mut agg = EdgeAgg {
            stats: EdgeStats::default(),
            source_placement: Arc::clone(&call.source_placement),
            target_placement: Arc::clone(&call.target_placement),
        };
        stats::record_call(
            &mut agg.stats,
            &call.facts,
            group_opt,
            trace_calls(self.minute),
        );
        stats::record_split(&mut agg.stats, call, caller);
        let key = LiveEdgeKey {
            source: call.source.clone(),
            target: call.target.clone(),
            kind: call.kind,
        };
        self.edges.insert(fingerprint, EdgeEntry { key, agg });
        Recorded::Yes
    }

    /// Records a SERVER or CONSUMER span as a request of its operation.
    pub(super) fn record_operation(
        &mut self,
        span: &GraphSpan,
        fingerprint: u64,
        limits: Limits,
    ) -> Recorded {
        self.dirty = true;
        if let Some(entry) = self.operations.get_mut(&fingerprint) {
            if *entry.service != *span.service || entry.operation != span.name {
                return Recorded::Collision;
            }
            let version_kept = stats::record_operation(&mut entry.agg.stats, span);
            let instance_kept = entry.count_instance(span, &mut self.num_instances);
            return kept(instance_kept, version_kept);
        }
        if self.operations.len() >= limits.max_operations {
            return Recorded::OverLimit;
        }
        let mut agg = OperationAgg {
            stats: OperationStats::default(),
            placement: Arc::clone(&span.placement),
        };
        let version_kept = stats::record_operation(&mut agg.stats, span);
        let mut entry = OperationEntry {
            service: Arc::clone(&span.service),
            operation: span.name.clone(),
            agg,
            instances: Vec::new(),
        };
        let instance_kept = entry.count_instance(span, &mut self.num_instances);
        self.operations.insert(fingerprint, entry);
        kept(instance_kept, version_kept)
    }
}

fn split_kept(own: bool) -> Recorded {
    if own {
        Recorded::Yes
    } else {
        Recorded::OperationsOverLimit
    }
}

/// An operation's span recorded, with what of it did not fit (the instance first).
fn kept(instance_kept: bool, version_kept: bool) -> Recorded {
    match (instance_kept, version_kept) {
        (true, true) => Recorded::Yes,
        (false, _) => Recorded::InstanceOverLimit,
        (true, false) => Recorded::VersionOverLimit,
    }
}
