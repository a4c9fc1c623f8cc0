//! How a log is opened: where, how durable, how large.

use std::path::PathBuf;

/// When an appended frame counts as durable. See the module docs for what each mode loses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// `fdatasync` before a frame counts as durable; survives kill -9 and power loss.
    #[default]
    Sync,
    /// Never `fdatasync` (except at close): frames sit in the page cache, so they survive
    /// kill -9 but not power loss or a kernel crash.
    Os,
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Directory of the segment files and the checkpoint; created if missing.
    pub dir: PathBuf,
    pub sync: SyncMode,
    /// Most bytes written but not yet checkpointed; appends beyond are refused with `Full`.
    pub max_bytes: u64,
    /// A segment file is closed and a new one started before it would grow past this size
    /// (a frame larger than this gets a segment to itself).
    pub segment_bytes: u64,
}
