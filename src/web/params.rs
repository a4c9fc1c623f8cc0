//! Strict parsing of query strings: unknown, repeated or malformed parameters are errors that
//! name the parameter, never silently replaced by defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::ApiError;
use crate::model::graph::NodeKey;
use crate::model::now_unix_nano;
use crate::query::{GraphFilter, GraphRange, QueryService};
use crate::store::{MetricQuery, TraceQuery};

/// Default look-back when `from` is not given.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

/// Parameters of one query string, each at most once and from a known set.
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn parse(query_string: &str, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
            .map_err(|err| ApiError::BadRequest(format!("malformed query string: {err}")))?;
        let mut params = BTreeMap::new();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {key:?}; allowed: {}",
                    allowed.join(", ")
                )));
            }
            if params.insert(key.clone(), value).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "query parameter {key:?} given more than once"
                )));
            }
        }
        Ok(Self(params))
    }

    /// A non-empty text value.
    pub fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).filter(|value| !value.is_empty()).cloned()
    }

    fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(raw) = self.text(key) else {
            return Ok(None);
        };
        parse(&raw).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid {key} {raw:?}: expected {expected}"))
        })
    }

    pub fn millis_as_nanos(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.parsed(
            key,
            |raw| {
                let millis: f64 = raw.parse().ok()?;
                (0.0..1e12)
                    .contains(&millis)
                    .then(|| Duration::from_secs_f64(millis / 1000.0).as_nanos() as u64)
            },
            "a non-negative number of milliseconds",
        )
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.parsed(
            key,
            |raw| match raw {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            "true or false",
        )
    }

    pub fn limit(&self) -> Result<usize, ApiError> {
        self.limit_within(DEFAULT_LIMIT, MAX_LIMIT)
    }

    /// `limit` from 1 to `max`, `default` when not given.
    fn limit_within(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        let limit = self.parsed(
            "limit",
            |raw| raw.parse::<usize>().ok().filter(|n| (1..=max).contains(n)),
            &format!("an integer from 1 to {max}"),
        )?;
        Ok(limit.unwrap_or(default))
    }

    /// `offset`, a count of items to skip, 0 when not given.
    fn offset(&self) -> Result<usize, ApiError> {
        let offset = self.parsed(
            "offset",
            |raw| raw.parse::<usize>().ok(),
            "a non-negative integer",
        )?;
        Ok(offset.unwrap_or(0))
    }

    /// `from`/`to` as RFC 3339 timestamps or integer Unix nanoseconds; default the last hour.
    pub fn time_range(&self) -> Result<(u64, u64), ApiError> {
        self.time_range_of("from", "to")
    }

    /// [`Params::time_range`] from the parameters named `from_key` and `to_key`.
    pub fn time_range_of(&self, from_key: &str, to_key: &str) -> Result<(u64, u64), ApiError> {
        let expected = "an RFC 3339 time (2026-01-02T15:04:05Z) or Unix nanoseconds";
        let now = now_unix_nano();
        let to = self.parsed(to_key, parse_time, expected)?.unwrap_or(now);
        let from = self
            .parsed(from_key, parse_time, expected)?
            .unwrap_or_else(|| to.saturating_sub(DEFAULT_LOOKBACK.as_nanos() as u64));
        if from >= to {
            return Err(ApiError::BadRequest(format!(
                "invalid time range: {from_key} ({from}) must be before {to_key} ({to})"
            )));
        }
        Ok((from, to))
    }

    /// `key=value`, split at the first `=`.
    pub fn attribute(&self) -> Result<Option<(String, String)>, ApiError> {
        self.parsed(
            "attr",
            |raw| {
                let (key, value) = raw.split_once('=')?;
                (!key.is_empty()).then(|| (key.to_owned(), value.to_owned()))
            },
            "key=value",
        )
    }
}

fn parse_time(raw: &str) -> Option<u64> {
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse().ok();
    }
    crate::model::parse_rfc3339(raw)
}

pub const TRACE_SEARCH_PARAMS: &[&str] = &[
    "service",
    "operation",
    "min_duration_ms",
    "max_duration_ms",
    "error",
    "attr",
    "from",
    "to",
    "limit",
];

pub fn trace_query(query_string: &str) -> Result<TraceQuery, ApiError> {
    let params = Params::parse(query_string, TRACE_SEARCH_PARAMS)?;
    let (from_unix_nano, to_unix_nano) = params.time_range()?;
    let min_duration_nanos = params.millis_as_nanos("min_duration_ms")?;
    let max_duration_nanos = params.millis_as_nanos("max_duration_ms")?;
    if let (Some(min), Some(max)) = (min_duration_nanos, max_duration_nanos)
        && min > max
    {
        return Err(ApiError::BadRequest(
            "min_duration_ms must not exceed max_duration_ms".to_owned(),
        ));
    }
    Ok(TraceQuery {
        service: params.text("service"),
        operation: params.text("operation"),
        from_unix_nano,
        to_unix_nano,
        min_duration_nanos,
        max_duration_nanos,
        error: params.bool("error")?,
        attribute: params.attribute()?,
        limit: params.limit()?,
        max_scanned_spans: None,
    })
}

/// Spans one answer of `/api/v1/traces/{trace_id}` holds at most, and by default: about 7 MB
/// of JSON. A longer trace is read a page at a time (`offset`, `limit`).
pub const MAX_TRACE_PAGE_SPANS: usize = 10_000;

/// Which spans of a trace one answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanWindow {
    pub offset: usize,
    pub limit: usize,
}

pub fn span_window(query_string: &str) -> Result<SpanWindow, ApiError> {
    let params = Params::parse(query_string, &["offset", "limit"])?;
    Ok(SpanWindow {
        offset: params.offset()?,
        limit: params.limit_within(MAX_TRACE_PAGE_SPANS, MAX_TRACE_PAGE_SPANS)?,
    })
}

/// Windows the map offers, in minutes.
const WINDOWS: &[(&str, i64)] = &[
    ("1m", 1),
    ("5m", 5),
    ("15m", 15),
    ("1h", 60),
    ("6h", 360),
    ("24h", 1440),
];
const DEFAULT_WINDOW_MINUTES: i64 = 5;
/// The window pages open on: what is happening now.
pub const DEFAULT_WINDOW: &str = "5m";

/// The windows the time pickers offer, shortest first.
pub fn window_names() -> Vec<&'static str> {
    WINDOWS.iter().map(|(name, _)| *name).collect()
}
const MAX_DEPTH: usize = 10;

pub const GRAPH_PARAMS: &[&str] = &["window", "from", "to", "namespace", "focus", "depth"];

impl Params {
    /// `window=5m` (ending now, the minute in progress included) or explicit `from`/`to`
    /// (rounded out to whole minutes); not both.
    pub fn graph_range(&self) -> Result<GraphRange, ApiError> {
        let explicit = self.text("from").is_some() || self.text("to").is_some();
        if explicit {
            if self.text("window").is_some() {
                return Err(ApiError::BadRequest(
                    "give either window or from/to, not both".to_owned(),
                ));
            }
            let (from, to) = self.time_range()?;
            return Ok(GraphRange::covering(from, to, now_unix_nano()));
        }
        let allowed: Vec<&str> = WINDOWS.iter().map(|(name, _)| *name).collect();
        let minutes = self
            .parsed(
                "window",
                |raw| {
                    WINDOWS
                        .iter()
                        .find(|(name, _)| *name == raw)
                        .map(|(_, minutes)| *minutes)
                },
                &format!("one of {}", allowed.join(", ")),
            )?
            .unwrap_or(DEFAULT_WINDOW_MINUTES);
        Ok(GraphRange::last_minutes(minutes, now_unix_nano()))
    }

    pub fn graph_filter(&self) -> Result<GraphFilter, ApiError> {
        let focus = self.parsed(
            "focus",
            NodeKey::parse_id,
            "a node id such as service:checkout",
        )?;
        let depth = self
            .parsed(
                "depth",
                |raw| {
                    raw.parse::<usize>()
                        .ok()
                        .filter(|depth| *depth <= MAX_DEPTH)
                },
                &format!("an integer from 0 to {MAX_DEPTH}"),
            )?
            .unwrap_or(1);
        Ok(GraphFilter {
            namespace: self.text("namespace"),
            focus,
            depth,
            operation_splits: false,
        })
    }
}

/// Whether query pairs name a custom range (a non-empty `from` or `to`): on pages it wins over
/// `window`, which their forms always send.
pub fn names_custom_range(pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .any(|(key, value)| (key == "from" || key == "to") && !value.is_empty())
}

/// The time range a query string names (`window`, or `from` and `to`, which win when both are
/// there), encoded for links that should keep it; empty when it names none.
pub fn range_query(query_string: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    let is_custom = names_custom_range(&pairs);
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(key, value)| {
            !value.is_empty()
                && if is_custom {
                    key == "from" || key == "to"
                } else {
                    key == "window"
                }
        })
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// The range and filter a query string asks for, as written: use [`graph_query`] unless the
/// rates are of no interest.
pub fn parse_graph_query(
    query_string: &str,
    allowed: &[&str],
) -> Result<(GraphRange, GraphFilter), ApiError> {
    let params = Params::parse(query_string, allowed)?;
    Ok((params.graph_range()?, params.graph_filter()?))
}

/// The range and filter a query string asks for, the range's seconds cut to the part that has
/// data ([`QueryService::covered`]): every page and API rate divides by the same seconds.
pub async fn graph_query(
    query: &QueryService,
    query_string: &str,
    allowed: &[&str],
) -> Result<(GraphRange, GraphFilter), ApiError> {
    let (range, filter) = parse_graph_query(query_string, allowed)?;
    Ok((query.covered(range).await?, filter))
}

/// The parameters of `/api/v1/insights` and the audit page.
pub const INSIGHTS_PARAMS: &[&str] = &[
    "window",
    "from",
    "to",
    "namespace",
    "focus",
    "depth",
    "kind",
];

/// Which findings a query string asks for: `kind` (names separated by commas, each one of
/// [`FindingKind::ALL`]) and `namespace`.
pub fn finding_filter(query_string: &str) -> Result<crate::query::FindingFilter, ApiError> {
    use crate::graph::audit::FindingKind;
    let params = Params::parse(query_string, INSIGHTS_PARAMS)?;
    let mut kinds = std::collections::HashSet::new();
    for name in params
        .text("kind")
        .iter()
        .flat_map(|value| value.split(','))
    {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let kind = FindingKind::parse(name).ok_or_else(|| {
            let known: Vec<&str> = FindingKind::ALL.iter().map(|kind| kind.name()).collect();
            ApiError::BadRequest(format!(
                "unknown finding kind `{name}`: expected one of {}",
                known.join(", ")
            ))
        })?;
        kinds.insert(kind);
    }
    Ok(crate::query::FindingFilter {
        kinds,
        namespace: params.text("namespace"),
    })
}

pub fn metric_query(query_string: &str) -> Result<MetricQuery, ApiError> {
    let params = Params::parse(query_string, &["name", "service", "from", "to", "limit"])?;
    let (from_unix_nano, to_unix_nano) = params.time_range()?;
    Ok(MetricQuery {
        name: params.text("name"),
        service: params.text("service"),
        from_unix_nano,
        to_unix_nano,
        limit: params.limit()?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_range_to_keep_is_the_window_or_the_custom_range() {
        assert_eq!(
            super::range_query("window=1h&focus=service%3Aa"),
            "window=1h"
        );
        assert_eq!(
            super::range_query("window=5m&from=2026-01-01T00%3A00%3A00Z&to="),
            "from=2026-01-01T00%3A00%3A00Z"
        );
        assert_eq!(super::range_query("sort=rate"), "");
        assert_eq!(super::DEFAULT_WINDOW, "5m");
        assert_eq!(super::window_names()[0], "1m");
    }

    use super::*;

    fn message(result: Result<TraceQuery, ApiError>) -> String {
        result.expect_err("should fail").to_string()
    }

    #[test]
    fn parses_every_trace_search_parameter() {
        let query = trace_query(
            "service=checkout&operation=GET%20%2Fcart&min_duration_ms=1.5&max_duration_ms=20\
             &error=true&attr=x-correlation-id%3Dabc%3D1&from=2026-01-01T00:00:00Z&to=1767229200000000000&limit=5",
        )
        .expect("valid");
        assert_eq!(query.service.as_deref(), Some("checkout"));
        assert_eq!(query.operation.as_deref(), Some("GET /cart"));
        assert_eq!(query.min_duration_nanos, Some(1_500_000));
        assert_eq!(query.max_duration_nanos, Some(20_000_000));
        assert_eq!(query.error, Some(true));
        assert_eq!(
            query.attribute,
            Some(("x-correlation-id".into(), "abc=1".into()))
        );
        assert_eq!(query.from_unix_nano, 1_767_225_600_000_000_000);
        assert_eq!(query.to_unix_nano, 1_767_229_200_000_000_000);
        assert_eq!(query.limit, 5);
    }

    #[test]
    fn bad_parameters_name_the_problem() {
        assert!(message(trace_query("limit=0")).contains("invalid limit"));
        assert!(message(trace_query("limit=abc")).contains("invalid limit"));
        assert!(message(trace_query("error=maybe")).contains("invalid error"));
        assert!(message(trace_query("min_duration_ms=-1")).contains("min_duration_ms"));
        assert!(message(trace_query("from=yesterday")).contains("invalid from"));
        assert!(message(trace_query("attr=novalue")).contains("key=value"));
        assert!(message(trace_query("colour=red")).contains("unknown query parameter \"colour\""));
        assert!(message(trace_query("limit=1&limit=2")).contains("more than once"));
        assert!(message(trace_query("from=2000&to=1000")).contains("before"));
        assert!(
            message(trace_query("min_duration_ms=5&max_duration_ms=1")).contains("must not exceed")
        );
    }

    #[test]
    fn a_trace_span_window_defaults_to_the_first_full_page() {
        let window = span_window("").expect("valid");
        assert_eq!(
            window,
            SpanWindow {
                offset: 0,
                limit: MAX_TRACE_PAGE_SPANS
            }
        );
        let window = span_window("offset=20000&limit=10000").expect("valid");
        assert_eq!((window.offset, window.limit), (20_000, 10_000));
    }

    #[test]
    fn bad_trace_span_windows_name_the_problem() {
        let message = |query: &str| span_window(query).expect_err(query).to_string();
        let expected = "expected an integer from 1 to 10000";
        for query in [
            "limit=0",
            "limit=ten",
            "limit=10001",
            "limit=-1",
            "limit=1.5",
        ] {
            let text = message(query);
            assert!(
                text.contains("invalid limit") && text.contains(expected),
                "{text}"
            );
        }
        for query in ["offset=-1", "offset=x", "offset=99999999999999999999999"] {
            assert!(message(query).contains("invalid offset"), "{query}");
        }
        assert!(message("page=2").contains("unknown query parameter \"page\""));
        assert!(message("offset=1&offset=2").contains("more than once"));
    }
}
