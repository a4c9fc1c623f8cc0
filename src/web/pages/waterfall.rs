//! A trace as waterfall rows: spans in tree order (children by start time), bars scaled to the
//! trace, a colour per service, and the critical path — from the root, repeatedly the child
//! that finished last, which is what the parent waited for. A trace of more than [`MAX_SPANS`]
//! spans is shown cut to its first ones; the critical path is then the one among them.

use std::collections::{HashMap, HashSet};

use super::views::WaterfallSpan;
use crate::model::{AttrValue, Span, SpanId, StatusCode};
use crate::web::format::millis_text;

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
    "#e15759", "#bab0ac",
];
const INDENT_PX: usize = 14;
const MAX_INDENT_LEVELS: usize = 24;
/// Spans the page shows at most, the first by start time (about 1 MB of HTML). A longer trace
/// says so at the top and links its pages in the JSON API.
pub const MAX_SPANS: usize = 2_000;

fn colour(service: &str) -> &'static str {
    let hash = service.bytes().fold(0u64, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    PALETTE[(hash % PALETTE.len() as u64) as usize]
}

fn display(value: &AttrValue) -> String {
    value
        .to_search_text()
        .unwrap_or_else(|| serde_json::to_string(value).unwrap_or_default())
}

/// Spans in display order with their depth.
fn tree_order(spans: &[Span]) -> Vec<(usize, usize)> {
    let ids: HashSet<SpanId> = spans.iter().map(|span| span.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        match span.parent_span_id.filter(|parent| ids.contains(parent)) {
            Some(parent) => children.entry(parent).or_default().push(index),
            None => roots.push(index),
        }
    }
    let by_start =
        |list: &mut Vec<usize>| list.sort_by_key(|&i| (spans[i].start_time_unix_nano, i));
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    let mut order = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    let mut seen = HashSet::new();
    while let Some((index, depth)) = stack.pop() {
        if !seen.insert(index) {
            continue;
        }
        order.push((index, depth));
        if let Some(list) = children.get(&spans[index].span_id) {
            stack.extend(list.iter().rev().map(|&child| (child, depth + 1)));
        }
    }
    order
}

fn critical_path(spans: &[Span]) -> HashSet<usize> {
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    for (index, span) in spans.iter().enumerate() {
        if let Some(parent) = span.parent_span_id {
            children.entry(parent).or_default().push(index);
        }
    }
    let ids: HashSet<SpanId> = spans.iter().map(|span| span.span_id).collect();
    let root = spans
        .iter()
        .enumerate()
        .filter(|(_, span)| {
            span.parent_span_id
                .is_none_or(|parent| !ids.contains(&parent))
        })
        .max_by_key(|(_, span)| span.duration_nanos())
        .map(|(index, _)| index);
    let mut path = HashSet::new();
    let mut current = root;
    while let Some(index) = current {
        if !path.insert(index) {
            break;
        }
        current = children.get(&spans[index].span_id).and_then(|list| {
            list.iter()
                .copied()
                .max_by_key(|&i| spans[i].end_time_unix_nano)
        });
    }
    path
}

/// Rows of `spans`, bars placed within `start..end` (the whole trace's earliest start and
/// latest end, which a cut trace's first spans may not reach).
pub fn rows(spans: &[Span], start: u64, end: u64) -> Vec<WaterfallSpan> {
    let total = end.saturating_sub(start).max(1) as f64;
    let critical = critical_path(spans);
    tree_order(spans)
        .into_iter()
        .map(|(index, depth)| {
            let span = &spans[index];
            let left = span.start_time_unix_nano.saturating_sub(start) as f64 * 100.0 / total;
            let width = span.duration_nanos() as f64 * 100.0 / total;
            let is_error = span.status_code == StatusCode::Error;
            WaterfallSpan {
                service: span.resource.service_name.clone(),
                name: span.name.clone(),
                kind: format!("{:?}", span.kind),
                status: if is_error {
                    format!("error: {}", span.status_message)
                } else {
                    format!("{:?}", span.status_code).to_lowercase()
                },
                indent: depth.min(MAX_INDENT_LEVELS) * INDENT_PX,
                left: format!("{left:.3}"),
                width: format!("{:.3}", width.max(0.2)),
                colour: colour(&span.resource.service_name).to_owned(),
                duration: millis_text(span.duration_nanos() as f64),
                is_error,
                is_critical: critical.contains(&index),
                attributes: span
                    .attributes
                    .iter()
                    .map(|(key, value)| (key.clone(), display(value)))
                    .collect(),
                events: span
                    .events
                    .iter()
                    .map(|event| {
                        let details: Vec<String> = event
                            .attributes
                            .iter()
                            .map(|(key, value)| format!("{key}={}", display(value)))
                            .collect();
                        format!("{} {}", event.name, details.join(" "))
                    })
                    .collect(),
                links: span
                    .links
                    .iter()
                    .map(|link| link.trace_id.to_string())
                    .collect(),
            }
        })
        .collect()
}
