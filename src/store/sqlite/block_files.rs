//! Where span block bodies live: one append-only file per part (`blocks/p{part}.blk` in the
//! data directory), or process memory for the in-memory store. SQLite keeps only each block's
//! offset, length and metadata, so the bulk of the data is written once, never through
//! SQLite's WAL and checkpoints, and dropping a part gives its disk space back at once.
//!
//! The writer appends and syncs before the transaction that references the new blocks
//! commits; readers read committed ranges only. Bytes appended by a transaction that did not
//! commit are never referenced and go when their part goes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::store::StoreError;

const DIR_NAME: &str = "blocks";

/// Blocks written and parts sealed since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct BlockCounters {
    pub num_blocks_written: AtomicU64,
    pub num_block_bytes_written: AtomicU64,
    pub num_parts_sealed: AtomicU64,
}

impl BlockCounters {
    pub(super) fn record_block(&self, num_bytes: u64) {
        self.num_blocks_written.fetch_add(1, Ordering::Relaxed);
        self.num_block_bytes_written
            .fetch_add(num_bytes, Ordering::Relaxed);
    }

    pub(super) fn record_sealed(&self) {
        self.num_parts_sealed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Block bodies of every part; shared by the writer and the readers of one store.
#[derive(Debug)]
pub(super) enum BlockFiles {
    Dir {
        dir: PathBuf,
        open: Mutex<HashMap<i64, Arc<File>>>,
        /// Parts appended to since the last sync.
        unsynced: Mutex<Vec<i64>>,
    },
    Memory(RwLock<HashMap<i64, Vec<u8>>>),
}

impl BlockFiles {
    /// Block files under `data_dir/blocks` (created if missing).
    pub(super) fn in_dir(data_dir: &std::path::Path) -> Result<Self, StoreError> {
        let dir = data_dir.join(DIR_NAME);
        std::fs::create_dir_all(&dir).map_err(|err| io_error(&dir, &err))?;
        Ok(BlockFiles::Dir {
            dir,
            open: Mutex::new(HashMap::new()),
            unsynced: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn in_memory() -> Self {
        BlockFiles::Memory(RwLock::new(HashMap::new()))
    }

    /// Appends `body` to `part`'s file; returns its offset.
    pub(super) fn append(&self, part: i64, body: &[u8]) -> Result<u64, StoreError> {
        match self {
            BlockFiles::Dir { unsynced, .. } => {
                let file = self.writable(part)?;
                let offset = file
                    .metadata()
                    .map_err(|err| io_error(&self.path(part), &err))?
                    .len();
                (&*file)
                    .write_all(body)
                    .map_err(|err| io_error(&self.path(part), &err))?;
                let mut unsynced = unsynced.lock().unwrap_or_else(PoisonError::into_inner);
                if !unsynced.contains(&part) {
                    unsynced.push(part);
                }
                Ok(offset)
            }
            BlockFiles::Memory(parts) => {
                let mut parts = parts.write().unwrap_or_else(PoisonError::into_inner);
                let bytes = parts.entry(part).or_default();
                let offset = bytes.len() as u64;
                bytes.extend_from_slice(body);
                Ok(offset)
            }
        }
    }

    /// Makes every append so far durable (fdatasync); call before the commit referencing it.
    pub(super) fn sync(&self) -> Result<(), StoreError> {
        let BlockFiles::Dir { unsynced, .. } = self else {
            return Ok(());
        };
        let parts: Vec<i64> =
            std::mem::take(&mut *unsynced.lock().unwrap_or_else(PoisonError::into_inner));
        for part in parts {
            self.writable(part)?
                .sync_data()
                .map_err(|err| io_error(&self.path(part), &err))?;
        }
        Ok(())
    }

    /// The `len` bytes at `offset` of `part`; `None` when the part's file is gone (retention
    /// dropped it after the caller's snapshot began).
    pub(super) fn read(
        &self,
        part: i64,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            BlockFiles::Dir { open, .. } => {
                let cached = open
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&part)
                    .cloned();
                let file = match cached {
                    Some(file) => file,
                    None => match File::open(self.path(part)) {
                        Ok(file) => Arc::new(file),
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                        Err(err) => return Err(io_error(&self.path(part), &err)),
                    },
                };
                let mut body = vec![0; len];
                file.read_exact_at(&mut body, offset)
                    .map_err(|err| io_error(&self.path(part), &err))?;
                Ok(Some(body))
            }
            BlockFiles::Memory(parts) => {
                let parts = parts.read().unwrap_or_else(PoisonError::into_inner);
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let Some(bytes) = parts.get(&part) else {
                    return Ok(None);
                };
                bytes
                    .get(start..start.saturating_add(len))
                    .map(|body| Some(body.to_vec()))
                    .ok_or_else(|| StoreError::Corrupt(format!("block outside part {part}")))
            }
        }
    }

    /// Deletes `part`'s bodies; call after the commit that dropped the part.
    pub(super) fn remove(&self, part: i64) -> Result<(), StoreError> {
        match self {
            BlockFiles::Dir { open, .. } => {
                open.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&part);
                let path = self.path(part);
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(err) => Err(io_error(&path, &err)),
                }
            }
            BlockFiles::Memory(parts) => {
                parts
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&part);
                Ok(())
            }
        }
    }

    /// Removes files of parts the catalogue does not list (left by a crash between a part's
    /// drop and its file's removal, or by a part whose creation rolled back).
    pub(super) fn remove_all_but(&self, known: &[i64]) -> Result<(), StoreError> {
        let BlockFiles::Dir { dir, .. } = self else {
            return Ok(());
        };
        let entries = std::fs::read_dir(dir).map_err(|err| io_error(dir, &err))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let part_opt = name
                .to_str()
                .and_then(|name| name.strip_prefix('p')?.strip_suffix(".blk")?.parse().ok());
            if let Some(part) = part_opt
                && !known.contains(&part)
            {
                self.remove(part)?;
            }
        }
        Ok(())
    }

    /// Bytes held in memory (the file-backed kind is counted with the data directory).
    pub(super) fn memory_bytes(&self) -> u64 {
        match self {
            BlockFiles::Dir { .. } => 0,
            BlockFiles::Memory(parts) => parts
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .map(|bytes| bytes.len() as u64)
                .sum(),
        }
    }

    fn path(&self, part: i64) -> PathBuf {
        match self {
            BlockFiles::Dir { dir, .. } => dir.join(format!("p{part}.blk")),
            BlockFiles::Memory(_) => PathBuf::new(),
        }
    }

    /// The writer's handle of `part`'s file, created if missing.
    fn writable(&self, part: i64) -> Result<Arc<File>, StoreError> {
        let BlockFiles::Dir { open, .. } = self else {
            return Err(StoreError::Corrupt("no block files in memory".to_owned()));
        };
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = open.get(&part) {
            return Ok(Arc::clone(file));
        }
        let path = self.path(part);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|err| io_error(&path, &err))?;
        let file = Arc::new(file);
        open.insert(part, Arc::clone(&file));
        Ok(file)
    }
}

fn io_error(path: &std::path::Path, err: &std::io::Error) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason: err.to_string(),
    }
}
