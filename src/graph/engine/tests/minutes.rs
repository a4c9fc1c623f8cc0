//! Calls in the minute they started: late, merged, too late, ahead of the clock.

use super::*;

#[test]
fn minutes_close_into_rollups_and_queries_merge_minutes() {
    let mut engine = engine();
    let first_minute = UnixMinute::of_unix_nano(NOW);
    let minutes = |from: UnixMinute, num: i64| MinuteRange::new(from, from.plus(num));
    assert_eq!(engine.live_since_minute(), None);
    ingest(
        &mut engine,
        vec![span("gateway", SpanKind::Server, 1, 1).http()],
        NOW,
    );
    assert_eq!(
        engine.tick(NOW + SECOND),
        ClosedMinutes::default(),
        "still open"
    );

    for trace_no in [2, 3] {
        let next_minute_span = span("gateway", SpanKind::Server, trace_no, 1)
            .http()
            .timed(MINUTE, MILLI);
        ingest(&mut engine, vec![next_minute_span], NOW + MINUTE);
    }
    let closed = engine.tick(NOW + MINUTE + SECOND);
    assert_eq!(closed.edges.len(), 1);
    assert_eq!(closed.edges[0].minute, first_minute.get());
    assert_eq!(
        closed.edges[0].key.source,
        NodeKey::new(crate::model::graph::NodeKind::Client, "user")
    );
    assert_eq!(closed.edges[0].stats.num_requests, 1);
    assert_eq!(closed.operations.len(), 1);
    assert_eq!(closed.operations[0].service, "gateway");
    assert_eq!(closed.operations[0].operation, "GET /orders/{id}");
    assert_eq!(
        engine.tick(NOW + MINUTE + 2 * SECOND),
        ClosedMinutes::default()
    );

    let requests = |range| engine.edges(range)[0].stats.num_requests;
    assert_eq!(requests(minutes(first_minute, 2)), 3);
    assert_eq!(
        requests(minutes(first_minute, 1)),
        1,
        "the end is not included"
    );
    assert_eq!(requests(minutes(first_minute.next(), 1)), 2);
    assert_eq!(
        engine.operations(minutes(first_minute, 2))[0]
            .stats
            .num_requests,
        3
    );
    assert_eq!(engine.live_since_minute(), Some(first_minute.plus(-59)));

    // An hour and a half later, the first minutes have left memory.
    engine.tick(NOW + 90 * MINUTE);
    assert!(engine.edges(minutes(first_minute, 2)).is_empty());
    assert_eq!(
        engine.live_since_minute(),
        Some(UnixMinute::of_unix_nano(NOW + 90 * MINUTE).plus(-60))
    );
}

/// A root SERVER span of gateway (a call from `client:user`, counted at once) that started
/// `offset` after [`T0`].
fn root_call(trace_no: u64, offset: u64) -> SpanBuilder {
    span("gateway", SpanKind::Server, trace_no, 1)
        .http()
        .timed(offset, 5 * MILLI)
}

/// Calls handed out as new, for cumulative counters.
fn counted(closed: &ClosedMinutes) -> u64 {
    closed
        .counted_edges
        .iter()
        .map(|rollup| rollup.stats.num_requests)
        .sum()
}

fn requests_in(engine: &GraphEngine, minute: UnixMinute, num_minutes: i64) -> u64 {
    engine
        .edges(MinuteRange::new(minute, minute.plus(num_minutes)))
        .iter()
        .map(|edge| edge.stats.num_requests)
        .sum()
}

#[test]
fn calls_count_in_the_minute_they_started_not_when_they_arrived() {
    let mut engine = engine();
    let m0 = UnixMinute::of_unix_nano(T0);
    engine.tick(NOW);
    // Two calls made in minutes 1 and 2 arrive together in minute 5.
    ingest(
        &mut engine,
        vec![root_call(1, MINUTE), root_call(2, 2 * MINUTE)],
        NOW + 5 * MINUTE,
    );
    assert_eq!(requests_in(&engine, m0.plus(1), 1), 1);
    assert_eq!(requests_in(&engine, m0.plus(1), 2), 2);
    assert_eq!(
        requests_in(&engine, m0.plus(5), 1),
        0,
        "not when they arrived"
    );
    assert_eq!(
        engine.counters().window.num_late,
        4,
        "two calls, two operations"
    );

    // Both minutes are handed to the store again, whole, at the next close.
    let closed = engine.tick(NOW + 6 * MINUTE);
    let minutes: Vec<i64> = closed.edges.iter().map(|rollup| rollup.minute).collect();
    assert_eq!(minutes, vec![m0.plus(1).get(), m0.plus(2).get()]);
    assert!(closed.late_edges.is_empty());
    assert_eq!(
        counted(&closed),
        2,
        "each call once for cumulative counters"
    );
    assert_eq!(engine.tick(NOW + 7 * MINUTE), ClosedMinutes::default());
}

#[test]
fn a_late_minute_is_handed_out_whole_with_what_it_had() {
    let mut engine = engine();
    let m0 = UnixMinute::of_unix_nano(T0);
    ingest(&mut engine, vec![root_call(1, 0)], NOW);
    let first = engine.tick(NOW + MINUTE);
    assert_eq!(first.edges[0].stats.num_requests, 1);
    ingest(&mut engine, vec![root_call(2, 0)], NOW + MINUTE);
    let again = engine.tick(NOW + 2 * MINUTE);
    assert_eq!(again.edges.len(), 1);
    assert_eq!(again.edges[0].minute, m0.get());
    assert_eq!(
        again.edges[0].stats.num_requests, 2,
        "replaces the stored minute"
    );
    assert_eq!(counted(&first), 1);
    assert_eq!(counted(&again), 1, "only the late call is new");
}

#[test]
fn calls_older_than_memory_are_handed_out_to_merge_and_older_still_are_too_late() {
    let mut engine = engine();
    let m0 = UnixMinute::of_unix_nano(T0);
    engine.tick(NOW + 90 * MINUTE);
    ingest(
        &mut engine,
        vec![root_call(1, 5 * MINUTE)],
        NOW + 90 * MINUTE,
    );
    assert_eq!(requests_in(&engine, m0, 100), 0, "not in memory");
    let closed = engine.tick(NOW + 91 * MINUTE);
    assert!(closed.edges.is_empty());
    assert_eq!(closed.late_edges.len(), 1);
    assert_eq!(closed.late_edges[0].minute, m0.plus(5).get());
    assert_eq!(closed.late_operations.len(), 1);
    assert_eq!(counted(&closed), 1);
    assert_eq!(engine.counters().window.num_late_merged, 2);

    ingest(&mut engine, vec![root_call(2, 0)], NOW + 25 * 60 * MINUTE);
    assert_eq!(engine.counters().window.num_too_late, 2, "older than a day");
    assert!(
        engine
            .tick(NOW + 25 * 60 * MINUTE + MINUTE)
            .late_edges
            .is_empty()
    );
}

#[test]
fn a_call_stamped_in_the_future_counts_in_the_open_minute() {
    let mut engine = engine();
    let m0 = UnixMinute::of_unix_nano(T0);
    ingest(&mut engine, vec![root_call(1, 10 * MINUTE)], NOW);
    assert_eq!(requests_in(&engine, m0, 1), 1);
    assert_eq!(engine.counters().window.num_clock_ahead, 2);
}

#[test]
fn late_minutes_share_one_edge_budget() {
    let mut engine = GraphEngine::new(GraphSettings {
        max_edges_per_minute: NonZeroUsize::new(2).expect("non-zero"),
        ..GraphSettings::default()
    });
    engine.tick(NOW + 90 * MINUTE);
    let late_calls = (0..3)
        .map(|index| {
            span(&format!("service-{index}"), SpanKind::Server, index + 1, 1)
                .http()
                .timed(index * MINUTE, MILLI)
        })
        .collect();
    ingest(&mut engine, late_calls, NOW + 90 * MINUTE);
    assert_eq!(engine.counters().window.num_calls_over_edge_limit, 1);
    assert_eq!(engine.tick(NOW + 91 * MINUTE).late_edges.len(), 2);
}
