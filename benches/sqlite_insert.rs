//! Sustained insert rate of the SQLite store: batches of 512 typical spans (nine attributes,
//! an event on one span in fifty, random trace ids, one resource per batch) into a file-backed
//! store that already holds 200k spans, so indexes and partitions have realistic sizes.
//! Only `write_batch` is timed; the batches of each sample are built before it.
//!
//! Also the read of an hour of per-minute rollups of a 2,000-edge mesh (120,000 rows with
//! realistic sketches), as a dashboard showing the last hour does; writing that hour is timed
//! once during setup and printed.
//!
//! `cargo bench --bench sqlite_insert -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cartograph::model::split_mix as mix;
use cartograph::model::{AttrValue, Batch, Event, Resource, Scope, SpanId, SpanKind, TraceId};
use cartograph::store::conformance::fixtures::{BASE_NANOS, resource, scope, typical_span};
use cartograph::store::conformance::rollup_fixtures::{BASE_MINUTE, mesh_edge_rollups};
use cartograph::store::sqlite::{SqliteLocation, SqliteOptions, SqliteWriter, open};
use cartograph::store::{RollupReader, RollupWriter, StoreWriter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH_SPANS: u64 = 512;
const PREFILL_SPANS: u64 = 200_704;
const SPANS_PER_TRACE: u64 = 8;
/// Simulated arrival: 100k spans/s, so a run crosses hourly partitions like production would.
const NANOS_BETWEEN_SPANS: u64 = 10_000;
const NUM_SERVICES: u64 = 12;

struct SpanSource {
    next_no: u64,
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
}

impl SpanSource {
    fn new() -> Self {
        Self {
            next_no: 0,
            resources: (0..NUM_SERVICES)
                .map(|no| resource(&format!("service-{no}")))
                .collect(),
            scope: scope(),
        }
    }

    fn next_batch(&mut self) -> Batch {
        let first_no = self.next_no;
        self.next_no += BATCH_SPANS;
        let resource = &self.resources[((first_no / BATCH_SPANS) % NUM_SERVICES) as usize];
        let spans = (first_no..first_no + BATCH_SPANS)
            .map(|no| {
                let trace_no = no / SPANS_PER_TRACE;
                let start_nanos = BASE_NANOS + no * NANOS_BETWEEN_SPANS;
                let mut span = typical_span(resource, &self.scope, 1, 1, start_nanos);
                let mut trace_bytes = [0_u8; 16];
                trace_bytes[..8].copy_from_slice(&mix(trace_no).to_le_bytes());
                trace_bytes[8..].copy_from_slice(&mix(!trace_no).to_le_bytes());
                span.trace_id = TraceId::from_bytes(&trace_bytes).expect("random trace id");
                span.span_id = SpanId::from_bytes(&mix(no | 1 << 63).to_le_bytes()).expect("id");
                if no % SPANS_PER_TRACE != 0 {
                    let root_no = no - no % SPANS_PER_TRACE;
                    span.parent_span_id = Some(
                        SpanId::from_bytes(&mix(root_no | 1 << 63).to_le_bytes()).expect("id"),
                    );
                    span.kind = SpanKind::Client;
                    span.name = format!("SELECT orders {}", no % 16);
                }
                if no % 50 == 0 {
                    span.events.push(Event {
                        time_unix_nano: start_nanos + 1_000,
                        name: "exception".to_owned(),
                        attributes: vec![(
                            "exception.type".to_owned(),
                            AttrValue::Str("java.net.SocketTimeoutException".to_owned()),
                        )],
                        dropped_attributes_count: 0,
                    });
                }
                span
            })
            .collect();
        Batch {
            spans,
            metric_points: Vec::new(),
        }
    }
}

fn open_store(dir: &std::path::Path) -> SqliteWriter {
    let options = SqliteOptions::new(SqliteLocation::Dir(dir.to_path_buf()));
    let (writer, _reader) = open(&options).expect("open store");
    writer
}

fn sustained_insert(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut writer = open_store(dir.path());
    let mut source = SpanSource::new();
    while source.next_no < PREFILL_SPANS {
        writer.write_batch(&source.next_batch()).expect("prefill");
    }

    let mut group = c.benchmark_group("sqlite_insert");
    group.throughput(Throughput::Elements(BATCH_SPANS));
    group.bench_function("batch_of_512_typical_spans", |bencher| {
        bencher.iter_custom(|num_iterations| {
            // Built up front, as in production, where other threads decode what the writer
            // thread stores; building between writes would evict the writer's caches.
            let batches: Vec<Batch> = (0..num_iterations).map(|_| source.next_batch()).collect();
            let started = Instant::now();
            for batch in &batches {
                writer.write_batch(black_box(batch)).expect("write_batch");
            }
            let elapsed = started.elapsed();
            drop(batches);
            elapsed
        });
    });
    group.finish();
    eprintln!("sqlite_insert: {} spans written in total", source.next_no);
}

const MESH_EDGES: u64 = 2_000;
const MINUTES_PER_HOUR: i64 = 60;

fn rollup_hour_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new(SqliteLocation::Dir(dir.path().to_path_buf()));
    let (mut writer, reader) = open(&options).expect("open store");
    let mut write_elapsed = Duration::ZERO;
    for minute in BASE_MINUTE..BASE_MINUTE + MINUTES_PER_HOUR {
        let rollups = mesh_edge_rollups(minute, MESH_EDGES);
        let started = Instant::now();
        writer
            .write_rollups(1, &rollups, &[])
            .expect("write_rollups");
        write_elapsed += started.elapsed();
    }
    let num_rollups = MESH_EDGES * MINUTES_PER_HOUR as u64;
    let store_bytes: u64 = std::fs::read_dir(dir.path())
        .expect("read store dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .metadata()
                .expect("metadata")
                .len()
        })
        .sum();
    eprintln!(
        "sqlite_rollups: {num_rollups} edge rollups written in {write_elapsed:?} \
         ({:?} per minute of {MESH_EDGES} edges), store files {store_bytes} bytes",
        write_elapsed / MINUTES_PER_HOUR as u32
    );

    let mut group = c.benchmark_group("sqlite_rollups");
    group.sample_size(10);
    group.throughput(Throughput::Elements(num_rollups));
    // Freeing 120,000 rollups takes a good part of reading them; it is the caller's, not timed.
    group.bench_function("read_hour_of_2000_edges", |bencher| {
        bencher.iter_with_large_drop(|| {
            let rollups = reader
                .edge_rollups(BASE_MINUTE, BASE_MINUTE + MINUTES_PER_HOUR, None)
                .expect("edge_rollups");
            assert_eq!(rollups.len() as u64, num_rollups);
            rollups
        });
    });
    group.throughput(Throughput::Elements(5 * MESH_EDGES));
    group.bench_function("read_5_minutes_of_2000_edges", |bencher| {
        bencher.iter_with_large_drop(|| {
            reader
                .edge_rollups(BASE_MINUTE + 30, BASE_MINUTE + 35, None)
                .expect("edge_rollups")
        });
    });
    group.throughput(Throughput::Elements(MINUTES_PER_HOUR as u64));
    group.bench_function("minutes_of_hour", |bencher| {
        bencher.iter(|| {
            reader
                .rollup_minutes(BASE_MINUTE, BASE_MINUTE + MINUTES_PER_HOUR)
                .expect("rollup_minutes")
        });
    });
    group.finish();
}

criterion_group!(benches, sustained_insert, rollup_hour_read);
criterion_main!(benches);
