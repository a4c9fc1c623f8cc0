//! Cases for what the write-ahead log in front of every store must give it: replay after a
//! crash that tore the log's last frame, and retention that deletes by the data's age, not by
//! the order it was written in.

use std::time::Duration;

use crate::model::Batch;
use crate::pipeline::{WriteStore, replay_log};
use crate::store::{RetentionPolicy, TraceReader, batch_codec};
use crate::telemetry::Telemetry;
use crate::wal::{SyncMode, Wal, WalOptions};

use super::fixtures::{BASE_NANOS, HOUR_NANOS, MINUTE_NANOS, resource, trace_id, typical_batch};

/// Eight traces of eight spans per batch; batch `no` holds traces `8 no + 1 ..= 8 no + 8`.
fn batch(no: u64) -> Batch {
    typical_batch(
        &resource("frontend"),
        no * 64,
        64,
        BASE_NANOS + no * MINUTE_NANOS,
    )
}

fn stored_whole<R: TraceReader>(reader: &R, batch_no: u64) -> bool {
    (batch_no * 8 + 1..=batch_no * 8 + 8).all(|trace_no| {
        reader
            .trace(trace_id(trace_no))
            .expect("trace")
            .is_some_and(|spans| spans.len() == 8)
    })
}

/// A fresh directory under the system's temporary directory, removed when dropped (with the
/// `conformance` feature the suite is built into the library, which does not depend on
/// `tempfile`).
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cartograph-log-case-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            crate::model::now_unix_nano()
        ));
        std::fs::create_dir_all(&path).expect("scratch dir");
        Self(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_log(dir: &std::path::Path) -> (Wal, crate::wal::Replay) {
    Wal::open(WalOptions {
        dir: dir.to_path_buf(),
        sync: SyncMode::Sync,
        max_bytes: 64 * 1024 * 1024,
        segment_bytes: 1024 * 1024,
    })
    .expect("open log")
}

fn append(wal: &Wal, batch: &Batch) {
    let mut frame = Vec::new();
    batch_codec::encode_batch(&mut frame, batch);
    let (lsn, ()) = wal.append(&frame, |_| ()).expect("append");
    wal.wait_durable(lsn).expect("durable");
}

/// A crash leaves the log's last frame half written: replay stores every whole frame once,
/// the torn one not at all, and the log goes on after it.
pub fn log_replay_after_torn_frame<W: WriteStore, R: TraceReader>((mut writer, reader): (W, R)) {
    let dir = ScratchDir::new();
    let telemetry = Telemetry::default();
    {
        let (wal, replay) = open_log(dir.path());
        replay_log(&mut writer, &wal, replay, 100, &telemetry);
        for no in 0..3 {
            append(&wal, &batch(no));
        }
        // The process dies here: nothing was stored or checkpointed.
    }
    let segment = std::fs::read_dir(dir.path())
        .expect("log dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .max()
        .expect("a segment");
    let len = std::fs::metadata(&segment).expect("segment").len();
    // Tear the last frame: its tail never reached the disk.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|file| file.set_len(len - 100))
        .expect("tear the last frame");

    let (wal, replay) = open_log(dir.path());
    replay_log(&mut writer, &wal, replay, 100, &telemetry);
    assert!(stored_whole(&reader, 0));
    assert!(stored_whole(&reader, 1));
    assert!(
        (16 + 1..=16 + 8).all(|no| reader.trace(trace_id(no)).expect("trace").is_none()),
        "nothing of the torn frame is stored"
    );
    // The log continues after the last whole frame, and a replay after a checkpoint stores
    // nothing twice.
    append(&wal, &batch(3));
    drop(wal);
    let (wal, replay) = open_log(dir.path());
    replay_log(&mut writer, &wal, replay, 100, &telemetry);
    assert!(stored_whole(&reader, 3));
    let (wal, replay) = open_log(dir.path());
    replay_log(&mut writer, &wal, replay, 100, &telemetry);
    drop(wal);
    for no in [0, 1, 3] {
        assert!(stored_whole(&reader, no), "batch {no}");
    }
}

/// Retention by size deletes by the data's time, whatever order it was written in: hours
/// written out of order go oldest first, and what is kept is always the newest.
pub fn retention_drops_by_time_not_write_order<W: WriteStore, R: TraceReader>(
    (mut writer, reader): (W, R),
) {
    const NUM_HOURS: u64 = 4;
    let hour_batch = |hour: u64| {
        typical_batch(
            &resource("frontend"),
            hour * 2_000,
            2_000,
            BASE_NANOS + hour * HOUR_NANOS,
        )
    };
    for hour in [2, 0, 3, 1] {
        writer.write_batch(&hour_batch(hour)).expect("write_batch");
    }
    let first_trace = |hour: u64| hour * 2_000 / 8 + 1;
    let kept = |reader: &R| -> Vec<bool> {
        (0..NUM_HOURS)
            .map(|hour| {
                reader
                    .trace(trace_id(first_trace(hour)))
                    .expect("trace")
                    .is_some()
            })
            .collect()
    };
    let now_nanos = BASE_NANOS + NUM_HOURS * HOUR_NANOS;
    let everything = RetentionPolicy {
        max_age: Duration::MAX,
        max_size_bytes: u64::MAX,
    };
    let full = writer
        .apply_retention(&everything, now_nanos)
        .expect("apply_retention");
    for fraction in [0.9, 0.5] {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let budget = (full.size_bytes as f64 * fraction) as u64;
        let policy = RetentionPolicy {
            max_size_bytes: budget,
            ..everything
        };
        let report = writer
            .apply_retention(&policy, now_nanos)
            .expect("apply_retention");
        assert!(report.size_bytes <= budget, "{report:?}");
        let kept = kept(&reader);
        assert!(!kept[0], "the oldest hour goes first: {kept:?}");
        assert!(kept[3], "the newest hour stays: {kept:?}");
        let first_kept = kept
            .iter()
            .position(|is_kept| *is_kept)
            .unwrap_or(kept.len());
        assert!(
            kept[first_kept..].iter().all(|is_kept| *is_kept),
            "only the oldest hours go: {kept:?}"
        );
    }
}
