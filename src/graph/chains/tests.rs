use super::*;
use crate::graph::fixtures::{SECOND, SpanBuilder, span, trace};
use crate::model::SpanKind;

fn limits() -> ChainLimits {
    ChainLimits {
        trace_idle_ttl: Duration::from_secs(5),
        max_traces: 100,
        max_spans: 1_000,
        max_spans_per_trace: 100,
        num_top_chains: 3,
        max_age: Duration::from_secs(3_600),
    }
}

fn observe_all(tracker: &mut ChainTracker, spans: Vec<SpanBuilder>, now_unix_nano: u64) {
    for builder in spans {
        tracker.observe(&builder.graph(), now_unix_nano);
    }
}

fn ids(chain: &ObservedChain) -> Vec<String> {
    chain.nodes.iter().map(NodeKey::id).collect()
}

/// `gateway → s1 → … → sN` over HTTP in trace `trace_no`.
fn http_chain(trace_no: u64, services: &[&str]) -> Vec<SpanBuilder> {
    let mut spans = vec![span(services[0], SpanKind::Server, trace_no, 1).http()];
    for (hop, pair) in services.windows(2).enumerate() {
        let client_no = 10 + 2 * hop as u64;
        let caller_span = if hop == 0 { 1 } else { client_no - 1 };
        spans.push(
            span(pair[0], SpanKind::Client, trace_no, client_no)
                .parent(caller_span)
                .http(),
        );
        spans.push(
            span(pair[1], SpanKind::Server, trace_no, client_no + 1)
                .parent(client_no)
                .http(),
        );
    }
    spans
}

#[test]
fn messaging_starts_a_new_chain() {
    let services = KnownServices::new(10);
    let mut tracker = ChainTracker::new(limits());
    let mut spans = http_chain(1, &["gateway", "orders"]);
    spans.push(span("orders", SpanKind::Producer, 1, 50).parent(11));
    spans.push(span("billing", SpanKind::Consumer, 1, 51).parent(50));
    spans.push(span("billing", SpanKind::Client, 1, 52).parent(51).http());
    spans.push(span("ledger", SpanKind::Server, 1, 53).parent(52).http());
    spans.push(span("ledger", SpanKind::Client, 1, 54).parent(53).http());
    spans.push(span("audit", SpanKind::Server, 1, 55).parent(54).http());
    observe_all(&mut tracker, spans, 0);
    tracker.finish_idle(5 * SECOND, &services);

    let chains = tracker.chains();
    assert_eq!(
        ids(&chains[0]),
        ["service:billing", "service:ledger", "service:audit"],
        "the consumer starts over: three nodes beat gateway → orders"
    );
}

#[test]
fn non_synchronous_hops_start_over_and_parent_cycles_terminate() {
    let services = KnownServices::new(10);
    let mut tracker = ChainTracker::new(limits());
    let spans = vec![
        span("a", SpanKind::Server, 1, 1),
        span("a", SpanKind::Client, 1, 2).parent(1),
        // An "other" protocol server: not a synchronous HTTP/gRPC hop.
        span("b", SpanKind::Server, 1, 3).parent(2),
        // A malformed loop: 5 → 6 → 5.
        span("x", SpanKind::Server, 1, 5).parent(6).http(),
        span("y", SpanKind::Server, 1, 6).parent(5).http(),
    ];
    observe_all(&mut tracker, spans, 0);
    tracker.finish_idle(5 * SECOND, &services);

    let chains = tracker.chains();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0].nodes.len(), 2, "the loop is cut where it closes");
}

#[test]
fn waits_for_the_trace_to_go_idle() {
    let services = KnownServices::new(10);
    let mut tracker = ChainTracker::new(limits());
    let mut spans = http_chain(1, &["a", "b", "c"]);
    let late = spans.split_off(3);
    observe_all(&mut tracker, spans, 0);
    observe_all(&mut tracker, late, 4 * SECOND);
    tracker.finish_idle(5 * SECOND, &services);
    assert!(
        tracker.chains().is_empty(),
        "a span came 4 s in: not idle yet"
    );
    tracker.finish_idle(9 * SECOND, &services);
    assert_eq!(
        ids(&tracker.chains()[0]),
        ["service:a", "service:b", "service:c"]
    );
}

#[test]
fn keeps_the_longest_distinct_chains_counting_repeats() {
    let services = KnownServices::new(10);
    let mut tracker = ChainTracker::new(limits());
    observe_all(&mut tracker, http_chain(1, &["a", "b"]), 0);
    observe_all(&mut tracker, http_chain(2, &["a", "b", "c", "d"]), 0);
    observe_all(&mut tracker, http_chain(3, &["a", "b", "c", "d"]), 0);
    observe_all(&mut tracker, http_chain(4, &["x", "y", "z"]), 0);
    observe_all(&mut tracker, http_chain(5, &["p", "q", "r", "s", "t"]), 0);
    observe_all(&mut tracker, http_chain(6, &["u"]), 0);
    tracker.finish_idle(5 * SECOND, &services);

    let chains = tracker.chains();
    let lengths: Vec<usize> = chains.iter().map(|chain| chain.nodes.len()).collect();
    assert_eq!(
        lengths,
        [5, 4, 3],
        "the shortest made way, single services never enter"
    );
    assert_eq!(chains[1].num_observed, 2);
    assert_eq!(chains[1].trace_id, trace(3), "the latest example");

    tracker.finish_idle(5 * SECOND + 3_601 * SECOND, &services);
    assert!(
        tracker.chains().is_empty(),
        "chains not seen for an hour are forgotten"
    );
}

#[test]
fn buffers_are_bounded_and_overflow_is_counted() {
    let services = KnownServices::new(10);
    let mut tracker = ChainTracker::new(ChainLimits {
        max_traces: 2,
        max_spans: 100,
        max_spans_per_trace: 3,
        ..limits()
    });
    observe_all(&mut tracker, http_chain(1, &["a", "b", "c"]), 0);
    observe_all(&mut tracker, http_chain(2, &["a", "b"]), 0);
    observe_all(&mut tracker, http_chain(3, &["a", "b"]), 0);
    let counters = tracker.counters();
    assert_eq!(counters.num_traces_active, 2);
    assert_eq!(counters.num_spans_buffered, 6);
    assert_eq!(counters.num_spans_over_limit, 2, "trace 1 beyond 3 spans");
    assert_eq!(
        counters.num_spans_over_trace_limit, 3,
        "trace 3 while 2 were active"
    );

    let mut small = ChainTracker::new(ChainLimits {
        max_spans: 4,
        ..limits()
    });
    observe_all(&mut small, http_chain(1, &["a", "b", "c"]), 0);
    assert_eq!(small.counters().num_spans_buffered, 4);
    assert_eq!(small.counters().num_spans_over_limit, 1, "4 spans in all");
    tracker.finish_idle(5 * SECOND, &services);
    assert_eq!(tracker.counters().num_spans_buffered, 0);
    assert_eq!(tracker.counters().num_traces_analysed, 2);
}

#[test]
fn a_busy_stream_is_sampled_by_trace_and_a_quiet_one_is_not() {
    let services = KnownServices::new(10);
    let mut tracker = ChainTracker::new(ChainLimits {
        max_spans: 128,
        ..limits()
    });
    tracker.finish_idle(0, &services);
    // 3 spans/s for 5 s of idle TTL fill 15 of the 64 spans budgeted (half the buffer).
    observe_all(&mut tracker, http_chain(1, &["a", "b"]), 0);
    tracker.finish_idle(SECOND, &services);
    assert_eq!(tracker.counters().sample_one_in, 1);

    // 60 spans/s would fill 300: follow one trace in 8 (300 / 64 ≈ 4.7 → 2^3).
    for trace_no in 100..120 {
        observe_all(&mut tracker, http_chain(trace_no, &["a", "b"]), SECOND);
    }
    tracker.finish_idle(2 * SECOND, &services);
    assert_eq!(tracker.counters().sample_one_in, 8);
    let buffered = tracker.counters().num_spans_buffered;
    observe_all(&mut tracker, http_chain(33, &["a", "b"]), 2 * SECOND);
    assert_eq!(
        tracker.counters().num_spans_buffered,
        buffered,
        "33 is not a multiple of 8"
    );
    observe_all(&mut tracker, http_chain(48, &["a", "b"]), 2 * SECOND);
    assert_eq!(tracker.counters().num_spans_buffered, buffered + 3, "48 is");

    tracker.finish_idle(3 * SECOND, &services);
    assert_eq!(
        tracker.counters().sample_one_in,
        1,
        "a quiet second follows every trace"
    );
}
