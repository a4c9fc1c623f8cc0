//! Breaker states and transitions from resilience4j, our convention and Polly.

use super::*;

#[test]
fn resilience4j_gauges_record_every_transition_with_its_time() {
    for name in [
        "resilience4j.circuitbreaker.state",
        "resilience4j_circuitbreaker_state",
    ] {
        let mut mapper = mapper();
        for (secs, state) in [
            (0, "closed"),
            (10, "closed"),
            (20, "open"),
            (30, "half_open"),
            (40, "closed"),
        ] {
            resilience4j(&mut mapper, name, T0 + secs * SEC, state);
        }
        let breaker = only_breaker(&mapper);
        assert_eq!(
            (breaker.service.as_str(), breaker.name.as_str()),
            ("orders", "payments")
        );
        assert_eq!(breaker.state, BreakerState::Closed);
        assert_eq!(breaker.since_unix_nano, T0 + 40 * SEC);
        assert_eq!(
            transitions(&breaker),
            [
                (None, "closed", 0),
                (Some("closed"), "open", 20),
                (Some("open"), "half_open", 30),
                (Some("half_open"), "closed", 40),
            ],
            "{name}"
        );
    }
}

#[test]
fn our_convention_reads_numbers_or_a_state_attribute_and_a_target() {
    let mut mapper = mapper();
    let key = || {
        attrs(&[
            ("circuit_breaker.name", s("provider")),
            ("peer.service", s("payment-provider")),
        ])
    };
    mapper.observe(&point(
        "payments",
        "circuit_breaker.state",
        T0,
        key(),
        int_gauge(1),
    ));
    mapper.observe(&point(
        "payments",
        "circuit_breaker.state",
        T0 + SEC,
        key(),
        int_gauge(2),
    ));
    let mut named = key();
    named.push(("state".to_owned(), s("CLOSED")));
    mapper.observe(&point(
        "payments",
        "circuit_breaker.state",
        T0 + 2 * SEC,
        named,
        int_gauge(1),
    ));
    let breaker = only_breaker(&mapper);
    assert_eq!(breaker.target.as_deref(), Some("payment-provider"));
    assert_eq!(
        transitions(&breaker),
        [
            (None, "open", 0),
            (Some("open"), "half_open", 1),
            (Some("half_open"), "closed", 2)
        ]
    );
}

#[test]
fn polly_events_move_the_state_as_deltas_or_cumulative_increments() {
    let event = |name: &str| {
        attrs(&[
            ("pipeline.name", s("provider-pipeline")),
            ("event.name", s(name)),
            ("event.severity", s("Error")),
        ])
    };
    let mut delta = mapper();
    let mut cumulative = mapper();
    let steps = [
        (0, "OnCircuitOpened", 1.0),
        (5, "OnRetry", 3.0),
        (10, "OnCircuitHalfOpened", 1.0),
        (11, "OnCircuitClosed", 1.0),
    ];
    for (secs, name, count) in steps {
        let time = T0 + secs * SEC;
        delta.observe(&point(
            "checkout",
            "resilience.polly.strategy.events",
            time,
            event(name),
            sum(count, AggregationTemporality::Delta),
        ));
        cumulative.observe(&point(
            "checkout",
            "resilience.polly.strategy.events",
            time,
            event(name),
            sum(count, AggregationTemporality::Cumulative),
        ));
    }
    // A cumulative counter repeating its value is no new event.
    cumulative.observe(&point(
        "checkout",
        "resilience.polly.strategy.events",
        T0 + 20 * SEC,
        event("OnCircuitOpened"),
        sum(1.0, AggregationTemporality::Cumulative),
    ));
    let expected = [
        (None, "open", 0),
        (Some("open"), "half_open", 10),
        (Some("half_open"), "closed", 11),
    ];
    assert_eq!(transitions(&only_breaker(&delta)), expected);
    assert_eq!(transitions(&only_breaker(&cumulative)), expected);
    assert_eq!(only_breaker(&cumulative).name, "provider-pipeline");
}
