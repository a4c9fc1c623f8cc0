//! Lag and breakers over OTLP/JSON: a past range replayed from the store reads as it happened,
//! survives a restart (and seeds the live view), and malformed points are stored as ordinary
//! points without touching lag or breaker state.

use serde_json::{Value, json};

use crate::fixtures::now_nanos;
use crate::helpers::{TestApp, spawn_app, spawn_app_on_disk};

const MINUTE: u64 = 60_000_000_000;

fn text(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn int(key: &str, value: i64) -> Value {
    json!({ "key": key, "value": { "intValue": value.to_string() } })
}

/// One export request: `metrics` from a resource named `service`.
fn request(service: &str, metrics: Vec<Value>) -> Value {
    json!({ "resourceMetrics": [{
        "resource": { "attributes": [text("service.name", service)] },
        "scopeMetrics": [{ "scope": { "name": "test" }, "metrics": metrics }],
    }]})
}

fn gauge(name: &str, points: Vec<Value>) -> Value {
    json!({ "name": name, "gauge": { "dataPoints": points } })
}

fn point(time: u64, value: Value, attributes: Vec<Value>) -> Value {
    let mut point = json!({ "timeUnixNano": time.to_string(), "attributes": attributes });
    match value {
        Value::Number(number) if number.is_i64() => point["asInt"] = json!(number.to_string()),
        other => point["asDouble"] = other,
    }
    point
}

/// resilience4j's gauges: one point per state, 1 for the current one.
pub fn breaker_at(time: u64, current: &str) -> Value {
    let points = ["closed", "open", "half_open"]
        .iter()
        .map(|state| {
            point(
                time,
                json!(i64::from(*state == current)),
                vec![text("name", "payments"), text("state", state)],
            )
        })
        .collect();
    request(
        "orders",
        vec![gauge("resilience4j.circuitbreaker.state", points)],
    )
}

/// Lag of group `inventory` on `orders.created`, partitions 0 and 1.
pub fn lag_at(time: u64, lags: [i64; 2]) -> Value {
    let points = lags
        .iter()
        .enumerate()
        .map(|(partition, lag)| {
            point(
                time,
                json!(*lag),
                vec![
                    text("group", "inventory"),
                    text("topic", "orders.created"),
                    int("partition", partition as i64),
                ],
            )
        })
        .collect();
    request(
        "otel-collector",
        vec![gauge("kafka.consumer_group.lag", points)],
    )
}

pub async fn post_metrics(app: &TestApp, body: &Value) -> Value {
    let response = app
        .post_otlp(
            "/v1/metrics",
            &[("content-type", "application/json")],
            serde_json::to_vec(body).expect("json"),
        )
        .await;
    let status = response.status().as_u16();
    let reply: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{reply}");
    reply
}

fn transitions(breakers: &Value) -> Vec<(Value, Value)> {
    breakers["breakers"][0]["transitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no breaker: {breakers:#}"))
        .iter()
        .map(|t| (t["from"].clone(), t["to"].clone()))
        .collect()
}

fn range(from: u64, to: u64) -> String {
    format!("from={from}&to={to}")
}

/// The state of the steps below in a range ending after the breaker opened.
async fn assert_open_with_growing_lag(app: &TestApp, range: &str) {
    let (_, breakers) = app.get_json(&format!("/api/v1/breakers?{range}")).await;
    let (_, kafka) = app.get_json(&format!("/api/v1/kafka?{range}")).await;
    assert_eq!(breakers["breakers"][0]["state"], "open", "{breakers:#}");
    assert_eq!(
        transitions(&breakers),
        [
            (Value::Null, "closed".into()),
            ("closed".into(), "open".into())
        ]
    );
    let group = &kafka["groups"][0];
    assert_eq!(group["lag"], 60.0, "{kafka:#}");
    assert_eq!(group["trend"], "growing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_range_reads_from_the_store_before_and_after_a_restart() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_on_disk(data_dir.path()).await;
    // Every two minutes, the last two within the live trend window (5 minutes) until two
    // minutes from now (a restart cannot outlast that); a range
    // ending at minute 3 lies in the past.
    let base = (now_nanos() / MINUTE - 7) * MINUTE;
    let at = |minutes: u64| base + minutes * MINUTE;
    let steps = [
        (0, "closed", [10, 0]),
        (2, "open", [40, 20]),
        (4, "half_open", [90, 50]),
        (6, "closed", [30, 10]),
    ];
    for (minutes, state, lags) in steps {
        post_metrics(&app, &breaker_at(at(minutes), state)).await;
        post_metrics(&app, &lag_at(at(minutes), lags)).await;
    }
    app.wait_until_stored().await;

    let before_half_open = range(at(0), at(3));
    assert_open_with_growing_lag(&app, &before_half_open).await;
    app.shutdown().await;

    let app = spawn_app_on_disk(data_dir.path()).await;
    assert_open_with_growing_lag(&app, &before_half_open).await;

    // The live view was seeded from the store: the whole history, as of now.
    let (_, live) = app.get_json("/api/v1/breakers?window=1h").await;
    assert_eq!(live["breakers"][0]["state"], "closed");
    assert_eq!(transitions(&live).len(), 4, "{live:#}");
    let (_, kafka) = app.get_json("/api/v1/kafka?window=1h").await;
    assert_eq!(kafka["groups"][0]["lag"], 40.0, "{kafka:#}");
    assert_eq!(kafka["groups"][0]["trend"], "draining");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lag_and_breaker_points_are_stored_and_change_nothing() {
    let app = spawn_app().await;
    let now = now_nanos();
    post_metrics(&app, &lag_at(now - 2 * MINUTE, [7, 3])).await;
    post_metrics(&app, &breaker_at(now - 2 * MINUTE, "closed")).await;

    let lag_attributes = || {
        vec![
            text("group", "inventory"),
            text("topic", "orders.created"),
            int("partition", 0),
        ]
    };
    let time = now - MINUTE;
    let bad_lag = vec![
        gauge(
            "kafka.consumer_group.lag",
            vec![point(time, json!("NaN"), lag_attributes())],
        ),
        gauge(
            "kafka.consumer_group.lag",
            vec![point(time, json!(-5), lag_attributes())],
        ),
        gauge(
            "kafka.consumer_group.lag",
            vec![point(time, json!(99), vec![text("group", "inventory")])],
        ),
        json!({ "name": "kafka.consumer_group.lag", "histogram": {
            "aggregationTemporality": 2,
            "dataPoints": [{ "timeUnixNano": time.to_string(), "count": "1", "sum": 5.0,
                             "bucketCounts": ["1"], "explicitBounds": [], "attributes": lag_attributes() }],
        }}),
    ];
    post_metrics(&app, &request("otel-collector", bad_lag)).await;
    let bad_breakers = vec![
        gauge(
            "resilience4j.circuitbreaker.state",
            vec![point(
                time,
                json!(1),
                vec![text("name", "payments"), text("state", "melted")],
            )],
        ),
        gauge(
            "circuit_breaker.state",
            vec![point(time, json!(9), vec![text("name", "payments")])],
        ),
        gauge(
            "resilience4j.circuitbreaker.state",
            vec![point(time, json!(1), vec![text("state", "open")])],
        ),
    ];
    post_metrics(&app, &request("orders", bad_breakers)).await;
    app.wait_until_stored().await;

    let (_, kafka) = app.get_json("/api/v1/kafka?window=15m").await;
    assert_eq!(
        kafka["groups"].as_array().map(Vec::len),
        Some(1),
        "{kafka:#}"
    );
    assert_eq!(kafka["groups"][0]["lag"], 10.0);
    let (_, breakers) = app.get_json("/api/v1/breakers?window=15m").await;
    assert_eq!(
        breakers["breakers"].as_array().map(Vec::len),
        Some(1),
        "{breakers:#}"
    );
    assert_eq!(breakers["breakers"][0]["state"], "closed");
    assert_eq!(transitions(&breakers).len(), 1);

    // Every point is stored as sent, the bad ones included.
    let (_, stored) = app.metric_points("name=kafka.consumer_group.lag").await;
    assert_eq!(
        stored["points"].as_array().map(Vec::len),
        Some(6),
        "{stored:#}"
    );
    for (reason, count) in [
        ("not_finite", 1.0),
        ("negative", 1.0),
        ("missing_attribute", 2.0),
        ("wrong_type", 1.0),
        ("unknown_state", 2.0),
    ] {
        let series = format!("cartograph_signal_points_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(app.prometheus_value(&series).await, count, "{reason}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_range_parameters_are_rejected_by_name() {
    let app = spawn_app().await;
    for (query, named) in [
        ("window=7m", "window"),
        ("from=yesterday", "from"),
        ("focus=service:x", "focus"),
    ] {
        for path in ["/api/v1/kafka", "/api/v1/breakers"] {
            let (status, body) = app.get_json(&format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|error| error.contains(named)),
                "{body}"
            );
        }
    }
    app.shutdown().await;
}
