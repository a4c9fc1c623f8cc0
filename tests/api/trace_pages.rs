//! Reading traces a page at a time: `/api/v1/traces/{id}` answers at most 10,000 spans
//! (`offset`, `limit`, `truncated`, `next`), the waterfall shows the first 2,000, and a real
//! process reading a trace of 100,000 spans three times at once (and its page) stays within a
//! bounded peak of resident memory.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::Value;

use crate::fixtures::{encode, now_nanos, span, string_attr, trace_request};
use crate::helpers::{TestApp, spawn_app};
use crate::process::{Options, Server, start};

const MIB: u64 = 1024 * 1024;
const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

/// Posts `spans` as one export and checks it was accepted.
async fn post(app: &TestApp, service: &str, spans: Vec<Span>) {
    let body = encode(&trace_request(Some(service), spans));
    let response = app.post_otlp("/v1/traces", &[PROTOBUF], body).await;
    assert_eq!(response.status(), 200);
}

/// Trace `55…55` of three spans started 1 µs apart, stored.
async fn app_with_three_span_trace() -> (TestApp, String) {
    let app = spawn_app().await;
    let spans = (1..=3_u8)
        .map(|number| {
            let mut one = span(0x55, &format!("op {number}"));
            one.span_id = vec![number; 8];
            one.start_time_unix_nano += u64::from(number) * 1_000;
            one
        })
        .collect();
    post(&app, "pages", spans).await;
    app.wait_until_stored().await;
    (app, "55".repeat(16))
}

fn names(page: &Value) -> Vec<&str> {
    page["spans"]
        .as_array()
        .unwrap_or_else(|| panic!("no spans in {page}"))
        .iter()
        .map(|span| span["name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn a_trace_is_read_a_page_at_a_time_through_next() {
    let (app, trace_id) = app_with_three_span_trace().await;

    let (status, whole) = app.trace(&trace_id).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(names(&whole), ["op 1", "op 2", "op 3"]);
    assert_eq!(whole["trace_id"], trace_id.as_str());
    assert_eq!(
        (&whole["num_spans"], &whole["offset"], &whole["truncated"]),
        (&3.into(), &0.into(), &false.into())
    );
    assert!(whole.get("next").is_none(), "{whole}");

    let (status, first) = app
        .get_json(&format!("/api/v1/traces/{trace_id}?limit=2"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(names(&first), ["op 1", "op 2"]);
    assert_eq!(first["truncated"], true);
    assert_eq!(first["num_spans"], 3);
    let next = first["next"].as_str().expect("next");
    assert_eq!(next, format!("/api/v1/traces/{trace_id}?offset=2&limit=2"));

    let (status, second) = app.get_json(next).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(names(&second), ["op 3"]);
    assert_eq!(
        (&second["offset"], &second["truncated"]),
        (&2.into(), &false.into())
    );
    assert!(second.get("next").is_none(), "{second}");

    let (status, past) = app
        .get_json(&format!("/api/v1/traces/{trace_id}?offset=3"))
        .await;
    assert_eq!(status, 200, "{past}");
    assert!(names(&past).is_empty());
    assert_eq!(
        (&past["num_spans"], &past["truncated"]),
        (&3.into(), &false.into())
    );
}

#[tokio::test]
async fn bad_trace_page_parameters_are_400_naming_the_parameter() {
    let (app, trace_id) = app_with_three_span_trace().await;
    for (query, expected) in [
        (
            "limit=0",
            "invalid limit \"0\": expected an integer from 1 to 10000",
        ),
        ("limit=many", "invalid limit \"many\""),
        (
            "limit=10001",
            "invalid limit \"10001\": expected an integer from 1 to 10000",
        ),
        ("limit=2.5", "invalid limit"),
        (
            "offset=-1",
            "invalid offset \"-1\": expected a non-negative integer",
        ),
        ("offset=first", "invalid offset"),
        ("page=2", "unknown query parameter \"page\""),
        ("limit=1&limit=2", "given more than once"),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/traces/{trace_id}?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["error"].as_str().expect("error message");
        assert!(message.contains(expected), "{query}: {message}");
    }
}

/// Spans in the huge trace, sent as `NUM_BATCHES` exports.
const NUM_SPANS: u64 = 100_000;
const NUM_BATCHES: u64 = 50;
const HUGE_TRACE: u8 = 0x5a;
/// How much the process's peak resident memory may grow while serving the reads.
const MAX_PEAK_GROWTH: u64 = 300 * MIB;

/// Span `number` (1-based) of the huge trace: a tree of fan-out 10 under span 1, started 1 µs
/// apart, each 1 ms long.
fn huge_trace_span(number: u64, start_nanos: u64) -> Span {
    let parent = number / 10;
    let start = start_nanos + number * 1_000;
    Span {
        trace_id: vec![HUGE_TRACE; 16],
        span_id: number.to_be_bytes().to_vec(),
        parent_span_id: if number == 1 {
            Vec::new()
        } else {
            parent.max(1).to_be_bytes().to_vec()
        },
        name: format!("op {}", number % 50),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        attributes: vec![string_attr("http.request.method", "GET")],
        status: Some(Status::default()),
        ..Span::default()
    }
}

async fn wait_until_stored(server: &Server, num_spans: u64) {
    let started = Instant::now();
    let series = "cartograph_stored_items_total{signal=\"traces\"}";
    while (server.metric(series).await as u64) < num_spans {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{num_spans} spans not stored within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(server: &Server, path: &str) -> (u16, Vec<u8>) {
    let response = server
        .client
        .get(format!("{}{path}", server.ui))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_of_100_000_spans_is_read_in_pages_within_bounded_memory() {
    let server = start(Options::default()).await;
    let trace_id = format!("{HUGE_TRACE:02x}").repeat(16);
    let start_nanos = now_nanos() - 60_000_000_000;
    let batch_size = NUM_SPANS / NUM_BATCHES;

    let started = Instant::now();
    for batch in 0..NUM_BATCHES {
        let spans = (batch * batch_size + 1..=(batch + 1) * batch_size)
            .map(|number| huge_trace_span(number, start_nanos))
            .collect();
        let body = encode(&trace_request(Some(&format!("svc-{}", batch % 5)), spans));
        assert_eq!(server.post_traces(body).await, 200, "batch {batch}");
    }
    wait_until_stored(&server, NUM_SPANS).await;
    let ingest_secs = started.elapsed().as_secs_f64();

    // The peak from here on is what the reads cost (where the kernel resets it; else the
    // peak so far, ingest included, is the baseline).
    let was_reset = server.reset_peak_rss();
    let rss_before = server.rss_bytes();
    let peak_before = server.peak_rss_bytes();
    let api_path = format!("/api/v1/traces/{trace_id}");
    let page_path = format!("/traces/{trace_id}");
    let started = Instant::now();
    let (api_1, api_2, api_3, page) = tokio::join!(
        get(&server, &api_path),
        get(&server, &api_path),
        get(&server, &api_path),
        get(&server, &page_path),
    );
    let read_secs = started.elapsed().as_secs_f64();
    let peak_after = server.peak_rss_bytes();
    let grown = peak_after.saturating_sub(peak_before);
    println!(
        "{NUM_SPANS} spans stored in {ingest_secs:.1} s; 3 API reads + the page in {read_secs:.2} s; \
         API answers {} / {} / {} bytes, page {} bytes; RSS before {} MiB, peak {} -> {} MiB \
         (reset: {was_reset}): grew by {} MiB",
        api_1.1.len(),
        api_2.1.len(),
        api_3.1.len(),
        page.1.len(),
        rss_before / MIB,
        peak_before / MIB,
        peak_after / MIB,
        grown / MIB,
    );

    for (status, body) in [&api_1, &api_2, &api_3] {
        assert_eq!(
            *status,
            200,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        );
        let first: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(first["trace_id"], trace_id.as_str());
        assert_eq!(first["num_spans"], NUM_SPANS);
        assert_eq!(
            (&first["offset"], &first["truncated"]),
            (&0.into(), &true.into())
        );
        let spans = first["spans"].as_array().expect("spans");
        assert_eq!(spans.len(), 10_000);
        assert_eq!(spans[0]["span_id"], "0000000000000001");
        assert_eq!(spans[9_999]["span_id"], format!("{:016x}", 10_000));
    }
    let first: Value = serde_json::from_slice(&api_1.1).expect("json");
    let next = first["next"].as_str().expect("next");
    assert_eq!(next, format!("{api_path}?offset=10000&limit=10000"));
    let (status, body) = get(&server, next).await;
    assert_eq!(status, 200);
    let second: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (&second["offset"], &second["truncated"]),
        (&10_000.into(), &true.into())
    );
    let spans = second["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 10_000);
    assert_eq!(spans[0]["span_id"], format!("{:016x}", 10_001));

    assert_eq!(page.0, 200);
    let html = String::from_utf8(page.1).expect("utf-8");
    assert!(
        html.contains("Showing the first 2,000 of 100,000 spans"),
        "no note in the page"
    );
    assert!(
        html.contains(&format!("href=\"{api_path}\"")),
        "no link to the API"
    );
    assert_eq!(html.matches("<div class=\"row").count(), 2_000);
    assert!(
        grown < MAX_PEAK_GROWTH,
        "peak RSS grew by {} MiB reading one trace of {NUM_SPANS} spans 3 times and its page",
        grown / MIB
    );
}
