//! The totals of a range ([`crate::store::RollupReader::edge_totals`]): the scans of an
//! exact read, each row read in place from SQLite's buffers into [`EdgeSums`], so no rollup is
//! built; the splits at the end of each stats blob are read only when asked for.

use rusqlite::{Connection, Row, params};

use crate::model::MinuteRange;
use crate::model::graph::EdgeTotal;
use crate::store::edge_sums::{EdgeKeyRef, EdgeSums, NodeKeyRef, PlacementRef, RowRef};
use crate::store::{Instances, Splits, StoreError};

use super::codec_rollup::{edge_kind_from_code, node_kind_from_code};
use super::rollups::{instance_params, partitions_of, select_edges_sql};
use super::schema::PartitionKind;
use super::sql_values::blob;

/// The edges of `range` written by `instances`, summed, with or without their splits.
pub(super) fn sum_edges(
    conn: &Connection,
    range: MinuteRange,
    instances: Instances,
    splits: Splits,
) -> Result<Vec<EdgeTotal>, StoreError> {
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let (excluded, only) = instance_params(instances);
    let mut sums = EdgeSums::new(splits);
    for partition in partitions_of(conn, PartitionKind::EdgeRollups, range)? {
        let mut statement = conn.prepare_cached(&select_edges_sql(partition))?;
        let (no_kind, no_name) = (None::<i64>, None::<&str>);
        let mut rows = statement.query(params![
            range.from().get(),
            range.to().get(),
            excluded,
            only,
            no_kind,
            no_name,
            no_kind,
            no_name
        ])?;
        while let Some(row) = rows.next()? {
            sums.add(row_ref(row)?)?;
        }
    }
    sums.into_totals()
}

/// A row of `select_edges_sql`, borrowed.
fn row_ref<'row>(row: &'row Row<'_>) -> Result<RowRef<'row>, StoreError> {
    let text = |index: usize| -> Result<Option<&'row str>, StoreError> {
        row.get_ref(index)?
            .as_str_or_null()
            .map_err(|err| StoreError::Corrupt(format!("rollup column {index}: {err}")))
    };
    let name = |index: usize| {
        text(index)?.ok_or_else(|| StoreError::Corrupt(format!("rollup column {index} is NULL")))
    };
    Ok(RowRef {
        minute: row.get(0)?,
        instance: row.get(11)?,
        key: EdgeKeyRef {
            source: NodeKeyRef {
                kind: node_kind_from_code(row.get(1)?)?,
                name: name(2)?,
            },
            target: NodeKeyRef {
                kind: node_kind_from_code(row.get(3)?)?,
                name: name(4)?,
            },
            kind: edge_kind_from_code(row.get(5)?)?,
        },
        source_placement: PlacementRef {
            namespace: text(6)?,
            environment: text(7)?,
        },
        target_placement: PlacementRef {
            namespace: text(8)?,
            environment: text(9)?,
        },
        stats: blob(row, 10)?,
        operations: &[],
    })
}
