//! The rules on by default, drawn from common service targets: REST edge p95 over 100 ms,
//! edge errors over 5 %, consumer lag growing, publish → consume p95 over 500 ms, an open
//! breaker, a new or vanished dependency, a new cycle.

use std::collections::BTreeMap;

use super::config::RuleSpec;
use super::duration::Span;
use super::rule::{ChangeFilter, RuleKind};
use crate::model::graph::EdgeKind;

fn rule(name: &str, kind: RuleKind, for_secs: u64, summary: &str) -> RuleSpec {
    RuleSpec {
        name: name.to_owned(),
        kind,
        for_duration: Span::secs(for_secs),
        keep_firing_for: Span::default(),
        window: Span::secs(300),
        severity: "warning".to_owned(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::from([("summary".to_owned(), summary.to_owned())]),
    }
}

/// Rules on by default, drawn from common service targets. Each can be turned off by name in
/// `disabled_rules`, or all with `builtin_rules = false`.
pub fn builtin_rules() -> Vec<RuleSpec> {
    let mut breaker = rule(
        "CircuitBreakerOpen",
        RuleKind::BreakerState {
            states: vec!["open".to_owned(), "forced_open".to_owned()],
        },
        0,
        "Circuit breaker {{ $labels.breaker }} of {{ $labels.service }} is {{ $labels.state }}",
    );
    breaker.severity = "critical".to_owned();
    vec![
        rule(
            "EdgeLatencyHigh",
            RuleKind::EdgeLatency {
                quantile: 0.95,
                threshold_ms: 100.0,
                min_requests: 10,
                edge_kinds: vec![EdgeKind::Http],
            },
            300,
            "p95 of {{ $labels.source | name }} → {{ $labels.target | name }} is {{ $value | ms }} (over 100 ms)",
        ),
        rule(
            "EdgeErrorRateHigh",
            RuleKind::EdgeErrorRate {
                threshold: 0.05,
                min_requests: 10,
                edge_kinds: vec![],
            },
            300,
            "{{ $value | percent }} of calls {{ $labels.source | name }} → {{ $labels.target | name }} fail (over 5 %)",
        ),
        rule(
            "ConsumerLagGrowing",
            RuleKind::KafkaLagGrowing,
            300,
            "Lag of {{ $labels.target | name }} on {{ $labels.source | name }} has grown for 5 minutes ({{ $value }} messages/s)",
        ),
        rule(
            "PublishConsumeLatencyHigh",
            RuleKind::PublishConsumeLatency {
                quantile: 0.95,
                threshold_ms: 500.0,
            },
            300,
            "Events on {{ $labels.source | name }} reach {{ $labels.target | name }} after {{ $value | ms }} (p95, over 500 ms)",
        ),
        breaker,
        rule(
            "DependencyChanged",
            RuleKind::DependencyChange {
                change: ChangeFilter::Any,
                min_requests: 1,
            },
            0,
            "Dependency {{ $labels.source | name }} → {{ $labels.target | name }} is {{ $labels.change }}",
        ),
        rule(
            "NewCycle",
            RuleKind::Cycle {
                include_async: false,
            },
            0,
            "Synchronous call cycle: {{ $labels.cycle }}",
        ),
    ]
}
