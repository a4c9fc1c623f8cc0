//! The trace search page: the API's search (`params::trace_query`, strict) behind a forgiving
//! form — the UI's time range instead of times typed, errors as a checkbox, a sort by
//! duration — with durations that say whether they are the trace's or the matched span's.
//! A search the page cannot read is shown above the form it came from, not as an error page.

use super::*;

/// How the page orders what it found (`sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TraceSort {
    Newest,
    /// By the whole trace's duration.
    Slowest,
    /// By the longest matching span's duration.
    SlowestSpan,
}

impl TraceSort {
    /// `(sort, its value in the URL, its name in the form)`, the default first.
    const ALL: [(TraceSort, &'static str, &'static str); 3] = [
        (TraceSort::Newest, "newest", "newest first"),
        (TraceSort::Slowest, "duration", "slowest trace first"),
        (TraceSort::SlowestSpan, "span", "slowest matched span first"),
    ];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, value, _)| *value == text)
            .map(|(sort, _, _)| *sort)
    }
}

/// Traces a sort by duration picks from: the newest matches (at least the page's limit).
const SORT_CANDIDATES: usize = 100;

/// A search as the page understood it.
struct PageSearch {
    query: TraceQuery,
    sort: TraceSort,
    /// Traces shown (the query may read more to sort them).
    limit: usize,
    /// Whether the search names conditions on spans (else every span matches, and a
    /// matched span's duration says nothing).
    matches_spans: bool,
}

const INTRO: &str = "Trace duration is the whole trace, from its first span's start to its last span's end, asynchronous consumers included. Matched span is the longest span that met the search: Span min/max ms bound it. Attribute: key=value, e.g. x-correlation-id=abc.";

pub async fn traces(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    let mut page = TablePage::new(
        Frame::new("Traces", "Traces").ranged(request.path(), &query_string, true),
        "Traces",
        INTRO,
    );
    page.form_action = links::TRACES.to_owned();
    page.form = search_form(&query_string, &page.frame.range_query);
    let search = match page_search(&query_string) {
        Ok(search) => search,
        Err(err) => {
            page.form_error = err.to_string();
            return Ok(respond_with(StatusCode::BAD_REQUEST, &page));
        }
    };
    let mut found = state.query.search_traces(search.query.clone()).await?;
    let num_candidates = found.len();
    match search.sort {
        TraceSort::Newest => {}
        TraceSort::Slowest => found.sort_by_key(|trace| std::cmp::Reverse(trace.duration_nanos)),
        TraceSort::SlowestSpan => {
            found.sort_by_key(|trace| std::cmp::Reverse(trace.matched_duration_nanos));
        }
    }
    found.truncate(search.limit);
    let newest = if num_candidates == search.query.limit {
        "the newest "
    } else {
        "the "
    };
    let title = match search.sort {
        TraceSort::Newest => format!("{} traces, newest first", found.len()),
        _ => format!(
            "{} traces, slowest first, of {newest}{} that match",
            found.len(),
            format::count_text(num_candidates as u64)
        ),
    };
    let mut columns = vec![
        ("Trace", false),
        ("Root", false),
        ("Start", false),
        ("Trace duration", true),
    ];
    if search.matches_spans {
        columns.push(("Matched span", true));
    }
    columns.extend([("Spans", true), ("Errors", true)]);
    let mut section = Section::new(title, "No trace matches in this range.", &columns);
    let sort_link = |sort: &str| sorted_href(&query_string, sort);
    let mut sort_links = vec![
        String::new(),
        String::new(),
        sort_link("newest"),
        sort_link("duration"),
    ];
    if search.matches_spans {
        sort_links.push(sort_link("span"));
    }
    section.sortable(sort_links);
    trace_rows(&mut section, &found, search.matches_spans);
    page.sections.push(section);
    Ok(respond(&page))
}

/// The page's parameters as the API's: the range (`window`, the UI's default without one) as
/// `from`/`to` unless the page names times of its own, a ticked box (`on`, `yes`, `true`,
/// `1`) as `error=true`; `sort` is the page's own.
fn page_search(query_string: &str) -> Result<PageSearch, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
        .map_err(|err| ApiError::BadRequest(format!("malformed query string: {err}")))?;
    let is_custom = params::names_custom_range(&pairs);
    let mut api: Vec<(String, String)> = Vec::new();
    let mut window: Vec<(String, String)> = Vec::new();
    let mut sort = TraceSort::Newest;
    for (key, value) in pairs {
        match key.as_str() {
            "window" => window.push((key, value)),
            "sort" => {
                sort = TraceSort::parse(&value).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Sort {value:?} is not a choice: newest, duration or span"
                    ))
                })?;
            }
            "error" => api.push((key, errors_box(&value)?.to_owned())),
            _ => api.push((key, value)),
        }
    }
    if !is_custom {
        let window = serde_urlencoded::to_string(&window).unwrap_or_default();
        let (range, _) = params::parse_graph_query(&window, &["window"])?;
        let (from, to) = range.minutes.unix_nano_bounds();
        api.push(("from".to_owned(), from.to_string()));
        api.push(("to".to_owned(), to.to_string()));
    }
    let mut query = params::trace_query(&serde_urlencoded::to_string(&api).unwrap_or_default())?;
    let limit = query.limit;
    if sort != TraceSort::Newest {
        query.limit = limit.max(SORT_CANDIDATES);
    }
    let matches_spans = query.service.is_some()
        || query.operation.is_some()
        || query.min_duration_nanos.is_some()
        || query.max_duration_nanos.is_some()
        || query.error.is_some()
        || query.attribute.is_some();
    Ok(PageSearch {
        query,
        sort,
        limit,
        matches_spans,
    })
}

/// The errors box as the API's `error`: ticked (as browsers and people write it) or not.
fn errors_box(raw: &str) -> Result<&'static str, ApiError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok("true"),
        "false" | "off" | "no" | "0" => Ok("false"),
        _ => Err(ApiError::BadRequest(format!(
            "Errors {raw:?}: tick the box to see failed traces only, leave it to see all"
        ))),
    }
}

/// This search sorted by `sort`.
fn sorted_href(query_string: &str, sort: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query_string)
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| key != "sort")
            .collect();
    pairs.push(("sort".to_owned(), sort.to_owned()));
    format!(
        "{}?{}",
        links::TRACES,
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// The search form, filled with what was searched; the page's range rides along unseen.
fn search_form(query_string: &str, range_query: &str) -> Vec<Field> {
    let parsed: Vec<(String, String)> =
        serde_urlencoded::from_str(query_string).unwrap_or_default();
    let value = |name: &str| {
        parsed
            .iter()
            .find(|(key, _)| key == name)
            .map_or(String::new(), |(_, value)| value.clone())
    };
    let ticked = errors_box(&value("error")).is_ok_and(|error| error == "true");
    let sorts = TraceSort::ALL
        .iter()
        .map(|(_, value, text)| (*value, *text))
        .collect();
    let mut form = vec![
        Field::text("Service", "service", value("service")).with_hint("checkout", 14),
        Field::text("Operation", "operation", value("operation")).with_hint("GET /orders", 16),
        Field::text("Span min ms", "min_duration_ms", value("min_duration_ms")).with_hint("", 6),
        Field::text("Span max ms", "max_duration_ms", value("max_duration_ms")).with_hint("", 6),
        Field::text("Attribute", "attr", value("attr")).with_hint("x-correlation-id=abc", 22),
        Field::text(
            "Errors only",
            "error",
            if ticked { "true" } else { "" }.to_owned(),
        )
        .with_input(Input::Checkbox),
        Field::text("Sort", "sort", value("sort")).with_input(Input::Select(sorts)),
    ];
    let range: Vec<(String, String)> = serde_urlencoded::from_str(range_query).unwrap_or_default();
    for (key, value) in range {
        let name = match key.as_str() {
            "window" => "window",
            "from" => "from",
            _ => "to",
        };
        form.push(Field::text("", name, value).with_input(Input::Hidden));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_reads_its_range_a_ticked_box_and_a_sort() {
        let search =
            page_search("service=orders&error=on&sort=duration&window=15m&limit=5").expect("valid");
        assert_eq!(search.query.error, Some(true));
        assert_eq!(search.query.service.as_deref(), Some("orders"));
        assert_eq!(search.sort, TraceSort::Slowest);
        assert_eq!((search.limit, search.query.limit), (5, SORT_CANDIDATES));
        let minutes = (search.query.to_unix_nano - search.query.from_unix_nano) / 60_000_000_000;
        assert_eq!(minutes, 15, "the window is the UI's: whole minutes");
        assert!(search.matches_spans);
        // No range: the UI's default window; no condition on spans.
        let search = page_search("").expect("valid");
        let minutes = (search.query.to_unix_nano - search.query.from_unix_nano) / 60_000_000_000;
        assert_eq!(minutes, 5);
        assert!(!search.matches_spans);
        assert_eq!(search.sort, TraceSort::Newest);
        // Times of its own win over the window the range picker sends.
        let search = page_search("window=5m&from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:30Z")
            .expect("valid");
        assert_eq!(
            search.query.to_unix_nano - search.query.from_unix_nano,
            30_000_000_000
        );
        assert_eq!(
            page_search("error=yes").expect("valid").query.error,
            Some(true)
        );
        assert_eq!(
            page_search("error=no").expect("valid").query.error,
            Some(false)
        );
    }

    #[test]
    fn what_the_page_cannot_read_says_why() {
        let message = |query: &str| page_search(query).err().expect(query).to_string();
        assert!(message("error=maybe").contains("tick the box"));
        assert!(message("sort=fastest").contains("newest, duration or span"));
        assert!(message("window=7m").contains("invalid window"));
        assert!(message("min_duration_ms=abc").contains("min_duration_ms"));
    }

    #[test]
    fn sort_links_keep_the_search_and_the_form_keeps_the_range() {
        assert_eq!(
            sorted_href("service=a%20b&sort=newest&window=1h", "duration"),
            "/traces?service=a+b&window=1h&sort=duration"
        );
        let form = search_form("error=true&sort=span", "window=1h");
        let field = |name: &str| form.iter().find(|field| field.name == name).expect(name);
        assert_eq!(field("error").value, "true");
        assert_eq!(field("error").input, Input::Checkbox);
        assert_eq!(field("sort").value, "span");
        assert_eq!(
            (field("window").value.as_str(), &field("window").input),
            ("1h", &Input::Hidden)
        );
    }
}
