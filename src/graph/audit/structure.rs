//! The map's structural analyses ([`Insights`]) as findings of the same shape: cycles, long
//! synchronous chains, chatty pairs, wide fan-out and single points of failure.

use serde_json::json;

use super::{FAN_OUT_CALLEES, Finding, FindingKind, LONG_CHAIN_HOPS, Severity, percent};
use crate::graph::analysis::Insights;

fn name(id: &str) -> &str {
    id.split_once(':').map_or(id, |(_, name)| name)
}

pub(super) fn from_insights(insights: &Insights) -> Vec<Finding> {
    let mut findings = cycles(insights);
    findings.extend(long_chains(insights));
    findings.extend(hot_spots(insights));
    findings
}

fn cycles(insights: &Insights) -> Vec<Finding> {
    let mut findings = Vec::new();
    for cycle in &insights.cycles {
        let (severity, how) = if cycle.synchronous {
            (Severity::Critical, "synchronous")
        } else if cycle.through_topic {
            (Severity::Info, "through a topic")
        } else {
            (Severity::Warning, "mixed")
        };
        let path: Vec<&str> = cycle.path.iter().map(|id| name(id)).collect();
        let subjects = cycle
            .path
            .windows(2)
            .map(|pair| format!("{} -> {}", pair[0], pair[1]))
            .chain(cycle.component.iter().cloned())
            .collect();
        findings.push(Finding::new(
            FindingKind::Cycle,
            severity,
            subjects,
            format!("{how} cycle: {}", path.join(" → ")),
            json!(cycle),
        ));
    }
    findings
}

fn long_chains(insights: &Insights) -> Vec<Finding> {
    let mut findings = Vec::new();
    for chain in insights
        .longest_chains
        .iter()
        .filter(|chain| chain.num_hops >= LONG_CHAIN_HOPS)
    {
        let subjects = chain
            .services
            .windows(2)
            .map(|pair| format!("service:{} -> service:{}", pair[0], pair[1]))
            .collect();
        let mut finding = Finding::new(
            FindingKind::LongChain,
            Severity::Warning,
            subjects,
            format!(
                "{} synchronous hops in a row: {} (seen {} times)",
                chain.num_hops,
                chain.services.join(" → "),
                chain.num_occurrences
            ),
            json!(chain),
        );
        finding.example_trace_ids = vec![chain.example_trace_id.to_hex()];
        findings.push(finding);
    }
    findings
}

/// Chatty pairs, wide fan-out and single points of failure.
fn hot_spots(insights: &Insights) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pair in &insights.chatty_pairs {
        findings.push(Finding::new(
            FindingKind::ChattyPair,
            Severity::Warning,
            vec![format!("{} -> {}", pair.source, pair.target)],
            format!(
                "{} → {}: {:.1} calls per trace on average, up to {} in one",
                name(&pair.source),
                name(&pair.target),
                pair.calls_per_trace,
                pair.max_calls_per_trace
            ),
            json!(pair),
        ));
    }
    for wide in insights
        .fan_out
        .iter()
        .filter(|wide| wide.num_synchronous_callees >= FAN_OUT_CALLEES)
    {
        findings.push(Finding::new(
            FindingKind::FanOut,
            Severity::Info,
            vec![wide.node.clone()],
            format!(
                "{} calls {} others synchronously",
                name(&wide.node),
                wide.num_synchronous_callees
            ),
            json!(wide),
        ));
    }
    for point in insights
        .single_points_of_failure
        .iter()
        .filter(|point| point.num_dependents >= 2)
    {
        let severity = if point.affected_traffic_share >= 0.5 {
            Severity::Warning
        } else {
            Severity::Info
        };
        findings.push(Finding::new(
            FindingKind::SinglePointOfFailure,
            severity,
            vec![point.node.clone()],
            format!(
                "{} failing cuts off {} dependents, {} of the traffic",
                name(&point.node),
                point.num_dependents,
                percent(point.affected_traffic_share)
            ),
            json!(point),
        ));
    }
    findings
}
