//! Cases for retention by age (exact at the cutoff) and by size (oldest data first).

use std::time::Duration;

use crate::model::Batch;
use crate::store::{MetricReader, RetentionPolicy, StoreWriter, TraceReader};

use super::fixtures::{
    BASE_NANOS, HOUR_NANOS, MINUTE_NANOS, all_points, all_traces, points_of_every_type, resource,
    scope, trace_id, typical_batch, typical_span,
};

const KEEP_EVERYTHING: RetentionPolicy = RetentionPolicy {
    max_age: Duration::MAX,
    max_size_bytes: u64::MAX,
};

fn has_trace<R: TraceReader>(reader: &R, trace_no: u64) -> bool {
    reader.trace(trace_id(trace_no)).expect("trace").is_some()
}

/// Point times left in the store.
fn point_times<R: MetricReader>(reader: &R) -> Vec<u64> {
    let mut times: Vec<u64> = reader
        .metric_points(&all_points(10_000))
        .expect("metric_points")
        .iter()
        .map(|point| point.time_unix_nano)
        .collect();
    times.dedup();
    times
}

/// Everything older than `now - max_age` goes, everything at or after it stays, whether the
/// cutoff falls on an hour boundary or inside an hour.
pub fn retention_by_age<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let frontend = resource("frontend");
    let scope = scope();
    let now_nanos = BASE_NANOS + 10 * HOUR_NANOS;
    // Inside an hour and inside a microsecond, so no rounding of either can pass for exact.
    let cutoff_nanos = BASE_NANOS + 6 * HOUR_NANOS + 30 * MINUTE_NANOS + 500;
    let times = [
        BASE_NANOS,
        BASE_NANOS + 6 * HOUR_NANOS,
        cutoff_nanos - 1,
        cutoff_nanos,
        cutoff_nanos + 1,
        now_nanos - 1,
    ];
    let mut batch = Batch::default();
    for (no, time_nanos) in (1_u64..).zip(times) {
        batch
            .spans
            .push(typical_span(&frontend, &scope, no, no, time_nanos));
        batch
            .metric_points
            .extend(points_of_every_type(&frontend, "m", time_nanos));
    }
    let num_points_per_time = batch.metric_points.len() as u64 / times.len() as u64;
    writer.write_batch(&batch).expect("write_batch");

    let policy = RetentionPolicy {
        max_age: Duration::from_nanos(now_nanos - cutoff_nanos),
        max_size_bytes: u64::MAX,
    };
    let report = writer
        .apply_retention(&policy, now_nanos)
        .expect("apply_retention");
    assert_eq!(report.num_spans_deleted, 3);
    assert_eq!(report.num_metric_points_deleted, 3 * num_points_per_time);
    assert!(report.size_bytes > 0);
    assert_eq!(
        (1..=6).map(|no| has_trace(&reader, no)).collect::<Vec<_>>(),
        [false, false, false, true, true, true]
    );
    assert_eq!(point_times(&reader), times[3..]);
    assert_eq!(
        reader
            .search_traces(&all_traces(100))
            .expect("search")
            .len(),
        3
    );

    let again = writer
        .apply_retention(&policy, now_nanos)
        .expect("apply_retention");
    assert_eq!(
        (again.num_spans_deleted, again.num_metric_points_deleted),
        (0, 0)
    );

    // An hour-aligned cutoff, half an hour (less 500 ns) later.
    let report = writer
        .apply_retention(&policy, now_nanos + 30 * MINUTE_NANOS - 500)
        .expect("apply_retention");
    assert_eq!(report.num_spans_deleted, 2);
    assert_eq!(point_times(&reader), times[5..]);

    // Late data for a dropped hour is stored again, and aged out again.
    writer
        .write_batch(&typical_batch(&frontend, 800, 8, BASE_NANOS))
        .expect("write_batch");
    assert!(has_trace(&reader, 101));
    let report = writer
        .apply_retention(&policy, now_nanos)
        .expect("apply_retention");
    assert_eq!(report.num_spans_deleted, 8);
    assert!(!has_trace(&reader, 101));
}

/// Over the size limit, whole oldest hours go first until the store fits.
pub fn retention_by_size<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    const NUM_HOURS: u64 = 4;
    const SPANS_PER_HOUR: u64 = 2_000;
    let frontend = resource("frontend");
    for hour in 0..NUM_HOURS {
        let mut batch = typical_batch(
            &frontend,
            hour * SPANS_PER_HOUR,
            SPANS_PER_HOUR,
            BASE_NANOS + hour * HOUR_NANOS,
        );
        batch.metric_points = points_of_every_type(&frontend, "m", BASE_NANOS + hour * HOUR_NANOS);
        writer.write_batch(&batch).expect("write_batch");
    }
    // Trace numbers of the first trace of each hour (8 spans per trace).
    let first_trace = |hour: u64| hour * SPANS_PER_HOUR / 8 + 1;
    let now_nanos = BASE_NANOS + NUM_HOURS * HOUR_NANOS;
    let full = writer
        .apply_retention(&KEEP_EVERYTHING, now_nanos)
        .expect("apply_retention");
    assert_eq!(
        (full.num_spans_deleted, full.num_metric_points_deleted),
        (0, 0)
    );
    assert!(full.size_bytes > 0);

    let just_below = RetentionPolicy {
        max_size_bytes: full.size_bytes - 1,
        ..KEEP_EVERYTHING
    };
    let report = writer
        .apply_retention(&just_below, now_nanos)
        .expect("apply_retention");
    assert!(report.num_spans_deleted > 0, "{report:?}");
    assert!(
        report.num_spans_deleted < NUM_HOURS * SPANS_PER_HOUR,
        "{report:?}"
    );
    assert!(report.size_bytes <= just_below.max_size_bytes, "{report:?}");
    assert!(
        !has_trace(&reader, first_trace(0)),
        "the oldest hour goes first"
    );
    assert!(
        has_trace(&reader, first_trace(NUM_HOURS - 1)),
        "the newest hour stays"
    );

    let nothing = RetentionPolicy {
        max_size_bytes: 0,
        ..KEEP_EVERYTHING
    };
    let report = writer
        .apply_retention(&nothing, now_nanos)
        .expect("apply_retention");
    assert!(report.num_spans_deleted > 0);
    assert!(!has_trace(&reader, first_trace(NUM_HOURS - 1)));
    assert!(
        reader
            .search_traces(&all_traces(10))
            .expect("search")
            .is_empty()
    );
    assert!(point_times(&reader).is_empty());

    // The store keeps working after being emptied.
    writer
        .write_batch(&typical_batch(&frontend, 0, 8, now_nanos))
        .expect("write_batch");
    assert!(has_trace(&reader, 1));
}
