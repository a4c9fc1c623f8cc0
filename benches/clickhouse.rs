//! The ClickHouse store on the real engine: insert rate of typical spans (batches of 8,192, as
//! the writer sends them), bytes per span on disk (from `system.parts`, after merging), and the
//! read of an hour of rollups of a 500-service mesh (the graph's query for "last hour"): a clock
//! hour, and an hour that starts and ends off the ten-minute sets (as "the last hour" does).
//!
//! Needs a server: `CARTOGRAPH_BENCH_CLICKHOUSE_URL` (LZ4), else `CARTOGRAPH_TEST_CHDB_URL`
//! (the chDB bridge, no compression); without either it says so and exits.
//!
//! `CARTOGRAPH_TEST_CHDB_URL=http://127.0.0.1:8123 cargo bench --bench clickhouse`

use std::time::{Duration, Instant};

use cartograph::model::{MinuteRange, UnixMinute};
use cartograph::store::clickhouse::{ClickHouseOptions, ClickHouseReader, ClickHouseWriter, open};
use cartograph::store::conformance::rollup_fixtures::{BASE_MINUTE, mesh_edge_key};
use cartograph::store::{RollupReader, Splits, StoreWriter};

#[path = "support/rollups.rs"]
mod rollups;
#[path = "support/spans.rs"]
mod spans;
use rollups::{MINUTES_PER_HOUR, write_mesh_hour, write_mesh_minutes};
use spans::SpanSource;

const BATCH_SPANS: u64 = 8_192;
const NUM_SPANS: u64 = 24 * BATCH_SPANS;
/// A 500-service mesh: about four edges per service.
const MESH_EDGES: u64 = 2_000;
/// Where "the last hour" starts in the second read: minutes 7..67, so three minutes before the
/// first whole ten-minute set and seven after the last are read as minutes.
const OFF_BUCKET: i64 = 7;

fn sql(url: &str, statement: &str) -> String {
    let output = std::process::Command::new("curl")
        .args(["-sS", "--data-binary", statement, url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Writes an hour of the mesh, then times its exact read and its read merged per edge.
fn measure_rollup_reads(writer: &mut ClickHouseWriter, reader: &ClickHouseReader) {
    let write_elapsed = write_mesh_hour(writer, MESH_EDGES);
    println!(
        "clickhouse rollups: an hour of a {MESH_EDGES}-edge mesh written in {:.2} s \
         (one call a minute, ten-minute sets included)",
        write_elapsed.as_secs_f64()
    );
    write_mesh_minutes(
        writer,
        MESH_EDGES,
        MINUTES_PER_HOUR..MINUTES_PER_HOUR + OFF_BUCKET,
    );
    let hour = MinuteRange::new(
        UnixMinute(BASE_MINUTE),
        UnixMinute(BASE_MINUTE + MINUTES_PER_HOUR),
    );
    let read = median_of_5(|| {
        let rollups = reader.edge_rollups(hour, None).expect("read");
        assert_eq!(rollups.len() as u64, MINUTES_PER_HOUR as u64 * MESH_EDGES);
        rollups
    });
    println!(
        "clickhouse rollups: the hour read exactly, {} rows, in {:.0} ms (median of 5)",
        MINUTES_PER_HOUR as u64 * MESH_EDGES,
        read.as_secs_f64() * 1000.0
    );
    let off_bucket = MinuteRange::new(
        UnixMinute(BASE_MINUTE + OFF_BUCKET),
        UnixMinute(BASE_MINUTE + OFF_BUCKET + MINUTES_PER_HOUR),
    );
    for (what, range, splits) in [
        ("(what the map reads)", hour, Splits::Skipped),
        (
            "(what the map reads), minutes 7 to 67",
            off_bucket,
            Splits::Skipped,
        ),
        (
            "with operation splits (what change over time reads)",
            hour,
            Splits::Read,
        ),
    ] {
        let totals = median_of_5(|| {
            let merged = reader.edge_totals(range, None, splits).expect("totals");
            assert_eq!(merged.len() as u64, MESH_EDGES);
            merged
        });
        println!(
            "clickhouse rollups: the hour merged per edge {what} in {:.0} ms (median of 5)",
            totals.as_secs_f64() * 1000.0
        );
    }
    let edge = mesh_edge_key(MESH_EDGES / 2);
    let one_edge = median_of_5(|| {
        let rollups = reader
            .edge_rollups_between(hour, None, &edge.source, &edge.target)
            .expect("one edge");
        assert_eq!(rollups.len() as i64, MINUTES_PER_HOUR);
        rollups
    });
    println!(
        "clickhouse rollups: the hour of one edge (what its charts read) in {:.0} ms (median of 5)",
        one_edge.as_secs_f64() * 1000.0
    );
}

/// The median of five timed runs of `run`; freeing what it returns is not timed (the
/// caller's, as for the old per-row read).
fn median_of_5<T>(mut run: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let result = run();
            let elapsed = started.elapsed();
            drop(result);
            elapsed
        })
        .collect();
    times.sort();
    times[2]
}

fn main() {
    let (url, compress) = match std::env::var("CARTOGRAPH_BENCH_CLICKHOUSE_URL") {
        Ok(url) => (url, true),
        Err(_) => match std::env::var("CARTOGRAPH_TEST_CHDB_URL") {
            Ok(url) => (url, false),
            Err(_) => {
                eprintln!(
                    "clickhouse bench: set CARTOGRAPH_BENCH_CLICKHOUSE_URL (a server) or \
                     CARTOGRAPH_TEST_CHDB_URL (the chDB bridge: python tests/support/chdb_bridge.py)"
                );
                return;
            }
        },
    };
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let database = format!("cartograph_bench_{}", std::process::id());
    let (mut writer, reader) = open(&ClickHouseOptions {
        url: url.clone(),
        database: database.clone(),
        user: None,
        password: None,
        compress,
        cluster: None,
        migrate: true,
    })
    .expect("open");

    let mut source = SpanSource::new();
    let batches: Vec<_> = (0..NUM_SPANS / BATCH_SPANS)
        .map(|_| source.next_batch(BATCH_SPANS))
        .collect();
    let started = Instant::now();
    for batch in &batches {
        writer.write_batch(batch).expect("write_batch");
    }
    let elapsed = started.elapsed();
    println!(
        "clickhouse insert: {NUM_SPANS} typical spans in {:.2} s = {:.0} spans/s (batches of {BATCH_SPANS})",
        elapsed.as_secs_f64(),
        NUM_SPANS as f64 / elapsed.as_secs_f64()
    );

    for table in ["spans", "trace_times"] {
        sql(&url, &format!("OPTIMIZE TABLE `{database}`.{table} FINAL"));
    }
    let bytes: f64 = sql(
        &url,
        &format!(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{database}' \
             AND table IN ('spans', 'trace_times') AND active"
        ),
    )
    .parse()
    .expect("bytes");
    println!(
        "clickhouse size: {:.1} bytes per span on disk (spans + trace index, merged)",
        bytes / NUM_SPANS as f64
    );

    measure_rollup_reads(&mut writer, &reader);
    if std::env::var_os("CARTOGRAPH_BENCH_KEEP").is_some() {
        println!("clickhouse: kept database {database}");
    } else {
        sql(&url, &format!("DROP DATABASE `{database}`"));
    }
}
