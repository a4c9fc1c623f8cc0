//! Segment files: naming (`wal-{start_lsn:020}.log`), listing, creating, and the directory
//! syncs that make their creation and deletion durable. Nothing here reads frames.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{Lsn, SyncMode, WalError};

const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";
const START_DIGITS: usize = 20;

/// A segment file found on disk.
#[derive(Debug, Clone)]
pub(super) struct SegmentFile {
    pub start: Lsn,
    pub path: PathBuf,
    pub len_bytes: u64,
}

/// A segment that is no longer written to, oldest first in the log's list of segments.
#[derive(Debug, Clone)]
pub(super) struct SealedSegment {
    pub start: Lsn,
    /// The start of the next segment: every frame of this one lies below it.
    pub end: Lsn,
    pub path: PathBuf,
    /// Size of the file on disk.
    pub len_bytes: u64,
}

/// An open segment file, shared between the appender and the sync thread.
#[derive(Debug)]
pub(super) struct SegmentHandle {
    pub path: PathBuf,
    pub file: File,
}

impl SegmentHandle {
    pub fn sync_data(&self) -> Result<(), WalError> {
        self.file
            .sync_data()
            .map_err(|err| WalError::io(&self.path, err))
    }
}

pub(super) fn segment_path(dir: &Path, start: Lsn) -> PathBuf {
    dir.join(format!(
        "{PREFIX}{:0width$}{SUFFIX}",
        start.0,
        width = START_DIGITS
    ))
}

fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != START_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

/// Every segment file in `dir`, ordered by start. Other files are ignored.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, WalError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(|err| WalError::io(dir, err))? {
        let entry = entry.map_err(|err| WalError::io(dir, err))?;
        let Some(start) = entry.file_name().to_str().and_then(parse_segment_name) else {
            continue;
        };
        let path = entry.path();
        let metadata = entry.metadata().map_err(|err| WalError::io(&path, err))?;
        if !metadata.is_file() {
            continue;
        }
        segments.push(SegmentFile {
            start,
            path,
            len_bytes: metadata.len(),
        });
    }
    segments.sort_by_key(|segment| segment.start);
    Ok(segments)
}

/// Creates the segment starting at `start`. An empty file of that name (left by a creation
/// whose directory sync failed) is reused; one holding data is an error. In Sync mode the
/// directory is synced so that the file survives a power loss with the frames synced into it.
pub(super) fn create_segment(
    dir: &Path,
    start: Lsn,
    sync: SyncMode,
) -> Result<SegmentHandle, WalError> {
    let path = segment_path(dir, start);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|err| WalError::io(&path, err))?;
    let len_bytes = file
        .metadata()
        .map_err(|err| WalError::io(&path, err))?
        .len();
    if len_bytes > 0 {
        let err = io::Error::new(
            io::ErrorKind::AlreadyExists,
            "segment file already holds data",
        );
        return Err(WalError::io(&path, err));
    }
    if sync == SyncMode::Sync {
        sync_dir(dir)?;
    }
    Ok(SegmentHandle { path, file })
}

/// Opens an existing segment for appending at its end.
pub(super) fn open_for_append(path: &Path) -> Result<SegmentHandle, WalError> {
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|err| WalError::io(path, err))?;
    Ok(SegmentHandle {
        path: path.to_path_buf(),
        file,
    })
}

/// Deletes sealed segments; a file already gone counts as deleted. In Sync mode the directory
/// is synced afterwards.
pub(super) fn delete_segments(
    dir: &Path,
    segments: &[SealedSegment],
    sync: SyncMode,
) -> Result<(), WalError> {
    if segments.is_empty() {
        return Ok(());
    }
    for segment in segments {
        match fs::remove_file(&segment.path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(WalError::io(&segment.path, err)),
        }
    }
    if sync == SyncMode::Sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the directory's entries (created, renamed, deleted files) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| WalError::io(dir, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let path = segment_path(Path::new("/x"), Lsn(42));
        assert_eq!(path, Path::new("/x/wal-00000000000000000042.log"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_segment_name(name), Some(Lsn(42)));
        assert_eq!(parse_segment_name("wal-42.log"), None);
        assert_eq!(parse_segment_name("wal-0000000000000000004x.log"), None);
        assert_eq!(parse_segment_name("checkpoint"), None);
    }
}
