//! Trace search over the span blocks of a time range: newest blocks first, stopping as soon as
//! no older block can hold a newer match than the ones found. Blocks whose time ranges all
//! overlap (a backlog, clock skew) cannot be told apart that way: a search then stops once it
//! has looked at [`MAX_SCANNED_SPANS`](super::block_scan::MAX_SCANNED_SPANS) spans and found
//! something (or at the query's own bound), returning the newest of what it saw.
//!
//! Blocks are pruned by their rows' cheap columns (time range, errors, longest span) for the
//! whole range, and by their service list and filter only when search reaches them; their
//! spans are matched on their heads (see [`super::block_scan`]), and found traces are
//! summarised from their heads too. Several searches in one read (an edge page's newest and
//! failed traces) walk the blocks together: each block is read, and its spans stepped
//! through, once for all of them, each search keeping its own bounds and result.
//!
//! Every value is a bound parameter; SQL text holds only generated table names and constants.
//! Reads only, inside the caller's snapshot transaction.

use std::collections::HashMap;

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::model::{Span, TraceId};
use crate::store::summary::summaries_newest_first;
use crate::store::{StoreError, TraceQuery, TraceSummary};

use super::block_files::BlockFiles;
use super::block_read::{BlockCache, trace, trace_summary};
use super::block_scan::{Scan, scan_block};
use super::codec::Decoder;
use super::filter;
use super::parts::{self, PartInfo, attr_key};
use super::sql_values::blob;
use super::sql_values::{nanos_from_sql, nanos_to_sql};

/// A block that may hold matches of some of the searches.
struct Candidate {
    part_index: usize,
    block_id: i64,
    max_start: u64,
    interests: Vec<Interest>,
}

/// A search a candidate block may hold matches of.
#[derive(Clone, Copy)]
struct Interest {
    /// Which search (an index into the scans).
    scan: usize,
    /// The key of the wanted attribute value, to check against the block's filter (a part
    /// being written, whose attribute index is not written yet).
    filter_key_opt: Option<i64>,
}

pub(super) fn search(
    conn: &Connection,
    files: &BlockFiles,
    query: &TraceQuery,
) -> Result<Vec<TraceSummary>, StoreError> {
    let mut cache = BlockCache::new(files);
    let (parts, mut found_each) = matching_traces(conn, &mut cache, &[query])?;
    let found = found_each.pop().unwrap_or_default();
    let mut accs = HashMap::new();
    for (trace_id, _) in &found {
        accs.insert(
            *trace_id,
            trace_summary(conn, &parts, *trace_id, &mut cache)?,
        );
    }
    Ok(summaries_newest_first(&found, accs))
}

/// For each of `queries`, the spans of the traces [`search`] finds, in its order, until they
/// hold `max_spans` (the contract of `TraceReader::search_trace_spans`): one walk through the
/// blocks for all of them, one block cache for the whole read.
pub(super) fn search_spans_each(
    conn: &Connection,
    files: &BlockFiles,
    queries: &[&TraceQuery],
    max_spans: usize,
) -> Result<Vec<Vec<Vec<Span>>>, StoreError> {
    let mut cache = BlockCache::new(files);
    let (parts, found_each) = matching_traces(conn, &mut cache, queries)?;
    found_each
        .iter()
        .map(|found| spans_of_found(conn, &parts, found, &mut cache, max_spans))
        .collect()
}

/// The spans of the `found` traces, latest match first, until they hold `max_spans`; ordered
/// as search's summaries are: by trace start, latest first.
fn spans_of_found(
    conn: &Connection,
    parts: &[PartInfo],
    found: &[(TraceId, u64)],
    cache: &mut BlockCache<'_>,
    max_spans: usize,
) -> Result<Vec<Vec<Span>>, StoreError> {
    let mut newest_first: Vec<(u64, Vec<Span>)> = Vec::new();
    let mut num_spans = 0_usize;
    for (trace_id, _) in found {
        if num_spans >= max_spans {
            break;
        }
        let spans = trace(conn, parts, *trace_id, cache)?;
        if let Some(first) = spans.first() {
            num_spans += spans.len();
            newest_first.push((first.start_time_unix_nano, spans));
        }
    }
    newest_first.sort_by(|left, right| {
        right
            .0
            .cmp(&left.0)
            .then(left.1[0].trace_id.cmp(&right.1[0].trace_id))
    });
    Ok(newest_first.into_iter().map(|(_, spans)| spans).collect())
}

/// Traces a query found, each with its longest matching span's duration.
type Found = Vec<(TraceId, u64)>;

/// Every part, and for each of `queries` the `query.limit` traces whose latest matching span
/// starts last, with their longest matching span's duration, latest match first.
fn matching_traces(
    conn: &Connection,
    cache: &mut BlockCache<'_>,
    queries: &[&TraceQuery],
) -> Result<(Vec<PartInfo>, Vec<Found>), StoreError> {
    let all_parts = parts::load(conn)?;
    let mut scans: Vec<Scan<'_>> = queries.iter().map(|query| Scan::new(query)).collect();
    let candidates = candidates_of_each(conn, &all_parts, &scans)?;
    // A block search reads once goes into this buffer, used again for the next one.
    let mut scratch = Vec::new();
    for candidate in &candidates {
        let interests: Vec<Interest> = candidate
            .interests
            .iter()
            .filter(|interest| !scans[interest.scan].stops_before(candidate.max_start))
            .copied()
            .collect();
        if scans.iter().all(Scan::is_done) {
            break;
        }
        let part = &all_parts[candidate.part_index];
        let active = interested_scans(conn, part, candidate.block_id, &interests, &scans)?;
        if active.is_empty() {
            continue;
        }
        let cached_opt = cache.cached(part, candidate.block_id);
        if cached_opt.is_none() {
            cache.read_into(conn, part, candidate.block_id, &mut scratch)?;
        }
        let body = cached_opt.as_deref().unwrap_or(&scratch);
        if scan_block(body, &mut scans, &active)? && cached_opt.is_none() {
            // Its traces are read next: kept, and the next block gets a buffer of its own.
            cache.keep(part, candidate.block_id, std::mem::take(&mut scratch));
        }
    }
    let found_each = scans.into_iter().map(Scan::found).collect();
    Ok((all_parts, found_each))
}

/// The blocks any of the searches may find matches in, newest start first (then in write
/// order), each with the searches it may serve.
fn candidates_of_each(
    conn: &Connection,
    all_parts: &[PartInfo],
    scans: &[Scan<'_>],
) -> Result<Vec<Candidate>, StoreError> {
    let mut by_block: HashMap<(usize, i64), Candidate> = HashMap::new();
    for (scan, query) in scans.iter().enumerate().filter(|(_, scan)| !scan.is_done()) {
        let query = query.query;
        for (part_index, part) in all_parts.iter().enumerate() {
            if !part.overlaps(query.from_unix_nano, query.to_unix_nano) {
                continue;
            }
            for (block_id, max_start, filter_key_opt) in candidates_of(conn, part, query)? {
                by_block
                    .entry((part_index, block_id))
                    .or_insert_with(|| Candidate {
                        part_index,
                        block_id,
                        max_start,
                        interests: Vec::new(),
                    })
                    .interests
                    .push(Interest {
                        scan,
                        filter_key_opt,
                    });
            }
        }
    }
    let mut candidates: Vec<Candidate> = by_block.into_values().collect();
    candidates.sort_by_key(|candidate| {
        (
            std::cmp::Reverse(candidate.max_start),
            candidate.part_index,
            candidate.block_id,
        )
    });
    Ok(candidates)
}

/// Blocks of `part` in the query's range whose cheap columns do not rule out a match: `(block
/// id, latest span start, the attribute value key to check against its filter)`.
fn candidates_of(
    conn: &Connection,
    part: &PartInfo,
    query: &TraceQuery,
) -> Result<Vec<(i64, u64, Option<i64>)>, StoreError> {
    // The key of the wanted attribute value, when this part indexes the attribute.
    let indexed_opt = query.attribute.as_ref().and_then(|(key, text)| {
        let key_no = part
            .indexed_keys
            .iter()
            .position(|indexed| indexed == key)? as i64;
        Some((key_no, attr_key(key_no, text)))
    });
    // Not the service list and filter: a block's row keeps them past its first page.
    let columns = "b.block_id, b.max_start, b.num_errors, b.max_duration";
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
    let mut candidates = Vec::new();
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
        candidates.push((
            row.get(0)?,
            nanos_from_sql(row.get(1)?),
            indexed_opt
                .filter(|_| !part.sealed)
                .map(|(_, value_key)| value_key),
        ));
    }
    Ok(candidates)
}

/// Which of the searches `interests` names (indexes into `scans`) the block's service list
/// and filter leave room for. Read only for the blocks search reaches: a block of a few
/// hundred services lists a few kilobytes of names.
fn interested_scans(
    conn: &Connection,
    part: &PartInfo,
    block_id: i64,
    interests: &[Interest],
    scans: &[Scan<'_>],
) -> Result<Vec<usize>, StoreError> {
    let needs_row = |interest: &Interest| {
        scans[interest.scan].query.service.is_some() || interest.filter_key_opt.is_some()
    };
    if !interests.iter().any(needs_row) {
        return Ok(interests.iter().map(|interest| interest.scan).collect());
    }
    let mut statement = conn.prepare_cached(&format!(
        "SELECT services, filter FROM {} WHERE block_id = ?1",
        part.blocks_table()
    ))?;
    let mut rows = statement.query([block_id])?;
    let Some(row) = rows.next()? else {
        return Ok(Vec::new());
    };
    let (services, block_filter) = (blob(row, 0)?, blob(row, 1)?);
    let mut active = Vec::with_capacity(interests.len());
    for interest in interests {
        if let Some(service) = &scans[interest.scan].query.service
            && !has_service(services, service)?
        {
            continue;
        }
        // A bit reinterpretation: filters take the key's 64 bits.
        if interest
            .filter_key_opt
            .is_some_and(|value_key| !filter::may_contain(block_filter, value_key as u64))
        {
            continue;
        }
        active.push(interest.scan);
    }
    Ok(active)
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
