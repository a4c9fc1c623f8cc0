//! Cases for trace search: each filter alone and combined, attributes on indexed and other
//! keys, summaries, limit and order, and strings crafted to break SQL or HTML.

use std::sync::Arc;

use crate::model::{AttrValue, Resource, SpanKind, StatusCode, TraceId};
use crate::store::{MetricReader, StoreWriter, TraceQuery, TraceReader, TraceSummary};

use super::fixtures::{
    BASE_NANOS, HOUR_NANOS, MINUTE_NANOS, all_traces, resource, scope, span_batch, span_id,
    trace_id, typical_span,
};

const MILLI_NANOS: u64 = 1_000_000;

/// Trace numbers of the search result, in result order.
fn found<R: TraceReader>(reader: &R, query: &TraceQuery) -> Vec<u64> {
    let summaries = reader.search_traces(query).expect("search_traces");
    summaries
        .iter()
        .map(|summary| trace_no(summary.trace_id))
        .collect()
}

fn trace_no(id: TraceId) -> u64 {
    (1..=1000)
        .find(|no| trace_id(*no) == id)
        .expect("a fixture trace id")
}

fn with_attribute(key: &str, value: &str) -> TraceQuery {
    TraceQuery {
        attribute: Some((key.to_owned(), value.to_owned())),
        ..all_traces(100)
    }
}

/// Four traces over two hours:
/// 1. checkout `POST /orders` 250 ms at +10 min, child payments `charge` 100 ms with error and
///    `x-correlation-id=corr-1`;
/// 2. checkout `GET /cart` 5 ms at +20 min, `http.response.status_code=200` (int);
/// 3. inventory `reserve` 1 s at +30 min, error only, `customer.tier=gold`, `enduser.id=user-7`,
///    `cache.hit=true`, `sampling.ratio=0.25`; its resource has `correlation_id=res-corr`;
/// 4. checkout `POST /orders` 50 ms at +2 h.
fn write_search_fixture<W: StoreWriter>(writer: &mut W) {
    let checkout = resource("checkout");
    let payments = resource("payments");
    let mut inventory = (*resource("inventory")).clone();
    inventory.attributes.push((
        "correlation_id".to_owned(),
        AttrValue::Str("res-corr".to_owned()),
    ));
    let inventory = Arc::new(inventory);
    let scope = scope();
    let span = |resource: &Arc<Resource>, trace_no, span_no, name: &str, start, millis| {
        let mut span = typical_span(resource, &scope, trace_no, span_no, BASE_NANOS + start);
        span.name = name.to_owned();
        span.end_time_unix_nano = span.start_time_unix_nano + millis * MILLI_NANOS;
        span.attributes
            .retain(|(key, _)| key != "http.response.status_code");
        span
    };
    let root1 = span(&checkout, 1, 10, "POST /orders", 10 * MINUTE_NANOS, 250);
    let mut child1 = span(
        &payments,
        1,
        11,
        "charge",
        10 * MINUTE_NANOS + MILLI_NANOS,
        100,
    );
    child1.parent_span_id = Some(span_id(10));
    child1.kind = SpanKind::Client;
    child1.status_code = StatusCode::Error;
    child1.attributes.push((
        "x-correlation-id".to_owned(),
        AttrValue::Str("corr-1".to_owned()),
    ));
    let mut root2 = span(&checkout, 2, 20, "GET /cart", 20 * MINUTE_NANOS, 5);
    root2
        .attributes
        .push(("http.response.status_code".to_owned(), AttrValue::Int(200)));
    let mut root3 = span(&inventory, 3, 30, "reserve", 30 * MINUTE_NANOS, 1000);
    root3.status_code = StatusCode::Error;
    root3.attributes.extend([
        (
            "customer.tier".to_owned(),
            AttrValue::Str("gold".to_owned()),
        ),
        ("enduser.id".to_owned(), AttrValue::Str("user-7".to_owned())),
        ("cache.hit".to_owned(), AttrValue::Bool(true)),
        ("sampling.ratio".to_owned(), AttrValue::Double(0.25)),
        ("payload".to_owned(), AttrValue::Bytes(b"gold".to_vec())),
    ]);
    let root4 = span(&checkout, 4, 40, "POST /orders", 2 * HOUR_NANOS, 50);
    writer
        .write_batch(&span_batch(vec![root1, child1, root2]))
        .expect("write_batch");
    writer
        .write_batch(&span_batch(vec![root3, root4]))
        .expect("write_batch");
}

/// Service, operation, time range, duration bounds and error status, alone and combined.
pub fn search_span_filters<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    write_search_fixture(&mut writer);
    let all = all_traces(100);
    let query = |edit: &dyn Fn(&mut TraceQuery)| {
        let mut query = all.clone();
        edit(&mut query);
        found(&reader, &query)
    };
    assert_eq!(query(&|_| {}), [4, 3, 2, 1]);
    assert_eq!(query(&|q| q.service = Some("checkout".into())), [4, 2, 1]);
    assert_eq!(query(&|q| q.service = Some("payments".into())), [1]);
    assert_eq!(query(&|q| q.service = Some("nobody".into())), [0_u64; 0]);
    assert_eq!(
        query(&|q| q.operation = Some("POST /orders".into())),
        [4, 1]
    );
    assert_eq!(query(&|q| q.operation = Some("charge".into())), [1]);
    // `from` inclusive, `to` exclusive, on span start times.
    let window = |q: &mut TraceQuery| {
        q.from_unix_nano = BASE_NANOS + 20 * MINUTE_NANOS;
        q.to_unix_nano = BASE_NANOS + 30 * MINUTE_NANOS;
    };
    assert_eq!(query(&window), [2]);
    assert_eq!(
        query(&|q| {
            q.from_unix_nano = BASE_NANOS + 20 * MINUTE_NANOS + 1;
            q.to_unix_nano = BASE_NANOS + 30 * MINUTE_NANOS + 1;
        }),
        [3]
    );
    assert_eq!(query(&|q| q.from_unix_nano = BASE_NANOS + HOUR_NANOS), [4]);
    assert_eq!(query(&|q| q.to_unix_nano = q.from_unix_nano), [0_u64; 0]);
    assert_eq!(
        query(&|q| q.min_duration_nanos = Some(100 * MILLI_NANOS)),
        [3, 1]
    );
    assert_eq!(
        query(&|q| q.min_duration_nanos = Some(251 * MILLI_NANOS)),
        [3]
    );
    assert_eq!(
        query(&|q| q.max_duration_nanos = Some(50 * MILLI_NANOS)),
        [4, 2]
    );
    assert_eq!(
        query(&|q| {
            q.min_duration_nanos = Some(100 * MILLI_NANOS);
            q.max_duration_nanos = Some(100 * MILLI_NANOS);
        }),
        [1]
    );
    assert_eq!(query(&|q| q.error = Some(true)), [3, 1]);
    assert_eq!(query(&|q| q.error = Some(false)), [4, 2, 1]);
    let combined = |q: &mut TraceQuery| {
        q.service = Some("checkout".into());
        q.operation = Some("POST /orders".into());
        q.min_duration_nanos = Some(100 * MILLI_NANOS);
    };
    assert_eq!(query(&combined), [1]);
    assert_eq!(
        query(&|q| {
            combined(q);
            q.from_unix_nano = BASE_NANOS + HOUR_NANOS;
        }),
        [0_u64; 0]
    );
    // The error and the service must hold on the same span.
    assert_eq!(
        query(&|q| {
            q.service = Some("checkout".into());
            q.error = Some(true);
        }),
        [0_u64; 0]
    );
    assert_eq!(
        query(&|q| {
            q.service = Some("payments".into());
            q.error = Some(true);
            q.operation = Some("charge".into());
        }),
        [1]
    );
}

/// `key=value` on span attributes (indexed and not, every scalar type) and resource attributes.
pub fn search_attribute_filters<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    write_search_fixture(&mut writer);
    let attribute = |key: &str, value: &str| found(&reader, &with_attribute(key, value));
    assert_eq!(attribute("x-correlation-id", "corr-1"), [1]);
    assert_eq!(attribute("x-correlation-id", "corr-2"), [0_u64; 0]);
    assert_eq!(attribute("x-correlation-id", "CORR-1"), [0_u64; 0]);
    assert_eq!(attribute("enduser.id", "user-7"), [3]);
    assert_eq!(attribute("customer.tier", "gold"), [3]);
    assert_eq!(attribute("customer.tier", "silver"), [0_u64; 0]);
    assert_eq!(attribute("http.response.status_code", "200"), [2]);
    assert_eq!(attribute("cache.hit", "true"), [3]);
    assert_eq!(attribute("sampling.ratio", "0.25"), [3]);
    assert_eq!(
        attribute("payload", "gold"),
        [0_u64; 0],
        "bytes have no search text"
    );
    assert_eq!(attribute("http.route", "/api/orders/{id}"), [4, 3, 2, 1]);
    // Resource attributes, on any key and on a key that spans index.
    assert_eq!(attribute("host.name", "checkout-host"), [4, 2, 1]);
    assert_eq!(attribute("process.pid", "4242"), [4, 3, 2, 1]);
    assert_eq!(attribute("correlation_id", "res-corr"), [3]);
    // Combined with span filters, which must hold on the same span.
    let mut query = with_attribute("x-correlation-id", "corr-1");
    query.service = Some("payments".into());
    assert_eq!(found(&reader, &query), [1]);
    query.service = Some("checkout".into());
    assert_eq!(found(&reader, &query), [0_u64; 0]);
    let mut query = with_attribute("host.name", "checkout-host");
    query.operation = Some("POST /orders".into());
    query.to_unix_nano = BASE_NANOS + HOUR_NANOS;
    assert_eq!(found(&reader, &query), [1]);
    let mut query = with_attribute("customer.tier", "gold");
    query.error = Some(false);
    assert_eq!(found(&reader, &query), [0_u64; 0]);
}

/// A summary describes the whole trace, not only the matching span.
pub fn search_summary<W: StoreWriter, R: TraceReader + MetricReader>((mut writer, reader): (W, R)) {
    write_search_fixture(&mut writer);
    let mut query = with_attribute("x-correlation-id", "corr-1");
    query.limit = 1;
    let summaries = reader.search_traces(&query).expect("search_traces");
    let start_nanos = BASE_NANOS + 10 * MINUTE_NANOS;
    assert_eq!(
        summaries,
        [TraceSummary {
            trace_id: trace_id(1),
            root_service: "checkout".into(),
            root_name: "POST /orders".into(),
            start_time_unix_nano: start_nanos,
            duration_nanos: 250 * MILLI_NANOS,
            matched_duration_nanos: 100 * MILLI_NANOS,
            num_spans: 2,
            num_errors: 1,
            services: vec!["checkout".into(), "payments".into()],
        }]
    );
    // Without its root, a trace is named after its earliest span.
    let orphan_resource = resource("orphans");
    let mut late = typical_span(
        &orphan_resource,
        &scope(),
        7,
        71,
        start_nanos + 2 * MILLI_NANOS,
    );
    late.parent_span_id = Some(span_id(70));
    late.name = "late".into();
    let mut early = late.clone();
    early.span_id = span_id(72);
    early.start_time_unix_nano = start_nanos + MILLI_NANOS;
    early.end_time_unix_nano = start_nanos + 3 * MILLI_NANOS;
    early.name = "early".into();
    writer
        .write_batch(&span_batch(vec![late, early]))
        .expect("write_batch");
    let mut query = all_traces(10);
    query.service = Some("orphans".into());
    let summaries = reader.search_traces(&query).expect("search_traces");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].root_name, "early");
    assert_eq!(summaries[0].num_spans, 2);
    assert_eq!(summaries[0].num_errors, 0);
    assert_eq!(summaries[0].start_time_unix_nano, start_nanos + MILLI_NANOS);
}

/// The spans of the traces a search finds, whole, in the search's order, until the spans read
/// reach the bound; and each summary's longest matching span.
pub fn search_trace_spans<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    write_search_fixture(&mut writer);
    let trace_numbers = |traces: &[Vec<crate::model::Span>]| -> Vec<u64> {
        traces
            .iter()
            .map(|spans| trace_no(spans[0].trace_id))
            .collect()
    };
    let all = all_traces(100);
    let traces = reader.search_trace_spans(&all, 1_000).expect("search");
    assert_eq!(trace_numbers(&traces), [4, 3, 2, 1]);
    for spans in &traces {
        assert_eq!(
            Some(spans),
            reader.trace(spans[0].trace_id).expect("trace").as_ref(),
            "a trace is read whole, ordered as trace() orders it"
        );
    }
    // The matching span is the child; its trace comes whole, root included.
    let mut query = with_attribute("x-correlation-id", "corr-1");
    query.limit = 1;
    let traces = reader.search_trace_spans(&query, 1_000).expect("search");
    assert_eq!(trace_numbers(&traces), [1]);
    assert_eq!(traces[0].len(), 2);
    // Reading stops once the bound is reached: the trace that reaches it is the last.
    let traces = reader.search_trace_spans(&all, 1).expect("search");
    assert_eq!(traces.len(), 1, "one trace holds the one span allowed");
    let traces = reader.search_trace_spans(&all, 2).expect("search");
    assert_eq!(traces.len(), 2);
    let mut nothing = all.clone();
    nothing.limit = 0;
    assert!(
        reader
            .search_trace_spans(&nothing, 1_000)
            .expect("search")
            .is_empty()
    );
    // Several searches in one read find what each finds alone, in their order, each within
    // its own bounds.
    let failed = TraceQuery {
        error: Some(true),
        ..all.clone()
    };
    let checkout = TraceQuery {
        service: Some("checkout".into()),
        ..all.clone()
    };
    let queries = [all.clone(), failed, nothing, checkout];
    for max_spans in [1, 1_000] {
        let each = reader
            .search_trace_spans_of_each(&queries, max_spans)
            .expect("search");
        let alone: Vec<Vec<Vec<crate::model::Span>>> = queries
            .iter()
            .map(|query| reader.search_trace_spans(query, max_spans).expect("search"))
            .collect();
        assert_eq!(each, alone, "at most {max_spans} spans a search");
    }
    let each = reader
        .search_trace_spans_of_each(&queries, 1_000)
        .expect("search");
    let found: Vec<Vec<u64>> = each.iter().map(|traces| trace_numbers(traces)).collect();
    assert_eq!(found, [vec![4, 3, 2, 1], vec![3, 1], vec![], vec![4, 2, 1]]);
    // A summary's matched duration is its longest matching span's, not the trace's.
    let mut query = all.clone();
    query.service = Some("checkout".into());
    let longest: Vec<(u64, u64, u64)> = reader
        .search_traces(&query)
        .expect("search")
        .iter()
        .map(|summary| {
            (
                trace_no(summary.trace_id),
                summary.duration_nanos / MILLI_NANOS,
                summary.matched_duration_nanos / MILLI_NANOS,
            )
        })
        .collect();
    assert_eq!(longest, [(4, 50, 50), (2, 5, 5), (1, 250, 250)]);
    query.service = Some("payments".into());
    let summaries = reader.search_traces(&query).expect("search");
    assert_eq!(summaries[0].duration_nanos, 250 * MILLI_NANOS);
    assert_eq!(summaries[0].matched_duration_nanos, 100 * MILLI_NANOS);
}

/// At most `limit` traces, newest first, across partitions.
pub fn search_limit_and_order<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let frontend = resource("frontend");
    let spans = (1..=30)
        .map(|no| {
            typical_span(
                &frontend,
                &scope(),
                no,
                no,
                BASE_NANOS + no * 7 * MINUTE_NANOS,
            )
        })
        .collect();
    writer.write_batch(&span_batch(spans)).expect("write_batch");
    assert_eq!(found(&reader, &all_traces(5)), [30, 29, 28, 27, 26]);
    assert_eq!(found(&reader, &all_traces(1)), [30]);
    assert_eq!(found(&reader, &all_traces(0)), [0_u64; 0]);
    let everything: Vec<u64> = (1..=30).rev().collect();
    assert_eq!(found(&reader, &all_traces(100)), everything);
    let mut query = all_traces(3);
    query.to_unix_nano = BASE_NANOS + 100 * MINUTE_NANOS;
    assert_eq!(found(&reader, &query), [14, 13, 12]);
    query.attribute = Some(("http.route".into(), "/api/orders/{id}".into()));
    assert_eq!(found(&reader, &query), [14, 13, 12]);
}

const HOSTILE: &[&str] = &[
    "'; DROP TABLE spans; --",
    "\" OR 1=1 --",
    "x' OR '1'='1",
    "<script>alert('x')</script>",
    "%_*?[]\\",
    "line\nbreak\ttab\r\u{0}nul\u{1b}[31m",
    "Zürich 服务 🚀 \u{202e}rtl",
];

/// Strings that break careless SQL or HTML are stored exactly and found by equality only.
pub fn search_hostile_strings<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let mut spans = Vec::new();
    for (no, hostile) in (1_u64..).zip(HOSTILE) {
        let mut hostile_resource = (*resource(hostile)).clone();
        hostile_resource
            .attributes
            .push(((*hostile).to_owned(), AttrValue::Str((*hostile).to_owned())));
        let hostile_resource = Arc::new(hostile_resource);
        let mut span = typical_span(
            &hostile_resource,
            &scope(),
            no,
            no,
            BASE_NANOS + no * MINUTE_NANOS,
        );
        span.name = (*hostile).to_owned();
        span.status_message = (*hostile).to_owned();
        span.trace_state = (*hostile).to_owned();
        span.attributes.push((
            "x-correlation-id".into(),
            AttrValue::Str((*hostile).to_owned()),
        ));
        span.attributes
            .push(((*hostile).to_owned(), AttrValue::Str((*hostile).to_owned())));
        spans.push(span);
    }
    writer
        .write_batch(&span_batch(spans.clone()))
        .expect("write_batch");
    for (no, (hostile, span)) in (1_u64..).zip(HOSTILE.iter().zip(spans)) {
        assert_eq!(reader.trace(trace_id(no)).expect("trace"), Some(vec![span]));
        let mut by_service = all_traces(100);
        by_service.service = Some((*hostile).to_owned());
        assert_eq!(found(&reader, &by_service), [no], "service {hostile:?}");
        let mut by_operation = all_traces(100);
        by_operation.operation = Some((*hostile).to_owned());
        assert_eq!(found(&reader, &by_operation), [no], "operation {hostile:?}");
        assert_eq!(
            found(&reader, &with_attribute("x-correlation-id", hostile)),
            [no]
        );
        assert_eq!(found(&reader, &with_attribute(hostile, hostile)), [no]);
    }
    let mut wildcard = all_traces(100);
    wildcard.service = Some("%".into());
    assert_eq!(found(&reader, &wildcard), [0_u64; 0]);
    assert_eq!(
        found(&reader, &all_traces(100)).len(),
        HOSTILE.len(),
        "nothing was dropped"
    );
}
