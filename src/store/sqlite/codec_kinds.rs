//! The integer codes of node and edge kinds in rollup key columns.

use crate::model::graph::{EdgeKind, NodeKind};
use crate::store::StoreError;

/// Code of a node kind in key columns. Codes ascend in the model's `Ord` order, so SQL's
/// ordering of key columns is the order of [`crate::model::graph::EdgeKey`].
pub(super) fn node_kind_code(kind: NodeKind) -> i64 {
    match kind {
        NodeKind::Service => 0,
        NodeKind::Database => 1,
        NodeKind::Topic => 2,
        NodeKind::External => 3,
        NodeKind::Client => 4,
    }
}

pub(super) fn node_kind_from_code(code: i64) -> Result<NodeKind, StoreError> {
    Ok(match code {
        0 => NodeKind::Service,
        1 => NodeKind::Database,
        2 => NodeKind::Topic,
        3 => NodeKind::External,
        4 => NodeKind::Client,
        _ => return Err(StoreError::Corrupt(format!("unknown node kind {code}"))),
    })
}

/// Code of an edge kind in key columns, ascending in the model's `Ord` order.
pub(super) fn edge_kind_code(kind: EdgeKind) -> i64 {
    match kind {
        EdgeKind::Http => 0,
        EdgeKind::Grpc => 1,
        EdgeKind::Messaging => 2,
        EdgeKind::Database => 3,
        EdgeKind::Other => 4,
    }
}

pub(super) fn edge_kind_from_code(code: i64) -> Result<EdgeKind, StoreError> {
    Ok(match code {
        0 => EdgeKind::Http,
        1 => EdgeKind::Grpc,
        2 => EdgeKind::Messaging,
        3 => EdgeKind::Database,
        4 => EdgeKind::Other,
        _ => return Err(StoreError::Corrupt(format!("unknown edge kind {code}"))),
    })
}
