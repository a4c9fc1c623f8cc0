//! How calls hold up: synchronous edges that fail with nothing protecting them, retries that
//! multiply load, callers that give up while their callee works, calls whose server half never
//! reports, and edges that miss their latency target.

use std::collections::HashSet;

use serde_json::json;

use super::{
    AuditInput, BROKEN_PROPAGATION_SHARE, Finding, FindingKind, MIN_CALLS, RETRY_STORM_SHARE,
    ServedLoad, Severity, TIMEOUT_MISMATCH_FACTOR, UNPROTECTED_ERROR_RATE, edge_id, judged_sync,
    load_multiplier, percent,
};
use crate::graph::analysis::GraphView;
use crate::model::figures::{LatencyTargets, share};
use crate::model::graph::NodeKind;

fn p95_ms(sketch: &crate::model::sketch::LatencySketch) -> Option<f64> {
    sketch
        .quantile_nanos(0.95)
        .map(|nanos| (nanos / 1e4).round() / 100.0)
}

/// Failing synchronous edges with no retries, no breaker (on the edge or on its caller) and
/// no refused calls: nothing stands between the caller and its callee's failures.
pub(super) fn unprotected_dependencies(view: &GraphView, input: &AuditInput) -> Vec<Finding> {
    view.edges
        .iter()
        .filter(|(key, stats)| judged_sync(key, stats))
        .filter_map(|(key, stats)| {
            let error_rate = stats.error_rate()?;
            // An uninstrumented callee never answers with a span: only services can go missing.
            let unanswered = if key.target.kind == NodeKind::Service {
                share(stats.num_client_only, stats.num_requests).unwrap_or(0.0)
            } else {
                0.0
            };
            let failing = error_rate.max(unanswered);
            let protected = stats.num_retries > 0
                || stats.num_short_circuited > 0
                || input.breaker_edges.contains(key)
                || input.breaker_services.contains(&key.source);
            if protected || failing < UNPROTECTED_ERROR_RATE {
                return None;
            }
            let severity = Severity::warning_or_critical(failing >= 0.05);
            let unanswered_text = if unanswered > 0.0 {
                format!(", {} never answered", percent(unanswered))
            } else {
                String::new()
            };
            let summary = format!(
                "{} → {}: {} of calls fail{unanswered_text}, with no retries and no circuit breaker",
                key.source.name,
                key.target.name,
                percent(error_rate),
            );
            let evidence = json!({
                "error_rate": error_rate,
                "unanswered_share": unanswered,
                "requests": stats.num_requests,
                "retries": 0,
                "breaker": false,
            });
            Some(Finding::new(
                FindingKind::UnprotectedDependency,
                severity,
                vec![edge_id(key)],
                summary,
                evidence,
            ))
        })
        .collect()
}

/// Edges where retries are a large share of the calls (chains: [`super::amplification`]).
pub(super) fn retry_storms(view: &GraphView) -> Vec<Finding> {
    view.edges
        .iter()
        .filter(|(_, stats)| stats.num_requests >= MIN_CALLS && stats.num_retries > 0)
        .filter_map(|(key, stats)| {
            let retry_share = share(stats.num_retries, stats.num_requests)?;
            if retry_share < RETRY_STORM_SHARE {
                return None;
            }
            let amplification = load_multiplier(stats);
            let severity = Severity::warning_or_critical(retry_share >= 0.5);
            let summary = format!(
                "{} → {}: {} of calls are retries, {:.1}× the load of first tries",
                key.source.name,
                key.target.name,
                percent(retry_share),
                amplification
            );
            let evidence = json!({
                "requests": stats.num_requests,
                "retries": stats.num_retries,
                "retry_share": retry_share,
                "amplification": amplification,
            });
            Some(Finding::new(
                FindingKind::RetryStorm,
                severity,
                vec![edge_id(key)],
                summary,
                evidence,
            ))
        })
        .collect()
}

/// Edges whose callee's p95 exceeds what its callers waited: callers time out and the
/// callee's work is wasted.
pub(super) fn timeout_mismatches(view: &GraphView) -> Vec<Finding> {
    view.edges
        .iter()
        .filter(|(key, stats)| judged_sync(key, stats) && key.target.kind == NodeKind::Service)
        .filter_map(|(key, stats)| {
            let client = p95_ms(&stats.client_latency)?;
            let server = p95_ms(&stats.server_latency)?;
            if server <= client * TIMEOUT_MISMATCH_FACTOR {
                return None;
            }
            let summary = format!(
                "{} → {}: callers give up at p95 {client} ms while {} works p95 {server} ms",
                key.source.name, key.target.name, key.target.name
            );
            let evidence = json!({
                "client_p95_ms": client,
                "server_p95_ms": server,
                "wasted_p95_ms": ((server - client) * 100.0).round() / 100.0,
                "error_rate": stats.error_rate(),
            });
            Some(Finding::new(
                FindingKind::TimeoutMismatch,
                Severity::Warning,
                vec![edge_id(key)],
                summary,
                evidence,
            ))
        })
        .collect()
}

/// Calls to an instrumented service whose server half never reports while that service shows
/// calls from outside (root spans): the context was not passed on.
pub(super) fn broken_propagation(view: &GraphView) -> Vec<Finding> {
    let entered_from_outside: HashSet<&str> = view
        .edges
        .iter()
        .filter(|(key, _)| key.source.kind == NodeKind::Client)
        .map(|(key, _)| key.target.name.as_str())
        .collect();
    view.edges
        .iter()
        .filter(|(key, stats)| judged_sync(key, stats) && key.target.kind == NodeKind::Service)
        .filter(|(key, _)| entered_from_outside.contains(key.target.name.as_str()))
        .filter_map(|(key, stats)| {
            let lost = share(stats.num_client_only, stats.num_requests)?;
            if lost < BROKEN_PROPAGATION_SHARE {
                return None;
            }
            let summary = format!(
                "{} → {}: {} of calls never show a server span, while {} reports calls with no caller",
                key.source.name,
                key.target.name,
                percent(lost),
                key.target.name
            );
            let evidence = json!({
                "requests": stats.num_requests,
                "client_only": stats.num_client_only,
                "client_only_share": lost,
            });
            Some(Finding::new(
                FindingKind::BrokenPropagation,
                Severity::Warning,
                vec![edge_id(key)],
                summary,
                evidence,
            ))
        })
        .collect()
}

/// Services serving more requests per second per instance than `max_per_instance`
/// (critical past twice). A service's instance-minutes are those of its busiest operation in
/// instances: replicas serve the same routes, so that is every instance it ran.
pub(super) fn instances_overloaded(served: &[ServedLoad], max_per_instance: f64) -> Vec<Finding> {
    served
        .iter()
        .filter(|load| load.num_requests >= MIN_CALLS && load.instance_minutes > 0)
        .filter_map(|load| {
            let per_instance = load.num_requests as f64 / (load.instance_minutes as f64 * 60.0);
            let ratio = per_instance / max_per_instance;
            if ratio <= 1.0 {
                return None;
            }
            let summary = format!(
                "{}: {per_instance:.0} requests/s per instance over the {max_per_instance:.0}/s target",
                load.service
            );
            let evidence = json!({
                "target": "requests_per_instance",
                "requests_per_s_per_instance": (per_instance * 10.0).round() / 10.0,
                "target_per_s": max_per_instance,
                "ratio": ratio,
                "requests": load.num_requests,
                "instance_minutes": load.instance_minutes,
            });
            Some(Finding::new(
                FindingKind::TargetMissed,
                Severity::warning_or_critical(ratio > 2.0),
                vec![format!("service:{}", load.service)],
                summary,
                evidence,
            ))
        })
        .collect()
}

/// Edges whose p95 is over the target of their kind (critical past twice the target).
pub(super) fn targets_missed(view: &GraphView, targets: LatencyTargets) -> Vec<Finding> {
    view.edges
        .iter()
        .filter(|(_, stats)| stats.num_requests >= MIN_CALLS)
        .filter_map(|(key, stats)| {
            let load = targets.load(key, stats)?;
            if load.ratio() <= 1.0 {
                return None;
            }
            let severity = Severity::warning_or_critical(load.ratio() > 2.0);
            let which = if key.target.kind == NodeKind::Topic {
                "publish"
            } else if key.source.kind == NodeKind::Topic {
                "processing"
            } else {
                "calls"
            };
            let summary = format!(
                "{} → {}: {which} p95 {:.1} ms over the {:.0} ms target",
                key.source.name, key.target.name, load.p95_ms, load.target_ms
            );
            let evidence = json!({
                "target": which,
                "p95_ms": load.p95_ms,
                "target_ms": load.target_ms,
                "ratio": load.ratio(),
            });
            Some(Finding::new(
                FindingKind::TargetMissed,
                severity,
                vec![edge_id(key)],
                summary,
                evidence,
            ))
        })
        .collect()
}
