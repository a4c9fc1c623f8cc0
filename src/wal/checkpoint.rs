//! The checkpoint file: the position up to which every frame is stored elsewhere, as
//! 8 bytes LE lsn + 4 bytes LE crc32 of them, replaced atomically (temp file + rename).
//!
//! It is not synced: a checkpoint lost in a crash only means replaying more frames.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::warn;

use super::{Lsn, WalError};

const FILE_NAME: &str = "checkpoint";
const TEMP_FILE_NAME: &str = "checkpoint.tmp";
const FILE_BYTES: usize = 12;

/// Least time between two rewrites of the file when no segment can be deleted.
const MIN_REWRITE_INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint in `dir`; `None` when the file is missing or corrupt (a warning is logged
/// for a corrupt one), which means replaying from the oldest segment.
pub(super) fn read(dir: &Path) -> Result<Option<Lsn>, WalError> {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(WalError::io(&path, err)),
    };
    match decode(&bytes) {
        Some(lsn) => Ok(Some(lsn)),
        None => {
            warn!(
                path = %path.display(),
                num_bytes = bytes.len(),
                "corrupt write-ahead log checkpoint, replaying from the oldest segment"
            );
            Ok(None)
        }
    }
}

fn encode(lsn: Lsn) -> [u8; FILE_BYTES] {
    let lsn_bytes = lsn.0.to_le_bytes();
    let mut bytes = [0u8; FILE_BYTES];
    bytes[..8].copy_from_slice(&lsn_bytes);
    bytes[8..].copy_from_slice(&crc32fast::hash(&lsn_bytes).to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<Lsn> {
    let bytes: &[u8; FILE_BYTES] = bytes.try_into().ok()?;
    let (lsn_bytes, crc_bytes) = bytes.split_at(8);
    let crc = u32::from_le_bytes(crc_bytes.try_into().ok()?);
    if crc32fast::hash(lsn_bytes) != crc {
        return None;
    }
    Some(Lsn(u64::from_le_bytes(lsn_bytes.try_into().ok()?)))
}

/// Writes the checkpoint file, no more often than needed.
#[derive(Debug)]
pub(super) struct CheckpointFile {
    dir: PathBuf,
    persisted: Lsn,
    last_written: Option<Instant>,
}

impl CheckpointFile {
    /// `persisted` is what the file already holds (or the log's start when it has none).
    pub fn new(dir: &Path, persisted: Lsn) -> CheckpointFile {
        CheckpointFile {
            dir: dir.to_path_buf(),
            persisted,
            last_written: None,
        }
    }

    /// Whether `lsn` should be written now: it is newer than the file, and either `urgent`
    /// (segments are about to be deleted, or the log closes) or the file is old enough.
    pub fn is_due(&self, lsn: Lsn, urgent: bool) -> bool {
        lsn > self.persisted
            && (urgent
                || self
                    .last_written
                    .is_none_or(|at| at.elapsed() >= MIN_REWRITE_INTERVAL))
    }

    pub fn write(&mut self, lsn: Lsn) -> Result<(), WalError> {
        let temp_path = self.dir.join(TEMP_FILE_NAME);
        fs::write(&temp_path, encode(lsn)).map_err(|err| WalError::io(&temp_path, err))?;
        let path = self.dir.join(FILE_NAME);
        fs::rename(&temp_path, &path).map_err(|err| WalError::io(&path, err))?;
        self.persisted = lsn;
        self.last_written = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let mut file = CheckpointFile::new(dir.path(), Lsn(0));
        assert!(file.is_due(Lsn(7), false));
        file.write(Lsn(7)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(Lsn(7)));
        assert!(!file.is_due(Lsn(7), true));
        assert!(!file.is_due(Lsn(8), false), "rewrites are throttled");
        assert!(file.is_due(Lsn(8), true));

        let mut bytes = fs::read(dir.path().join(FILE_NAME)).unwrap();
        bytes[0] ^= 1;
        fs::write(dir.path().join(FILE_NAME), &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        fs::write(dir.path().join(FILE_NAME), b"short").unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }
}
