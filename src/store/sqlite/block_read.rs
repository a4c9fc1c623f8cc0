//! Reading span blocks: trace by id through each part's trace index, and trace search over the
//! blocks of a time range, newest blocks first, stopping as soon as no older block can hold a
//! newer match than the ones found. Blocks whose time ranges all overlap (a backlog, clock
//! skew) cannot be told apart that way: a search then stops once it has decoded
//! [`MAX_SCANNED_SPANS`] spans and found something, returning the newest of what it saw.
//!
//! Every value is a bound parameter; SQL text holds only generated table names and constants.
//! Reads only, inside the caller's snapshot transaction.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::model::{Span, StatusCode, TraceId};
use crate::store::batch_codec::parse_sections;
use crate::store::summary::{SpanBrief, TraceAcc, summaries_newest_first};
use crate::store::{StoreError, TraceQuery, TraceSummary};

use super::block_files::BlockFiles;
use super::codec::Decoder;
use super::filter;
use super::parts::{self, PartInfo, attr_key, trace_key};
use super::sql_values::blob;
use super::sql_values::{nanos_from_sql, nanos_to_sql};

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

    fn body(
        &mut self,
        conn: &Connection,
        part: &PartInfo,
        block_id: i64,
    ) -> Result<Arc<Vec<u8>>, StoreError> {
        if let Some(body) = self.bodies.get(&(part.part, block_id)) {
            return Ok(Arc::clone(body));
        }
        let mut statement = conn.prepare_cached(&format!(
            "SELECT offset, length FROM {} WHERE block_id = ?1",
            part.blocks_table()
        ))?;
        let mut rows = statement.query([block_id])?;
        let Some(row) = rows.next()? else {
            // An index entry of a block that retention rewrote: nothing there.
            return Ok(Arc::new(Vec::new()));
        };
        let offset = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
        let length = usize::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
        let Some(compressed) = self.files.read(part.part, offset, length)? else {
            return Ok(Arc::new(Vec::new()));
        };
        let body = Arc::new(decompress(&compressed)?);
        self.bodies.insert((part.part, block_id), Arc::clone(&body));
        Ok(body)
    }
}

/// A block's bytes. Each reading thread keeps one decompression context (creating one per
/// block was a quarter of a trace search); a block's frame records its size, so its buffer is
/// allocated once.
pub(super) fn decompress(compressed: &[u8]) -> Result<Vec<u8>, StoreError> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let corrupt =
        |err: std::io::Error| StoreError::Corrupt(format!("block does not decompress: {err}"));
    let size = zstd::zstd_safe::get_frame_content_size(compressed)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok());
    let Some(size) = size else {
        return zstd::decode_all(compressed).map_err(corrupt);
    };
    // A damaged header must not ask for an absurd buffer.
    const MAX_BLOCK_BYTES: usize = 1 << 30;
    if size > MAX_BLOCK_BYTES {
        return Err(StoreError::Corrupt(format!(
            "block claims {size} bytes decompressed"
        )));
    }
    CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        if context.is_none() {
            *context = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
        }
        let decompressor = context.as_mut().expect("just made");
        decompressor.decompress(compressed, size).map_err(corrupt)
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
    let key = trace_key(trace_id);
    let mut bodies = Vec::new();
    let mut num_spans = 0_usize;
    for part in parts {
        for block_id in cache.blocks_with_key(conn, part, key)? {
            let body = cache.body(conn, part, block_id)?;
            if body.is_empty() {
                continue;
            }
            for section in parse_sections(&body)? {
                num_spans += section.num_spans_of(trace_id);
            }
            bodies.push(body);
        }
    }
    let mut seen = HashSet::with_capacity(num_spans);
    let mut spans = Vec::with_capacity(num_spans);
    for body in &bodies {
        for section in parse_sections(body)? {
            let section_spans = section.spans_of(trace_id)?;
            spans.extend(
                section_spans
                    .into_iter()
                    .filter(|span| seen.insert(span.span_id)),
            );
        }
    }
    // Span ids are unique here, so the unstable sort's order is the stable one's, without
    // its scratch copy of half the spans.
    spans.sort_unstable_by_key(|span| (span.start_time_unix_nano, span.span_id));
    Ok(spans)
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

/// Spans one search decodes at most once it has found a match (about a second of work).
const MAX_SCANNED_SPANS: usize = 1_000_000;

/// A block that may hold matches, with what search prunes by.
struct Candidate {
    part_index: usize,
    block_id: i64,
    max_start: u64,
}

pub(super) fn search(
    conn: &Connection,
    files: &BlockFiles,
    query: &TraceQuery,
) -> Result<Vec<TraceSummary>, StoreError> {
    let mut cache = BlockCache::new(files);
    let Matches { parts, found } = matching_traces(conn, &mut cache, query)?;
    let mut accs = HashMap::new();
    for (trace_id, _) in &found {
        let mut acc = TraceAcc::default();
        for span in trace(conn, &parts, *trace_id, &mut cache)? {
            acc.add(SpanBrief {
                span_id: span.span_id,
                is_root: span.parent_span_id.is_none(),
                start_nanos: span.start_time_unix_nano,
                end_nanos: span.end_time_unix_nano,
                service: span.service_name().to_owned(),
                is_error: span.status_code == StatusCode::Error,
                name: span.name,
            });
        }
        accs.insert(*trace_id, acc);
    }
    Ok(summaries_newest_first(&found, accs))
}

/// The spans of the traces [`search`] finds, in its order, until they hold `max_spans` (the
/// contract of `TraceReader::search_trace_spans`): one block cache for the whole read.
pub(super) fn search_spans(
    conn: &Connection,
    files: &BlockFiles,
    query: &TraceQuery,
    max_spans: usize,
) -> Result<Vec<Vec<Span>>, StoreError> {
    let mut cache = BlockCache::new(files);
    let Matches { parts, found } = matching_traces(conn, &mut cache, query)?;
    let mut newest_first: Vec<(u64, Vec<Span>)> = Vec::new();
    let mut num_spans = 0_usize;
    for (trace_id, _) in &found {
        if num_spans >= max_spans {
            break;
        }
        let spans = trace(conn, &parts, *trace_id, &mut cache)?;
        if let Some(first) = spans.first() {
            num_spans += spans.len();
            newest_first.push((first.start_time_unix_nano, spans));
        }
    }
    // Ordered as search's summaries are: by trace start, latest first.
    newest_first.sort_by(|left, right| {
        right
            .0
            .cmp(&left.0)
            .then(left.1[0].trace_id.cmp(&right.1[0].trace_id))
    });
    Ok(newest_first.into_iter().map(|(_, spans)| spans).collect())
}

/// What a search found, and where it looked.
struct Matches {
    parts: Vec<PartInfo>,
    /// The traces with their longest matching span's duration, latest match first.
    found: Vec<(TraceId, u64)>,
}

/// The `query.limit` traces whose latest matching span starts last.
fn matching_traces(
    conn: &Connection,
    cache: &mut BlockCache<'_>,
    query: &TraceQuery,
) -> Result<Matches, StoreError> {
    let all_parts = parts::load(conn)?;
    let mut candidates = Vec::new();
    for (part_index, part) in all_parts.iter().enumerate() {
        if part.overlaps(query.from_unix_nano, query.to_unix_nano) {
            candidates_of(conn, part_index, part, query, &mut candidates)?;
        }
    }
    candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.max_start));
    // Per trace: its latest matching start and its longest matching span.
    let mut latest: HashMap<TraceId, (u64, u64)> = HashMap::new();
    let mut nth_latest = None;
    let mut num_scanned = 0_usize;
    for candidate in &candidates {
        if nth_latest.is_some_and(|nth| candidate.max_start < nth) {
            break;
        }
        match query.max_scanned_spans {
            Some(budget) if num_scanned >= budget => break,
            None if num_scanned >= MAX_SCANNED_SPANS && !latest.is_empty() => break,
            _ => {}
        }
        let part = &all_parts[candidate.part_index];
        let body = cache.body(conn, part, candidate.block_id)?;
        if body.is_empty() {
            continue;
        }
        let mut spans = Vec::new();
        for section in parse_sections(&body)? {
            if query
                .service
                .as_deref()
                .is_some_and(|service| !section.may_hold_service(service))
            {
                continue;
            }
            for entry in section.directory() {
                spans.clear();
                section.decode_entry(entry, &mut spans)?;
                num_scanned += spans.len();
                for span in spans.iter().filter(|span| matches(span, query)) {
                    let slot = latest.entry(span.trace_id).or_insert((0, 0));
                    slot.0 = slot.0.max(span.start_time_unix_nano);
                    slot.1 = slot.1.max(span.duration_nanos());
                }
            }
        }
        nth_latest = nth_largest(&latest, query.limit);
    }
    let mut found: Vec<(u64, TraceId, u64)> = latest
        .into_iter()
        .map(|(id, (start, longest))| (start, id, longest))
        .collect();
    found.sort_by(|left, right| right.0.cmp(&left.0).then(left.1.cmp(&right.1)));
    found.truncate(query.limit);
    let found = found
        .into_iter()
        .map(|(_, id, longest)| (id, longest))
        .collect();
    Ok(Matches {
        parts: all_parts,
        found,
    })
}

/// The `limit`-th latest match start, once `limit` traces matched.
fn nth_largest(latest: &HashMap<TraceId, (u64, u64)>, limit: usize) -> Option<u64> {
    if limit == 0 || latest.len() < limit {
        return None;
    }
    let mut starts: Vec<u64> = latest.values().map(|(start, _)| *start).collect();
    let index = starts.len() - limit;
    let (_, nth, _) = starts.select_nth_unstable(index);
    Some(*nth)
}

/// Blocks of `part` in the query's range whose metadata does not rule out a match.
fn candidates_of(
    conn: &Connection,
    part_index: usize,
    part: &PartInfo,
    query: &TraceQuery,
    candidates: &mut Vec<Candidate>,
) -> Result<(), StoreError> {
    // The key of the wanted attribute value, when this part indexes the attribute.
    let indexed_opt = query.attribute.as_ref().and_then(|(key, text)| {
        let key_no = part
            .indexed_keys
            .iter()
            .position(|indexed| indexed == key)? as i64;
        Some((key_no, attr_key(key_no, text)))
    });
    let columns = "b.block_id, b.max_start, b.num_errors, b.max_duration, b.services, b.filter";
    let range = "b.max_start >= ? AND b.min_start < ?";
    let mut params = Vec::new();
    let sql = match indexed_opt {
        Some((key_no, value_key)) if part.sealed => {
            params.push(Value::Integer(key_no));
            params.push(Value::Integer(value_key));
            format!(
                "SELECT {columns} FROM {} AS a JOIN {} AS b ON b.block_id = a.block_id \
                 WHERE a.key_no = ? AND a.value = ? AND {range}",
                part.attrs_table(),
                part.blocks_table()
            )
        }
        _ => format!(
            "SELECT {columns} FROM {} AS b WHERE {range}",
            part.blocks_table()
        ),
    };
    params.push(Value::Integer(nanos_to_sql(query.from_unix_nano)));
    params.push(Value::Integer(nanos_to_sql(query.to_unix_nano)));
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        let num_errors: i64 = row.get(2)?;
        if query.error == Some(true) && num_errors == 0 {
            continue;
        }
        let max_duration = nanos_from_sql(row.get(3)?);
        if query
            .min_duration_nanos
            .is_some_and(|min| max_duration < min)
        {
            continue;
        }
        if let Some(service) = &query.service
            && !has_service(blob(row, 4)?, service)?
        {
            continue;
        }
        if let Some((_, value_key)) = indexed_opt
            && !part.sealed
            && !filter::may_contain(blob(row, 5)?, value_key as u64)
        {
            continue;
        }
        candidates.push(Candidate {
            part_index,
            block_id: row.get(0)?,
            max_start: nanos_from_sql(row.get(1)?),
        });
    }
    Ok(())
}

fn has_service(services: &[u8], wanted: &str) -> Result<bool, StoreError> {
    let mut decoder = Decoder::new(services);
    let count = decoder.count()?;
    for _ in 0..count {
        if decoder.str()? == wanted {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `span` meets every condition of `query`.
fn matches(span: &Span, query: &TraceQuery) -> bool {
    let start = span.start_time_unix_nano;
    if start < query.from_unix_nano || start >= query.to_unix_nano {
        return false;
    }
    if query
        .service
        .as_deref()
        .is_some_and(|service| span.service_name() != service)
    {
        return false;
    }
    if query
        .operation
        .as_deref()
        .is_some_and(|operation| span.name != operation)
    {
        return false;
    }
    let duration = span.duration_nanos();
    if query.min_duration_nanos.is_some_and(|min| duration < min)
        || query.max_duration_nanos.is_some_and(|max| duration > max)
    {
        return false;
    }
    if query
        .error
        .is_some_and(|error| error != (span.status_code == StatusCode::Error))
    {
        return false;
    }
    match &query.attribute {
        None => true,
        Some((key, text)) => {
            span.attributes
                .iter()
                .chain(&span.resource.attributes)
                .any(|(candidate, value)| {
                    candidate == key && value.to_search_text().as_deref() == Some(text.as_str())
                })
        }
    }
}
