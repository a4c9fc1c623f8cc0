//! Trace search and the trace waterfall.

use super::*;

pub(super) const TRACE_COLUMNS: [(&str, bool); 6] = [
    ("Trace", false),
    ("Root", false),
    ("Start", false),
    ("Duration", true),
    ("Spans", true),
    ("Errors", true),
];

pub(super) fn trace_rows(section: &mut Section, traces: &[crate::store::TraceSummary]) {
    for trace in traces {
        let id = trace.trace_id.to_string();
        section.rows.push(vec![
            Cell::link(
                id.chars().take(16).collect::<String>(),
                links::trace(trace.trace_id),
            ),
            Cell::text(format!("{} {}", trace.root_service, trace.root_name)),
            Cell::text(time_text(trace.start_time_unix_nano)),
            Cell::number(millis_text(trace.duration_nanos as f64)),
            Cell::number(trace.num_spans.to_string()),
            Cell::number(trace.num_errors.to_string()),
        ]);
    }
}

pub async fn traces(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    let query = params::trace_query(&query_string)?;
    let found = state.query.search_traces(query).await?;
    let mut page = TablePage::new(
        Frame::new("Traces", "Traces"),
        "Traces",
        "Newest first. Attribute: key=value, e.g. x-correlation-id=abc. Errors: true or false. Times: RFC 3339 (default: the last hour).",
    );
    page.form_action = links::TRACES.to_owned();
    page.form = trace_form(&query_string);
    let mut section = Section::new(
        format!("{} traces", found.len()),
        "No trace matches.",
        &TRACE_COLUMNS,
    );
    trace_rows(&mut section, &found);
    page.sections.push(section);
    Ok(respond(&page))
}

/// The search form, filled with what was searched.
fn trace_form(query_string: &str) -> Vec<Field> {
    let parsed: Vec<(String, String)> =
        serde_urlencoded::from_str(query_string).unwrap_or_default();
    let field = |label, name: &'static str, placeholder, size| Field {
        label,
        name,
        value: parsed
            .iter()
            .find(|(key, _)| key == name)
            .map_or(String::new(), |(_, value)| value.clone()),
        placeholder,
        size,
    };
    vec![
        field("Service", "service", "checkout", 14),
        field("Operation", "operation", "GET /orders", 16),
        field("Min ms", "min_duration_ms", "", 6),
        field("Max ms", "max_duration_ms", "", 6),
        field("Errors", "error", "true", 5),
        field("Attribute", "attr", "x-correlation-id=abc", 22),
        field("From", "from", "2026-01-01T10:00:00Z", 18),
        field("To", "to", "", 18),
    ]
}

/// The waterfall of one trace: its first [`waterfall::MAX_SPANS`] spans by start time, the
/// cards counting the whole trace.
pub async fn trace(
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let raw = path.into_inner();
    let trace_id: TraceId = raw
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a trace id (32 hex digits)")))?;
    let Some(trace) = state
        .query
        .trace_page(trace_id, 0, waterfall::MAX_SPANS)
        .await?
    else {
        return Err(ApiError::NotFound(format!(
            "Trace {raw} is not stored (it may have aged out)."
        ))
        .into());
    };
    let (start, end) = (trace.start_unix_nano, trace.end_unix_nano);
    let cut = trace.is_truncated().then(|| TraceCut {
        num_shown: count_text(trace.spans.len()),
        num_spans: count_text(trace.num_spans),
        api_url: links::trace_api(trace_id),
        page_size: count_text(params::MAX_TRACE_PAGE_SPANS),
    });
    let page = TracePage {
        frame: Frame::new(format!("Trace {raw}"), "Traces"),
        trace_id: trace_id.to_string(),
        cards: vec![
            Card::new("duration", millis_text(end.saturating_sub(start) as f64)),
            Card::new("spans", trace.num_spans.to_string()),
            Card::new("services", trace.services.len().to_string()),
            Card::new("errors", trace.num_errors.to_string()),
            Card::new("started", time_text(start)),
        ],
        cut,
        spans: waterfall::rows(&trace.spans, start, end),
    };
    Ok(respond(&page))
}

/// `12345` as `12,345`.
fn count_text(count: usize) -> String {
    let digits = count.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// Traces of `service` in the last hour, newest first (only errors when `errors_only`).
pub(super) async fn recent_traces(
    state: &WebState,
    service: &str,
    errors_only: bool,
) -> Result<Vec<crate::store::TraceSummary>, PageError> {
    let now = now_unix_nano();
    let query = TraceQuery {
        service: Some(service.to_owned()),
        operation: None,
        from_unix_nano: now.saturating_sub(3_600_000_000_000),
        to_unix_nano: now + crate::model::NANOS_PER_MINUTE,
        min_duration_nanos: None,
        max_duration_nanos: None,
        error: errors_only.then_some(true),
        attribute: None,
        limit: 10,
    };
    Ok(state.query.search_traces(query).await?)
}

#[cfg(test)]
mod tests {
    use super::count_text;

    #[test]
    fn trace_counts_are_grouped_by_thousands() {
        assert_eq!(count_text(0), "0");
        assert_eq!(count_text(999), "999");
        assert_eq!(count_text(2_000), "2,000");
        assert_eq!(count_text(100_000), "100,000");
        assert_eq!(count_text(1_234_567), "1,234,567");
    }
}
