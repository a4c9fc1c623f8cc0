//! Trace summaries for search results, built the same way by every backend from the spans of
//! each trace: root (or earliest) span's service and name, start, duration, span and error
//! counts, services.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::{Span, SpanId, TraceId};
use crate::store::TraceSummary;

/// What a summary needs of one span.
#[derive(Debug, Clone)]
pub(crate) struct SpanBrief {
    pub span_id: SpanId,
    pub is_root: bool,
    pub start_nanos: u64,
    pub end_nanos: u64,
    pub service: String,
    pub name: String,
    pub is_error: bool,
}

impl SpanBrief {
    pub(crate) fn of(span: &Span) -> Self {
        Self {
            span_id: span.span_id,
            is_root: span.parent_span_id.is_none(),
            start_nanos: span.start_time_unix_nano,
            end_nanos: span.end_time_unix_nano,
            service: span.service_name().to_owned(),
            name: span.name.clone(),
            is_error: span.is_error(),
        }
    }
}

/// The summary of one trace's `spans` (none when there are none), `matched_duration_nanos`
/// being its longest matching span's duration.
pub(crate) fn summary_of_spans(
    spans: &[Span],
    matched_duration_nanos: u64,
) -> Option<TraceSummary> {
    let mut acc = TraceAcc::default();
    for span in spans {
        acc.add(SpanBrief::of(span));
    }
    acc.into_summary(spans.first()?.trace_id, matched_duration_nanos)
}

/// A summary under construction from the spans of one trace, each span counted once.
#[derive(Default)]
pub(crate) struct TraceAcc {
    span_ids: HashSet<SpanId>,
    /// `(start, service, name)` of the earliest root span and of the earliest span.
    root: Option<(u64, String, String)>,
    earliest: Option<(u64, String, String)>,
    max_end_nanos: u64,
    num_errors: u64,
    services: BTreeSet<String>,
}

impl TraceAcc {
    pub(crate) fn add(&mut self, span: SpanBrief) {
        if !self.span_ids.insert(span.span_id) {
            return;
        }
        let start = span.start_nanos;
        let is_earlier = |slot: &Option<(u64, String, String)>| {
            slot.as_ref().is_none_or(|(known, _, _)| start < *known)
        };
        if span.is_root && is_earlier(&self.root) {
            self.root = Some((start, span.service.clone(), span.name.clone()));
        }
        if is_earlier(&self.earliest) {
            self.earliest = Some((start, span.service.clone(), span.name));
        }
        self.max_end_nanos = self.max_end_nanos.max(span.end_nanos);
        self.num_errors += u64::from(span.is_error);
        self.services.insert(span.service);
    }

    /// The summary, `matched_duration_nanos` being its longest matching span's duration.
    pub(crate) fn into_summary(
        self,
        trace_id: TraceId,
        matched_duration_nanos: u64,
    ) -> Option<TraceSummary> {
        let start_nanos = self.earliest.as_ref()?.0;
        let (_, root_service, root_name) = self.root.or(self.earliest)?;
        Some(TraceSummary {
            trace_id,
            root_service,
            root_name,
            start_time_unix_nano: start_nanos,
            duration_nanos: self.max_end_nanos.saturating_sub(start_nanos),
            matched_duration_nanos,
            num_spans: self.span_ids.len() as u64,
            num_errors: self.num_errors,
            services: self.services.into_iter().collect(),
        })
    }
}

/// The summaries of `found` traces (those with spans in `accs`), each with its longest matching
/// span's duration, latest start first.
pub(crate) fn summaries_newest_first(
    found: &[(TraceId, u64)],
    mut accs: HashMap<TraceId, TraceAcc>,
) -> Vec<TraceSummary> {
    let mut summaries: Vec<TraceSummary> = found
        .iter()
        .filter_map(|(trace_id, matched_nanos)| {
            accs.remove(trace_id)?
                .into_summary(*trace_id, *matched_nanos)
        })
        .collect();
    summaries.sort_by(|left, right| {
        right
            .start_time_unix_nano
            .cmp(&left.start_time_unix_nano)
            .then(left.trace_id.cmp(&right.trace_id))
    });
    summaries
}
