//! Reading span blocks: their bodies (decompressed once per query, see [`BlockCache`]) and one
//! trace by id through each part's trace index, or the block filters of a part still being
//! written — whole, or as the heads a summary needs. Search lives in [`super::block_search`].
//!
//! Every value is a bound parameter; SQL text holds only generated table names and constants.
//! Reads only, inside the caller's snapshot transaction.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::Connection;

use crate::model::{Span, StatusCode, TraceId};
use crate::store::StoreError;
use crate::store::batch_codec::{SpanSection, parse_sections};
use crate::store::summary::{SpanBrief, TraceAcc};

use super::block_files::BlockFiles;
use super::filter;
use super::parts::{PartInfo, trace_key};
use super::sql_values::blob;

/// Decompressed block bodies read during one query, so traces sharing a block read it once.
pub(super) struct BlockCache<'a> {
    files: &'a BlockFiles,
    bodies: HashMap<(i64, i64), Arc<Vec<u8>>>,
    /// `(block id, filter)` of the unsealed parts read so far, by part.
    filters: HashMap<i64, Vec<(i64, Vec<u8>)>>,
}

impl<'a> BlockCache<'a> {
    pub(super) fn new(files: &'a BlockFiles) -> Self {
        Self {
            files,
            bodies: HashMap::new(),
            filters: HashMap::new(),
        }
    }

    /// The body of a block, read once per query (empty when the block is gone: an index entry
    /// of a block that retention rewrote).
    pub(super) fn body(
        &mut self,
        conn: &Connection,
        part: &PartInfo,
        block_id: i64,
    ) -> Result<Arc<Vec<u8>>, StoreError> {
        if let Some(body) = self.bodies.get(&(part.part, block_id)) {
            return Ok(Arc::clone(body));
        }
        let mut body = Vec::new();
        self.read_into(conn, part, block_id, &mut body)?;
        let body = Arc::new(body);
        if !body.is_empty() {
            self.bodies.insert((part.part, block_id), Arc::clone(&body));
        }
        Ok(body)
    }

    /// The body of a block in `buf`, replacing what it held (empty when the block is gone),
    /// not kept unless the caller hands it to [`BlockCache::keep`]: search reads most blocks
    /// once, and one buffer used again spares it fresh memory for each (the page faults of
    /// fresh buffers cost as much as decompressing into them).
    pub(super) fn read_into(
        &self,
        conn: &Connection,
        part: &PartInfo,
        block_id: i64,
        buf: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        buf.clear();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT offset, length FROM {} WHERE block_id = ?1",
            part.blocks_table()
        ))?;
        let mut rows = statement.query([block_id])?;
        let Some(row) = rows.next()? else {
            return Ok(());
        };
        let offset = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
        let length = usize::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
        match self.files.read(part.part, offset, length)? {
            Some(compressed) => decompress_into(&compressed, buf),
            None => Ok(()),
        }
    }

    /// The body of a block this query already read and kept.
    pub(super) fn cached(&self, part: &PartInfo, block_id: i64) -> Option<Arc<Vec<u8>>> {
        self.bodies.get(&(part.part, block_id)).cloned()
    }

    /// Keeps `body`, a block's body read with [`BlockCache::read_into`], for the rest of the
    /// query.
    pub(super) fn keep(&mut self, part: &PartInfo, block_id: i64, body: Vec<u8>) {
        if !body.is_empty() {
            self.bodies.insert((part.part, block_id), Arc::new(body));
        }
    }
}

/// A block's bytes.
pub(super) fn decompress(compressed: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut body = Vec::new();
    decompress_into(compressed, &mut body)?;
    Ok(body)
}

/// A block's bytes in `buf`, replacing what it held. Each reading thread keeps one
/// decompression context (creating one per block was a quarter of a trace search); a block's
/// frame records its size, so the buffer grows at most once.
fn decompress_into(compressed: &[u8], buf: &mut Vec<u8>) -> Result<(), StoreError> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let corrupt =
        |err: std::io::Error| StoreError::Corrupt(format!("block does not decompress: {err}"));
    buf.clear();
    let size = zstd::zstd_safe::get_frame_content_size(compressed)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok());
    let Some(size) = size else {
        *buf = zstd::decode_all(compressed).map_err(corrupt)?;
        return Ok(());
    };
    // A damaged header must not ask for an absurd buffer.
    const MAX_BLOCK_BYTES: usize = 1 << 30;
    if size > MAX_BLOCK_BYTES {
        return Err(StoreError::Corrupt(format!(
            "block claims {size} bytes decompressed"
        )));
    }
    buf.reserve(size);
    CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        if context.is_none() {
            *context = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
        }
        let decompressor = context.as_mut().expect("just made");
        decompressor
            .decompress_to_buffer(compressed, buf)
            .map_err(corrupt)?;
        Ok(())
    })
}

/// Every stored span of `trace_id`, the first stored copy of each span id, by start time.
///
/// Counts the trace's spans in the blocks' directories before decoding any, so they go into
/// one allocation of the right size instead of a vector that doubles as it grows (100,000
/// spans: 23 MB, where the doubling vector holds up to 45 MB while it moves to its last size).
pub(super) fn trace(
    conn: &Connection,
    parts: &[PartInfo],
    trace_id: TraceId,
    cache: &mut BlockCache<'_>,
) -> Result<Vec<Span>, StoreError> {
    let bodies = bodies_of_trace(conn, parts, trace_id, cache)?;
    let sections = sections_of_trace(&bodies, trace_id)?;
    let num_spans = sections
        .iter()
        .map(|section| section.num_spans_of(trace_id))
        .sum();
    let mut seen = HashSet::with_capacity(num_spans);
    let mut spans = Vec::with_capacity(num_spans);
    for section in &sections {
        let section_spans = section.spans_of(trace_id)?;
        spans.extend(
            section_spans
                .into_iter()
                .filter(|span| seen.insert(span.span_id)),
        );
    }
    // Span ids are unique here, so the unstable sort's order is the stable one's, without
    // its scratch copy of half the spans.
    spans.sort_unstable_by_key(|span| (span.start_time_unix_nano, span.span_id));
    Ok(spans)
}

/// What the summary of `trace_id` needs of its stored spans (the first stored copy of each),
/// read from the spans' heads: nothing else of them is decoded.
pub(super) fn trace_summary(
    conn: &Connection,
    parts: &[PartInfo],
    trace_id: TraceId,
    cache: &mut BlockCache<'_>,
) -> Result<TraceAcc, StoreError> {
    let bodies = bodies_of_trace(conn, parts, trace_id, cache)?;
    let mut acc = TraceAcc::default();
    for section in sections_of_trace(&bodies, trace_id)? {
        for entry in section.entries_of(trace_id) {
            section.heads(entry, |head| {
                acc.add(SpanBrief {
                    span_id: head.span_id,
                    is_root: head.parent_span_id.is_none(),
                    start_nanos: head.start_time_unix_nano,
                    end_nanos: head.end_time_unix_nano,
                    service: section.service_name(head.resource)?.to_owned(),
                    name: head.name()?.to_owned(),
                    is_error: head.status_code == StatusCode::Error,
                });
                Ok(())
            })?;
        }
    }
    Ok(acc)
}

/// The bodies of the blocks that may hold `trace_id`, in part and write order.
fn bodies_of_trace(
    conn: &Connection,
    parts: &[PartInfo],
    trace_id: TraceId,
    cache: &mut BlockCache<'_>,
) -> Result<Vec<Arc<Vec<u8>>>, StoreError> {
    let key = trace_key(trace_id);
    let mut bodies = Vec::new();
    for part in parts {
        for block_id in cache.blocks_with_key(conn, part, key)? {
            let body = cache.body(conn, part, block_id)?;
            if !body.is_empty() {
                bodies.push(body);
            }
        }
    }
    Ok(bodies)
}

/// The sections of `bodies` holding spans of `trace_id`, in order (a block's filter may say
/// it holds a trace it does not).
fn sections_of_trace(
    bodies: &[Arc<Vec<u8>>],
    trace_id: TraceId,
) -> Result<Vec<SpanSection<'_>>, StoreError> {
    let mut sections = Vec::new();
    for body in bodies {
        for section in parse_sections(body)? {
            if section.num_spans_of(trace_id) > 0 {
                sections.push(section);
            }
        }
    }
    Ok(sections)
}

impl BlockCache<'_> {
    /// Blocks of `part` that may hold `key` (a trace or attribute key), in write order:
    /// through the exact trace index of a sealed part, else through every block's filter
    /// (read once per query, then kept: a search looks up every trace it found).
    fn blocks_with_key(
        &mut self,
        conn: &Connection,
        part: &PartInfo,
        key: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if part.sealed {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT block_id FROM {} WHERE trace = ?1 ORDER BY block_id",
                part.traces_table()
            ))?;
            let block_ids = statement
                .query_map([key], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            return Ok(block_ids);
        }
        let filters = match self.filters.entry(part.part) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(vacant) => {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT block_id, filter FROM {} ORDER BY block_id",
                    part.blocks_table()
                ))?;
                let mut rows = statement.query(())?;
                let mut filters = Vec::new();
                while let Some(row) = rows.next()? {
                    filters.push((row.get(0)?, blob(row, 1)?.to_vec()));
                }
                vacant.insert(filters)
            }
        };
        // A bit reinterpretation: filters take the key's 64 bits.
        Ok(filters
            .iter()
            .filter(|(_, block_filter)| filter::may_contain(block_filter, key as u64))
            .map(|(block_id, _)| *block_id)
            .collect())
    }
}
