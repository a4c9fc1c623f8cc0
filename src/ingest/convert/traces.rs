//! OTLP spans → model spans: ids, timestamps, events, links, status.

use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, span};

use super::attributes::convert_attributes;
use super::{
    ConvertLimits, Converted, Invalid, Rejections, check_plausible_time, convert_resource,
    convert_scope,
};
use crate::model::{Event, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

/// Where a span sits in its request, for rejection messages.
struct SpanLocation {
    resource_index: usize,
    scope_index: usize,
    span_index: usize,
}

impl fmt::Display for SpanLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "resource {} scope {} span {}",
            self.resource_index, self.scope_index, self.span_index
        )
    }
}

/// Converts every valid span; invalid ones are counted and summarised, never fatal.
pub fn convert_traces(
    request: ExportTraceServiceRequest,
    now_unix_nano: u64,
    limits: &ConvertLimits,
) -> Converted<Span> {
    let num_spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|resource_spans| &resource_spans.scope_spans)
        .map(|scope_spans| scope_spans.spans.len())
        .sum();
    let mut spans = Vec::with_capacity(num_spans);
    let mut rejections = Rejections::default();
    let mut num_unknown_service = 0;
    let mut num_limited = 0;
    for (resource_index, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = convert_resource(resource_spans.resource, limits, &mut num_limited);
        let num_before = spans.len();
        for (scope_index, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let scope = convert_scope(scope_spans.scope, limits, &mut num_limited);
            for (span_index, otlp_span) in scope_spans.spans.into_iter().enumerate() {
                match convert_span(otlp_span, &resource, &scope, now_unix_nano, limits) {
                    Ok(mut span) => {
                        num_limited += limit_span(&mut span, limits);
                        spans.push(span);
                    }
                    Err(reason) => {
                        let location = SpanLocation {
                            resource_index,
                            scope_index,
                            span_index,
                        };
                        rejections.reject(1, location, &reason);
                    }
                }
            }
        }
        if !resource.has_service_name() {
            num_unknown_service += (spans.len() - num_before) as u64;
        }
    }
    Converted {
        num_rejected: rejections.num_rejected,
        rejection_message: rejections.into_message(spans.len(), "spans"),
        items: spans,
        num_unknown_service,
        num_limited_attributes: num_limited,
    }
}

/// Applies the attribute limits to a span, its events and links.
fn limit_span(span: &mut Span, limits: &ConvertLimits) -> u64 {
    let mut num_limited = limits.limit(&mut span.attributes, &mut span.dropped_attributes_count);
    for event in &mut span.events {
        num_limited += limits.limit(&mut event.attributes, &mut event.dropped_attributes_count);
    }
    for link in &mut span.links {
        num_limited += limits.limit(&mut link.attributes, &mut link.dropped_attributes_count);
    }
    num_limited
}

fn convert_span(
    otlp_span: OtlpSpan,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    now_unix_nano: u64,
    limits: &ConvertLimits,
) -> Result<Span, Invalid> {
    let trace_id = TraceId::from_bytes(&otlp_span.trace_id).map_err(Invalid::Id)?;
    let span_id = SpanId::from_bytes(&otlp_span.span_id).map_err(Invalid::Id)?;
    let parent_span_id = parent_span_id(&otlp_span.parent_span_id)?;
    check_span_times(&otlp_span, now_unix_nano, limits)?;
    let (links, num_invalid_links) = convert_links(otlp_span.links);
    let status = otlp_span.status.unwrap_or_default();
    Ok(Span {
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
        trace_id,
        span_id,
        parent_span_id,
        trace_state: otlp_span.trace_state,
        flags: otlp_span.flags,
        name: otlp_span.name,
        kind: SpanKind::from_otlp(otlp_span.kind),
        start_time_unix_nano: otlp_span.start_time_unix_nano,
        end_time_unix_nano: otlp_span.end_time_unix_nano,
        attributes: convert_attributes(otlp_span.attributes),
        dropped_attributes_count: otlp_span.dropped_attributes_count,
        events: otlp_span.events.into_iter().map(convert_event).collect(),
        dropped_events_count: otlp_span.dropped_events_count,
        links,
        dropped_links_count: otlp_span
            .dropped_links_count
            .saturating_add(num_invalid_links),
        status_code: StatusCode::from_otlp(status.code),
        status_message: status.message,
    })
}

/// Empty or all-zero means "root span"; any other length is an error.
fn parent_span_id(bytes: &[u8]) -> Result<Option<SpanId>, Invalid> {
    if bytes.iter().all(|byte| *byte == 0) {
        return Ok(None);
    }
    SpanId::from_bytes(bytes)
        .map(Some)
        .map_err(Invalid::ParentId)
}

fn check_span_times(
    otlp_span: &OtlpSpan,
    now_unix_nano: u64,
    limits: &ConvertLimits,
) -> Result<(), Invalid> {
    let start = otlp_span.start_time_unix_nano;
    let end = otlp_span.end_time_unix_nano;
    if start == 0 {
        return Err(Invalid::MissingTime {
            field: "start_time_unix_nano",
        });
    }
    if end < start {
        return Err(Invalid::EndBeforeStart { start, end });
    }
    check_plausible_time("start_time_unix_nano", start, now_unix_nano, limits)?;
    check_plausible_time("end_time_unix_nano", end, now_unix_nano, limits)
}

fn convert_event(event: span::Event) -> Event {
    Event {
        time_unix_nano: event.time_unix_nano,
        name: event.name,
        attributes: convert_attributes(event.attributes),
        dropped_attributes_count: event.dropped_attributes_count,
    }
}

/// Links with invalid ids are dropped; the second value counts them.
fn convert_links(otlp_links: Vec<span::Link>) -> (Vec<Link>, u32) {
    let num_links = otlp_links.len();
    let links: Vec<Link> = otlp_links.into_iter().filter_map(convert_link).collect();
    let num_invalid = u32::try_from(num_links - links.len()).unwrap_or(u32::MAX);
    (links, num_invalid)
}

fn convert_link(link: span::Link) -> Option<Link> {
    Some(Link {
        trace_id: TraceId::from_bytes(&link.trace_id).ok()?,
        span_id: SpanId::from_bytes(&link.span_id).ok()?,
        trace_state: link.trace_state,
        attributes: convert_attributes(link.attributes),
        dropped_attributes_count: link.dropped_attributes_count,
        flags: link.flags,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
