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
use std::time::Instant;

use cartograph::model::{Batch, MinuteRange, UnixMinute};
use cartograph::store::conformance::rollup_fixtures::{BASE_MINUTE, mesh_edge_key};
use cartograph::store::sqlite::{SqliteLocation, SqliteOptions, SqliteWriter, open};
use cartograph::store::{RollupReader, Splits, StoreWriter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/rollups.rs"]
mod rollups;
#[path = "support/spans.rs"]
mod spans;
use rollups::{MINUTES_PER_HOUR, write_mesh_hour};
use spans::SpanSource;

const BATCH_SPANS: u64 = 512;
const PREFILL_SPANS: u64 = 200_704;

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
        writer
            .write_batch(&source.next_batch(BATCH_SPANS))
            .expect("prefill");
    }

    let mut group = c.benchmark_group("sqlite_insert");
    group.throughput(Throughput::Elements(BATCH_SPANS));
    group.bench_function("batch_of_512_typical_spans", |bencher| {
        bencher.iter_custom(|num_iterations| {
            // Built up front, as in production, where other threads decode what the writer
            // thread stores; building between writes would evict the writer's caches.
            let batches: Vec<Batch> = (0..num_iterations)
                .map(|_| source.next_batch(BATCH_SPANS))
                .collect();
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

fn rollup_hour_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new(SqliteLocation::Dir(dir.path().to_path_buf()));
    let (mut writer, reader) = open(&options).expect("open store");
    let write_elapsed = write_mesh_hour(&mut writer, MESH_EDGES);
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
        "sqlite_rollups: {num_rollups} edge rollups (4 operation pairs each) and 500 operations \
         (versions) per minute written in {write_elapsed:?} ({:?} per minute of {MESH_EDGES} \
         edges), store files {store_bytes} bytes ({} bytes per stored minute)",
        write_elapsed / MINUTES_PER_HOUR as u32,
        store_bytes / MINUTES_PER_HOUR as u64
    );

    let hour = MinuteRange::new(
        UnixMinute(BASE_MINUTE),
        UnixMinute(BASE_MINUTE + MINUTES_PER_HOUR),
    );
    let mut group = c.benchmark_group("sqlite_rollups");
    group.sample_size(10);
    group.throughput(Throughput::Elements(num_rollups));
    // Freeing 120,000 rollups takes a good part of reading them; it is the caller's, not timed.
    group.bench_function("read_hour_of_2000_edges", |bencher| {
        bencher.iter_with_large_drop(|| {
            let rollups = reader.edge_rollups(hour, None).expect("edge_rollups");
            assert_eq!(rollups.len() as u64, num_rollups);
            rollups
        });
    });
    // What the map of that hour reads: the same rows merged per edge; and what change over
    // time reads: with their operation splits.
    for (name, splits) in [
        ("totals_hour_of_2000_edges", Splits::Skipped),
        ("totals_with_splits_hour_of_2000_edges", Splits::Read),
    ] {
        group.bench_function(name, |bencher| {
            bencher.iter_with_large_drop(|| {
                let totals = reader.edge_totals(hour, None, splits).expect("edge_totals");
                assert_eq!(totals.len() as u64, MESH_EDGES);
                totals
            });
        });
    }
    // What one edge's charts of that hour read.
    let edge = mesh_edge_key(MESH_EDGES / 2);
    group.throughput(Throughput::Elements(MINUTES_PER_HOUR as u64));
    group.bench_function("one_edge_hour", |bencher| {
        bencher.iter(|| {
            reader
                .edge_rollups_between(hour, None, &edge.source, &edge.target)
                .expect("edge_rollups_between")
        });
    });
    group.throughput(Throughput::Elements(5 * MESH_EDGES));
    group.bench_function("read_5_minutes_of_2000_edges", |bencher| {
        bencher.iter_with_large_drop(|| {
            reader
                .edge_rollups(
                    MinuteRange::new(UnixMinute(BASE_MINUTE + 30), UnixMinute(BASE_MINUTE + 35)),
                    None,
                )
                .expect("edge_rollups")
        });
    });
    group.throughput(Throughput::Elements(MINUTES_PER_HOUR as u64));
    group.bench_function("minutes_of_hour", |bencher| {
        bencher.iter(|| {
            reader
                .rollup_minutes(MinuteRange::new(
                    UnixMinute(BASE_MINUTE),
                    UnixMinute(BASE_MINUTE + MINUTES_PER_HOUR),
                ))
                .expect("rollup_minutes")
        });
    });
    group.finish();
}

criterion_group!(benches, sustained_insert, rollup_hour_read);
criterion_main!(benches);
