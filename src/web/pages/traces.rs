//! Trace lists, one trace's waterfall, and opening a trace by the id typed into the
//! navigation (the search page is `trace_search`).

use super::*;

pub(super) const TRACE_COLUMNS: [(&str, bool); 6] = [
    ("Trace", false),
    ("Root", false),
    ("Start", false),
    ("Trace duration", true),
    ("Spans", true),
    ("Errors", true),
];

/// One row per trace; with `matched`, the longest matching span's duration after the trace's.
pub(super) fn trace_rows(
    section: &mut Section,
    traces: &[crate::store::TraceSummary],
    matched: bool,
) {
    for trace in traces {
        let id = trace.trace_id.to_string();
        let mut row = vec![
            Cell::link(
                id.chars().take(16).collect::<String>(),
                links::trace(trace.trace_id),
            ),
            Cell::text(format!("{} {}", trace.root_service, trace.root_name)),
            Cell::text(time_text(trace.start_time_unix_nano)),
            Cell::number(millis_text(trace.duration_nanos as f64)),
        ];
        if matched {
            row.push(Cell::number(millis_text(
                trace.matched_duration_nanos as f64,
            )));
        }
        row.extend([
            Cell::number(trace.num_spans.to_string()),
            Cell::number(trace.num_errors.to_string()),
        ]);
        section.rows.push(row);
    }
}

/// `/traces/open?id=…`, the navigation's trace-id box: a trace id as people paste it opens
/// its page; anything else is answered with what a trace id looks like.
pub async fn open_trace(request: HttpRequest) -> Result<HttpResponse, PageError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let typed = pairs
        .iter()
        .find(|(key, _)| key == "id")
        .map_or("", |(_, value)| value.as_str());
    let trace_id = pasted_trace_id(typed).map_err(ApiError::BadRequest)?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", links::trace(trace_id)))
        .finish())
}

/// A trace id as people paste it: spaces around it, upper case, a W3C `traceparent`
/// (`00-{trace id}-{span id}-01`), or a 64-bit id of 16 digits (zero-padded, as Jaeger and
/// Zipkin show them). The error says what was wrong, in words for the page.
fn pasted_trace_id(typed: &str) -> Result<TraceId, String> {
    let trimmed = typed.trim();
    if trimmed.is_empty() {
        return Err("Type or paste a trace id into the box: 32 hexadecimal digits.".to_owned());
    }
    let parts: Vec<&str> = trimmed.split('-').collect();
    let digits = match parts.as_slice() {
        [_, trace, _, _] if trace.len() == 32 => *trace,
        _ => trimmed,
    };
    let shown: String = trimmed.chars().take(80).collect();
    if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(format!(
            "{shown:?} is not a trace id: a trace id is 32 hexadecimal digits (0-9, a-f), such as 4bf92f3577b34da6a3ce929d0e0e4736."
        ));
    }
    let padded = match digits.len() {
        32 => digits.to_owned(),
        16 => format!("{:0>32}", digits),
        other => {
            return Err(format!(
                "{shown:?} has {other} digits: a trace id has 32 (or 16, for 64-bit ids)."
            ));
        }
    };
    padded
        .parse()
        .map_err(|_| format!("{shown:?} is not a trace id: it is all zeroes."))
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
        let error = ApiError::NotFound(format!(
            "Trace {trace_id} is not stored: it may have aged out, or not arrived yet (spans show a few seconds after they are sent). Try again in a moment, or search the traces of a longer range."
        ));
        return Err(PageError::empty_range(error, links::TRACES));
    };
    let (start, end) = (trace.start_unix_nano, trace.end_unix_nano);
    let cut = trace.is_truncated().then(|| TraceCut {
        num_shown: format::count_text(trace.spans.len() as u64),
        num_spans: format::count_text(trace.num_spans as u64),
        api_url: links::trace_api(trace_id),
        page_size: format::count_text(params::MAX_TRACE_PAGE_SPANS as u64),
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
        max_scanned_spans: Some(crate::query::EXAMPLE_SCAN_SPANS),
    };
    Ok(state.query.search_traces(query).await?)
}

#[cfg(test)]
mod tests {
    use super::pasted_trace_id;

    #[test]
    fn trace_ids_are_read_as_people_paste_them() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let read = |typed: &str| pasted_trace_id(typed).map(|id| id.to_string());
        assert_eq!(read(id).as_deref(), Ok(id));
        assert_eq!(
            read(&format!("  {}\n", id.to_uppercase())).as_deref(),
            Ok(id)
        );
        assert_eq!(
            read(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(),
            Ok(id)
        );
        assert_eq!(
            read("a3ce929d0e0e4736").as_deref(),
            Ok("0000000000000000a3ce929d0e0e4736")
        );
        let message = |typed: &str| pasted_trace_id(typed).expect_err(typed);
        assert!(message("").contains("Type or paste"));
        assert!(message("not-a-trace").contains("hexadecimal digits"));
        assert!(message("<script>").contains("hexadecimal digits"));
        assert!(message("abc123").contains("has 6 digits"));
        assert!(message(&"0".repeat(32)).contains("all zeroes"));
    }
}
