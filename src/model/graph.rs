//! The vocabulary of the dependency map: nodes, edges and the mergeable statistics kept per
//! edge and per operation. Shared by the graph engine (live), the store (per-minute rollups)
//! and the query/web layers. Free of wire and storage formats.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{LatencySketch, SketchSum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// An instrumented service (resource `service.name`).
    Service,
    /// A database, named by `db.system` plus server address or namespace.
    Database,
    /// A messaging destination (Kafka topic, queue), named by system and destination.
    Topic,
    /// An uninstrumented peer named by `peer.service` / `server.address`.
    External,
    /// The callers of root server spans that have no instrumented caller.
    Client,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Service => "service",
            NodeKind::Database => "database",
            NodeKind::Topic => "topic",
            NodeKind::External => "external",
            NodeKind::Client => "client",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            NodeKind::Service,
            NodeKind::Database,
            NodeKind::Topic,
            NodeKind::External,
            NodeKind::Client,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// Identity of a node. Its id in the API is `"{kind}:{name}"`, e.g. `service:checkout`,
/// `database:postgresql orders-db:5432`, `topic:kafka orders.created`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeKey {
    pub kind: NodeKind,
    pub name: String,
}

impl NodeKey {
    pub fn new(kind: NodeKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }

    pub fn service(name: impl Into<String>) -> Self {
        Self::new(NodeKind::Service, name)
    }

    /// The API id, `kind:name`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.name)
    }

    /// Parses an API id back into a key.
    pub fn parse_id(id: &str) -> Option<Self> {
        let (kind, name) = id.split_once(':')?;
        Some(Self::new(NodeKind::parse(kind)?, name))
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    Http,
    Grpc,
    Messaging,
    Database,
    Other,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Http => "http",
            EdgeKind::Grpc => "grpc",
            EdgeKind::Messaging => "messaging",
            EdgeKind::Database => "database",
            EdgeKind::Other => "other",
        }
    }

    /// Request/response calls that block the caller (the links of a synchronous chain).
    pub fn is_synchronous(self) -> bool {
        matches!(self, EdgeKind::Http | EdgeKind::Grpc)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeKey {
    pub source: NodeKey,
    pub target: NodeKey,
    pub kind: EdgeKind,
}

/// Mergeable statistics of one edge over some time (one minute, or a merged window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeStats {
    /// Calls (paired, or one half expired unpaired), refused ones included: every observed
    /// call counts for the calls its sampling says it stands for (1 unless sampled), so this
    /// and the counters below are estimates when `num_unobserved` > 0.
    pub num_requests: u64,
    /// Of `num_requests`, the calls inferred from sampling rather than observed:
    /// `num_requests − num_unobserved` calls were received (see `graph::sampling`).
    #[serde(default)]
    pub num_unobserved: u64,
    /// Calls where either side reported an error status, and every refused call (Tempo's
    /// `failed`). The edge's error rate leaves the refused ones out: see `model::figures`.
    pub num_errors: u64,
    /// Calls that were retries (`http.request.resend_count` > 0).
    pub num_retries: u64,
    /// Client calls refused by an open circuit breaker without reaching the target. They
    /// record no latency.
    pub num_short_circuited: u64,
    /// Calls seen from the client side only (the server never reported within the TTL).
    pub num_client_only: u64,
    /// Calls seen from the server side only (the caller never reported within the TTL).
    pub num_server_only: u64,
    /// Client-side duration (what the caller waited).
    pub client_latency: LatencySketch,
    /// Server-side duration (what the callee spent).
    pub server_latency: LatencySketch,
    /// Topic → consumer edges: consumer start − producer end, clock skew clamped at 0.
    pub publish_consume_latency: LatencySketch,
    /// Distinct traces that contributed calls, and the most calls one trace made on this edge
    /// (for chatty-pair detection: calls per trace = num_requests / num_traces).
    pub num_traces: u64,
    pub max_calls_per_trace: u64,
    /// Topic → consumer edges: the consumer groups seen (sorted, at most
    /// [`MAX_CONSUMER_GROUPS`]), so Kafka lag by (group, topic) can be attached to the edge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumer_groups: Vec<String>,
    /// The calls split by the caller's operation and the operation called, sorted, at most
    /// [`MAX_OPERATION_SPLITS`] and one [`OTHER_OPERATIONS`] entry with the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<OperationSplit>,
}

/// Operation pairs kept per edge (a minute's, or a range's merged); the rest are added up in
/// one entry named [`OTHER_OPERATIONS`].
pub const MAX_OPERATION_SPLITS: usize = 8;
/// The callee name of the entry holding the operation pairs beyond the limit.
pub const OTHER_OPERATIONS: &str = "(other operations)";

/// An edge's calls from one operation of the caller to one operation of the callee ("" where
/// unknown: the caller's span not seen, or a peer without operations).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationSplit {
    pub caller: String,
    pub callee: String,
    pub num_requests: u64,
    pub num_errors: u64,
    /// What the caller waited (else what the callee spent).
    pub latency: LatencySketch,
}

impl OperationSplit {
    pub fn merge(&mut self, other: &OperationSplit) {
        self.add_counts(other);
        self.latency.merge(&other.latency);
    }

    /// `other`'s counts (not its latency).
    fn add_counts(&mut self, other: &OperationSplit) {
        self.num_requests += other.num_requests;
        self.num_errors += other.num_errors;
    }
}

impl EdgeStats {
    /// The split of (`caller`, `callee`), added when there is room, else the
    /// [`OTHER_OPERATIONS`] entry; returns the split and whether it is the pair's own.
    pub fn split_mut(&mut self, caller: &str, callee: &str) -> (&mut OperationSplit, bool) {
        let (at, own) = self.split_index(caller, callee);
        (&mut self.operations[at], own)
    }

    /// Where [`EdgeStats::split_mut`]'s split is in `operations`, added if new.
    fn split_index(&mut self, caller: &str, callee: &str) -> (usize, bool) {
        let search = |splits: &[OperationSplit], caller: &str, callee: &str| {
            splits.binary_search_by(|known| {
                (known.caller.as_str(), known.callee.as_str()).cmp(&(caller, callee))
            })
        };
        let (caller, callee, own) = match search(&self.operations, caller, callee) {
            Ok(at) => return (at, true),
            Err(_) if self.num_own_splits() >= MAX_OPERATION_SPLITS => {
                ("", OTHER_OPERATIONS, false)
            }
            Err(_) => (caller, callee, true),
        };
        let at = match search(&self.operations, caller, callee) {
            Ok(at) => at,
            Err(at) => {
                let split = OperationSplit {
                    caller: caller.to_owned(),
                    callee: callee.to_owned(),
                    ..OperationSplit::default()
                };
                self.operations.insert(at, split);
                at
            }
        };
        (at, own)
    }

    fn num_own_splits(&self) -> usize {
        self.operations
            .iter()
            .filter(|split| split.callee != OTHER_OPERATIONS || !split.caller.is_empty())
            .count()
    }
}

/// An edge's operation splits summed in order, as stats are merged or stored rollups read:
/// the pairs that come first keep a split of their own, the rest go to the other operations'
/// (as [`EdgeStats::merge`] places them), each latency summed bucket by bucket.
#[derive(Debug, Default)]
pub struct SplitSums {
    /// The splits' names and counts, placed as an edge's splits are; their latencies are in
    /// `latencies`, at the same positions.
    named: EdgeStats,
    latencies: Vec<SketchSum>,
}

impl SplitSums {
    /// Adds the counts of (`caller`, `callee`)'s split to its sum (or to the other
    /// operations'), and returns the sum its latency is to be added to.
    pub fn add(
        &mut self,
        caller: &str,
        callee: &str,
        num_requests: u64,
        num_errors: u64,
    ) -> &mut SketchSum {
        let num_before = self.named.operations.len();
        let (at, _) = self.named.split_index(caller, callee);
        if self.named.operations.len() > num_before {
            self.latencies.insert(at, SketchSum::default());
        }
        let split = &mut self.named.operations[at];
        split.num_requests += num_requests;
        split.num_errors += num_errors;
        &mut self.latencies[at]
    }

    pub fn into_splits(self) -> Vec<OperationSplit> {
        let mut splits = self.named.operations;
        for (split, latency) in splits.iter_mut().zip(self.latencies) {
            split.latency = latency.into_sketch();
        }
        splits
    }
}

/// Bound on [`EdgeStats::consumer_groups`]: a topic read by more groups than this through one
/// service keeps the first ones (in sort order).
pub const MAX_CONSUMER_GROUPS: usize = 16;

impl EdgeStats {
    pub fn merge(&mut self, other: &EdgeStats) {
        self.add_counts(other);
        self.client_latency.merge(&other.client_latency);
        self.server_latency.merge(&other.server_latency);
        self.publish_consume_latency
            .merge(&other.publish_consume_latency);
        for split in &other.operations {
            self.split_mut(&split.caller, &split.callee).0.merge(split);
        }
    }

    /// `all` merged: equal to merging them one by one in order ([`EdgeStats::merge`]), with
    /// each latency sketch merged in one pass ([`LatencySketch::merge_all`], the splits'
    /// through [`SplitSums`]) — what a range of many minutes of a large map needs.
    pub fn merge_all(all: &[&EdgeStats]) -> EdgeStats {
        let mut total = EdgeStats::default();
        let mut splits = SplitSums::default();
        for stats in all {
            total.add_counts(stats);
            for split in &stats.operations {
                let (caller, callee) = (&split.caller, &split.callee);
                splits
                    .add(caller, callee, split.num_requests, split.num_errors)
                    .add(&split.latency);
            }
        }
        total.client_latency = LatencySketch::merge_all(all.iter().map(|s| &s.client_latency));
        total.server_latency = LatencySketch::merge_all(all.iter().map(|s| &s.server_latency));
        total.publish_consume_latency =
            LatencySketch::merge_all(all.iter().map(|s| &s.publish_consume_latency));
        total.operations = splits.into_splits();
        total
    }

    /// `other`'s counts and consumer groups: everything but its latencies and splits.
    pub(crate) fn add_counts(&mut self, other: &EdgeStats) {
        self.num_requests += other.num_requests;
        self.num_unobserved += other.num_unobserved;
        self.num_errors += other.num_errors;
        self.num_retries += other.num_retries;
        self.num_short_circuited += other.num_short_circuited;
        self.num_client_only += other.num_client_only;
        self.num_server_only += other.num_server_only;
        self.num_traces += other.num_traces;
        self.max_calls_per_trace = self.max_calls_per_trace.max(other.max_calls_per_trace);
        for group in &other.consumer_groups {
            self.add_consumer_group(group);
        }
    }

    /// Adds a consumer group to the sorted, bounded set; returns whether it was added.
    pub fn add_consumer_group(&mut self, group: &str) -> bool {
        match self
            .consumer_groups
            .binary_search_by(|known| known.as_str().cmp(group))
        {
            Ok(_) => false,
            Err(position) => {
                if self.consumer_groups.len() >= MAX_CONSUMER_GROUPS {
                    if position == self.consumer_groups.len() {
                        return false;
                    }
                    self.consumer_groups.pop();
                }
                self.consumer_groups.insert(position, group.to_owned());
                true
            }
        }
    }
}

/// RED of one operation (server/consumer span name) of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationStats {
    /// Spans served, each counting for what its sampling says it stands for (an estimate when
    /// `num_unobserved` > 0), like [`EdgeStats::num_requests`].
    pub num_requests: u64,
    /// Of `num_requests`, those inferred from sampling rather than received.
    #[serde(default)]
    pub num_unobserved: u64,
    pub num_errors: u64,
    pub latency: LatencySketch,
    /// Instance-minutes: per minute the distinct `service.instance.id`s that served the
    /// operation, summed over minutes (0: no span named its instance).
    #[serde(default)]
    pub instance_minutes: u64,
    /// The requests of those instance-minutes (spans naming a counted instance):
    /// `instance_requests / (instance_minutes × 60)` is the rate one instance served.
    #[serde(default)]
    pub instance_requests: u64,
    /// The `service.version`s that served these requests, sorted by version, at most
    /// [`MAX_VERSIONS`] (spans of a resource without one are in none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionStats>,
}

/// Versions kept per operation (a minute's, or a range's merged): a rollout has two, a canary
/// three; further ones are not kept (counted by the engine).
pub const MAX_VERSIONS: usize = 16;

/// RED of one `service.version` of one operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionStats {
    pub version: String,
    pub num_requests: u64,
    pub num_errors: u64,
    pub latency: LatencySketch,
}

impl VersionStats {
    pub fn merge(&mut self, other: &VersionStats) {
        self.add_counts(other);
        self.latency.merge(&other.latency);
    }

    fn add_counts(&mut self, other: &VersionStats) {
        self.num_requests += other.num_requests;
        self.num_errors += other.num_errors;
    }
}

impl OperationStats {
    pub fn merge(&mut self, other: &OperationStats) {
        self.add_counts(other);
        self.latency.merge(&other.latency);
        for version in &other.versions {
            if let Some(known) = self.version_mut(&version.version) {
                known.merge(version);
            }
        }
    }

    /// `all` merged: equal to merging them one by one in order ([`OperationStats::merge`]),
    /// with each latency sketch merged in one pass ([`LatencySketch::merge_all`]).
    pub fn merge_all(all: &[&OperationStats]) -> OperationStats {
        let mut total = OperationStats::default();
        // Per version of `total`, the sketches that land in it, in order.
        let mut version_sketches: Vec<Vec<&LatencySketch>> = Vec::new();
        for stats in all {
            total.add_counts(stats);
            for version in &stats.versions {
                let num_before = total.versions.len();
                let Some(at) = total.version_index(&version.version) else {
                    continue;
                };
                if total.versions.len() > num_before {
                    version_sketches.insert(at, Vec::new());
                }
                total.versions[at].add_counts(version);
                version_sketches[at].push(&version.latency);
            }
        }
        total.latency = LatencySketch::merge_all(all.iter().map(|stats| &stats.latency));
        for (version, sketches) in total.versions.iter_mut().zip(version_sketches) {
            version.latency = LatencySketch::merge_all(sketches);
        }
        total
    }

    /// `other`'s counts: everything but its latency and versions.
    fn add_counts(&mut self, other: &OperationStats) {
        self.num_requests += other.num_requests;
        self.num_unobserved += other.num_unobserved;
        self.num_errors += other.num_errors;
        self.instance_minutes += other.instance_minutes;
        self.instance_requests += other.instance_requests;
    }

    /// The stats of `version`, added (empty) when there is room; `None` when
    /// [`MAX_VERSIONS`] others are kept.
    pub fn version_mut(&mut self, version: &str) -> Option<&mut VersionStats> {
        let at = self.version_index(version)?;
        self.versions.get_mut(at)
    }

    /// Where [`OperationStats::version_mut`]'s version is in `versions`, added if new.
    fn version_index(&mut self, version: &str) -> Option<usize> {
        let at = match self
            .versions
            .binary_search_by(|known| known.version.as_str().cmp(version))
        {
            Ok(at) => at,
            Err(_) if self.versions.len() >= MAX_VERSIONS => return None,
            Err(at) => {
                let stats = VersionStats {
                    version: version.to_owned(),
                    ..VersionStats::default()
                };
                self.versions.insert(at, stats);
                at
            }
        };
        Some(at)
    }
}

/// Where a node lives, from its resource (services) or its caller's (virtual nodes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlacement {
    pub namespace: Option<String>,
    pub environment: Option<String>,
}

/// One closed minute of one edge, as stored. `minute` is minutes since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeRollup {
    pub minute: i64,
    pub key: EdgeKey,
    pub source_placement: NodePlacement,
    pub target_placement: NodePlacement,
    pub stats: EdgeStats,
}

/// One edge's stored rollups over a range, merged: what a map of the range reads.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeTotal {
    pub key: EdgeKey,
    /// The first rollup's placements (by minute, then instance).
    pub source_placement: NodePlacement,
    pub target_placement: NodePlacement,
    pub stats: EdgeStats,
}

/// One operation's stored rollups over a range, merged: what services' figures read.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationTotal {
    pub service: String,
    pub operation: String,
    /// The first rollup's placement (by minute, then instance).
    pub placement: NodePlacement,
    pub stats: OperationStats,
}

/// One closed minute of one operation of one service, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRollup {
    pub minute: i64,
    pub service: String,
    pub placement: NodePlacement,
    pub operation: String,
    pub stats: OperationStats,
}
