//! Everything that can go wrong with the write-ahead log.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(
        "write-ahead log is full ({used_bytes} of {max_bytes} bytes not yet stored); retry later"
    )]
    Full { used_bytes: u64, max_bytes: u64 },
    #[error("write-ahead log i/o at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("write-ahead log is closed")]
    Closed,
    /// The frame can never be appended: its payload exceeds the frame format's limit, or the
    /// frame alone exceeds `max_bytes`. Retrying does not help.
    #[error(
        "write-ahead log frame of {frame_bytes} bytes exceeds the limit of {limit_bytes} bytes"
    )]
    FrameTooLarge { frame_bytes: u64, limit_bytes: u64 },
    /// A caller passed a position the log has not reached: a bug in the caller.
    #[error("write-ahead log position {lsn} is beyond the end of the log ({end_lsn})")]
    LsnBeyondEnd { lsn: u64, end_lsn: u64 },
}

impl WalError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> WalError {
        WalError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
