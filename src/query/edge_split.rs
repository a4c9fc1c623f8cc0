//! One edge's drill-down, from one read of the stored traces of a range that hold the edge's
//! instrumented side
//! ([`TraceReader::search_trace_spans_of_each`](crate::store::TraceReader::search_trace_spans_of_each)):
//! its newest traces (at most [`MAX_TRACES`] traces and about [`MAX_SPANS`] spans) and its
//! newest failed ones (at most [`MAX_FAILED_TRACES`]). From the calls
//! [`trace_calls`](crate::graph::trace_calls) finds in them: the edge's calls split by the
//! caller's operation, the callee's operation (or what the client span did: a database
//! statement, a messaging operation) and the status code, from the newest traces; and the
//! traces that cross the edge, failed first, then the slowest, from both.

use std::collections::{HashMap, HashSet};

use crate::graph::{TraceCall, trace_calls};
use crate::model::graph::{EdgeKind, NodeKey, NodeKind};
use crate::model::{AttrValue, LatencySketch, Span, attr_get};
use crate::store::summary::summary_of_spans;
use crate::store::{TraceQuery, TraceSummary};

use super::{QueryError, QueryService};

/// Traces one split reads at most (the newest of its range).
pub const MAX_TRACES: usize = 60;
/// Failed traces a drill-down reads besides, so the edge's failures show however rare they are
/// among the newest traces.
pub const MAX_FAILED_TRACES: usize = 25;
/// Traces crossing the edge a drill-down lists at most.
pub const MAX_CROSSING_TRACES: usize = 10;
/// Spans one split reads at most (plus the rest of the trace that reaches it).
pub const MAX_SPANS: usize = 5_000;
/// Rows a split keeps, most errors first, then most calls.
pub const MAX_ROWS: usize = 50;
/// The status of calls the caller's open breaker refused.
pub const REFUSED_STATUS: &str = "refused by breaker";
/// Characters of a database statement kept for grouping and showing.
const MAX_STATEMENT_CHARS: usize = 60;

/// A service and a span name to find traces by.
pub type SpanSearch = (String, String);

/// One row of a split: the calls of one caller operation, operation and status.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitRow {
    /// The caller's operation; empty when the caller has none (`client:user`, a topic whose
    /// producer is not in the trace).
    pub caller_operation: String,
    /// The callee's operation, else what the call did (statement, messaging operation, the
    /// client span's name).
    pub operation: String,
    /// `HTTP 503`, `gRPC 14 UNAVAILABLE`, `error`, `ok` or `refused by breaker`.
    pub status: String,
    pub num_calls: u64,
    /// Calls that failed on either side (refused calls are not errors: they are their own row).
    pub num_errors: u64,
    /// What the caller waited, else what the callee spent (see [`TraceCall::duration_nanos`]).
    pub latency: LatencySketch,
    /// Where the traces of `caller_operation` and of `operation` are found.
    pub caller_search: Option<SpanSearch>,
    pub operation_search: Option<SpanSearch>,
}

/// An edge's calls in a range, split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeSplit {
    /// Most errors first, then most calls; at most [`MAX_ROWS`].
    pub rows: Vec<SplitRow>,
    /// Rows beyond [`MAX_ROWS`], left out.
    pub num_rows_left_out: usize,
    /// Calls counted, in every row (those left out included).
    pub num_calls: u64,
    /// Reading stopped at a bound: older calls of the range are not counted.
    pub is_cut: bool,
}

impl EdgeSplit {
    /// The calls from `source` to `target` starting in `[from, to)` in `traces`.
    pub fn of(
        traces: &[Vec<Span>],
        source: &NodeKey,
        target: &NodeKey,
        (from_unix_nano, to_unix_nano): (u64, u64),
    ) -> Self {
        // A logical peer name is the target service when the edge leads to a service of that
        // name (the map resolved it so, or there would be no such edge).
        let is_service = |name: &str| target.kind == NodeKind::Service && target.name == name;
        let mut rows: HashMap<(String, String, String), SplitRow> = HashMap::new();
        let mut num_calls = 0;
        for spans in traces {
            for call in trace_calls(spans, is_service) {
                if call.source != *source
                    || call.target != *target
                    || !(from_unix_nano..to_unix_nano).contains(&call.start_unix_nano)
                {
                    continue;
                }
                num_calls += 1;
                let (caller_operation, caller_search) = caller_operation_of(&call);
                let (operation, operation_search) = operation_of(&call);
                let status = status_of(&call);
                let row = rows
                    .entry((caller_operation.clone(), operation.clone(), status.clone()))
                    .or_insert_with(|| SplitRow {
                        caller_operation,
                        operation,
                        status,
                        num_calls: 0,
                        num_errors: 0,
                        latency: LatencySketch::default(),
                        caller_search,
                        operation_search,
                    });
                row.num_calls += 1;
                row.num_errors += u64::from(call.is_error);
                if let Some(nanos) = call.duration_nanos {
                    row.latency.record(nanos);
                }
            }
        }
        let mut rows: Vec<SplitRow> = rows.into_values().collect();
        rows.sort_by(|left, right| {
            (right.num_errors, right.num_calls)
                .cmp(&(left.num_errors, left.num_calls))
                .then_with(|| {
                    (&left.caller_operation, &left.operation, &left.status).cmp(&(
                        &right.caller_operation,
                        &right.operation,
                        &right.status,
                    ))
                })
        });
        let num_rows_left_out = rows.len().saturating_sub(MAX_ROWS);
        rows.truncate(MAX_ROWS);
        Self {
            rows,
            num_rows_left_out,
            num_calls,
            is_cut: false,
        }
    }
}

/// What an edge page shows of the edge's stored traces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeDrilldown {
    pub split: EdgeSplit,
    /// Traces with a call on the edge in the range: failed ones first, then the slowest; at
    /// most [`MAX_CROSSING_TRACES`]. `matched_duration_nanos` is the trace's longest call on
    /// the edge.
    pub crossing: Vec<TraceSummary>,
}

impl QueryService {
    /// The drill-down of the edge `source → target` in `[from, to)`, from the newest traces of
    /// the range holding its instrumented side (its caller, else its callee) and the newest
    /// of them with an error there, read in one go. An edge without an instrumented side has
    /// nothing to drill into.
    pub async fn edge_drilldown(
        &self,
        source: NodeKey,
        target: NodeKey,
        bounds: (u64, u64),
    ) -> Result<EdgeDrilldown, QueryError> {
        let side = [&source, &target]
            .into_iter()
            .find(|node| node.kind == NodeKind::Service);
        let Some(side) = side else {
            return Ok(EdgeDrilldown::default());
        };
        let queries = drilldown_queries(&side.name, bounds);
        self.whole_trace_read(move |reader| {
            let mut read = reader.search_trace_spans_of_each(&queries, MAX_SPANS)?;
            let failed = read.pop().unwrap_or_default();
            let traces = read.pop().unwrap_or_default();
            let num_spans: usize = traces.iter().map(Vec::len).sum();
            let mut split = EdgeSplit::of(&traces, &source, &target, bounds);
            split.is_cut = traces.len() >= MAX_TRACES || num_spans >= MAX_SPANS;
            let crossing = crossing_traces(failed.iter().chain(&traces), &source, &target, bounds);
            Ok(EdgeDrilldown { split, crossing })
        })
        .await
    }
}

/// The newest [`MAX_TRACES`] traces in `[from, to)` (holding `service`, when given), with the
/// pages' example scan bound.
pub(super) fn newest_traces_query(
    service: Option<&str>,
    (from_unix_nano, to_unix_nano): (u64, u64),
) -> TraceQuery {
    TraceQuery {
        service: service.map(str::to_owned),
        operation: None,
        from_unix_nano,
        to_unix_nano,
        min_duration_nanos: None,
        max_duration_nanos: None,
        error: None,
        attribute: None,
        limit: MAX_TRACES,
        max_scanned_spans: Some(crate::query::EXAMPLE_SCAN_SPANS),
    }
}

/// What a drill-down reads (with at most [`MAX_SPANS`] spans each) of the traces in
/// `[from, to)` holding the edge's instrumented side `service`: its newest traces, then its
/// newest failed ones.
pub fn drilldown_queries(service: &str, bounds: (u64, u64)) -> [TraceQuery; 2] {
    let newest = newest_traces_query(Some(service), bounds);
    let failed = TraceQuery {
        error: Some(true),
        limit: MAX_FAILED_TRACES,
        ..newest.clone()
    };
    [newest, failed]
}

/// The summaries of `traces` (each once) with a call from `source` to `target` starting in
/// `[from, to)`: failed traces first, then the slowest, at most [`MAX_CROSSING_TRACES`].
fn crossing_traces<'a>(
    traces: impl Iterator<Item = &'a Vec<Span>>,
    source: &NodeKey,
    target: &NodeKey,
    (from_unix_nano, to_unix_nano): (u64, u64),
) -> Vec<TraceSummary> {
    let is_service = |name: &str| target.kind == NodeKind::Service && target.name == name;
    let mut seen = HashSet::new();
    let mut crossing = Vec::new();
    for spans in traces {
        let Some(first) = spans.first() else { continue };
        if !seen.insert(first.trace_id) {
            continue;
        }
        let longest_call = trace_calls(spans, is_service)
            .iter()
            .filter(|call| {
                call.source == *source
                    && call.target == *target
                    && (from_unix_nano..to_unix_nano).contains(&call.start_unix_nano)
            })
            .map(|call| call.duration_nanos.unwrap_or(0))
            .max();
        if let Some(longest_call) = longest_call
            && let Some(summary) = summary_of_spans(spans, longest_call)
        {
            crossing.push(summary);
        }
    }
    crossing.sort_by(|a, b| {
        (b.num_errors > 0, b.duration_nanos)
            .cmp(&(a.num_errors > 0, a.duration_nanos))
            .then(a.trace_id.cmp(&b.trace_id))
    });
    crossing.truncate(MAX_CROSSING_TRACES);
    crossing
}

fn search_of(span: &Span) -> SpanSearch {
    (span.service_name().to_owned(), span.name.clone())
}

fn caller_operation_of(call: &TraceCall<'_>) -> (String, Option<SpanSearch>) {
    call.caller_operation.map_or((String::new(), None), |span| {
        (span.name.clone(), Some(search_of(span)))
    })
}

/// The callee's operation, else what the calling span did.
fn operation_of(call: &TraceCall<'_>) -> (String, Option<SpanSearch>) {
    if let Some(callee) = call.callee {
        return (callee.name.clone(), Some(search_of(callee)));
    }
    let Some(caller) = call.caller else {
        return (String::new(), None);
    };
    let text = |key: &str| attr_get(&caller.attributes, key).and_then(AttrValue::as_str);
    let done = match call.kind {
        EdgeKind::Database => text("db.query.text")
            .or_else(|| text("db.statement"))
            .or_else(|| text("db.operation.name"))
            .or_else(|| text("db.operation"))
            .map(|statement| cut_short(statement, MAX_STATEMENT_CHARS)),
        EdgeKind::Messaging => text("messaging.operation.name").map(str::to_owned),
        _ => None,
    };
    let done = done.unwrap_or_else(|| {
        // A service that never answered (or not yet: the newest traces may still be arriving).
        if call.target.kind == NodeKind::Service && !call.is_refused {
            format!("{} (no server span)", caller.name)
        } else {
            caller.name.clone()
        }
    });
    (done, Some(search_of(caller)))
}

/// The call's answer: the HTTP status code, else the gRPC one (the caller's view first), else
/// whether it failed.
fn status_of(call: &TraceCall<'_>) -> String {
    if call.is_refused {
        return REFUSED_STATUS.to_owned();
    }
    let sides = || call.caller.into_iter().chain(call.callee);
    let code = |key: &str| {
        sides().find_map(|span| match attr_get(&span.attributes, key)? {
            AttrValue::Int(code) => Some(*code),
            AttrValue::Str(code) => code.parse().ok(),
            _ => None,
        })
    };
    if let Some(code) = code("http.response.status_code").or_else(|| code("http.status_code")) {
        return format!("HTTP {code}");
    }
    if let Some(code) = code("rpc.grpc.status_code") {
        return match grpc_code_name(code) {
            Some(name) => format!("gRPC {code} {name}"),
            None => format!("gRPC {code}"),
        };
    }
    if call.is_error { "error" } else { "ok" }.to_owned()
}

fn grpc_code_name(code: i64) -> Option<&'static str> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(usize::try_from(code).ok()?).copied()
}

/// `text` whole when short, else its first `max_chars` characters and "…", whitespace runs
/// as one space (statements span lines).
fn cut_short(text: &str, max_chars: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &joined[..end]),
        None => joined,
    }
}

#[cfg(test)]
#[path = "edge_split/tests.rs"]
mod tests;
