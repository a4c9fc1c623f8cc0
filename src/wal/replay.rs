//! Recovery at open: reading the checkpoint, cutting a torn tail off the last segment,
//! deleting segments the checkpoint has passed, and streaming the frames after it.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Take};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::frame::{self, ReadOutcome};
use super::segment::{self, SealedSegment, SegmentFile};
use super::{Lsn, SyncMode, WalError, checkpoint};

const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What the log looks like after recovery, for the writer to continue from.
#[derive(Debug)]
pub(super) struct Recovered {
    pub replay: Replay,
    /// Segments kept on disk before the active one, oldest first.
    pub sealed: Vec<SealedSegment>,
    /// The segment new frames go to, already cut to its valid frames; `None`: start a new
    /// segment at `end`.
    pub active: Option<SegmentFile>,
    /// Everything up to here is stored elsewhere; bytes after it count as used.
    pub checkpoint: Lsn,
    /// Where new frames start.
    pub end: Lsn,
}

/// Recovers the log in `dir` (creating the directory if missing).
pub(super) fn recover(dir: &Path, sync: SyncMode) -> Result<Recovered, WalError> {
    fs::create_dir_all(dir).map_err(|err| WalError::io(dir, err))?;
    let checkpoint_opt = checkpoint::read(dir)?;
    let mut files = segment::list_segments(dir)?;
    let mut num_torn_bytes = 0;
    if let Some(last) = files.last_mut() {
        num_torn_bytes = truncate_torn_tail(last, sync)?;
    }
    let valid_end = files
        .last()
        .map_or(Lsn(0), |last| last.start.advance(last.len_bytes));
    let oldest = files.first().map_or(valid_end, |first| first.start);
    let checkpoint = checkpoint_opt.unwrap_or(oldest).max(oldest);
    let active = if checkpoint <= valid_end {
        files.pop()
    } else {
        // Frames the checkpoint covers were lost (e.g. Os mode and a power loss): new frames
        // must still come after the checkpoint, or the next replay would skip them.
        warn!(
            %checkpoint,
            end = %valid_end,
            "write-ahead log checkpoint is beyond the end of the log, starting a new segment there"
        );
        None
    };
    let end = valid_end.max(checkpoint);
    let (obsolete, sealed) = seal(files, active.as_ref(), checkpoint);
    segment::delete_segments(dir, &obsolete, sync)?;

    let mut segments: VecDeque<ReplaySegment> = sealed
        .iter()
        .map(|sealed| ReplaySegment {
            start: sealed.start,
            path: sealed.path.clone(),
            limit_bytes: sealed.end.bytes_since(sealed.start),
            is_last: false,
        })
        .collect();
    segments.extend(active.iter().map(|active| ReplaySegment {
        start: active.start,
        path: active.path.clone(),
        limit_bytes: active.len_bytes,
        is_last: true,
    }));
    let replay = Replay {
        segments,
        current: None,
        checkpoint,
        end,
        num_torn_bytes,
        num_corrupt_segments: 0,
    };
    Ok(Recovered {
        replay,
        sealed,
        active,
        checkpoint,
        end,
    })
}

/// Turns the files before the active segment into sealed segments, split into those the
/// checkpoint has passed entirely (to delete) and those to keep.
fn seal(
    files: Vec<SegmentFile>,
    active: Option<&SegmentFile>,
    checkpoint: Lsn,
) -> (Vec<SealedSegment>, Vec<SealedSegment>) {
    let next_starts: Vec<Lsn> = files
        .iter()
        .skip(1)
        .map(|file| file.start)
        .chain(active.map(|active| active.start))
        .collect();
    let sealed = files.into_iter().enumerate().map(|(index, file)| {
        let end = next_starts
            .get(index)
            .copied()
            .unwrap_or(file.start.advance(file.len_bytes));
        SealedSegment {
            start: file.start,
            end,
            path: file.path,
            len_bytes: file.len_bytes,
        }
    });
    sealed.partition(|sealed| sealed.end <= checkpoint)
}

/// Cuts everything after the last valid frame off the segment; returns the bytes cut.
fn truncate_torn_tail(last: &mut SegmentFile, sync: SyncMode) -> Result<u64, WalError> {
    let path = &last.path;
    let file = File::open(path).map_err(|err| WalError::io(path, err))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut valid_bytes = 0;
    let invalid = loop {
        let available_bytes = last.len_bytes - valid_bytes;
        match frame::read_frame(&mut reader, available_bytes)
            .map_err(|err| WalError::io(path, err))?
        {
            ReadOutcome::Frame(payload) => valid_bytes += frame::frame_bytes(payload.len() as u64),
            ReadOutcome::End => return Ok(0),
            ReadOutcome::Invalid(invalid) => break invalid,
        }
    };
    let num_torn_bytes = last.len_bytes - valid_bytes;
    warn!(
        path = %path.display(),
        num_torn_bytes,
        offset = valid_bytes,
        reason = %invalid,
        "truncating a torn write-ahead log tail"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|err| WalError::io(path, err))?;
    file.set_len(valid_bytes)
        .map_err(|err| WalError::io(path, err))?;
    if sync == SyncMode::Sync {
        file.sync_data().map_err(|err| WalError::io(path, err))?;
    }
    last.len_bytes = valid_bytes;
    Ok(num_torn_bytes)
}

#[derive(Debug)]
struct ReplaySegment {
    start: Lsn,
    path: PathBuf,
    /// Bytes of this segment that belong to the log as found at open.
    limit_bytes: u64,
    /// The active segment: new frames appended after open must not be replayed.
    is_last: bool,
}

#[derive(Debug)]
struct OpenReplaySegment {
    segment: ReplaySegment,
    reader: BufReader<Take<File>>,
    offset: u64,
    readable_bytes: u64,
}

/// Frames found after the checkpoint at open, read one at a time (never the whole log at
/// once). Reading does not block appends, and frames appended after open are not included.
#[derive(Debug)]
pub struct Replay {
    segments: VecDeque<ReplaySegment>,
    current: Option<OpenReplaySegment>,
    checkpoint: Lsn,
    end: Lsn,
    num_torn_bytes: u64,
    num_corrupt_segments: u64,
}

impl Replay {
    /// The next frame (its end Lsn and payload), in log order; `None` at the end.
    ///
    /// A torn or corrupt tail of the last segment was already cut off at open. A corrupt
    /// frame in an earlier segment ends that segment: the rest of it is skipped, counted in
    /// [`Replay::num_corrupt_segments`] and logged, and replay goes on with the next one.
    pub fn next_frame(&mut self) -> Result<Option<(Lsn, Vec<u8>)>, WalError> {
        loop {
            let Some(current) = self.current.as_mut() else {
                let Some(segment) = self.segments.pop_front() else {
                    return Ok(None);
                };
                self.current = Some(open_segment(segment)?);
                continue;
            };
            let available_bytes = current.readable_bytes - current.offset;
            let outcome = frame::read_frame(&mut current.reader, available_bytes)
                .map_err(|err| WalError::io(&current.segment.path, err))?;
            let reason = match outcome {
                ReadOutcome::Frame(payload) => {
                    current.offset += frame::frame_bytes(payload.len() as u64);
                    let lsn = current.segment.start.advance(current.offset);
                    if lsn <= self.checkpoint {
                        continue;
                    }
                    return Ok(Some((lsn, payload)));
                }
                ReadOutcome::End if current.offset == current.segment.limit_bytes => {
                    self.current = None;
                    continue;
                }
                ReadOutcome::End => format!(
                    "segment ends {} bytes early",
                    current.segment.limit_bytes - current.offset
                ),
                ReadOutcome::Invalid(invalid) => invalid.to_string(),
            };
            self.skip_corrupt_rest(&reason);
        }
    }

    fn skip_corrupt_rest(&mut self, reason: &str) {
        let Some(current) = self.current.take() else {
            return;
        };
        warn!(
            path = %current.segment.path.display(),
            offset = current.offset,
            reason,
            "skipping the rest of a corrupt write-ahead log segment"
        );
        self.num_corrupt_segments += 1;
        if current.segment.is_last {
            // Only if the file changed behind our back: the tail was validated at open.
            self.segments.clear();
        }
    }

    /// End of the valid log at open: where new appends start.
    pub fn end(&self) -> Lsn {
        self.end
    }

    /// Bytes cut off the tail of the last segment at open (a crash mid-write).
    pub fn num_torn_bytes(&self) -> u64 {
        self.num_torn_bytes
    }

    /// Segments found corrupt so far; final once [`Replay::next_frame`] has returned `None`.
    pub fn num_corrupt_segments(&self) -> u64 {
        self.num_corrupt_segments
    }
}

fn open_segment(segment: ReplaySegment) -> Result<OpenReplaySegment, WalError> {
    let file = File::open(&segment.path).map_err(|err| WalError::io(&segment.path, err))?;
    let len_bytes = file
        .metadata()
        .map_err(|err| WalError::io(&segment.path, err))?
        .len();
    let readable_bytes = len_bytes.min(segment.limit_bytes);
    let reader = BufReader::with_capacity(READ_BUFFER_BYTES, file.take(readable_bytes));
    Ok(OpenReplaySegment {
        segment,
        reader,
        offset: 0,
        readable_bytes,
    })
}
