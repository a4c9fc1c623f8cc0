//! The append side under the append lock: the current segment, writing frames with plain
//! `write_all` (no userspace buffer that could hold a frame back from a sync), undoing a
//! failed write, and rolling to a new segment.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use tracing::error;

use super::segment::{self, SealedSegment, SegmentHandle};
use super::sync::SyncSnapshot;
use super::{Lsn, SyncMode, WalError};

#[derive(Debug)]
pub(super) struct Appender {
    current: Arc<SegmentHandle>,
    segment_start: Lsn,
    segment_len_bytes: u64,
    end: Lsn,
    num_frames: u64,
    /// Segments rolled out since the last sync round, oldest first (Sync mode only).
    unsynced: Vec<Arc<SegmentHandle>>,
    pub closed: bool,
    /// A failed write could not be undone: appending after its bytes would corrupt the log.
    broken: bool,
}

impl Appender {
    /// Continues `current`, which starts at `segment_start` and holds `segment_len_bytes`.
    pub fn new(current: SegmentHandle, segment_start: Lsn, segment_len_bytes: u64) -> Appender {
        Appender {
            current: Arc::new(current),
            segment_start,
            segment_len_bytes,
            end: segment_start.advance(segment_len_bytes),
            num_frames: 0,
            unsynced: Vec::new(),
            closed: false,
            broken: false,
        }
    }

    /// End of the last frame written.
    pub fn end(&self) -> Lsn {
        self.end
    }

    /// Whether a frame of `frame_bytes` must go to a new segment: it would grow a non-empty
    /// segment past `segment_bytes`.
    pub fn needs_roll(&self, frame_bytes: u64, segment_bytes: u64) -> bool {
        self.segment_len_bytes > 0 && self.segment_len_bytes + frame_bytes > segment_bytes
    }

    /// Starts a new segment at the current end; returns the one it replaces, now sealed.
    pub fn roll(&mut self, dir: &Path, sync: SyncMode) -> Result<SealedSegment, WalError> {
        let start = self.end;
        let next = Arc::new(segment::create_segment(dir, start, sync)?);
        let previous = std::mem::replace(&mut self.current, next);
        let sealed = SealedSegment {
            start: self.segment_start,
            end: start,
            path: previous.path.clone(),
            len_bytes: self.segment_len_bytes,
        };
        if sync == SyncMode::Sync {
            self.unsynced.push(previous);
        }
        self.segment_start = start;
        self.segment_len_bytes = 0;
        Ok(sealed)
    }

    /// Writes one encoded frame; returns its end. On failure the segment is cut back to its
    /// previous length so that later frames still follow valid ones.
    pub fn write_frame(&mut self, frame: &[u8]) -> Result<Lsn, WalError> {
        let path = &self.current.path;
        if self.broken {
            let err = io::Error::other("an earlier failed write could not be undone");
            return Err(WalError::io(path, err));
        }
        if let Err(err) = (&self.current.file).write_all(frame) {
            // The file is in append mode: after the cut, the next write lands at the new end.
            if let Err(undo_err) = self.current.file.set_len(self.segment_len_bytes) {
                error!(
                    path = %path.display(),
                    error = %undo_err,
                    "failed to undo a partial write-ahead log write, refusing further appends"
                );
                self.broken = true;
            }
            return Err(WalError::io(path, err));
        }
        let frame_bytes = frame.len() as u64;
        self.segment_len_bytes += frame_bytes;
        self.end = self.end.advance(frame_bytes);
        self.num_frames += 1;
        Ok(self.end)
    }

    /// What the next sync round must cover: the segments rolled out since the last round
    /// (handed over to it) and the current one.
    pub fn take_sync_snapshot(&mut self) -> SyncSnapshot {
        let mut files = std::mem::take(&mut self.unsynced);
        files.push(Arc::clone(&self.current));
        SyncSnapshot {
            end: self.end,
            num_frames: self.num_frames,
            files,
        }
    }
}
