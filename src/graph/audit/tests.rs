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

fn retrying(num_requests: u64, multiplier: f64) -> EdgeStats {
    let first_tries = (num_requests as f64 / multiplier).round() as u64;
    EdgeStats {
        num_retries: num_requests - first_tries,
        ..stats(num_requests)
    }
}

/// A view of `(source, target, calls, load multiplier)` hops, over HTTP or to a database.
fn retrying_view(hops: &[(&str, &str, u64, f64)]) -> GraphView {
    let mut builder = ViewBuilder::new();
    for (source, target, num_requests, multiplier) in hops {
        let kind = if target.starts_with("database:") {
            EdgeKind::Database
        } else {
            EdgeKind::Http
        };
        builder = builder.with_stats(source, target, kind, retrying(*num_requests, *multiplier));
    }
    builder.build()
}

/// The retry storms of `view` that are chains (their evidence has a path).
fn chains_in(view: &GraphView) -> Vec<Finding> {
    found(view, FindingKind::RetryStorm)
        .into_iter()
        .filter(|finding| finding.evidence.get("path").is_some())
        .collect()
}

#[test]
fn retries_multiplying_along_a_chain_are_one_storm_with_its_path_and_product() {
    // 1.5× three times: each edge a third retries (over the 20 % share), 3.4× along.
    // Then the near miss: 1.2× twice (no edge over 20 % retries) is 1.44×, nothing.
    let view = retrying_view(&[
        ("service:a", "service:b", 150, 1.5),
        ("service:b", "service:c", 150, 1.5),
        ("service:c", "database:redis r", 150, 1.5),
        ("service:x", "service:y", 120, 1.2),
        ("service:y", "service:z", 120, 1.2),
    ]);
    let chains = chains_in(&view);
    assert_eq!(chains.len(), 1, "{chains:?}");
    assert_eq!(
        chains[0].subjects,
        [
            "service:a -> service:b",
            "service:b -> service:c",
            "service:c -> database:redis r"
        ]
    );
    assert_eq!(chains[0].evidence["amplification"], 3.38);
    assert_eq!(chains[0].evidence["path"][3], "database:redis r");
    assert_eq!(chains[0].severity, Severity::Warning);
    assert!(
        chains[0]
            .summary
            .starts_with("a → b → c → redis r: retries multiply load 3.4×"),
        "{}",
        chains[0].summary
    );
}

#[test]
fn a_chain_amplifies_only_through_consecutive_retrying_hops() {
    // 1.18× (under the 20 % share) then 3× makes 3.5×; a hop without retries in between
    // (p → q → r) breaks the chain, and one hop alone is no chain.
    let view = retrying_view(&[
        ("service:a", "service:b", 118, 1.18),
        ("service:b", "service:c", 60, 3.0),
        ("service:p", "service:q", 60, 2.0),
        ("service:q", "service:r", 60, 1.0),
        ("service:r", "service:s", 60, 2.0),
    ]);
    let paths: Vec<serde_json::Value> = chains_in(&view)
        .into_iter()
        .map(|finding| finding.evidence["path"].clone())
        .collect();
    assert_eq!(
        paths,
        [serde_json::json!(["service:a", "service:b", "service:c"])]
    );
}

#[test]
fn a_retrying_cycle_is_followed_once_around_and_every_edge_retrying_stays_bounded() {
    let view = retrying_view(&[
        ("service:a", "service:b", 60, 2.0),
        ("service:b", "service:c", 60, 2.0),
        ("service:c", "service:a", 60, 2.0),
    ]);
    let chains = amplification::amplified_chains(&view);
    assert_eq!(chains.len(), 1, "once around, no node twice: {chains:?}");
    assert_eq!(
        chains[0].evidence["path"],
        serde_json::json!(["service:a", "service:b", "service:c"])
    );
    // A complete graph of 30 services, every edge 2×: capped hops, steps and findings.
    let mut builder = ViewBuilder::new();
    for source in 0..30 {
        for target in (0..30).filter(|target| *target != source) {
            builder = builder.with_stats(
                &format!("service:s{source}"),
                &format!("service:s{target}"),
                EdgeKind::Http,
                retrying(60, 2.0),
            );
        }
    }
    let chains = amplification::amplified_chains(&builder.build());
    assert_eq!(chains.len(), MAX_CHAIN_FINDINGS);
    assert!(
        chains
            .iter()
            .all(|chain| chain.subjects.len() == MAX_CHAIN_HOPS)
    );
}

#[test]
fn a_name_matching_a_configured_endpoint_pattern_is_hard_coded_and_a_near_miss_is_not() {
    let view = ViewBuilder::new()
        .http(
            "service:orders",
            "external:Payments.Internal.Example.com:8443",
            60,
        )
        .edge(
            "service:orders",
            "database:postgresql db-7.internal.example.com:5432/orders",
            EdgeKind::Database,
            60,
        )
        // Near misses: the bare domain, and a name that only contains the pattern's text.
        .http("service:orders", "external:internal.example.com", 60)
        .http(
            "service:orders",
            "external:internal.example.com.evil.io",
            60,
        )
        .build();
    let patterns =
        ["*.internal.example.com", "10.*"].map(|text| EndpointPattern::parse(text).expect("valid"));
    let input = AuditInput {
        endpoint_patterns: patterns.to_vec(),
        ..AuditInput::default()
    };
    let hard: Vec<Finding> = audit(&view, &insights(&view, &[]), &input)
        .into_iter()
        .filter(|finding| finding.kind == FindingKind::HardcodedEndpoint)
        .collect();
    let targets: Vec<&str> = hard
        .iter()
        .map(|finding| finding.subjects[0].as_str())
        .collect();
    assert_eq!(
        targets,
        [
            "database:postgresql db-7.internal.example.com:5432/orders",
            "external:Payments.Internal.Example.com:8443"
        ]
    );
    assert_eq!(hard[1].evidence["pattern"], "*.internal.example.com");
    assert_eq!(hard[1].evidence["address"], serde_json::Value::Null);
    assert!(
        hard[1].summary.contains("matches *.internal.example.com"),
        "{}",
        hard[1].summary
    );
    // Without patterns: IP literals only.
    assert!(found(&view, FindingKind::HardcodedEndpoint).is_empty());
}

#[test]
fn endpoint_patterns_glob_with_stars_and_refuse_empty_or_match_all() {
    let pattern = |text| EndpointPattern::parse(text).expect("valid");
    assert!(pattern("10.*").matches_name("postgresql 10.0.0.7:5432"));
    assert!(!pattern("10.*").matches_name("110.0.0.7:80"));
    assert!(pattern("db-*-prod").matches_name("db-eu-1-prod:5432"));
    assert!(pattern("*a*b").matches_name("xaxxab"));
    assert!(!pattern("*a*b").matches_name("xaxxa"));
    for bad in ["", "**", "db host", "db?"] {
        assert!(EndpointPattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_service_serving_more_per_instance_than_the_target_misses_it_and_one_under_does_not() {
    let operation = |num_requests, instance_minutes| crate::model::graph::OperationStats {
        num_requests: num_requests + 5_000_000,
        instance_requests: num_requests,
        instance_minutes,
        ..Default::default()
    };
    // Over 10 minutes: 2 instances at 12,000/s each (critical only past twice); 4 at 6,000/s;
    // a service reporting no instances is not judged. Requests of spans naming no instance
    // (5M more per operation) count for none.
    let busy = ServedLoad::of(
        "search",
        &[operation(12_000_000, 20), operation(2_400_000, 10)],
    );
    let fine = ServedLoad::of("orders", &[operation(14_400_000, 40)]);
    let unknown = ServedLoad::of("legacy", &[operation(90_000_000, 0)]);
    let missed = instances_overloaded(&[busy, fine, unknown], MAX_REQUESTS_PER_INSTANCE);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0].kind, FindingKind::TargetMissed);
    assert_eq!(missed[0].subjects, ["service:search"]);
    assert_eq!(missed[0].severity, Severity::Warning);
    assert_eq!(missed[0].evidence["requests_per_s_per_instance"], 12_000.0);
    assert!(
        missed[0]
            .summary
            .contains("12000 requests/s per instance over the 10000/s target"),
        "{}",
        missed[0].summary
    );
}
