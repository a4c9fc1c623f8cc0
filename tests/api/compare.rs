//! Field-by-field comparison of what an exporter sent with what the JSON API returns, shared by
//! the Rust and Python exporter tests.
//!
//! Both sides write "sent" spans and metric points in the API's own JSON shape
//! (`src/web/json.rs`), leaving out only what the API derives: a span's `duration_ms` and the
//! resource fields lifted from its attributes (`service_name`, ...). [`expected_span`] and
//! [`expected_point`] add those, so each comparison is of two whole documents and a field that
//! is missing, extra or different in any way is reported with its path.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Adds the fields the API derives to a sent span.
pub fn expected_span(mut sent: Value) -> Value {
    let duration_nanos = nanos(&sent["end_time_unix_nano"]) - nanos(&sent["start_time_unix_nano"]);
    sent["duration_ms"] = json!(millis(duration_nanos));
    complete_resource(&mut sent);
    sent
}

/// Adds the fields the API derives to a sent metric point.
pub fn expected_point(mut sent: Value) -> Value {
    complete_resource(&mut sent);
    sent
}

/// The resource fields the API lifts from the well-known attributes, added next to them.
fn complete_resource(sent: &mut Value) {
    let resource = &mut sent["resource"];
    let text = |key: &str| {
        resource["attributes"][key]["stringValue"]
            .as_str()
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let service_name = text("service.name").unwrap_or_else(|| "unknown_service".to_owned());
    let service_namespace = text("service.namespace");
    let service_version = text("service.version");
    let deployment_environment =
        text("deployment.environment.name").or_else(|| text("deployment.environment"));
    resource["service_name"] = json!(service_name);
    resource["service_namespace"] = json!(service_namespace);
    resource["service_version"] = json!(service_version);
    resource["deployment_environment"] = json!(deployment_environment);
}

/// Asserts that `trace` (the body of `/api/v1/traces/{id}`) holds exactly the `sent` spans.
pub fn assert_trace_matches(sent: &[Value], trace: &Value) {
    assert_eq!(
        trace["trace_id"], sent[0]["trace_id"],
        "trace id of {trace:#}"
    );
    let actual_spans = trace["spans"].as_array().expect("trace has a spans array");
    assert_eq!(
        ids(actual_spans.iter()),
        ids(sent.iter()),
        "span ids of the stored trace differ from the sent ones"
    );
    for sent_span in sent {
        let span_id = &sent_span["span_id"];
        let actual = actual_spans
            .iter()
            .find(|span| &span["span_id"] == span_id)
            .expect("span present (ids compared above)");
        let name = sent_span["name"].as_str().unwrap_or_default();
        assert_json_eq(
            &format!("span {span_id} {name:?}"),
            &expected_span(sent_span.clone()),
            actual,
        );
    }
    let starts: Vec<u64> = actual_spans
        .iter()
        .map(|span| nanos(&span["start_time_unix_nano"]))
        .collect();
    assert!(
        starts.is_sorted(),
        "spans of a trace come ordered by start time: {starts:?}"
    );
}

/// Asserts that a trace search result lists the sent trace with a correct summary.
pub fn assert_search_finds(sent: &[Value], search: &Value) {
    let trace_id = &sent[0]["trace_id"];
    let traces = search["traces"]
        .as_array()
        .expect("search has a traces array");
    let summary = traces
        .iter()
        .find(|summary| &summary["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("trace {trace_id} not found by the search: {search:#}"));
    // The root: the earliest span whose parent is not in the trace (none, or a remote caller).
    let span_ids = ids(sent.iter());
    let root = sent
        .iter()
        .filter(|span| {
            span["parent_span_id"]
                .as_str()
                .is_none_or(|parent| !span_ids.contains(parent))
        })
        .min_by_key(|span| nanos(&span["start_time_unix_nano"]))
        .expect("the sent trace has a root span");
    let start = sent
        .iter()
        .map(|span| nanos(&span["start_time_unix_nano"]))
        .min()
        .expect("spans");
    let end = sent
        .iter()
        .map(|span| nanos(&span["end_time_unix_nano"]))
        .max()
        .expect("spans");
    let services: BTreeSet<&str> = sent
        .iter()
        .filter_map(|span| span["resource"]["attributes"]["service.name"]["stringValue"].as_str())
        .collect();
    let num_errors = sent
        .iter()
        .filter(|span| span["status"]["code"] == "error")
        .count();
    let expected = json!({
        "trace_id": trace_id,
        "root_service": root["resource"]["attributes"]["service.name"]["stringValue"],
        "root_name": root["name"],
        "start_time_unix_nano": start.to_string(),
        "duration_ms": millis(end - start),
        "num_spans": sent.len(),
        "num_errors": num_errors,
        "services": services,
    });
    assert_json_eq(
        &format!("search summary of trace {trace_id}"),
        &expected,
        summary,
    );
}

/// Asserts that the sent points are of exactly the metrics `names`, so a test that checks those
/// names checks every point.
pub fn assert_sent_metrics(sent: &[Value], names: &[&str]) {
    let sent_names: BTreeSet<&str> = sent
        .iter()
        .map(|point| point["name"].as_str().expect("metric name"))
        .collect();
    let names: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(sent_names, names, "metrics the SDK exported");
}

/// Asserts that `actual` (the body of `/api/v1/metric-points?name=...`) holds exactly the sent
/// points of metric `name`, matched by attributes and time.
pub fn assert_points_match(name: &str, sent: &[Value], actual: &Value) {
    let sent: Vec<&Value> = sent.iter().filter(|point| point["name"] == name).collect();
    assert!(!sent.is_empty(), "nothing of metric {name} was sent");
    let actual_points = actual["points"].as_array().expect("a points array");
    assert_eq!(
        actual_points.len(),
        sent.len(),
        "number of stored points of {name} (sent: {sent:#?}, stored: {actual_points:#?})"
    );
    for sent_point in sent {
        let same_stream = |point: &&Value| {
            point["attributes"] == sent_point["attributes"]
                && point["time_unix_nano"] == sent_point["time_unix_nano"]
        };
        let actual_point = actual_points.iter().find(same_stream).unwrap_or_else(|| {
            panic!(
                "no stored point of {name} with attributes {} at {}; stored: {actual_points:#?}",
                sent_point["attributes"], sent_point["time_unix_nano"]
            )
        });
        assert_json_eq(
            &format!("point of {name} {}", sent_point["attributes"]),
            &expected_point(sent_point.clone()),
            actual_point,
        );
    }
}

/// Asserts two JSON documents are equal, listing every differing path. Numbers are equal when
/// they are the same number (`3` and `3.0` alike); types that the API encodes in the key, such as
/// `intValue` against `doubleValue`, still differ.
pub fn assert_json_eq(what: &str, expected: &Value, actual: &Value) {
    let mut differences = Vec::new();
    diff("$", expected, actual, &mut differences);
    assert!(
        differences.is_empty(),
        "{what}: {} difference(s) between sent and stored:\n  {}\nsent:   {expected:#}\nstored: {actual:#}",
        differences.len(),
        differences.join("\n  "),
    );
}

fn diff(path: &str, expected: &Value, actual: &Value, differences: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            let keys: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
            for key in keys {
                let child = format!("{path}.{key}");
                match (expected.get(key), actual.get(key)) {
                    (Some(expected), Some(actual)) => diff(&child, expected, actual, differences),
                    (Some(expected), None) => {
                        differences.push(format!("{child}: missing, sent {expected}"));
                    }
                    (None, Some(actual)) => {
                        differences.push(format!("{child}: not sent, stored {actual}"));
                    }
                    (None, None) => unreachable!("key from one of the maps"),
                }
            }
        }
        (Value::Array(expected), Value::Array(actual)) if expected.len() == actual.len() => {
            for (index, (expected, actual)) in expected.iter().zip(actual).enumerate() {
                diff(&format!("{path}[{index}]"), expected, actual, differences);
            }
        }
        (Value::Number(expected_number), Value::Number(actual_number)) => {
            let same = if expected_number.is_f64() || actual_number.is_f64() {
                expected_number.as_f64() == actual_number.as_f64()
            } else {
                expected_number == actual_number
            };
            if !same {
                differences.push(format!("{path}: sent {expected}, stored {actual}"));
            }
        }
        _ if expected == actual => {}
        _ => differences.push(format!("{path}: sent {expected}, stored {actual}")),
    }
}

fn ids<'a>(spans: impl Iterator<Item = &'a Value>) -> BTreeSet<String> {
    spans
        .map(|span| span["span_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Nanoseconds from the API's string form.
pub fn nanos(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("expected nanoseconds as a string, got {value}"))
}

/// Milliseconds the way the API computes them, so equal inputs give equal floats.
fn millis(duration_nanos: u64) -> f64 {
    duration_nanos as f64 / 1e6
}
