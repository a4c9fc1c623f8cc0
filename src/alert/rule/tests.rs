//! Every rule kind on small maps, overlays and metric points.

use std::collections::VecDeque;

use super::*;
use crate::alert::state::Labels;
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, NodeKind, NodePlacement, OperationStats};
use crate::query::EdgeLag;
use crate::signals::{Breaker, BreakerState, Trend};

/// Inputs with nothing but `view` (empty overlay, services, baseline and points).
fn inputs(view: &GraphView) -> Inputs<'_> {
    Inputs {
        view,
        overlay: Box::leak(Box::default()),
        services: &[],
        baseline: Box::leak(Box::new(GraphView {
            nodes: vec![],
            edges: vec![],
            window_secs: 300.0,
        })),
        baseline_services: &[],
        metric_points: &[],
        findings: &[],
        anomalies: &[],
    }
}

fn service(name: &str, requests: u64, errors: u64, millis: u64) -> ServiceSummary {
    let mut stats = OperationStats {
        num_requests: requests,
        num_errors: errors,
        ..OperationStats::default()
    };
    for _ in 0..requests.min(100) {
        stats.latency.record(millis * 1_000_000);
    }
    ServiceSummary {
        name: name.to_owned(),
        placement: NodePlacement::default(),
        stats,
        operations: vec![],
        source: crate::query::FigureSource::Traces,
        metrics_opt: None,
        metrics_disagree: false,
    }
}

fn names(results: &[(Labels, f64)], key: &str) -> Vec<String> {
    let mut names: Vec<String> = results
        .iter()
        .map(|(labels, _)| labels[key].clone())
        .collect();
    names.sort();
    names
}

fn edge(
    source: &str,
    target: &str,
    kind: EdgeKind,
    requests: u64,
    errors: u64,
    millis: u64,
) -> (EdgeKey, EdgeStats) {
    let mut stats = EdgeStats {
        num_requests: requests,
        num_errors: errors,
        ..EdgeStats::default()
    };
    for _ in 0..requests.min(100) {
        stats.client_latency.record(millis * 1_000_000);
    }
    let key = EdgeKey {
        source: NodeKey::service(source.to_owned()),
        target: NodeKey::service(target.to_owned()),
        kind,
    };
    (key, stats)
}

fn view(edges: Vec<(EdgeKey, EdgeStats)>) -> GraphView {
    let mut nodes: Vec<(NodeKey, NodePlacement)> = Vec::new();
    for (key, _) in &edges {
        for node in [&key.source, &key.target] {
            if !nodes.iter().any(|(known, _)| known == node) {
                nodes.push((node.clone(), NodePlacement::default()));
            }
        }
    }
    GraphView {
        nodes,
        edges,
        window_secs: 300.0,
    }
}

fn targets(results: &[(Labels, f64)]) -> Vec<String> {
    let mut targets: Vec<String> = results
        .iter()
        .map(|(labels, _)| labels["target"].clone())
        .collect();
    targets.sort();
    targets
}

#[test]
fn edge_error_rate_holds_above_the_threshold_with_enough_requests() {
    let map = view(vec![
        edge("orders", "payments", EdgeKind::Http, 100, 6, 10),
        edge("orders", "stock", EdgeKind::Http, 100, 5, 10),
        edge("orders", "audit", EdgeKind::Grpc, 5, 5, 10),
    ]);
    let rule = RuleKind::EdgeErrorRate {
        threshold: 0.05,
        min_requests: 10,
        edge_kinds: vec![],
    };
    let results = evaluate(&rule, &inputs(&map));
    assert_eq!(targets(&results), ["service:payments"]);
    assert!((results[0].1 - 0.06).abs() < 1e-12);
}

#[test]
fn edge_latency_holds_for_slow_edges_of_the_chosen_kinds() {
    let map = view(vec![
        edge("gateway", "users", EdgeKind::Http, 50, 0, 150),
        edge("gateway", "orders", EdgeKind::Grpc, 50, 0, 150),
        edge("gateway", "cart", EdgeKind::Http, 50, 0, 40),
    ]);
    let rule = RuleKind::EdgeLatency {
        quantile: 0.95,
        threshold_ms: 100.0,
        min_requests: 10,
        edge_kinds: vec![EdgeKind::Http],
    };
    let results = evaluate(&rule, &inputs(&map));
    assert_eq!(targets(&results), ["service:users"]);
    assert!(
        (results[0].1 - 150.0).abs() / 150.0 < 0.01,
        "{}",
        results[0].1
    );
}

#[test]
fn a_finding_rule_holds_for_findings_of_its_kinds_and_severity() {
    use crate::graph::analysis;
    use crate::graph::audit::{AuditInput, audit};
    let map = view(vec![
        edge("orders", "b", EdgeKind::Http, 10, 0, 1),
        edge("b", "orders", EdgeKind::Http, 10, 0, 1),
    ]);
    let mut shared = map.clone();
    for caller in ["orders", "billing"] {
        shared.edges.push((
            EdgeKey {
                source: NodeKey::service(caller),
                target: NodeKey::new(NodeKind::Database, "postgresql shop"),
                kind: EdgeKind::Database,
            },
            EdgeStats {
                num_requests: 10,
                ..EdgeStats::default()
            },
        ));
    }
    let found = audit(
        &shared,
        &analysis::insights(&shared, &[]),
        &AuditInput::default(),
    );
    let given = Inputs {
        findings: &found,
        ..inputs(&shared)
    };
    let rule = |kinds: &[&str], min_severity: &str| RuleKind::Finding {
        kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
        min_severity: min_severity.to_owned(),
    };
    let shared_alerts = evaluate(&rule(&["shared_database"], "warning"), &given);
    assert_eq!(shared_alerts.len(), 1, "{shared_alerts:?}");
    let (labels, value) = &shared_alerts[0];
    assert_eq!(labels["finding"], "shared_database");
    assert_eq!(labels["source"], "database:postgresql shop");
    assert_eq!(*value, 2.0, "warning");
    // The synchronous cycle is critical: it alone passes a critical floor.
    let critical = evaluate(&rule(&[], "critical"), &given);
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert_eq!(critical[0].0["finding"], "cycle");
    assert!(rule(&["shared_db"], "warning").validate().is_err());
    assert!(rule(&[], "severe").validate().is_err());
    let parsed: RuleKind =
        toml::from_str("kind = \"finding\"\nkinds = [\"gateway_bypass\"]\n").expect("parses");
    assert_eq!(parsed, rule(&["gateway_bypass"], "warning"));
}

#[test]
fn a_synchronous_cycle_holds_and_rules_parse_from_toml() {
    let map = view(vec![
        edge("a", "b", EdgeKind::Http, 10, 0, 1),
        edge("b", "c", EdgeKind::Grpc, 10, 0, 1),
        edge("c", "a", EdgeKind::Http, 10, 0, 1),
    ]);
    let results = evaluate(
        &RuleKind::Cycle {
            include_async: false,
        },
        &inputs(&map),
    );
    assert_eq!(results.len(), 1, "{results:?}");
    let parsed: RuleKind =
        toml::from_str("kind = \"edge_error_rate\"\nthreshold = 0.05\n").expect("parses");
    assert_eq!(
        parsed,
        RuleKind::EdgeErrorRate {
            threshold: 0.05,
            min_requests: 10,
            edge_kinds: vec![]
        }
    );
    let err = toml::from_str::<RuleKind>("kind = \"edge_error_rate\"\nthreshhold = 0.05\n")
        .expect_err("typo");
    assert!(err.to_string().contains("threshhold"), "{err}");
}

#[test]
fn service_error_rate_and_latency_hold_per_service() {
    let map = view(vec![]);
    let services = [
        service("orders", 100, 10, 20),
        service("users", 100, 1, 300),
        service("idle", 3, 3, 900),
    ];
    let given = Inputs {
        services: &services,
        ..inputs(&map)
    };
    let errors = RuleKind::ServiceErrorRate {
        threshold: 0.05,
        min_requests: 10,
    };
    assert_eq!(names(&evaluate(&errors, &given), "service"), ["orders"]);
    let slow = RuleKind::ServiceLatency {
        quantile: 0.99,
        threshold_ms: 250.0,
        min_requests: 10,
    };
    let results = evaluate(&slow, &given);
    assert_eq!(names(&results, "service"), ["users"]);
    assert!((results[0].1 - 300.0).abs() < 3.0, "{}", results[0].1);
}

#[test]
fn request_rate_drop_compares_with_the_window_before() {
    let now = view(vec![
        edge("web", "orders", EdgeKind::Http, 40, 0, 5),
        edge("web", "users", EdgeKind::Http, 95, 0, 5),
    ]);
    let before = view(vec![
        edge("web", "orders", EdgeKind::Http, 100, 0, 5),
        edge("web", "users", EdgeKind::Http, 100, 0, 5),
        edge("web", "gone", EdgeKind::Http, 100, 0, 5),
        edge("web", "tiny", EdgeKind::Http, 5, 0, 5),
    ]);
    let services_now = [service("orders", 10, 0, 1)];
    let services_before = [service("orders", 100, 0, 1), service("users", 100, 0, 1)];
    let given = Inputs {
        baseline: &before,
        services: &services_now,
        baseline_services: &services_before,
        ..inputs(&now)
    };
    let edges = RuleKind::RequestRateDrop {
        drop_ratio: 0.5,
        min_baseline_requests: 60,
        scope: DropScope::Edge,
    };
    let results = evaluate(&edges, &given);
    assert_eq!(
        names(&results, "target"),
        ["service:gone", "service:orders"]
    );
    let services = RuleKind::RequestRateDrop {
        drop_ratio: 0.5,
        min_baseline_requests: 60,
        scope: DropScope::Service,
    };
    let results = evaluate(&services, &given);
    assert_eq!(names(&results, "service"), ["orders", "users"]);
    assert!(results.iter().any(|(_, fall)| (*fall - 0.9).abs() < 1e-9));
}

#[test]
fn dependency_change_finds_new_and_vanished_edges_but_not_a_first_start() {
    let now = view(vec![
        edge("web", "orders", EdgeKind::Http, 10, 0, 5),
        edge("web", "search", EdgeKind::Http, 10, 0, 5),
    ]);
    let before = view(vec![
        edge("web", "orders", EdgeKind::Http, 10, 0, 5),
        edge("web", "legacy", EdgeKind::Http, 10, 0, 5),
    ]);
    let rule = |change| RuleKind::DependencyChange {
        change,
        min_requests: 1,
    };
    let given_baseline = Inputs {
        baseline: &before,
        ..inputs(&now)
    };
    let results = evaluate(&rule(ChangeFilter::Any), &given_baseline);
    let mut changes: Vec<(String, String)> = results
        .iter()
        .map(|(labels, _)| (labels["target"].clone(), labels["change"].clone()))
        .collect();
    changes.sort();
    assert_eq!(
        changes,
        [
            ("service:legacy".to_owned(), "vanished".to_owned()),
            ("service:search".to_owned(), "new".to_owned())
        ]
    );
    assert_eq!(
        names(
            &evaluate(&rule(ChangeFilter::New), &given_baseline),
            "target"
        ),
        ["service:search"]
    );
    assert!(
        evaluate(&rule(ChangeFilter::Any), &inputs(&now)).is_empty(),
        "no traffic before: a first start, not a change"
    );
}

fn topic_edge(topic: &str, consumer: &str) -> EdgeKey {
    EdgeKey {
        source: NodeKey::new(NodeKind::Topic, topic),
        target: NodeKey::service(consumer),
        kind: EdgeKind::Messaging,
    }
}

#[test]
fn kafka_lag_growth_and_publish_consume_latency_hold_on_topic_edges() {
    let key = topic_edge("orders.created", "inventory");
    let mut stats = EdgeStats {
        num_requests: 50,
        ..EdgeStats::default()
    };
    for _ in 0..50 {
        stats.publish_consume_latency.record(800_000_000);
    }
    let map = view(vec![(key.clone(), stats)]);
    let mut overlay = SignalOverlay::default();
    let lag = |lag, trend| EdgeLag {
        lag,
        trend,
        rate_per_s: Some(12.5),
        time_to_drain_secs: None,
        groups: vec!["inventory".to_owned()],
    };
    overlay
        .edge_lag
        .insert(key.clone(), lag(5_000.0, Trend::Growing));
    let given = Inputs {
        overlay: &overlay,
        ..inputs(&map)
    };
    let above = evaluate(&RuleKind::KafkaLag { threshold: 1000.0 }, &given);
    assert_eq!(names(&above, "target"), ["service:inventory"]);
    assert_eq!(above[0].1, 5_000.0);
    assert!(
        evaluate(
            &RuleKind::KafkaLag {
                threshold: 10_000.0
            },
            &given
        )
        .is_empty()
    );
    let growing = evaluate(&RuleKind::KafkaLagGrowing, &given);
    assert_eq!(growing[0].1, 12.5);
    let slow = evaluate(
        &RuleKind::PublishConsumeLatency {
            quantile: 0.95,
            threshold_ms: 500.0,
        },
        &given,
    );
    assert_eq!(names(&slow, "source"), ["topic:orders.created"]);

    let mut steady = SignalOverlay::default();
    steady.edge_lag.insert(key, lag(5_000.0, Trend::Draining));
    let given = Inputs {
        overlay: &steady,
        ..inputs(&map)
    };
    assert!(evaluate(&RuleKind::KafkaLagGrowing, &given).is_empty());
}

#[test]
fn breaker_state_holds_for_the_chosen_states_with_the_guarded_edge() {
    let map = view(vec![edge("checkout", "payments", EdgeKind::Http, 10, 0, 5)]);
    let breaker = |name: &str, state| Breaker {
        service: "checkout".to_owned(),
        name: name.to_owned(),
        target: None,
        state,
        since_unix_nano: 0,
        last_seen_unix_nano: 0,
        transitions: VecDeque::new(),
        num_transitions_dropped: 0,
    };
    let overlay = SignalOverlay {
        breakers: vec![
            (
                breaker("payments", BreakerState::Open),
                Some(map.edges[0].0.clone()),
            ),
            (breaker("inventory", BreakerState::HalfOpen), None),
            (breaker("audit", BreakerState::Closed), None),
        ],
        ..SignalOverlay::default()
    };
    let given = Inputs {
        overlay: &overlay,
        ..inputs(&map)
    };
    let open = evaluate(
        &RuleKind::BreakerState {
            states: vec!["open".to_owned()],
        },
        &given,
    );
    assert_eq!(names(&open, "breaker"), ["payments"]);
    assert_eq!(open[0].0["target"], "service:payments");
    let unsettled = evaluate(
        &RuleKind::BreakerState {
            states: vec!["open".to_owned(), "half_open".to_owned()],
        },
        &given,
    );
    assert_eq!(names(&unsettled, "breaker"), ["inventory", "payments"]);
}

fn metric(
    service: &str,
    name: &str,
    time: u64,
    attributes: &[(&str, &str)],
    value: f64,
) -> MetricPoint {
    MetricPoint::test_gauge(service, name, time, attributes, value)
}

#[test]
fn metric_threshold_compares_the_latest_value_of_each_matching_series() {
    let map = view(vec![]);
    let points = [
        metric("db", "pool.in_use", 1, &[("pool", "main")], 95.0),
        metric("db", "pool.in_use", 2, &[("pool", "main")], 40.0),
        metric("db", "pool.in_use", 2, &[("pool", "batch")], 99.0),
        metric("api", "pool.in_use", 2, &[("pool", "main")], 98.0),
        metric("db", "other", 2, &[("pool", "main")], 1000.0),
    ];
    let given = Inputs {
        metric_points: &points,
        ..inputs(&map)
    };
    let rule = |matchers: &[(&str, &str)], op| RuleKind::MetricThreshold {
        metric: "pool.in_use".to_owned(),
        matchers: matchers
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        op,
        threshold: 90.0,
    };
    let results = evaluate(&rule(&[("service.name", "db")], Comparison::Above), &given);
    assert_eq!(
        names(&results, "pool"),
        ["batch"],
        "main's latest value is 40"
    );
    let results = evaluate(&rule(&[("pool", "main")], Comparison::Above), &given);
    assert_eq!(names(&results, "service"), ["api"]);
    assert_eq!(results[0].0["metric"], "pool.in_use");
    let results = evaluate(&rule(&[], Comparison::Below), &given);
    assert_eq!(names(&results, "pool"), ["main"]);
}

#[test]
fn validation_names_the_field_of_an_impossible_setting() {
    let cases = [
        (
            RuleKind::EdgeErrorRate {
                threshold: 1.5,
                min_requests: 1,
                edge_kinds: vec![],
            },
            "threshold",
        ),
        (
            RuleKind::EdgeLatency {
                quantile: 95.0,
                threshold_ms: 1.0,
                min_requests: 1,
                edge_kinds: vec![],
            },
            "quantile",
        ),
        (
            RuleKind::ServiceLatency {
                quantile: 0.9,
                threshold_ms: -1.0,
                min_requests: 1,
            },
            "threshold_ms",
        ),
        (
            RuleKind::BreakerState {
                states: vec!["ajar".to_owned()],
            },
            "states",
        ),
        (
            RuleKind::RequestRateDrop {
                drop_ratio: 0.0,
                min_baseline_requests: 1,
                scope: DropScope::Edge,
            },
            "drop_ratio",
        ),
    ];
    for (kind, field) in cases {
        assert_eq!(kind.validate().expect_err(field).0, field);
    }
}
