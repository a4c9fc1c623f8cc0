//! The communication-pattern audit: the rules every guide to microservice communication gives
//! (a service owns its data, external traffic enters through the gateway, no hard-coded
//! endpoints, synchronous calls protected by retries or a breaker, no retry storms, callers
//! that wait as long as their callees work, no orphaned topics, propagated context, latency
//! targets met, no cycles, long synchronous chains, chatty pairs or single points of failure)
//! checked against one snapshot of the live map.
//!
//! Pure computation over a [`GraphView`] and the structural [`Insights`]: each rule is a
//! function in `ownership`, `resilience`, `amplification` or `structure` that returns [`Finding`]s, each
//! with a kind, a severity, the node and edge ids it concerns, a one-line summary with the
//! numbers, the rule it breaks and its evidence. Thresholds are named constants here (and in
//! `amplification`), so the documentation and the tests read the same numbers. Linear in
//! nodes + edges, but for the chain search, which is capped.

mod amplification;
mod correlation;
mod examples;
mod ownership;
mod resilience;
mod structure;
mod versions;

pub use amplification::{
    CHAIN_AMPLIFICATION, CHAIN_AMPLIFICATION_CRITICAL, MAX_CHAIN_FINDINGS, MAX_CHAIN_HOPS,
    MAX_CHAIN_STEPS,
};
pub use correlation::{CarriedCall, DEFAULT_CORRELATION_KEYS, correlation_gaps};
pub use examples::{MAX_EXAMPLES, TraceEdges, attach_examples};
pub use ownership::EndpointPattern;
pub use versions::{CallerCalls, deprecated_versions, versioned_routes};

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::graph::analysis::{GraphView, Insights};
use crate::model::figures::LatencyTargets;
use crate::model::graph::{EdgeKey, EdgeKind, EdgeStats, NodeKey, NodeKind};

/// An edge is judged only with at least this many calls in the range.
pub const MIN_CALLS: u64 = 20;
/// Error rate from which an unprotected synchronous edge is a finding (critical from 5 %).
pub const UNPROTECTED_ERROR_RATE: f64 = 0.01;
/// Share of calls that are retries from which an edge is a retry storm (critical from 50 %).
pub const RETRY_STORM_SHARE: f64 = 0.2;
/// A callee's p95 above its callers' p95 by this factor: callers give up while it works.
pub const TIMEOUT_MISMATCH_FACTOR: f64 = 1.2;
/// Share of calls whose server half never reported from which propagation is broken.
pub const BROKEN_PROPAGATION_SHARE: f64 = 0.2;
/// Synchronous hops from which an observed chain is long.
pub const LONG_CHAIN_HOPS: usize = 4;
/// Requests per second one instance of a service should serve at most, by default
/// (`[insights] max_requests_per_instance`).
pub const MAX_REQUESTS_PER_INSTANCE: f64 = 10_000.0;
/// Synchronous callees from which a node's fan-out is a finding.
pub const FAN_OUT_CALLEES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }

    fn warning_or_critical(is_critical: bool) -> Self {
        if is_critical {
            Self::Critical
        } else {
            Self::Warning
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// What a finding is about; each kind is one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    SharedDatabase,
    GatewayBypass,
    HardcodedEndpoint,
    DeprecatedApiVersion,
    UnprotectedDependency,
    RetryStorm,
    TimeoutMismatch,
    OrphanTopic,
    CorrelationIdGap,
    BrokenPropagation,
    TargetMissed,
    Cycle,
    LongChain,
    ChattyPair,
    FanOut,
    SinglePointOfFailure,
}

impl FindingKind {
    pub const ALL: [FindingKind; 16] = [
        Self::SharedDatabase,
        Self::GatewayBypass,
        Self::HardcodedEndpoint,
        Self::DeprecatedApiVersion,
        Self::UnprotectedDependency,
        Self::RetryStorm,
        Self::TimeoutMismatch,
        Self::OrphanTopic,
        Self::CorrelationIdGap,
        Self::BrokenPropagation,
        Self::TargetMissed,
        Self::Cycle,
        Self::LongChain,
        Self::ChattyPair,
        Self::FanOut,
        Self::SinglePointOfFailure,
    ];

    /// The name in the API (`shared_database`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::SharedDatabase => "shared_database",
            Self::GatewayBypass => "gateway_bypass",
            Self::HardcodedEndpoint => "hardcoded_endpoint",
            Self::DeprecatedApiVersion => "deprecated_api_version",
            Self::UnprotectedDependency => "unprotected_dependency",
            Self::RetryStorm => "retry_storm",
            Self::TimeoutMismatch => "timeout_mismatch",
            Self::OrphanTopic => "orphan_topic",
            Self::CorrelationIdGap => "correlation_id_gap",
            Self::BrokenPropagation => "broken_propagation",
            Self::TargetMissed => "target_missed",
            Self::Cycle => "cycle",
            Self::LongChain => "long_chain",
            Self::ChattyPair => "chatty_pair",
            Self::FanOut => "fan_out",
            Self::SinglePointOfFailure => "single_point_of_failure",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }

    /// The rule the finding breaks, in the words of the guides.
    pub fn rule(self) -> &'static str {
        match self {
            Self::SharedDatabase => {
                "A service's data belongs to that service alone: no shared databases."
            }
            Self::GatewayBypass => "All external traffic enters through the API gateway.",
            Self::HardcodedEndpoint => {
                "Call services by discovered names, not hard-coded addresses."
            }
            Self::DeprecatedApiVersion => {
                "Version APIs, and retire an old version only when every caller has moved."
            }
            Self::UnprotectedDependency => {
                "Protect synchronous calls with timeouts, retries with backoff and circuit breakers."
            }
            Self::RetryStorm => {
                "Retries must not multiply load: back off, cap attempts, retry at one layer."
            }
            Self::TimeoutMismatch => {
                "A caller waits at least as long as its callee works, or the work is wasted."
            }
            Self::OrphanTopic => {
                "Never fire and forget without tracking: every topic has producers and consumers."
            }
            Self::CorrelationIdGap => {
                "Pass the correlation id on with every call, so one request reads as one story."
            }
            Self::BrokenPropagation => "Propagate trace context on every call.",
            Self::TargetMissed => {
                "Meet the targets: calls p95, event publish, event processing, requests per instance."
            }
            Self::Cycle => "Dependencies flow one way: no cycles between services.",
            Self::LongChain => "Avoid long synchronous chains: each hop adds latency and failure.",
            Self::ChattyPair => {
                "Avoid chatty communication: batch instead of calling once per item."
            }
            Self::FanOut => "A request should not wait on many synchronous callees.",
            Self::SinglePointOfFailure => "No single service whose failure cuts the system apart.",
        }
    }
}

/// One broken rule with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// Node ids (`service:orders`) and edge ids (`service:orders -> service:payments`).
    pub subjects: Vec<String>,
    pub summary: String,
    pub rule: &'static str,
    pub evidence: Value,
    pub example_trace_ids: Vec<String>,
}

impl Finding {
    fn new(
        kind: FindingKind,
        severity: Severity,
        subjects: Vec<String>,
        summary: String,
        evidence: Value,
    ) -> Self {
        Self {
            kind,
            severity,
            subjects,
            summary,
            rule: kind.rule(),
            evidence,
            example_trace_ids: Vec::new(),
        }
    }
}

/// A synchronous call between two known ends, with enough calls to judge.
fn judged_sync(key: &EdgeKey, stats: &EdgeStats) -> bool {
    key.kind != EdgeKind::Messaging
        && key.source.kind == NodeKind::Service
        && key.target.kind != NodeKind::Topic
        && stats.num_requests >= MIN_CALLS
}

/// Calls per first try on an edge: 2.0 when every call is retried once.
fn load_multiplier(stats: &EdgeStats) -> f64 {
    let first_tries = stats.num_requests.saturating_sub(stats.num_retries).max(1);
    stats.num_requests as f64 / first_tries as f64
}

/// An edge as a finding's subject.
pub fn edge_id(key: &EdgeKey) -> String {
    edge_between(&key.source, &key.target)
}

/// The edge from `source` to `target` as a finding's subject (`service:a -> service:b`).
pub fn edge_between(source: &NodeKey, target: &NodeKey) -> String {
    format!("{} -> {}", source.id(), target.id())
}

/// What one service served over a range, for the per-instance target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedLoad {
    pub service: String,
    /// Requests of spans naming a counted instance (see `OperationStats`).
    pub num_requests: u64,
    /// The most instance-minutes of any of its operations.
    pub instance_minutes: u64,
}

impl ServedLoad {
    /// The load of `service` from its operations' figures.
    pub fn of<'a>(
        service: &str,
        operations: impl IntoIterator<Item = &'a crate::model::graph::OperationStats>,
    ) -> Self {
        let mut load = Self {
            service: service.to_owned(),
            num_requests: 0,
            instance_minutes: 0,
        };
        for stats in operations {
            load.num_requests += stats.instance_requests;
            load.instance_minutes = load.instance_minutes.max(stats.instance_minutes);
        }
        load
    }
}

/// Services over the per-instance target (`target_missed`), the stored operations read by
/// the caller.
pub fn instances_overloaded(served: &[ServedLoad], max_per_instance: f64) -> Vec<Finding> {
    resilience::instances_overloaded(served, max_per_instance)
}

/// What the audit needs besides the map.
#[derive(Debug, Clone, Default)]
pub struct AuditInput {
    /// Services that are gateways (`[insights] gateways`); empty: the service taking most
    /// calls from outside.
    pub gateways: Vec<String>,
    pub targets: LatencyTargets,
    /// Edges with a circuit breaker seen on them (in any state).
    pub breaker_edges: HashSet<EdgeKey>,
    /// Services with a breaker that matches no edge.
    pub breaker_services: HashSet<NodeKey>,
    /// Names that are hard-coded addresses besides IP literals (`[insights] endpoint_patterns`).
    pub endpoint_patterns: Vec<EndpointPattern>,
}

/// Every finding over `view`, most severe first (then by kind and subjects).
pub fn audit(view: &GraphView, insights: &Insights, input: &AuditInput) -> Vec<Finding> {
    let mut findings = Vec::new();
    let broken = resilience::broken_propagation(view);
    // A service whose callers lose the trace context shows "outside" calls that are its own
    // callers': broken propagation, not a bypass.
    let context_lost_at: HashSet<String> = broken
        .iter()
        .filter_map(|finding| finding.subjects[0].split(" -> ").nth(1))
        .map(str::to_owned)
        .collect();
    findings.extend(ownership::shared_databases(view));
    findings.extend(
        ownership::gateway_bypasses(view, &input.gateways)
            .into_iter()
            .filter(|bypass| !context_lost_at.contains(bypass.subjects[0].as_str())),
    );
    findings.extend(ownership::hardcoded_endpoints(
        view,
        &input.endpoint_patterns,
    ));
    findings.extend(ownership::orphan_topics(view));
    findings.extend(resilience::unprotected_dependencies(view, input));
    findings.extend(resilience::retry_storms(view));
    findings.extend(amplification::amplified_chains(view));
    findings.extend(resilience::timeout_mismatches(view));
    findings.extend(broken);
    findings.extend(resilience::targets_missed(view, input.targets));
    findings.extend(structure::from_insights(insights));
    findings.sort_by(by_severity);
    findings
}

/// The order findings are listed in: most severe first, then by kind and subjects.
pub fn by_severity(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then(a.kind.cmp(&b.kind))
        .then_with(|| a.subjects.cmp(&b.subjects))
}

/// Percent with one decimal, for summaries.
fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

#[cfg(test)]
mod tests;
