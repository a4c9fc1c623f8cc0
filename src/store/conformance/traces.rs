//! Cases for storing and reading whole traces.

use crate::model::{Batch, Span};
use crate::store::{MetricReader, StoreWriter, TraceReader};

use super::fixtures::{
    BASE_NANOS, HOUR_NANOS, MINUTE_NANOS, all_traces, resource, rich_span, scope, span_batch,
    span_id, trace_id, typical_batch, typical_span,
};

fn write<W: StoreWriter>(writer: &mut W, batch: &Batch) {
    writer.write_batch(batch).expect("write_batch");
}

fn read_trace<R: TraceReader>(reader: &R, trace_no: u64) -> Option<Vec<Span>> {
    reader.trace(trace_id(trace_no)).expect("trace")
}

fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|span| span.start_time_unix_nano);
    spans
}

/// Every field of every span comes back exactly, including extreme numbers.
pub fn span_round_trip<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let frontend = resource("frontend");
    let mut odd_resource = (*resource("odd")).clone();
    odd_resource.attributes = super::fixtures::every_attribute_type();
    odd_resource.dropped_attributes_count = 9;
    let odd_resource = std::sync::Arc::new(odd_resource);

    let root = rich_span(&frontend, 1, 1, BASE_NANOS + 10 * MINUTE_NANOS);
    let mut child = typical_span(
        &odd_resource,
        &scope(),
        1,
        2,
        BASE_NANOS + 70 * MINUTE_NANOS,
    );
    child.parent_span_id = Some(span_id(1));
    let mut early = rich_span(&odd_resource, 2, 3, 0);
    early.end_time_unix_nano = u64::MAX;
    let mut late = typical_span(&frontend, &scope(), 2, 4, u64::MAX - 1);
    late.end_time_unix_nano = 5; // ends before it starts: stored as sent
    late.parent_span_id = Some(span_id(3));
    write(
        &mut writer,
        &span_batch(vec![
            child.clone(),
            late.clone(),
            root.clone(),
            early.clone(),
        ]),
    );

    assert_eq!(read_trace(&reader, 1), Some(sorted(vec![root, child])));
    assert_eq!(read_trace(&reader, 2), Some(sorted(vec![early, late])));
}

/// A trace that was never stored is `Ok(None)`, on an empty store and on a filled one.
pub fn trace_not_found<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    assert_eq!(read_trace(&reader, 1), None);
    write(
        &mut writer,
        &typical_batch(&resource("frontend"), 0, 16, BASE_NANOS),
    );
    assert!(read_trace(&reader, 1).is_some());
    assert_eq!(read_trace(&reader, 999), None);
}

/// Writing a stored span again, in the same batch or a later one, neither adds nor replaces.
pub fn idempotent_rewrite<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let batch = typical_batch(&resource("frontend"), 0, 8, BASE_NANOS + HOUR_NANOS / 2);
    write(&mut writer, &batch);
    write(&mut writer, &batch);
    let mut doubled = batch.clone();
    doubled.spans.extend(batch.spans.iter().cloned());
    write(&mut writer, &doubled);
    let mut changed = batch.clone();
    for span in &mut changed.spans {
        span.name = "rewritten".to_owned();
    }
    write(&mut writer, &changed);

    assert_eq!(read_trace(&reader, 1), Some(sorted(batch.spans.clone())));
    let summaries = reader.search_traces(&all_traces(10)).expect("search");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].num_spans, 8);
}

/// Readers on other threads see only committed batches and never fail while the writer works.
pub fn reads_during_writes<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    const NUM_BATCHES: u64 = 20;
    const BATCH_SPANS: u64 = 64;
    let frontend = resource("frontend");
    std::thread::scope(|threads| {
        let reader = &reader;
        let watcher = threads.spawn(move || {
            let mut num_reads = 0_u64;
            loop {
                let summaries = reader.search_traces(&all_traces(1000)).expect("search");
                // Whole batches only: 8 traces per batch.
                assert_eq!(summaries.len() % 8, 0, "saw part of a batch");
                for summary in &summaries {
                    assert_eq!(summary.num_spans, 8);
                }
                num_reads += 1;
                if summaries.len() as u64 == NUM_BATCHES * BATCH_SPANS / 8 {
                    return num_reads;
                }
            }
        });
        for batch_no in 0..NUM_BATCHES {
            let first_no = batch_no * BATCH_SPANS;
            let start_nanos = BASE_NANOS + batch_no * MINUTE_NANOS;
            write(
                &mut writer,
                &typical_batch(&frontend, first_no, BATCH_SPANS, start_nanos),
            );
        }
        let num_reads = watcher.join().expect("watcher thread");
        assert!(num_reads >= 1);
    });
}
