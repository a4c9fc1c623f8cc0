//! Span rows on the write side, and the row id scheme that clusters them by start time.
//!
//! A span's `row_id` is `(microseconds since its partition's hour began) << 31 | sequence`,
//! so the table itself is ordered by start time: inserts land near the end of the table,
//! "newest first" is a backwards row id scan, a time range is a row id range and the
//! `(service)` and error indexes (which end in the row id) come out in time order too. No
//! separate start-time index is needed, which measurably raised the insert rate. The sequence
//! separates spans starting in the same microsecond; a taken row id moves on to the next one.

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use crate::model::Span;
use crate::store::StoreError;

use super::codec::{self, put_varint};
use super::schema::{NANOS_PER_HOUR, Partition, hour_of, hour_start_nanos, nanos_to_sql};
use super::writer::{Buffers, CreatedPartitions, RefCache, WriterState, add_rows, by_hour};

const SEQUENCE_BITS: u32 = 31;
const SEQUENCE_MASK: i64 = (1 << SEQUENCE_BITS) - 1;
const NANOS_PER_MICRO: u64 = 1_000;

/// The row id of the first span starting in the microsecond of `nanos` (inside `hour`).
fn first_row_id_of_micro(hour: i64, nanos: u64) -> i64 {
    let micros = (nanos - hour_start_nanos(hour)) / NANOS_PER_MICRO;
    // An hour has 3.6e9 microseconds, so the shift stays below 2^63.
    (micros as i64) << SEQUENCE_BITS
}

/// Row ids of partition `hour` whose spans may start in `from_nanos..to_nanos`: exact to the
/// microsecond, so callers also compare `start_ns`. `(0, 0)` when the hour is outside.
pub(super) fn row_id_range(hour: i64, from_nanos: u64, to_nanos: u64) -> (i64, i64) {
    let hour_start = hour_start_nanos(hour);
    let hour_last = hour_start.saturating_add(NANOS_PER_HOUR - 1);
    if to_nanos <= hour_start || from_nanos > hour_last || from_nanos >= to_nanos {
        return (0, 0);
    }
    let first = from_nanos.max(hour_start);
    let last = (to_nanos - 1).min(hour_last);
    let end = first_row_id_of_micro(hour, last) + (1 << SEQUENCE_BITS);
    (first_row_id_of_micro(hour, first), end)
}

pub(super) const SPAN_COLUMNS: &str = "row_id, trace_id, span_id, parent_span_id, start_ns, \
    end_ns, duration_ns, service, name, kind, status_code, status_message, trace_state, flags, \
    resource_id, scope_id, attributes, events, links, dropped_counts";

/// Inserts `spans`, skipping those already stored, into their hourly partitions.
pub(super) fn write_spans(
    conn: &Connection,
    state: &mut WriterState,
    spans: &[Span],
    created: &mut CreatedPartitions,
) -> Result<(), StoreError> {
    for (hour, mut indexes) in by_hour(spans, |span| hour_of(span.start_time_unix_nano)) {
        // Start order keeps inserts at the end of the clustered table.
        indexes.sort_by_key(|index| spans[*index].start_time_unix_nano);
        let partition = Partition::spans(hour);
        let keys = state.ensure_partition(conn, partition, created)?;
        let mut statements = SpanStatements::prepare(conn, partition)?;
        let mut refs = RefCache::default();
        let mut num_inserted = 0;
        for index in indexes {
            let span = &spans[index];
            let (resource_id, scope_id) =
                state.refs(conn, &mut refs, &span.resource, &span.scope, hour)?;
            encode_span_parts(&mut state.buffers, span);
            let first_row_id = first_row_id_of_micro(hour, span.start_time_unix_nano);
            let row = SpanRow {
                span,
                resource_id,
                scope_id,
                buffers: &state.buffers,
            };
            let Some(row_id) = statements.insert(&row, first_row_id, &mut state.span_sequence)?
            else {
                continue;
            };
            num_inserted += 1;
            if keys.is_empty() {
                continue;
            }
            for (key, value) in &span.attributes {
                let Some(key_no) = keys.number(key) else {
                    continue;
                };
                if let Some(text) = value.to_search_text() {
                    statements.insert_attr.execute((key_no, text, row_id))?;
                }
            }
        }
        add_rows(conn, partition, num_inserted)?;
    }
    Ok(())
}

/// One span with its encoded parts, ready to bind.
struct SpanRow<'a> {
    span: &'a Span,
    resource_id: i64,
    scope_id: i64,
    buffers: &'a Buffers,
}

struct SpanStatements<'conn> {
    insert: CachedStatement<'conn>,
    exists: CachedStatement<'conn>,
    insert_attr: CachedStatement<'conn>,
}

impl<'conn> SpanStatements<'conn> {
    fn prepare(conn: &'conn Connection, partition: Partition) -> Result<Self, StoreError> {
        let table = partition.table();
        Ok(Self {
            insert: conn.prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} ({SPAN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
                 ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
            ))?,
            exists: conn.prepare_cached(&format!(
                "SELECT 1 FROM {table} WHERE trace_id = ?1 AND span_id = ?2"
            ))?,
            insert_attr: conn.prepare_cached(&format!(
                "INSERT OR IGNORE INTO {} (key_no, value, span_row_id) VALUES (?1, ?2, ?3)",
                partition.attr_table()
            ))?,
        })
    }

    /// Stores `row` under the first free row id of its microsecond; `None` when the span is
    /// already stored (the unique `(trace_id, span_id)` index refused it).
    fn insert(
        &mut self,
        row: &SpanRow<'_>,
        first_row_id: i64,
        sequence: &mut i64,
    ) -> Result<Option<i64>, StoreError> {
        for _ in 0..=SEQUENCE_MASK {
            *sequence = (*sequence + 1) & SEQUENCE_MASK;
            let row_id = first_row_id | *sequence;
            if self.insert_at(row, row_id)? {
                return Ok(Some(row_id));
            }
            let span = row.span;
            let stored = self
                .exists
                .query_row(
                    params![span.trace_id.as_bytes(), span.span_id.as_bytes()],
                    |_| Ok(()),
                )
                .optional()?;
            if stored.is_some() {
                return Ok(None);
            }
        }
        Err(StoreError::InvalidData(
            "every row id of one microsecond is taken".to_owned(),
        ))
    }

    /// Whether the row was inserted (false: its row id or its span ids were taken).
    fn insert_at(&mut self, row: &SpanRow<'_>, row_id: i64) -> Result<bool, StoreError> {
        let SpanRow {
            span,
            resource_id,
            scope_id,
            buffers,
        } = row;
        let num_changed = self.insert.execute(params![
            row_id,
            span.trace_id.as_bytes(),
            span.span_id.as_bytes(),
            span.parent_span_id.as_ref().map(|id| id.as_bytes()),
            nanos_to_sql(span.start_time_unix_nano),
            nanos_to_sql(span.end_time_unix_nano),
            nanos_to_sql(span.duration_nanos()),
            span.service_name(),
            span.name,
            span.kind.to_otlp(),
            span.status_code.to_otlp(),
            span.status_message,
            span.trace_state,
            span.flags,
            resource_id,
            scope_id,
            buffers.attributes,
            non_empty(&buffers.events),
            non_empty(&buffers.links),
            non_empty(&buffers.dropped),
        ])?;
        Ok(num_changed == 1)
    }
}

fn non_empty(bytes: &[u8]) -> Option<&[u8]> {
    (!bytes.is_empty()).then_some(bytes)
}

/// Fills the buffers with the span's encoded parts; an empty buffer stands for NULL.
fn encode_span_parts(buffers: &mut Buffers, span: &Span) {
    buffers.attributes.clear();
    codec::put_attributes(&mut buffers.attributes, &span.attributes);
    buffers.events.clear();
    if !span.events.is_empty() {
        codec::encode_events(&mut buffers.events, &span.events);
    }
    buffers.links.clear();
    if !span.links.is_empty() {
        codec::encode_links(&mut buffers.links, &span.links);
    }
    buffers.dropped.clear();
    let dropped = [
        span.dropped_attributes_count,
        span.dropped_events_count,
        span.dropped_links_count,
    ];
    if dropped.iter().any(|count| *count != 0) {
        for count in dropped {
            put_varint(&mut buffers.dropped, u64::from(count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_id_ranges_cover_exactly_the_microseconds_asked_for() {
        let hour = 1000;
        let start = hour_start_nanos(hour);
        let micro = 1 << SEQUENCE_BITS;
        assert_eq!(row_id_range(hour, 0, u64::MAX), (0, 3_600_000_000 * micro));
        assert_eq!(
            row_id_range(hour, start + 1_500, start + 2_001),
            (micro, 3 * micro)
        );
        assert_eq!(
            row_id_range(hour, start + 1_000, start + 2_000),
            (micro, 2 * micro)
        );
        assert_eq!(row_id_range(hour, 0, start), (0, 0));
        assert_eq!(row_id_range(hour, start + NANOS_PER_HOUR, u64::MAX), (0, 0));
        assert_eq!(row_id_range(hour, start + 5, start + 5), (0, 0));
        let last_hour = hour_of(u64::MAX);
        let (_, end) = row_id_range(last_hour, 0, u64::MAX);
        assert!(end > 0);
    }
}
