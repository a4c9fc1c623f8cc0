//! The write-ahead log: every accepted export is appended here, and the exporter is answered
//! only once the frame is durable. It owns the files in its directory (segments `wal-{start
//! lsn:020}.log` and `checkpoint`) and nothing else; it knows nothing of what the payloads are.
//!
//! - Appends write a frame (`[u32 LE len][u32 LE crc32(len ++ payload)][payload]`) to the
//!   current segment under one lock; segments roll at `segment_bytes`.
//! - [`Wal::wait_durable`] waits for group commit: the `wal-sync` thread runs one
//!   `fdatasync` for every frame written while the previous one ran.
//! - [`Wal::checkpoint`] marks frames as stored elsewhere; they stop counting against
//!   `max_bytes`, and whole segments below the checkpoint are deleted.
//! - [`Wal::open`] replays the frames after the checkpoint, after cutting a torn tail (a crash
//!   mid-write) off the last segment so new frames follow valid ones.
//!
//! # What each sync mode loses
//!
//! | mode | kill -9 (process crash) | power loss or kernel crash |
//! |------|------------------------|-----------------------------|
//! | [`SyncMode::Sync`] | nothing written | nothing reported durable; frames not yet synced may be lost (their exporters were not answered) |
//! | [`SyncMode::Os`] | nothing written (the page cache outlives the process) | any frame the kernel had not yet written back, typically the last ~30 s, though its exporter was answered |
//!
//! In both modes a crash may leave a torn last frame, which the next open cuts off.

mod appender;
mod checkpoint;
mod error;
mod frame;
mod lsn;
mod metrics;
mod options;
mod replay;
mod segment;
mod stats;
mod sync;
mod writer;

#[cfg(test)]
mod tests;

pub use error::WalError;
pub use lsn::Lsn;
pub use metrics::render_prometheus;
pub use options::{SyncMode, WalOptions};
pub use replay::Replay;
pub use stats::WalStats;
pub use writer::Wal;
