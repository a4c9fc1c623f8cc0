//! The edge page's "By operation and status" section: the edge's calls in the range, read from
//! its stored traces (`QueryService::edge_drilldown`), one row per caller operation, operation
//! and status code, each side linking to the traces of its operation.

use super::*;
use crate::query::{EdgeSplit, REFUSED_STATUS, SpanSearch};

/// The section of an edge's calls split by operation and status.
pub(super) fn section_of(split: &EdgeSplit, target: &NodeKey) -> Section {
    let mut title = "By operation and status".to_owned();
    if split.is_cut {
        title.push_str(&format!(
            " (from the newest {} calls)",
            format::count_text(split.num_calls)
        ));
    }
    let operation = match target.kind {
        NodeKind::Service => "Callee operation",
        NodeKind::Database => "Statement or operation",
        _ => "Operation",
    };
    let mut section = Section::new(
        title,
        "No stored trace of this range holds a call on this edge.",
        &[
            ("Caller operation", false),
            (operation, false),
            ("Status", false),
            ("Calls", true),
            ("Errors", true),
            ("p95", true),
        ],
    );
    for row in &split.rows {
        let status = if row.num_errors > 0 {
            Cell::pill(&row.status, "bad")
        } else if row.status == REFUSED_STATUS {
            Cell::pill(&row.status, "warn")
        } else {
            Cell::text(&row.status)
        };
        section.rows.push(vec![
            search_cell(&row.caller_operation, row.caller_search.as_ref()),
            search_cell(&row.operation, row.operation_search.as_ref()),
            status,
            Cell::number(format::count_text(row.num_calls)),
            Cell::number(format::count_text(row.num_errors)),
            Cell::number(quantile_text(&row.latency, 0.95)),
        ]);
    }
    if split.num_rows_left_out > 0 {
        section.rows.push(vec![Cell::text(format!(
            "and {} more with fewer errors and calls",
            format::count_text(split.num_rows_left_out as u64)
        ))]);
    }
    section
}

/// An operation linking to the trace search for its spans, when it has any.
fn search_cell(text: &str, search: Option<&SpanSearch>) -> Cell {
    match search {
        _ if text.is_empty() => Cell::text(format::NONE),
        Some((service, name)) => Cell::link(text, links::trace_search(service, Some(name))),
        None => Cell::text(text),
    }
}
