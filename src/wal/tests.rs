//! Behaviour of the whole log: round trips, checkpoints, recovery from damage, limits, and
//! group commit. Each test works in its own temporary directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread;

use super::*;

fn options(dir: &Path, sync: SyncMode) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        sync,
        max_bytes: 1 << 20,
        segment_bytes: 256,
    }
}

fn open(options: &WalOptions) -> (Wal, Replay) {
    Wal::open(options.clone()).unwrap()
}

/// Distinct payloads of varying sizes (9 to 45 bytes, plus an empty one now and then).
fn payload(index: usize) -> Vec<u8> {
    if index % 7 == 3 {
        return Vec::new();
    }
    format!("frame-{index:03}")
        .repeat(index % 5 + 1)
        .into_bytes()
}

fn append_range(wal: &Wal, range: std::ops::Range<usize>) -> Vec<(Lsn, Vec<u8>)> {
    range
        .map(|index| {
            let bytes = payload(index);
            let (lsn, ()) = wal.append(&bytes, |_| ()).unwrap();
            (lsn, bytes)
        })
        .collect()
}

fn replay_all(replay: &mut Replay) -> Vec<(Lsn, Vec<u8>)> {
    std::iter::from_fn(|| replay.next_frame().unwrap()).collect()
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn empty_dir_opens_with_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir.path().join("nested/wal"), SyncMode::Sync);
    let (wal, mut replay) = open(&options);
    assert!(replay.next_frame().unwrap().is_none());
    assert_eq!(replay.end(), Lsn(0));
    assert_eq!(
        (replay.num_torn_bytes(), replay.num_corrupt_segments()),
        (0, 0)
    );
    assert_eq!(
        (wal.used_bytes(), wal.disk_bytes(), wal.num_segments()),
        (0, 0, 1)
    );
    assert!(!wal.is_full());
}

#[test]
fn frames_round_trip_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    let mut written = append_range(&wal, 0..40);
    let mut expected_end = 0;
    for (lsn, bytes) in &written {
        expected_end += 8 + bytes.len() as u64;
        assert_eq!(
            *lsn,
            Lsn(expected_end),
            "an lsn is the byte offset past its frame"
        );
    }
    assert!(wal.num_segments() > 3);
    assert_eq!(wal.num_segments(), segment_paths(dir.path()).len() as u64);
    assert_eq!(wal.disk_bytes(), expected_end);
    assert_eq!(wal.used_bytes(), expected_end);
    let stats = wal.stats();
    assert_eq!(
        (stats.num_frames_appended, stats.num_bytes_appended),
        (40, expected_end)
    );
    wal.close().unwrap();

    let (wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written);
    assert_eq!(replay.end(), Lsn(expected_end));
    assert_eq!(
        wal.used_bytes(),
        expected_end,
        "the replay region counts until checkpointed"
    );
    written.extend(append_range(&wal, 40..50));
    assert!(written.windows(2).all(|pair| pair[0].0 < pair[1].0));
    drop(wal);

    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written);
}

#[test]
fn segments_never_grow_past_their_size_except_for_one_big_frame() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    append_range(&wal, 0..30);
    wal.append(&[7u8; 1000], |_| ()).unwrap();
    append_range(&wal, 30..32);
    wal.close().unwrap();
    let sizes: Vec<u64> = segment_paths(dir.path())
        .iter()
        .map(|path| fs::metadata(path).unwrap().len())
        .collect();
    let big = sizes.iter().filter(|&&size| size > 256).count();
    assert_eq!(big, 1, "{sizes:?}");
    assert!(
        sizes.contains(&1008),
        "the big frame has a segment to itself: {sizes:?}"
    );
}

#[test]
fn reopen_after_a_checkpoint_replays_only_later_frames() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    let written = append_range(&wal, 0..40);
    // Mid-segment: frame 21 does not end a segment.
    let (checkpoint, _) = written[21];
    wal.checkpoint(checkpoint).unwrap();
    assert_eq!(wal.used_bytes(), written[39].0.0 - checkpoint.0);
    wal.close().unwrap();

    let (wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written[22..]);
    assert_eq!(wal.used_bytes(), written[39].0.0 - checkpoint.0);
    wal.checkpoint(Lsn(1)).unwrap(); // behind the checkpoint: ignored
    assert_eq!(wal.used_bytes(), written[39].0.0 - checkpoint.0);
}

#[test]
fn checkpoint_at_a_segment_end_deletes_it_and_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Sync);
    let (wal, _) = open(&options);
    let written = append_range(&wal, 0..40);
    let paths = segment_paths(dir.path());
    let second_start: u64 = paths[1].file_stem().unwrap().to_str().unwrap()[4..]
        .parse()
        .unwrap();
    let index = written
        .iter()
        .position(|(lsn, _)| lsn.0 == second_start)
        .unwrap();
    wal.checkpoint(Lsn(second_start)).unwrap();
    assert_eq!(
        segment_paths(dir.path()),
        paths[1..],
        "the first segment is gone"
    );
    wal.close().unwrap();

    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written[index + 1..]);
}

#[test]
fn checkpoints_delete_whole_segments_below_them_only() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Sync);
    let (wal, _) = open(&options);
    let written = append_range(&wal, 0..60);
    let num_segments = wal.num_segments();
    let disk_bytes = wal.disk_bytes();
    wal.checkpoint(written[30].0).unwrap();
    assert!(wal.num_segments() < num_segments);
    assert_eq!(wal.num_segments(), segment_paths(dir.path()).len() as u64);
    let on_disk: u64 = segment_paths(dir.path())
        .iter()
        .map(|path| fs::metadata(path).unwrap().len())
        .sum();
    assert_eq!(wal.disk_bytes(), on_disk);
    assert!(on_disk < disk_bytes);
    assert!(wal.disk_bytes() >= wal.used_bytes());

    // Everything checkpointed: the segment being written stays.
    wal.checkpoint(written[59].0).unwrap();
    assert_eq!((wal.num_segments(), wal.used_bytes()), (1, 0));
    wal.close().unwrap();
    let (wal, mut replay) = open(&options);
    assert!(replay.next_frame().unwrap().is_none());
    assert_eq!(replay.end(), written[59].0);
    let (lsn, ()) = wal.append(b"next", |_| ()).unwrap();
    assert_eq!(lsn, written[59].0.advance(12));
}

#[test]
fn a_missing_or_corrupt_checkpoint_replays_from_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    let written = append_range(&wal, 0..10);
    wal.checkpoint(written[5].0).unwrap();
    wal.close().unwrap();
    fs::write(dir.path().join("checkpoint"), b"garbage!garbage!").unwrap();
    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written);
    fs::remove_file(dir.path().join("checkpoint")).unwrap();
    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written);
}

#[test]
fn a_checkpoint_beyond_the_end_starts_a_new_segment_there() {
    // Os mode and a power loss: the checkpoint file survived, the frames it covers did not.
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    append_range(&wal, 0..20);
    wal.close().unwrap();
    drop(wal);
    checkpoint::CheckpointFile::new(dir.path(), Lsn(0))
        .write(Lsn(10_000))
        .unwrap();

    let (wal, mut replay) = open(&options);
    assert!(replay.next_frame().unwrap().is_none());
    assert_eq!(replay.end(), Lsn(10_000));
    assert_eq!(
        (wal.num_segments(), wal.used_bytes(), wal.disk_bytes()),
        (1, 0, 0)
    );
    let (lsn, ()) = wal.append(b"after", |_| ()).unwrap();
    assert_eq!(lsn, Lsn(10_013));
    drop(wal);
    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), [(Lsn(10_013), b"after".to_vec())]);
}

/// Writes frames, damages the last segment's tail with `damage` (given its path and length)
/// so that the last `num_lost` frames are lost, and checks that reopening replays the intact
/// frames, cuts the damage off, and continues a valid log.
fn check_torn_tail(num_lost: usize, damage: impl FnOnce(&Path, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    let mut written = append_range(&wal, 0..LAST_FRAME + 1);
    wal.close().unwrap();
    drop(wal);
    let last = segment_paths(dir.path()).pop().unwrap();
    let len_before = fs::metadata(&last).unwrap().len();
    damage(&last, len_before);
    let damaged_len = fs::metadata(&last).unwrap().len();

    let (wal, mut replay) = open(&options);
    let num_intact = written.len() - num_lost;
    let lost_bytes: u64 = written[num_intact..]
        .iter()
        .map(|(_, bytes)| 8 + bytes.len() as u64)
        .sum();
    assert_eq!(replay_all(&mut replay), written[..num_intact]);
    assert_eq!(replay.end(), written[num_intact - 1].0);
    let valid_len = len_before - lost_bytes;
    assert_eq!(replay.num_torn_bytes(), damaged_len - valid_len);
    assert_eq!(fs::metadata(&last).unwrap().len(), valid_len);
    written.truncate(num_intact);
    written.extend(append_range(&wal, 100..103));
    let first_new = written[num_intact - 1]
        .0
        .advance(8 + payload(100).len() as u64);
    assert_eq!(written[num_intact].0, first_new);
    wal.close().unwrap();
    drop(wal);

    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written);
    assert_eq!(replay.num_torn_bytes(), 0);
}

/// The index of the last frame `check_torn_tail` writes.
const LAST_FRAME: usize = 11;

fn last_payload_bytes() -> u64 {
    payload(LAST_FRAME).len() as u64
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn write_at_end(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn a_torn_header_is_cut_off() {
    // 5 of the last frame's 8 header bytes remain.
    check_torn_tail(1, |path, len| set_len(path, len - last_payload_bytes() - 3));
}

#[test]
fn a_torn_payload_is_cut_off() {
    check_torn_tail(1, |path, len| set_len(path, len - 5));
}

#[test]
fn a_frame_with_a_bad_checksum_is_cut_off() {
    check_torn_tail(1, |path, len| {
        let mut bytes = fs::read(path).unwrap();
        bytes[len as usize - 1] ^= 0xff;
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_zeroed_last_payload_is_cut_off() {
    // The header made it to disk, the payload's blocks did not.
    check_torn_tail(1, |path, len| {
        set_len(path, len - last_payload_bytes());
        write_at_end(path, &[0u8; 4096]);
    });
}

#[test]
fn a_zero_filled_tail_is_cut_off() {
    // Preallocated blocks after the last frame: length 0 with a checksum that cannot match.
    check_torn_tail(0, |path, _| write_at_end(path, &[0u8; 4096]));
}

#[test]
fn a_corrupt_middle_segment_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    let written = append_range(&wal, 0..40);
    wal.close().unwrap();
    drop(wal);
    let paths = segment_paths(dir.path());
    assert!(paths.len() >= 4);
    let middle = &paths[1];
    let start: u64 = middle.file_stem().unwrap().to_str().unwrap()[4..]
        .parse()
        .unwrap();
    let end: u64 = paths[2].file_stem().unwrap().to_str().unwrap()[4..]
        .parse()
        .unwrap();
    let mut bytes = fs::read(middle).unwrap();
    bytes[9] ^= 0xff; // the first frame's payload
    fs::write(middle, bytes).unwrap();

    let (_wal, mut replay) = open(&options);
    let expected: Vec<_> = written
        .iter()
        .filter(|(lsn, _)| lsn.0 <= start || lsn.0 > end)
        .cloned()
        .collect();
    assert_eq!(replay_all(&mut replay), expected);
    assert_eq!(replay.num_corrupt_segments(), 1);
    assert_eq!(replay.num_torn_bytes(), 0);
}

#[test]
fn a_full_log_refuses_until_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        max_bytes: 100,
        ..options(dir.path(), SyncMode::Os)
    };
    let (wal, _) = open(&options);
    let (first, ()) = wal.append(&[1u8; 42], |_| ()).unwrap();
    wal.append(&[2u8; 42], |_| ()).unwrap();
    let mut called = false;
    let refused = wal.append(&[3u8; 1], |_| called = true);
    assert!(matches!(
        refused,
        Err(WalError::Full {
            used_bytes: 100,
            max_bytes: 100
        })
    ));
    assert!(!called, "on_written is not called for a refused frame");
    assert!(wal.is_full());
    assert_eq!(wal.stats().num_frames_refused_full, 1);
    assert_eq!(wal.disk_bytes(), 100, "nothing was written");

    wal.checkpoint(first).unwrap();
    assert!(!wal.is_full());
    let (lsn, echoed) = wal.append(&[3u8; 42], |lsn| lsn).unwrap();
    assert_eq!((lsn, echoed), (Lsn(150), Lsn(150)));
    assert!(matches!(
        wal.append(&[0u8; 93], |_| ()),
        Err(WalError::FrameTooLarge {
            frame_bytes: 101,
            limit_bytes: 100
        })
    ));
}

#[test]
fn positions_beyond_the_end_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&options(dir.path(), SyncMode::Sync));
    let (lsn, ()) = wal.append(b"x", |_| ()).unwrap();
    assert!(matches!(
        wal.wait_durable(lsn.advance(1)),
        Err(WalError::LsnBeyondEnd { .. })
    ));
    assert!(matches!(
        wal.checkpoint(lsn.advance(1)),
        Err(WalError::LsnBeyondEnd { .. })
    ));
}

#[test]
fn concurrent_waiters_share_syncs() {
    const NUM_THREADS: usize = 32;
    const NUM_APPENDS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_bytes: 64 * 1024,
        max_bytes: 64 << 20,
        ..options(dir.path(), SyncMode::Sync)
    };
    let (wal, _) = open(&options);
    thread::scope(|scope| {
        for _ in 0..NUM_THREADS {
            scope.spawn(|| {
                for _ in 0..NUM_APPENDS {
                    let (lsn, ()) = wal.append(&[5u8; 1024], |_| ()).unwrap();
                    wal.wait_durable(lsn).unwrap();
                }
            });
        }
    });
    let stats = wal.stats();
    let num_frames = (NUM_THREADS * NUM_APPENDS) as u64;
    assert_eq!(stats.num_frames_appended, num_frames);
    assert_eq!(stats.num_sync_errors, 0);
    assert!(stats.num_syncs > 0);
    assert!(
        stats.num_syncs < num_frames / 4,
        "{} syncs",
        stats.num_syncs
    );
    assert_eq!(stats.group_size_sum, num_frames);
    assert_eq!(
        stats.sync_seconds_buckets.last().unwrap().1,
        stats.num_syncs
    );
    assert!(wal.num_segments() > 1, "rolls happened under load");
}

#[test]
fn os_mode_never_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&options(dir.path(), SyncMode::Os));
    for (lsn, _) in append_range(&wal, 0..20) {
        wal.wait_durable(lsn).unwrap();
    }
    assert_eq!(wal.stats().num_syncs, 0);
}

#[test]
fn a_failed_sync_is_never_reported_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&options(dir.path(), SyncMode::Sync));
    let (good, ()) = wal.append(b"good", |_| ()).unwrap();
    wal.wait_durable(good).unwrap();
    wal.core().syncer.fail_syncs.store(true, Ordering::Relaxed);
    let (lost, ()) = wal.append(b"lost", |_| ()).unwrap();
    assert!(matches!(wal.wait_durable(lost), Err(WalError::Io { .. })));
    wal.core().syncer.fail_syncs.store(false, Ordering::Relaxed);
    let (later, ()) = wal.append(b"later", |_| ()).unwrap();
    wal.wait_durable(later).unwrap();
    assert!(matches!(wal.wait_durable(lost), Err(WalError::Io { .. })));
    wal.wait_durable(good).unwrap();
    assert_eq!(wal.stats().num_sync_errors, 1);
}

#[test]
fn close_syncs_then_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), SyncMode::Os);
    let (wal, _) = open(&options);
    let written = append_range(&wal, 0..5);
    let clone = wal.clone();
    wal.close().unwrap();
    assert_eq!(wal.stats().num_syncs, 1, "close syncs even in Os mode");
    clone.close().unwrap();
    assert!(matches!(
        clone.append(b"late", |_| ()),
        Err(WalError::Closed)
    ));
    wal.wait_durable(written[4].0).unwrap();
    drop((wal, clone));
    let (_wal, mut replay) = open(&options);
    assert_eq!(replay_all(&mut replay), written);
}

#[test]
fn metrics_render_every_series() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&options(dir.path(), SyncMode::Sync));
    let (lsn, ()) = wal.append(b"x", |_| ()).unwrap();
    wal.wait_durable(lsn).unwrap();
    let mut out = String::new();
    render_prometheus(&wal, &mut out);
    assert!(out.contains("cartograph_wal_used_bytes 9\n"), "{out}");
    assert!(out.contains("cartograph_wal_syncs_total 1\n"), "{out}");
    assert!(
        out.contains("cartograph_wal_sync_group_frames_bucket{le=\"1\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("cartograph_wal_sync_seconds_bucket{le=\"+Inf\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("cartograph_wal_sync_seconds_count 1\n"),
        "{out}"
    );
}
