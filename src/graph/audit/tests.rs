//! Each rule with a case that breaks it and a near miss that must not.

use std::collections::HashSet;

use super::*;
use crate::graph::analysis::fixtures::{ViewBuilder, chain};
use crate::graph::analysis::insights;
use crate::model::graph::{EdgeKind, EdgeStats};

fn kinds_of(view: &GraphView, input: &AuditInput) -> Vec<(FindingKind, Vec<String>)> {
    audit(view, &insights(view, &[]), input)
        .into_iter()
        .map(|finding| (finding.kind, finding.subjects))
        .collect()
}

fn found(view: &GraphView, kind: FindingKind) -> Vec<Finding> {
    audit(view, &insights(view, &[]), &AuditInput::default())
        .into_iter()
        .filter(|finding| finding.kind == kind)
        .collect()
}

fn stats(num_requests: u64) -> EdgeStats {
    EdgeStats {
        num_requests,
        ..EdgeStats::default()
    }
}

fn with_latency(num_requests: u64, client_ms: u64, server_ms: u64) -> EdgeStats {
    let mut stats = stats(num_requests);
    for _ in 0..num_requests {
        stats.client_latency.record(client_ms * 1_000_000);
        stats.server_latency.record(server_ms * 1_000_000);
    }
    stats
}

/// `service:a` calling `service:b` and `service:c` over HTTP with these figures.
fn a_calls_b_and_c(to_b: EdgeStats, to_c: EdgeStats) -> GraphView {
    ViewBuilder::new()
        .with_stats("service:a", "service:b", EdgeKind::Http, to_b)
        .with_stats("service:a", "service:c", EdgeKind::Http, to_c)
        .build()
}

#[test]
fn a_database_used_by_two_services_is_shared_and_one_services_own_is_not() {
    let view = ViewBuilder::new()
        .edge(
            "service:orders",
            "database:postgresql shop",
            EdgeKind::Database,
            60,
        )
        .edge(
            "service:billing",
            "database:postgresql shop",
            EdgeKind::Database,
            30,
        )
        .edge(
            "service:users",
            "database:postgresql users",
            EdgeKind::Database,
            60,
        )
        .build();
    let shared = found(&view, FindingKind::SharedDatabase);
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].subjects[0], "database:postgresql shop");
    assert!(
        shared[0].summary.contains("billing, orders"),
        "{}",
        shared[0].summary
    );
    assert_eq!(shared[0].evidence["services"][0]["rate_per_s"], 0.5);
}

#[test]
fn outside_calls_into_a_service_other_than_the_gateway_bypass_it() {
    let view = ViewBuilder::new()
        .http("client:user", "service:gateway", 600)
        .http("client:user", "service:orders", 60)
        .http("service:gateway", "service:orders", 540)
        .build();
    let bypass = found(&view, FindingKind::GatewayBypass);
    assert_eq!(bypass.len(), 1, "{bypass:?}");
    assert_eq!(bypass[0].subjects, ["service:orders"]);
    assert_eq!(bypass[0].evidence["share_of_its_calls"], 0.1);
    // Named gateways: both are.
    let input = AuditInput {
        gateways: vec!["gateway".to_owned(), "orders".to_owned()],
        ..AuditInput::default()
    };
    assert!(
        !kinds_of(&view, &input)
            .iter()
            .any(|(kind, _)| *kind == FindingKind::GatewayBypass)
    );
}

#[test]
fn an_address_instead_of_a_name_is_hard_coded() {
    let view = ViewBuilder::new()
        .http("service:orders", "external:10.0.0.7:8080", 60)
        .edge(
            "service:orders",
            "database:postgresql [fd00::7]:5432",
            EdgeKind::Database,
            60,
        )
        .http("service:orders", "external:payments.internal:8080", 60)
        .http("service:orders", "external:v1.2.3.example.com", 60)
        .build();
    let hard = found(&view, FindingKind::HardcodedEndpoint);
    let targets: Vec<&str> = hard
        .iter()
        .map(|finding| finding.subjects[0].as_str())
        .collect();
    assert_eq!(
        targets,
        [
            "database:postgresql [fd00::7]:5432",
            "external:10.0.0.7:8080"
        ]
    );
    assert_eq!(hard[1].evidence["address"], "10.0.0.7");
}

#[test]
fn a_failing_sync_call_without_retries_or_breaker_is_unprotected() {
    let failing = EdgeStats {
        num_errors: 6,
        ..stats(100)
    };
    let retried = EdgeStats {
        num_retries: 3,
        ..failing.clone()
    };
    let healthy = EdgeStats {
        num_errors: 0,
        ..stats(100)
    };
    let view = ViewBuilder::new()
        .with_stats("service:a", "service:b", EdgeKind::Http, failing.clone())
        .with_stats("service:a", "service:c", EdgeKind::Http, retried)
        .with_stats("service:a", "service:d", EdgeKind::Http, healthy)
        .with_stats("service:a", "service:e", EdgeKind::Grpc, failing)
        .build();
    let input = AuditInput {
        breaker_edges: HashSet::from([view.edges[3].0.clone()]),
        ..AuditInput::default()
    };
    let unprotected: Vec<Vec<String>> = kinds_of(&view, &input)
        .into_iter()
        .filter(|(kind, _)| *kind == FindingKind::UnprotectedDependency)
        .map(|(_, subjects)| subjects)
        .collect();
    assert_eq!(unprotected, [vec!["service:a -> service:b".to_owned()]]);
    let finding = &found(&view, FindingKind::UnprotectedDependency)[0];
    assert_eq!(finding.severity, Severity::Critical, "6 % fail");
}

#[test]
fn retries_that_are_a_large_share_of_calls_are_a_storm_and_a_few_are_not() {
    let retried = |num_retries| EdgeStats {
        num_retries,
        ..stats(100)
    };
    let view = a_calls_b_and_c(retried(60), retried(5));
    let storms = found(&view, FindingKind::RetryStorm);
    assert_eq!(storms.len(), 1, "{storms:?}");
    assert_eq!(storms[0].severity, Severity::Critical);
    assert_eq!(storms[0].evidence["amplification"], 2.5);
}

#[test]
fn a_callee_working_longer_than_its_caller_waits_is_a_timeout_mismatch() {
    let view = a_calls_b_and_c(with_latency(50, 100, 400), with_latency(50, 100, 90));
    let mismatched = found(&view, FindingKind::TimeoutMismatch);
    assert_eq!(mismatched.len(), 1, "{mismatched:?}");
    assert_eq!(mismatched[0].subjects, ["service:a -> service:b"]);
}

#[test]
fn a_topic_without_consumers_is_orphaned_and_a_consumed_one_is_not() {
    let view = ViewBuilder::new()
        .edge(
            "service:orders",
            "topic:kafka audit",
            EdgeKind::Messaging,
            60,
        )
        .edge(
            "service:orders",
            "topic:kafka orders",
            EdgeKind::Messaging,
            60,
        )
        .edge(
            "topic:kafka orders",
            "service:billing",
            EdgeKind::Messaging,
            60,
        )
        .edge(
            "topic:kafka legacy",
            "service:billing",
            EdgeKind::Messaging,
            6,
        )
        .build();
    let orphans: Vec<(Severity, String)> = found(&view, FindingKind::OrphanTopic)
        .into_iter()
        .map(|finding| (finding.severity, finding.subjects[0].clone()))
        .collect();
    assert_eq!(
        orphans,
        [
            (Severity::Warning, "topic:kafka audit".to_owned()),
            (Severity::Info, "topic:kafka legacy".to_owned())
        ]
    );
}

#[test]
fn calls_whose_server_never_reports_into_a_service_with_root_spans_break_propagation() {
    let lost = EdgeStats {
        num_client_only: 40,
        ..stats(100)
    };
    let view = ViewBuilder::new()
        .http("client:user", "service:b", 40)
        .with_stats("service:a", "service:b", EdgeKind::Http, lost.clone())
        // c never shows root spans: its calls may just be slow to pair.
        .with_stats("service:a", "service:c", EdgeKind::Http, lost)
        .build();
    let broken = found(&view, FindingKind::BrokenPropagation);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0].subjects, ["service:a -> service:b"]);
}

#[test]
fn an_edge_over_its_latency_target_misses_it() {
    let view = a_calls_b_and_c(with_latency(50, 250, 240), with_latency(50, 80, 70));
    let missed = found(&view, FindingKind::TargetMissed);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(
        missed[0].severity,
        Severity::Critical,
        "over twice the target"
    );
}

#[test]
fn structural_analyses_become_findings_with_their_example_traces() {
    let view = ViewBuilder::new()
        .http("service:a", "service:b", 60)
        .http("service:b", "service:a", 60)
        .build();
    let long = chain(7, &["a", "b", "c", "d", "e"]);
    let short = chain(8, &["a", "b"]);
    let findings = audit(
        &view,
        &insights(&view, &[long, short]),
        &AuditInput::default(),
    );
    let cycle = findings
        .iter()
        .find(|finding| finding.kind == FindingKind::Cycle)
        .expect("cycle");
    assert_eq!(cycle.severity, Severity::Critical, "synchronous");
    let chains: Vec<&Finding> = findings
        .iter()
        .filter(|finding| finding.kind == FindingKind::LongChain)
        .collect();
    assert_eq!(chains.len(), 1, "only the four-hop chain");
    assert_eq!(chains[0].example_trace_ids.len(), 1);
}

#[test]
fn findings_serialize_with_kind_severity_subjects_summary_rule_and_evidence() {
    let view = ViewBuilder::new()
        .edge(
            "service:orders",
            "topic:kafka audit",
            EdgeKind::Messaging,
            60,
        )
        .build();
    let value = serde_json::to_value(&found(&view, FindingKind::OrphanTopic)[0]).expect("json");
    assert_eq!(value["kind"], "orphan_topic");
    assert_eq!(value["severity"], "warning");
    assert_eq!(value["subjects"], serde_json::json!(["topic:kafka audit"]));
    assert!(
        value["rule"]
            .as_str()
            .expect("rule")
            .contains("fire and forget")
    );
    assert_eq!(
        value["evidence"]["producers"],
        serde_json::json!(["service:orders"])
    );
    assert_eq!(value["example_trace_ids"], serde_json::json!([]));
}
