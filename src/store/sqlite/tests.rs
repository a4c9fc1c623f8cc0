//! The conformance suite against both locations, plus what only SQLite can get wrong:
//! reopening, isolation of memory stores, changed index configuration, schema upgrades.

use std::path::Path;

use crate::model::AttrValue;
use crate::store::conformance::fixtures::{
    BASE_NANOS, HOUR_NANOS, all_traces, resource, scope, span_batch, trace_id, typical_batch,
    typical_span,
};
use crate::store::{StoreWriter, TraceQuery, TraceReader};

use super::{SqliteLocation, SqliteOptions, SqliteReader, SqliteWriter, open};

fn open_at(location: SqliteLocation) -> (SqliteWriter, SqliteReader) {
    open(&SqliteOptions::new(location)).expect("open sqlite store")
}

fn open_dir(dir: &Path, indexed_attribute_keys: &[&str]) -> (SqliteWriter, SqliteReader) {
    open(&SqliteOptions {
        location: SqliteLocation::Dir(dir.to_path_buf()),
        indexed_attribute_keys: indexed_attribute_keys
            .iter()
            .map(|key| (*key).to_owned())
            .collect(),
    })
    .expect("open sqlite store")
}

mod memory {
    use super::*;

    fn fresh() -> (SqliteWriter, SqliteReader) {
        open_at(SqliteLocation::Memory)
    }

    crate::store_conformance_tests!(fresh);
}

mod file {
    use super::*;
    use crate::model::Batch;
    use crate::model::graph::{EdgeRollup, OperationRollup};
    use crate::store::{RetentionPolicy, RetentionReport, RollupWriter, StoreError};

    /// A writer that owns the temporary directory of its store, so it is removed after the test.
    struct TempDirWriter {
        writer: SqliteWriter,
        /// Whether spans go in as write-ahead log frames, the way the app stores them.
        through_frames: bool,
        _dir: tempfile::TempDir,
    }

    impl StoreWriter for TempDirWriter {
        fn write_batch(&mut self, batch: &Batch) -> Result<(), StoreError> {
            if !self.through_frames {
                return self.writer.write_batch(batch);
            }
            // As ingest hands spans over with a write-ahead log: encoded once, as a frame.
            let keys: std::sync::Arc<[String]> = super::super::DEFAULT_INDEXED_ATTRIBUTE_KEYS
                .iter()
                .map(|key| (*key).to_owned())
                .collect();
            let frame = crate::store::batch_codec::encode_frame(batch, &keys);
            let points_only = Batch {
                spans: Vec::new(),
                metric_points: batch.metric_points.clone(),
            };
            self.writer.write_with_frames(&points_only, &[&frame])
        }

        fn apply_retention(
            &mut self,
            policy: &RetentionPolicy,
            now_unix_nano: u64,
        ) -> Result<RetentionReport, StoreError> {
            self.writer.apply_retention(policy, now_unix_nano)
        }
    }

    impl RollupWriter for TempDirWriter {
        fn write_rollups(
            &mut self,
            instance: u32,
            edges: &[EdgeRollup],
            operations: &[OperationRollup],
        ) -> Result<(), StoreError> {
            self.writer.write_rollups(instance, edges, operations)
        }

        fn instance_rollups(
            &mut self,
            instance: u32,
            range: crate::model::MinuteRange,
        ) -> Result<(Vec<EdgeRollup>, Vec<OperationRollup>), StoreError> {
            self.writer.instance_rollups(instance, range)
        }
    }

    fn open_temp(through_frames: bool) -> (TempDirWriter, SqliteReader) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, reader) = open_at(SqliteLocation::Dir(dir.path().join("data")));
        let writer = TempDirWriter {
            writer,
            through_frames,
            _dir: dir,
        };
        (writer, reader)
    }

    fn fresh() -> (TempDirWriter, SqliteReader) {
        open_temp(false)
    }

    crate::store_conformance_tests!(fresh);

    /// The same suite with spans written as the app writes them: encoded frames.
    mod frames {
        use super::*;

        fn fresh() -> (TempDirWriter, SqliteReader) {
            open_temp(true)
        }

        crate::store_conformance_tests!(fresh);
    }
}

#[test]
fn data_survives_reopening_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = typical_batch(&resource("frontend"), 0, 64, BASE_NANOS);
    {
        let (mut writer, _reader) = open_dir(dir.path(), &["x-correlation-id"]);
        writer.write_batch(&batch).expect("write_batch");
    }
    let (mut writer, reader) = open_dir(dir.path(), &["x-correlation-id"]);
    let stored = reader
        .trace(trace_id(1))
        .expect("trace")
        .expect("trace is stored");
    assert_eq!(stored, batch.spans[..8]);
    assert_eq!(
        reader
            .search_traces(&all_traces(100))
            .expect("search")
            .len(),
        8
    );
    // The reopened writer knows the existing partition and deduplicates into it.
    writer.write_batch(&batch).expect("write_batch");
    let summaries = reader.search_traces(&all_traces(100)).expect("search");
    assert!(summaries.iter().all(|summary| summary.num_spans == 8));
}

#[test]
fn memory_stores_are_private() {
    let (mut first_writer, first_reader) = open_at(SqliteLocation::Memory);
    let (_second_writer, second_reader) = open_at(SqliteLocation::Memory);
    first_writer
        .write_batch(&typical_batch(&resource("frontend"), 0, 8, BASE_NANOS))
        .expect("write_batch");
    assert!(first_reader.trace(trace_id(1)).expect("trace").is_some());
    assert_eq!(second_reader.trace(trace_id(1)).expect("trace"), None);
}

#[test]
fn memory_store_lives_while_a_reader_does() {
    let (mut writer, reader) = open_at(SqliteLocation::Memory);
    writer
        .write_batch(&typical_batch(&resource("frontend"), 0, 8, BASE_NANOS))
        .expect("write_batch");
    drop(writer);
    assert!(reader.clone().trace(trace_id(1)).expect("trace").is_some());
}

/// Parts are found through block filters while written and through exact indexes once
/// sealed, whether their entries were kept in memory or rebuilt from the blocks (a part left
/// unsealed by an earlier run).
#[test]
fn sealed_and_unsealed_parts_find_the_same_traces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_correlation = |batch_no: u64| {
        let mut batch = typical_batch(&resource("frontend"), batch_no * 64, 64, BASE_NANOS);
        for span in &mut batch.spans {
            let id = format!("corr-{}", span.trace_id.to_hex());
            span.attributes
                .push(("x-correlation-id".into(), AttrValue::Str(id)));
        }
        batch
    };
    let check = |reader: &SqliteReader, num_batches: u64| {
        for trace_no in (1..=num_batches * 8).step_by(5) {
            let spans = reader
                .trace(trace_id(trace_no))
                .expect("trace")
                .expect("stored");
            assert_eq!(spans.len(), 8, "trace {trace_no}");
            let query = TraceQuery {
                attribute: Some((
                    "x-correlation-id".into(),
                    format!("corr-{}", trace_id(trace_no).to_hex()),
                )),
                ..all_traces(10)
            };
            let found = reader.search_traces(&query).expect("search");
            assert_eq!(found.len(), 1, "trace {trace_no}");
            assert_eq!(found[0].trace_id, trace_id(trace_no));
        }
    };
    {
        let (mut writer, reader) = open_dir(dir.path(), &["x-correlation-id"]);
        writer
            .write_batch(&with_correlation(0))
            .expect("write_batch");
        check(&reader, 1);
    }
    // Reopened: the part is unsealed and its entries are not in memory any more.
    let (mut writer, reader) = open_dir(dir.path(), &["x-correlation-id"]);
    writer
        .write_batch(&with_correlation(1))
        .expect("write_batch");
    check(&reader, 2);
    let keep_all = crate::store::RetentionPolicy {
        max_age: std::time::Duration::MAX,
        max_size_bytes: u64::MAX,
    };
    // Retention in a later hour seals every part of earlier hours.
    writer
        .apply_retention(&keep_all, BASE_NANOS + 3 * HOUR_NANOS)
        .expect("apply_retention");
    check(&reader, 2);
    // Late data into the sealed part is indexed at once.
    writer
        .write_batch(&with_correlation(2))
        .expect("write_batch");
    check(&reader, 3);
}

#[test]
fn indexed_keys_apply_per_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tagged = |trace_no: u64, start_nanos: u64| {
        let mut span = typical_span(
            &resource("frontend"),
            &scope(),
            trace_no,
            trace_no,
            start_nanos,
        );
        span.attributes
            .push(("tenant".into(), AttrValue::Str("acme".into())));
        span
    };
    {
        let (mut writer, _reader) = open_dir(dir.path(), &[]);
        writer
            .write_batch(&span_batch(vec![tagged(1, BASE_NANOS)]))
            .expect("write_batch");
    }
    // Reopened with `tenant` indexed: the old hour was written without that index.
    let (mut writer, reader) = open_dir(dir.path(), &["tenant"]);
    writer
        .write_batch(&span_batch(vec![
            tagged(2, BASE_NANOS + 1),
            tagged(3, BASE_NANOS + HOUR_NANOS),
        ]))
        .expect("write_batch");
    let query = TraceQuery {
        attribute: Some(("tenant".into(), "acme".into())),
        ..all_traces(10)
    };
    let found: Vec<_> = reader
        .search_traces(&query)
        .expect("search")
        .iter()
        .map(|summary| summary.trace_id)
        .collect();
    assert_eq!(found, [trace_id(3), trace_id(2), trace_id(1)]);
}

#[test]
fn version_1_database_is_upgraded_for_rollups() {
    use crate::model::{MinuteRange, UnixMinute};
    use crate::store::conformance::fixtures::{point_batch, points_of_every_type};
    use crate::store::conformance::rollup_fixtures::{BASE_MINUTE, mesh_edge_rollups};
    use crate::store::{MetricReader, RollupReader, RollupWriter};

    let dir = tempfile::tempdir().expect("tempdir");
    let points = points_of_every_type(&resource("frontend"), "m", BASE_NANOS);
    {
        let (mut writer, _reader) = open_dir(dir.path(), &[]);
        writer
            .write_batch(&point_batch(points.clone()))
            .expect("write_batch");
    }
    let db_path = dir.path().join(super::pool::DB_FILE_NAME);
    let user_version = |version: Option<i64>| -> i64 {
        let conn = rusqlite::Connection::open(&db_path).expect("open raw");
        if let Some(version) = version {
            conn.pragma_update(None, "user_version", version)
                .expect("set user_version");
        }
        conn.query_row("PRAGMA user_version", (), |row| row.get(0))
            .expect("user_version")
    };
    // What a build before rollups left behind: the same catalogue, version 1.
    user_version(Some(1));

    let rollups = mesh_edge_rollups(BASE_MINUTE, 50);
    {
        let (mut writer, reader) = open_dir(dir.path(), &[]);
        let all_points = crate::store::conformance::fixtures::all_points(100);
        assert_eq!(
            reader
                .metric_points(&all_points)
                .expect("metric_points")
                .len(),
            points.len()
        );
        writer
            .write_rollups(1, &rollups, &[])
            .expect("write_rollups");
    }
    assert!(user_version(None) > 1, "the upgrade is recorded");
    let (_writer, reader) = open_dir(dir.path(), &[]);
    assert_eq!(
        reader
            .edge_rollups(
                MinuteRange::new(UnixMinute(BASE_MINUTE), UnixMinute(BASE_MINUTE + 1)),
                None
            )
            .expect("edge_rollups"),
        rollups
    );
}

#[test]
fn spans_starting_in_the_same_microsecond_all_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frontend = resource("frontend");
    let same_start =
        |trace_no: u64| typical_span(&frontend, &scope(), trace_no, trace_no, BASE_NANOS);
    let first = span_batch((1..=300).map(same_start).collect());
    {
        let (mut writer, _reader) = open_dir(dir.path(), &[]);
        writer.write_batch(&first).expect("write_batch");
    }
    // A reopened writer numbers row ids from the start again, so these collide with the
    // stored ones and must move on to free row ids.
    let (mut writer, reader) = open_dir(dir.path(), &[]);
    let second = span_batch((301..=600).map(same_start).collect());
    writer.write_batch(&second).expect("write_batch");
    writer.write_batch(&first).expect("write_batch");
    writer.write_batch(&second).expect("write_batch");
    let summaries = reader.search_traces(&all_traces(1000)).expect("search");
    assert_eq!(summaries.len(), 600);
    assert!(summaries.iter().all(|summary| summary.num_spans == 1));
    for trace_no in [1, 300, 301, 600] {
        let stored = reader.trace(trace_id(trace_no)).expect("trace");
        assert_eq!(stored, Some(vec![same_start(trace_no)]));
    }
}

/// Searches read together (one walk through the blocks for all) find what each finds alone,
/// each within its own bounds: blocks whose times overlap out of write order, blocks without
/// some services, scan bounds that cut a walk short, searches that stop at different blocks,
/// one that finds nothing.
#[test]
fn searches_read_together_find_what_each_finds_alone() {
    use crate::model::StatusCode;
    use crate::store::conformance::fixtures::span_batch;

    let (mut writer, reader) = open_at(SqliteLocation::Memory);
    for batch_no in 0..30_u64 {
        let mut spans = Vec::new();
        for (index, service) in ["checkout", "payments", "stock"].iter().enumerate() {
            // Not every service in every block.
            if (index == 1 && batch_no % 3 == 0) || (index == 2 && batch_no % 4 == 1) {
                continue;
            }
            let first_no = (batch_no * 3 + index as u64) * 16;
            spans.extend(typical_batch(&resource(service), first_no, 16, BASE_NANOS).spans);
        }
        for (no, span) in spans.iter_mut().enumerate() {
            let no = no as u64 + batch_no * 48;
            // Batches overlap in time, and later ones are not always newer.
            span.start_time_unix_nano = BASE_NANOS + (batch_no * 13 + no * 7) % 40 * 100_000;
            span.end_time_unix_nano = span.start_time_unix_nano + (no % 11) * 1_000_000;
            span.name = format!("op-{}", no % 3);
            if no.is_multiple_of(5) {
                span.status_code = StatusCode::Error;
            }
        }
        writer.write_batch(&span_batch(spans)).expect("write_batch");
    }
    let of = |service: &str, limit: usize, max_scanned_spans: Option<usize>| TraceQuery {
        service: Some(service.to_owned()),
        max_scanned_spans,
        ..all_traces(limit)
    };
    let queries = [
        of("checkout", 5, Some(200)),
        TraceQuery {
            error: Some(true),
            ..of("checkout", 3, Some(400))
        },
        all_traces(7),
        TraceQuery {
            operation: Some("op-1".to_owned()),
            ..of("stock", 4, None)
        },
        TraceQuery {
            min_duration_nanos: Some(8_000_000),
            ..of("payments", 2, Some(50))
        },
        all_traces(0),
    ];
    for max_spans in [1, 30, 10_000] {
        let together = reader
            .search_trace_spans_of_each(&queries, max_spans)
            .expect("search");
        for (query, found) in queries.iter().zip(&together) {
            let alone = reader.search_trace_spans(query, max_spans).expect("search");
            assert_eq!(found, &alone, "{query:?}, at most {max_spans} spans");
        }
    }
    // The bounds were reached: without them the bounded searches find other traces.
    let unbounded = |query: &TraceQuery| TraceQuery {
        max_scanned_spans: None,
        ..query.clone()
    };
    for query in [&queries[0], &queries[4]] {
        let bounded = reader.search_traces(query).expect("search");
        let whole = reader.search_traces(&unbounded(query)).expect("search");
        assert!(!bounded.is_empty() && bounded != whole, "{query:?}");
    }
}
