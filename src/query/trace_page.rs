//! One page of a trace: a window of its spans and what holds for the whole trace, so readers
//! of a huge trace hold a page of spans, never all of them, once the store read is done.

use std::collections::BTreeSet;

use crate::model::Span;

/// A window of one trace's spans, in the store's order (start time, then span id), with the
/// figures of the whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePage {
    /// At most the requested number, from `offset` on.
    pub spans: Vec<Span>,
    /// Position of `spans[0]` among all the trace's spans.
    pub offset: usize,
    pub num_spans: usize,
    pub num_errors: usize,
    /// Earliest start and latest end of all the trace's spans.
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Distinct service names of all the trace's spans, sorted.
    pub services: Vec<String>,
}

impl TracePage {
    /// Cuts `spans` (the whole trace, in the store's order) to `limit` spans from `offset` on;
    /// the rest is dropped here. An offset past the end gives an empty page.
    pub fn cut(mut spans: Vec<Span>, offset: usize, limit: usize) -> Self {
        let num_spans = spans.len();
        let num_errors = spans.iter().filter(|span| span.is_error()).count();
        let start_unix_nano = spans
            .iter()
            .map(|span| span.start_time_unix_nano)
            .min()
            .unwrap_or(0);
        let end_unix_nano = spans
            .iter()
            .map(|span| span.end_time_unix_nano)
            .max()
            .unwrap_or(start_unix_nano);
        let services: BTreeSet<&str> = spans.iter().map(Span::service_name).collect();
        let services = services.into_iter().map(str::to_owned).collect();
        let first = offset.min(num_spans);
        let end = first.saturating_add(limit).min(num_spans);
        spans.truncate(end);
        spans.drain(..first);
        // Gives back the whole trace's allocation: only the page is kept from here on.
        spans.shrink_to_fit();
        Self {
            spans,
            offset,
            num_spans,
            num_errors,
            start_unix_nano,
            end_unix_nano,
            services,
        }
    }

    /// Whether spans follow this page.
    pub fn is_truncated(&self) -> bool {
        self.offset.saturating_add(self.spans.len()) < self.num_spans
    }

    /// Where the next page starts, when one follows.
    pub fn next_offset(&self) -> Option<usize> {
        self.is_truncated().then(|| self.offset + self.spans.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StatusCode;
    use crate::store::conformance::fixtures::{resource, scope, typical_span};

    /// Ten spans 1 µs apart, alternating services `b` and `a`, every third an error.
    fn trace_of_ten() -> Vec<Span> {
        let scope = scope();
        (0..10_u64)
            .map(|number| {
                let service = resource(["b", "a"][(number % 2) as usize]);
                let mut span = typical_span(&service, &scope, 1, number, 1_000 * (number + 1));
                if number % 3 == 0 {
                    span.status_code = StatusCode::Error;
                }
                span
            })
            .collect()
    }

    fn numbers(page: &TracePage) -> Vec<u64> {
        page.spans
            .iter()
            .map(|span| span.start_time_unix_nano / 1_000 - 1)
            .collect()
    }

    #[test]
    fn a_trace_page_holds_its_window_and_the_whole_trace_figures() {
        let page = TracePage::cut(trace_of_ten(), 4, 3);
        assert_eq!(numbers(&page), [4, 5, 6]);
        assert_eq!(page.offset, 4);
        assert_eq!(page.num_spans, 10);
        assert_eq!(page.num_errors, 4);
        assert_eq!(page.start_unix_nano, 1_000);
        assert_eq!(page.end_unix_nano, 10_000 + 12_345_678);
        assert_eq!(page.services, ["a", "b"]);
        assert!(page.is_truncated());
        assert_eq!(page.next_offset(), Some(7));
    }

    #[test]
    fn the_last_trace_page_is_not_truncated() {
        let page = TracePage::cut(trace_of_ten(), 7, 3);
        assert_eq!(numbers(&page), [7, 8, 9]);
        assert!(!page.is_truncated());
        assert_eq!(page.next_offset(), None);

        let whole = TracePage::cut(trace_of_ten(), 0, 100);
        assert_eq!(whole.spans.len(), 10);
        assert!(!whole.is_truncated());
    }

    #[test]
    fn a_trace_page_past_the_end_is_empty() {
        let page = TracePage::cut(trace_of_ten(), 25, 3);
        assert!(page.spans.is_empty());
        assert_eq!(page.offset, 25);
        assert_eq!(page.num_spans, 10);
        assert!(!page.is_truncated());
        assert_eq!(page.next_offset(), None);
    }
}
