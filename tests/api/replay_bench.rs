//! How long a restart takes to replay a large write-ahead log (BENCHMARKS.md): a data
//! directory whose log holds about 1 GiB of exports not yet stored (as a crash under a long
//! backlog leaves it), then the release process started on it, timed until `/health/ready`.
//! Ignored by default (it writes a gigabyte):
//!
//! `cargo test --release --test api replay_bench -- --ignored --nocapture`

use std::time::{Duration, Instant};

use cartograph::store::batch_codec::encode_batch;
use cartograph::store::conformance::fixtures::{resource, typical_batch};
use cartograph::wal::{SyncMode, Wal, WalOptions};

use crate::process::{self, Options};

const LOG_BYTES: u64 = 1024 * 1024 * 1024;
const SPANS_PER_FRAME: u64 = 512;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a 1 GiB log; run by hand for BENCHMARKS.md"]
async fn replay_bench_restart_with_a_gigabyte_log_becomes_ready() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let (wal, _replay) = Wal::open(WalOptions {
        dir: data.join("wal"),
        sync: SyncMode::Os,
        max_bytes: 2 * LOG_BYTES,
        segment_bytes: 64 * 1024 * 1024,
    })
    .expect("log");
    let now = cartograph::model::now_unix_nano();
    let frontend = resource("frontend");
    let (mut num_bytes, mut num_spans, mut frame_no) = (0_u64, 0_u64, 0_u64);
    while num_bytes < LOG_BYTES {
        let batch = typical_batch(&frontend, frame_no * SPANS_PER_FRAME, SPANS_PER_FRAME, now);
        let mut frame = Vec::new();
        encode_batch(&mut frame, &batch);
        wal.append(&frame, |_| ()).expect("append");
        num_bytes += frame.len() as u64;
        num_spans += SPANS_PER_FRAME;
        frame_no += 1;
    }
    wal.close().expect("close");
    drop(wal);

    let started = Instant::now();
    let server = process::start(Options {
        data_dir: Some(&data),
        ..Options::default()
    })
    .await;
    let live_after = started.elapsed();
    while server.ready().await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(120), "ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = started.elapsed();
    let replayed = server.metric("cartograph_wal_replayed_items").await;
    let replay_seconds = server.metric("cartograph_wal_replay_seconds").await;
    println!(
        "log of {num_bytes} bytes ({num_spans} spans): live after {live_after:?}, ready after \
         {ready_after:?}; replay took {replay_seconds} s for {replayed} spans"
    );
    assert_eq!(replayed as u64, num_spans, "ready means replayed");
    assert!(server.terminate().success());
}
