//! Span blocks on the write side: a batch's spans, split by start hour, sorted by trace id,
//! cut into blocks of at most [`BLOCK_MAX_SPANS`] (a trace stays in one block unless it alone
//! is larger), each compressed with zstd, appended to the hour's current part and described
//! by one row with a membership filter of its trace and attribute keys. The exact index
//! entries of a part being written are kept here and written in key order when the part is
//! sealed (see [`super::parts`]); a part left unsealed by a crash is indexed from its blocks.
//!
//! Spans re-sent with the same `(trace_id, span_id)` within one batch are stored once; across
//! batches readers keep the first stored copy, so writes stay idempotent without a lookup per
//! span on the write path.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use crate::model::Span;
use crate::store::StoreError;
use crate::store::batch_codec;

use super::block_files::{BlockCounters, BlockFiles};
use super::block_read::decompress;
use super::codec::{put_str, put_varint};
use super::filter;
use super::parts::{self, PartInfo, attr_key, trace_key};
use super::schema::{by_hour, hour_of};
use super::sql_values::nanos_to_sql;
use crate::store::batch_codec::{EncodedFrame, all_spans_of_sections};
use crate::store::block_meta::BlockMeta;

/// Most spans in one block: big enough for zstd to find the repetition between spans, small
/// enough that a trace lookup decompresses little.
pub(super) const BLOCK_MAX_SPANS: usize = 4096;
const ZSTD_LEVEL: i32 = 3;
/// Size a part grows to before the next one is started, until retention sets it from the
/// size budget.
const DEFAULT_PART_TARGET_BYTES: u64 = 64 * 1024 * 1024;
const MIN_PART_TARGET_BYTES: u64 = 512 * 1024;
/// A part still being written is searched through its blocks' filters: kept small.
const MAX_PART_TARGET_BYTES: u64 = 64 * 1024 * 1024;
/// Parts per size budget: retention by size drops about this fraction at a time.
const PARTS_PER_BUDGET: u64 = 24;

/// The writer's view of the parts: the current (newest) part of every hour.
pub(super) struct BlockWriter {
    compressor: zstd::bulk::Compressor<'static>,
    raw: Vec<u8>,
    current: HashMap<i64, PartInfo>,
    next_part: i64,
    part_target_bytes: u64,
    /// Keys new parts index.
    indexed_keys: Vec<String>,
    pub(super) files: Arc<BlockFiles>,
    counters: Arc<BlockCounters>,
    /// Exact index entries of the unsealed parts this process created, by part.
    pending: HashMap<i64, PendingIndex>,
}

/// Index entries of an unsealed part, written in key order when it is sealed.
#[derive(Default)]
struct PendingIndex {
    /// Whether these are all of the part's entries (it was created by this process); if not,
    /// sealing recomputes them from the blocks.
    complete: bool,
    /// `(trace key, block id)`.
    traces: Vec<(i64, i64)>,
    /// `(key number, attribute key, block id)`.
    attrs: Vec<(i64, i64, i64)>,
}

impl BlockWriter {
    pub(super) fn new(
        conn: &Connection,
        indexed_keys: &[String],
        files: Arc<BlockFiles>,
        counters: Arc<BlockCounters>,
    ) -> Result<Self, StoreError> {
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|err| StoreError::Corrupt(format!("cannot start zstd: {err}")))?;
        let mut writer = Self {
            compressor,
            raw: Vec::new(),
            current: HashMap::new(),
            next_part: 0,
            part_target_bytes: DEFAULT_PART_TARGET_BYTES,
            indexed_keys: super::unique_keys(indexed_keys),
            files,
            counters,
            pending: HashMap::new(),
        };
        writer.reload(conn)?;
        let known: Vec<i64> = parts::load(conn)?.iter().map(|part| part.part).collect();
        writer.files.remove_all_but(&known)?;
        Ok(writer)
    }

    /// Rereads the catalogue: after a rollback, and after retention dropped parts.
    pub(super) fn reload(&mut self, conn: &Connection) -> Result<(), StoreError> {
        self.current.clear();
        self.next_part = 0;
        let all = parts::load(conn)?;
        for info in &all {
            self.next_part = self.next_part.max(info.part + 1);
            self.current.insert(info.hour, info.clone());
        }
        // Entries of dropped or sealed parts go; those of blocks a rollback undid stay as
        // harmless false positives (readers check every span they find).
        self.pending
            .retain(|part, _| all.iter().any(|info| info.part == *part && !info.sealed));
        Ok(())
    }

    /// Sizes parts so that retention by size drops about 1/[`PARTS_PER_BUDGET`] at a time.
    pub(super) fn set_size_budget(&mut self, max_size_bytes: u64) {
        self.part_target_bytes =
            (max_size_bytes / PARTS_PER_BUDGET).clamp(MIN_PART_TARGET_BYTES, MAX_PART_TARGET_BYTES);
    }

    /// Stores `spans` as blocks in the caller's transaction.
    pub(super) fn write_spans(
        &mut self,
        conn: &Connection,
        spans: &[Span],
    ) -> Result<(), StoreError> {
        for (hour, mut indexes) in by_hour(spans, |span| hour_of(span.start_time_unix_nano)) {
            let id_of = |index: &usize| (spans[*index].trace_id, spans[*index].span_id);
            // Stable: the first copy of a re-sent span stays first and is the one kept.
            indexes.sort_by_key(id_of);
            indexes.dedup_by_key(|index| id_of(index));
            let sorted: Vec<&Span> = indexes.iter().map(|index| &spans[*index]).collect();
            for block in cut_blocks(&sorted) {
                self.write_block(conn, hour, block)?;
            }
        }
        Ok(())
    }

    /// Stores spans already encoded by the ingest threads: each frame's span section as it
    /// is, sections of the same hour concatenated into blocks of about [`BLOCK_MAX_SPANS`].
    pub(super) fn write_frames(
        &mut self,
        conn: &Connection,
        frames: &[&EncodedFrame],
    ) -> Result<(), StoreError> {
        for (hour, indexes) in by_hour(frames, |frame| hour_of(frame.meta.min_start_nanos)) {
            let mut raw = Vec::new();
            let mut meta = BlockMeta::default();
            for index in indexes {
                let frame = frames[index];
                if frame.meta.num_spans == 0 {
                    continue;
                }
                raw.extend_from_slice(frame.section());
                if frame.indexed_keys[..] == self.indexed_keys[..] {
                    meta.merge(&frame.meta);
                } else {
                    // Encoded for other keys than this store indexes: recomputed here.
                    meta.merge(&meta_of_sections(frame.section(), &self.indexed_keys)?);
                }
                if meta.num_spans >= BLOCK_MAX_SPANS {
                    self.store_block(conn, hour, &raw, &meta)?;
                    raw.clear();
                    meta = BlockMeta::default();
                }
            }
            if meta.num_spans > 0 {
                self.store_block(conn, hour, &raw, &meta)?;
            }
        }
        Ok(())
    }

    /// Writes spans of one hour (sorted by trace id) as one block of that hour's current part.
    pub(super) fn write_block(
        &mut self,
        conn: &Connection,
        hour: i64,
        spans: &[&Span],
    ) -> Result<(), StoreError> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        batch_codec::encode_spans(&mut raw, spans);
        let meta = BlockMeta::of(spans, &self.indexed_keys);
        let result = self.store_block(conn, hour, &raw, &meta);
        self.raw = raw;
        result
    }

    /// Compresses `raw` (span sections back to back), appends it to `hour`'s current part and
    /// describes it by a row and, later, index entries.
    fn store_block(
        &mut self,
        conn: &Connection,
        hour: i64,
        raw: &[u8],
        meta: &BlockMeta,
    ) -> Result<(), StoreError> {
        let body = self
            .compressor
            .compress(raw)
            .map_err(|err| StoreError::Corrupt(format!("zstd compression failed: {err}")))?;
        let part = self.part_for(conn, hour)?;
        let trace_keys: Vec<i64> = meta.trace_ids.iter().map(|id| trace_key(*id)).collect();
        let attr_keys = attr_keys_of(meta, &part.indexed_keys);
        // Bit reinterpretations: the filter takes any 64 bits.
        let filter_keys: Vec<u64> = trace_keys
            .iter()
            .map(|key| *key as u64)
            .chain(attr_keys.iter().map(|(_, key)| *key as u64))
            .collect();
        let block_filter = filter::build(&filter_keys);
        let offset = self.files.append(part.part, &body)?;
        self.counters.record_block(body.len() as u64);
        let mut insert = conn.prepare_cached(&format!(
            "INSERT INTO {} (min_start, max_start, num_spans, num_errors, max_duration, services, \
             filter, offset, length) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            part.blocks_table()
        ))?;
        insert.execute((
            nanos_to_sql(meta.min_start_nanos),
            nanos_to_sql(meta.max_start_nanos),
            i64::try_from(meta.num_spans).unwrap_or(i64::MAX),
            i64::try_from(meta.num_errors).unwrap_or(i64::MAX),
            nanos_to_sql(meta.max_duration_nanos),
            encode_services(meta),
            &block_filter,
            i64::try_from(offset).unwrap_or(i64::MAX),
            body.len() as i64,
        ))?;
        let block_id = conn.last_insert_rowid();
        let entries = PendingIndex {
            complete: true,
            traces: trace_keys.iter().map(|key| (*key, block_id)).collect(),
            attrs: attr_keys
                .iter()
                .map(|(key_no, key)| (*key_no, *key, block_id))
                .collect(),
        };
        if part.sealed {
            // Late data for a sealed part: few rows, written at once.
            insert_index(conn, &part, entries)?;
        } else {
            let pending = self.pending.entry(part.part).or_default();
            pending.traces.extend(entries.traces);
            pending.attrs.extend(entries.attrs);
        }
        let part = self
            .current
            .get_mut(&hour)
            .ok_or_else(|| StoreError::Corrupt("current part vanished".to_owned()))?;
        part.num_spans += meta.num_spans as u64;
        part.num_bytes += body.len() as u64;
        part.min_start_nanos = part.min_start_nanos.min(meta.min_start_nanos);
        part.max_start_nanos = part.max_start_nanos.max(meta.max_start_nanos);
        parts::save(conn, part)
    }

    /// The part new blocks of `hour` go to, starting a new one (and sealing the full one) when
    /// the current one is full.
    fn part_for(&mut self, conn: &Connection, hour: i64) -> Result<PartInfo, StoreError> {
        if let Some(part) = self.current.get(&hour) {
            // A part's blocks all index the same keys: a new key set starts a new part.
            if part.num_bytes < self.part_target_bytes && part.indexed_keys == *self.indexed_keys {
                return Ok(part.clone());
            }
            if !part.sealed {
                let full = part.clone();
                self.seal(conn, &full)?;
            }
        }
        let part = parts::create(conn, self.next_part, hour, &self.indexed_keys)?;
        self.pending.insert(
            part.part,
            PendingIndex {
                complete: true,
                ..PendingIndex::default()
            },
        );
        self.next_part += 1;
        self.current.insert(hour, part.clone());
        Ok(part)
    }
}

impl BlockWriter {
    /// Writes `part`'s exact indexes in key order and marks it sealed, in the caller's
    /// transaction: from the entries kept while it was written, or, for a part this process
    /// did not create, from its blocks.
    pub(super) fn seal(&mut self, conn: &Connection, part: &PartInfo) -> Result<(), StoreError> {
        let entries = match self.pending.remove(&part.part) {
            Some(entries) if entries.complete => entries,
            _ => self.entries_from_blocks(conn, part)?,
        };
        insert_index(conn, part, entries)?;
        parts::mark_sealed(conn, part.part)?;
        self.counters.record_sealed();
        if let Some(current) = self.current.get_mut(&part.hour)
            && current.part == part.part
        {
            current.sealed = true;
        }
        Ok(())
    }

    /// Seals every unsealed part but the current part of the hour `open_hour` (the one still
    /// being written); returns how many were sealed. Run by retention.
    pub(super) fn seal_finished(
        &mut self,
        conn: &Connection,
        open_hour: i64,
    ) -> Result<usize, StoreError> {
        let mut num_sealed = 0;
        for part in parts::load(conn)? {
            let is_open = part.hour == open_hour
                && self
                    .current
                    .get(&part.hour)
                    .is_some_and(|current| current.part == part.part);
            if !part.sealed && !is_open {
                self.seal(conn, &part)?;
                num_sealed += 1;
            }
        }
        Ok(num_sealed)
    }

    /// Index entries of a part recomputed from its blocks (a part left unsealed by a crash).
    fn entries_from_blocks(
        &self,
        conn: &Connection,
        part: &PartInfo,
    ) -> Result<PendingIndex, StoreError> {
        let mut entries = PendingIndex::default();
        let mut statement = conn.prepare(&format!(
            "SELECT block_id, offset, length FROM {}",
            part.blocks_table()
        ))?;
        let mut rows = statement.query(())?;
        while let Some(row) = rows.next()? {
            let block_id: i64 = row.get(0)?;
            let offset = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
            let length = usize::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
            let Some(compressed) = self.files.read(part.part, offset, length)? else {
                continue;
            };
            let body = decompress(&compressed)?;
            let meta = meta_of_sections(&body, &part.indexed_keys)?;
            entries
                .traces
                .extend(meta.trace_ids.iter().map(|id| (trace_key(*id), block_id)));
            entries.attrs.extend(
                attr_keys_of(&meta, &part.indexed_keys)
                    .into_iter()
                    .map(|(key_no, key)| (key_no, key, block_id)),
            );
        }
        Ok(entries)
    }
}

/// Inserts index entries in key order, so the b-trees grow at their ends.
fn insert_index(
    conn: &Connection,
    part: &PartInfo,
    mut entries: PendingIndex,
) -> Result<(), StoreError> {
    entries.traces.sort_unstable();
    entries.traces.dedup();
    let mut insert_trace = conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {} (trace, block_id) VALUES (?1, ?2)",
        part.traces_table()
    ))?;
    for entry in entries.traces {
        insert_trace.execute(entry)?;
    }
    entries.attrs.sort_unstable();
    entries.attrs.dedup();
    let mut insert_attr = conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {} (key_no, value, block_id) VALUES (?1, ?2, ?3)",
        part.attrs_table()
    ))?;
    for entry in entries.attrs {
        insert_attr.execute(entry)?;
    }
    Ok(())
}

/// The metadata of the spans in `sections` (span sections back to back) for `indexed_keys`:
/// for frames encoded with other keys, and for blocks whose index entries are rebuilt.
fn meta_of_sections(sections: &[u8], indexed_keys: &[String]) -> Result<BlockMeta, StoreError> {
    let spans = all_spans_of_sections(sections)?;
    let refs: Vec<&Span> = spans.iter().collect();
    Ok(BlockMeta::of(&refs, indexed_keys))
}

/// The services of a block as stored in its row: a count, then each name.
fn encode_services(meta: &BlockMeta) -> Vec<u8> {
    let mut services = Vec::new();
    put_varint(&mut services, meta.services.len() as u64);
    for service in &meta.services {
        put_str(&mut services, service);
    }
    services
}

/// `(key number, attribute key)` of the block's indexed values that `part_keys` indexes.
fn attr_keys_of(meta: &BlockMeta, part_keys: &[String]) -> Vec<(i64, i64)> {
    meta.indexed_values
        .iter()
        .filter_map(|(key, text)| {
            let key_no = part_keys.iter().position(|indexed| indexed == key)? as i64;
            Some((key_no, attr_key(key_no, text)))
        })
        .collect()
}

/// Splits spans sorted by trace into blocks of at most [`BLOCK_MAX_SPANS`], cutting between
/// traces where possible.
fn cut_blocks<'a>(sorted: &'a [&'a Span]) -> Vec<&'a [&'a Span]> {
    let mut blocks = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for group in sorted.chunk_by(|left, right| left.trace_id == right.trace_id) {
        if end > start && end - start + group.len() > BLOCK_MAX_SPANS {
            blocks.push(&sorted[start..end]);
            start = end;
        }
        end += group.len();
        while end - start > BLOCK_MAX_SPANS {
            blocks.push(&sorted[start..start + BLOCK_MAX_SPANS]);
            start += BLOCK_MAX_SPANS;
        }
    }
    if end > start {
        blocks.push(&sorted[start..end]);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::fixtures::{BASE_NANOS, resource, typical_batch};

    #[test]
    fn blocks_keep_traces_whole_and_stay_under_the_limit() {
        let batch = typical_batch(
            &resource("frontend"),
            0,
            3 * BLOCK_MAX_SPANS as u64,
            BASE_NANOS,
        );
        let mut sorted: Vec<&Span> = batch.spans.iter().collect();
        sorted.sort_by_key(|span| span.trace_id);
        let blocks = cut_blocks(&sorted);
        assert_eq!(blocks.iter().map(|b| b.len()).sum::<usize>(), sorted.len());
        for block in &blocks {
            assert!(block.len() <= BLOCK_MAX_SPANS);
        }
        for pair in blocks.windows(2) {
            let last = pair[0].last().map(|span| span.trace_id);
            assert_ne!(last, pair[1].first().map(|span| span.trace_id));
        }
        let one_trace: Vec<&Span> = std::iter::repeat_n(sorted[0], BLOCK_MAX_SPANS + 3).collect();
        let blocks = cut_blocks(&one_trace);
        assert_eq!(
            blocks.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [BLOCK_MAX_SPANS, 3]
        );
    }
}
