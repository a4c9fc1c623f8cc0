//! Schema version 3 kept one row per span in hourly `spans_h{hour}` tables. At first start
//! this build converts every such partition into span blocks (one transaction per partition,
//! so an interrupted conversion resumes with the partitions left), then lets SQLite reclaim
//! the freed pages (`auto_vacuum = INCREMENTAL` and one `VACUUM`).

use rusqlite::{Connection, Row, TransactionBehavior};

use crate::model::{Span, SpanId, SpanKind, StatusCode, TraceId};
use crate::store::StoreError;

use super::blocks::BlockWriter;
use super::codec::{self, Decoder};
use super::reader::RefLoader;
use super::schema::{self, PartitionKind};
use super::sql_values::nanos_from_sql;
use super::sql_values::{blob, opt_blob};

/// Where `row_id` is, after the columns [`span_from_row`] reads.
const ROW_ID_COLUMN: usize = 18;
/// Spans read per step of a partition's conversion.
const ROWS_PER_STEP: i64 = 65_536;

/// Converts every version-3 span partition into blocks; returns the number of spans moved.
pub(super) fn convert(conn: &mut Connection, blocks: &mut BlockWriter) -> Result<u64, StoreError> {
    let legacy: Vec<_> = schema::load_partitions(conn)?
        .into_iter()
        .filter(|info| info.partition.kind == PartitionKind::Spans)
        .collect();
    if legacy.is_empty() {
        return Ok(0);
    }
    let mut num_spans = 0;
    for info in &legacy {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let table = info.partition.table();
        let mut refs = RefLoader::default();
        let mut num_partition_spans = 0_u64;
        let mut last_row_id = i64::MIN;
        loop {
            let mut spans = Vec::new();
            {
                let mut statement = tx.prepare(&format!(
                    "SELECT {SPAN_READ_COLUMNS}, row_id FROM {table} WHERE row_id > ?1 \
                     ORDER BY row_id LIMIT ?2"
                ))?;
                let mut rows = statement.query((last_row_id, ROWS_PER_STEP))?;
                while let Some(row) = rows.next()? {
                    last_row_id = row.get(ROW_ID_COLUMN)?;
                    spans.push(span_from_row(&tx, row, &mut refs)?);
                }
            }
            if spans.is_empty() {
                break;
            }
            num_partition_spans += spans.len() as u64;
            blocks.write_spans(&tx, &spans)?;
        }
        schema::drop_partition(&tx, info.partition)?;
        blocks.files.sync()?;
        tx.commit()?;
        num_spans += num_partition_spans;
        tracing::info!(
            hour = info.partition.hour,
            num_spans = num_partition_spans,
            "converted a schema v3 span partition to blocks"
        );
    }
    blocks.reload(conn)?;
    schema::mark_current(conn)?;
    Ok(num_spans)
}

/// Files made before version 4 never give freed pages back; one `VACUUM` switches them to
/// incremental vacuuming (which retention then runs), once.
pub(super) fn enable_incremental_vacuum(conn: &Connection) -> Result<(), StoreError> {
    let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", (), |row| row.get(0))?;
    if auto_vacuum == 0 {
        tracing::info!("switching the database to incremental vacuum (one full VACUUM)");
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
    }
    Ok(())
}

/// Columns in the order [`span_from_row`] reads them.
const SPAN_READ_COLUMNS: &str = "trace_id, span_id, parent_span_id, start_ns, end_ns, \
    service, name, kind, status_code, status_message, trace_state, flags, resource_id, scope_id, \
    attributes, events, links, dropped_counts";

fn trace_id_from_sql(bytes: &[u8]) -> Result<TraceId, StoreError> {
    TraceId::from_bytes(bytes).map_err(|err| StoreError::Corrupt(err.to_string()))
}

fn span_id_from_sql(bytes: &[u8]) -> Result<SpanId, StoreError> {
    SpanId::from_bytes(bytes).map_err(|err| StoreError::Corrupt(err.to_string()))
}

fn span_from_row(
    conn: &Connection,
    row: &Row<'_>,
    refs: &mut RefLoader,
) -> Result<Span, StoreError> {
    let parent_span_id = match opt_blob(row, 2)? {
        Some(bytes) => Some(span_id_from_sql(bytes)?),
        None => None,
    };
    let (resource, scope) = refs.get(conn, row.get(12)?, row.get(13)?)?;
    let events = match opt_blob(row, 15)? {
        Some(blob) => codec::decode_events(blob)?,
        None => Vec::new(),
    };
    let links = match opt_blob(row, 16)? {
        Some(blob) => codec::decode_links(blob)?,
        None => Vec::new(),
    };
    let [
        dropped_attributes_count,
        dropped_events_count,
        dropped_links_count,
    ] = match opt_blob(row, 17)? {
        Some(blob) => {
            let mut decoder = Decoder::new(blob);
            [decoder.u32()?, decoder.u32()?, decoder.u32()?]
        }
        None => [0; 3],
    };
    Ok(Span {
        resource,
        scope,
        trace_id: trace_id_from_sql(blob(row, 0)?)?,
        span_id: span_id_from_sql(blob(row, 1)?)?,
        parent_span_id,
        trace_state: row.get(10)?,
        flags: row.get(11)?,
        name: row.get(6)?,
        kind: SpanKind::from_otlp(row.get(7)?),
        start_time_unix_nano: nanos_from_sql(row.get(3)?),
        end_time_unix_nano: nanos_from_sql(row.get(4)?),
        attributes: Decoder::new(blob(row, 14)?).attributes()?,
        dropped_attributes_count,
        events,
        dropped_events_count,
        links,
        dropped_links_count,
        status_code: StatusCode::from_otlp(row.get(8)?),
        status_message: row.get(9)?,
    })
}
