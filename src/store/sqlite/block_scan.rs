//! What trace search does inside a block: the spans of a block body matched, on their heads
//! (see [`SpanHead`]), against every search reading the block at once, each search keeping its
//! own progress ([`Scan`]): the traces it found, where it stops, how many spans it looked at.
//! A block's spans are stepped through once however many searches read it.
//!
//! Pure: no SQL, no I/O (see [`super::block_search`] for the blocks).

use std::collections::HashMap;

use crate::model::{StatusCode, TraceId};
use crate::store::batch_codec::{SpanHead, SpanSection, parse_sections};
use crate::store::{StoreError, TraceQuery};

/// Spans one search looks at at most once it has found a match (about a second of work).
pub(super) const MAX_SCANNED_SPANS: usize = 1_000_000;

/// One search's progress through the blocks, newest first.
pub(super) struct Scan<'q> {
    pub query: &'q TraceQuery,
    /// Per trace: its latest matching start and its longest matching span.
    latest: HashMap<TraceId, (u64, u64)>,
    /// The `limit`-th latest matching start, once `limit` traces matched: no block whose
    /// spans all start before it can change the result.
    nth_latest: Option<u64>,
    num_scanned: usize,
    is_done: bool,
}

impl<'q> Scan<'q> {
    pub(super) fn new(query: &'q TraceQuery) -> Self {
        Self {
            query,
            latest: HashMap::new(),
            nth_latest: None,
            num_scanned: 0,
            is_done: query.finds_nothing(),
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.is_done
    }

    /// Whether the search stops before a block whose spans start at `max_start` at the
    /// latest (blocks come newest first): nothing older can be newer than what it found, or
    /// it looked at as many spans as it may.
    pub(super) fn stops_before(&mut self, max_start: u64) -> bool {
        if !self.is_done {
            let past_bound = match self.query.max_scanned_spans {
                Some(bound) => self.num_scanned >= bound,
                None => self.num_scanned >= MAX_SCANNED_SPANS && !self.latest.is_empty(),
            };
            self.is_done = past_bound || self.nth_latest.is_some_and(|nth| max_start < nth);
        }
        self.is_done
    }

    /// The `limit` traces whose latest matching span starts last, latest first, each with
    /// its longest matching span's duration.
    pub(super) fn found(self) -> Vec<(TraceId, u64)> {
        let mut found: Vec<(u64, TraceId, u64)> = self
            .latest
            .into_iter()
            .map(|(id, (start, longest))| (start, id, longest))
            .collect();
        found.sort_by(|left, right| right.0.cmp(&left.0).then(left.1.cmp(&right.1)));
        found.truncate(self.query.limit);
        found
            .into_iter()
            .map(|(_, id, longest)| (id, longest))
            .collect()
    }

    fn add(&mut self, trace_id: TraceId, head: &SpanHead<'_>) {
        let slot = self.latest.entry(trace_id).or_insert((0, 0));
        slot.0 = slot.0.max(head.start_time_unix_nano);
        slot.1 = slot.1.max(head.duration_nanos());
    }
}

/// Matches the spans of a block's `body` for the searches `active` (indexes into `scans`),
/// counting the spans each looks at; whether any matched.
pub(super) fn scan_block(
    body: &[u8],
    scans: &mut [Scan<'_>],
    active: &[usize],
) -> Result<bool, StoreError> {
    let mut has_match = vec![false; active.len()];
    for section in parse_sections(body)? {
        // Per search reading the section: which resources are its service's (all, when it
        // names none); a search whose service has none here skips the section.
        let mut readers: Vec<(usize, Option<Vec<bool>>)> = Vec::with_capacity(active.len());
        for (slot, &scan_no) in active.iter().enumerate() {
            match scans[scan_no].query.service.as_deref() {
                None => readers.push((slot, None)),
                Some(service) => {
                    if let Some(wanted) = section.resources_of(service)? {
                        readers.push((slot, Some(wanted)));
                    }
                }
            }
        }
        if readers.is_empty() {
            continue;
        }
        for entry in section.directory() {
            for (slot, _) in &readers {
                scans[active[*slot]].num_scanned += entry.num_spans;
            }
            section.heads(entry, |head| {
                for (slot, wanted_opt) in &readers {
                    let scan = &mut scans[active[*slot]];
                    if matches(head, &section, wanted_opt.as_deref(), scan.query)? {
                        has_match[*slot] = true;
                        scan.add(entry.trace_id, head);
                    }
                }
                Ok(())
            })?;
        }
    }
    for (slot, &scan_no) in active.iter().enumerate() {
        if has_match[slot] {
            let scan = &mut scans[scan_no];
            scan.nth_latest = nth_largest(&scan.latest, scan.query.limit);
        }
    }
    Ok(has_match.contains(&true))
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

/// Whether the span `head` of `section` meets every condition of `query`, `wanted_opt` saying
/// which of the section's resources belong to the service searched for. Its attributes (and
/// its resource's) are decoded only when every other condition holds.
fn matches(
    head: &SpanHead<'_>,
    section: &SpanSection<'_>,
    wanted_opt: Option<&[bool]>,
    query: &TraceQuery,
) -> Result<bool, StoreError> {
    let start = head.start_time_unix_nano;
    if start < query.from_unix_nano || start >= query.to_unix_nano {
        return Ok(false);
    }
    if let Some(wanted) = wanted_opt {
        let is_wanted = usize::try_from(head.resource)
            .ok()
            .and_then(|resource| wanted.get(resource))
            .ok_or_else(|| StoreError::Corrupt("resource index out of range".to_owned()))?;
        if !is_wanted {
            return Ok(false);
        }
    }
    if query
        .operation
        .as_deref()
        .is_some_and(|operation| !head.is_named(operation))
    {
        return Ok(false);
    }
    let duration = head.duration_nanos();
    if query.min_duration_nanos.is_some_and(|min| duration < min)
        || query.max_duration_nanos.is_some_and(|max| duration > max)
    {
        return Ok(false);
    }
    if query
        .error
        .is_some_and(|error| error != (head.status_code == StatusCode::Error))
    {
        return Ok(false);
    }
    let Some((key, text)) = &query.attribute else {
        return Ok(true);
    };
    let has = |attributes: &crate::model::Attributes| {
        attributes.iter().any(|(candidate, value)| {
            candidate == key && value.to_search_text().as_deref() == Some(text.as_str())
        })
    };
    Ok(has(&head.attributes()?) || has(&section.resource(head.resource)?.attributes))
}
