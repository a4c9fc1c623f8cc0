//! The store reads behind the dashboard pages' example traces, on what `scripts/bench-pages.sh`
//! stores: ~1M spans from `cartograph loadgen`'s requests (512 spans, 8-span traces over 300
//! services, one resource per service in each request), converted as ingest converts them and
//! written as the store writer writes them, into a file-backed store whose one part is still
//! being written (found through block filters, not sealed indexes), as during the benchmark.
//!
//! - `service_failed_traces`: the service page's recent error traces (a service's failed
//!   traces of the last hour, the example scan bound);
//! - `edge_drilldown`: the edge page's one read (its caller's newest and newest failed traces,
//!   whole, see `query::drilldown_queries`);
//! - `traces_page`: the traces search of one service, 20 traces;
//! - `trace_by_id`: one trace, as the trace page reads it.
//!
//! `cargo bench --bench trace_search -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::time::Instant;

use cartograph::ingest::convert::{ConvertLimits, convert_traces};
use cartograph::ingest::decode::{Encoding, decode_traces};
use cartograph::loadgen::{RequestSource, Shape};
use cartograph::model::{Batch, NANOS_PER_MINUTE, now_unix_nano};
use cartograph::query::{DRILLDOWN_MAX_SPANS, EXAMPLE_SCAN_SPANS, drilldown_queries};
use cartograph::store::conformance::fixtures::all_traces;
use cartograph::store::sqlite::{SqliteLocation, SqliteOptions, SqliteReader, open};
use cartograph::store::{StoreWriter, TraceQuery, TraceReader};
use criterion::{Criterion, criterion_group, criterion_main};

const NUM_REQUESTS: u64 = 1_954;
const SERVICE: &str = "load-service-024";
const HOUR_NANOS: u64 = 60 * NANOS_PER_MINUTE;

/// The store of `bench-pages.sh`: what `loadgen --services 300 --spans-per-trace 8` sends in
/// 40 s at 25k spans/s.
fn loadgen_store(dir: &std::path::Path) -> SqliteReader {
    let (mut writer, reader) =
        open(&SqliteOptions::new(SqliteLocation::Dir(dir.to_path_buf()))).expect("open store");
    let source = RequestSource::new(Shape {
        num_services: 300,
        spans_per_trace: 8,
        spans_per_request: 512,
        seed: 1,
    });
    let limits = ConvertLimits::default();
    let started = Instant::now();
    let mut num_spans = 0;
    for request_no in 0..NUM_REQUESTS {
        let body = source.request(request_no);
        let request = decode_traces(&body, Encoding::Protobuf, usize::MAX).expect("decodes");
        let spans = convert_traces(request, now_unix_nano(), &limits).items;
        num_spans += spans.len();
        let batch = Batch {
            spans,
            metric_points: Vec::new(),
        };
        writer.write_batch(&batch).expect("write");
    }
    eprintln!(
        "trace_search: {num_spans} spans stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    reader
}

/// The last hour's traces of `service`.
fn of_service(service: &str, limit: usize) -> TraceQuery {
    let now = now_unix_nano();
    TraceQuery {
        service: Some(service.to_owned()),
        from_unix_nano: now - HOUR_NANOS,
        to_unix_nano: now + NANOS_PER_MINUTE,
        ..all_traces(limit)
    }
}

fn trace_search(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let reader = loadgen_store(dir.path());
    let failed = TraceQuery {
        error: Some(true),
        max_scanned_spans: Some(EXAMPLE_SCAN_SPANS),
        ..of_service(SERVICE, 10)
    };
    let listed = of_service(SERVICE, 20);
    let drilldown = {
        let all = of_service(SERVICE, 1);
        drilldown_queries(SERVICE, (all.from_unix_nano, all.to_unix_nano))
    };
    let found = reader.search_traces(&failed).expect("search");
    let read = reader
        .search_trace_spans_of_each(&drilldown, DRILLDOWN_MAX_SPANS)
        .expect("search");
    eprintln!(
        "trace_search: {} failed traces of {SERVICE}; the drill-down reads {} newest and {} failed traces",
        found.len(),
        read[0].len(),
        read[1].len()
    );
    let trace_id = reader.search_traces(&listed).expect("search")[0].trace_id;

    let mut group = c.benchmark_group("trace_search");
    group.sample_size(20);
    group.bench_function("service_failed_traces", |bencher| {
        bencher.iter(|| reader.search_traces(black_box(&failed)).expect("search"));
    });
    group.bench_function("edge_drilldown", |bencher| {
        bencher.iter(|| {
            reader
                .search_trace_spans_of_each(black_box(&drilldown), DRILLDOWN_MAX_SPANS)
                .expect("search")
        });
    });
    group.bench_function("traces_page", |bencher| {
        bencher.iter(|| reader.search_traces(black_box(&listed)).expect("search"));
    });
    group.bench_function("trace_by_id", |bencher| {
        bencher.iter(|| reader.trace(black_box(trace_id)).expect("trace"));
    });
    group.finish();
}

criterion_group!(benches, trace_search);
criterion_main!(benches);
