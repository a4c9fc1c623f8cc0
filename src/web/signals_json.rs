//! JSON for Kafka lag and circuit breakers: on graph edges and nodes, and the
//! `/api/v1/kafka` and `/api/v1/breakers` bodies. Times as RFC 3339 plus Unix nanoseconds.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::graph::{EdgeKey, EdgeStats};
use crate::query::{EdgeLag, SignalOverlay};
use crate::signals::{Breaker, GroupLag};

pub fn rfc3339(unix_nano: u64) -> Value {
    crate::model::rfc3339(unix_nano).map_or(Value::Null, Value::String)
}

fn edge_ref(edge: Option<&EdgeKey>) -> Value {
    edge.map_or(Value::Null, |key| {
        json!({ "source": key.source.id(), "target": key.target.id(), "kind": key.kind.as_str() })
    })
}

/// `kafka_lag` of a topic → consumer edge.
pub fn edge_lag(lag: &EdgeLag) -> Value {
    json!({
        "lag": lag.lag,
        "trend": lag.trend,
        "rate_per_s": lag.rate_per_s,
        "time_to_drain_s": lag.time_to_drain_secs,
        "groups": lag.groups,
    })
}

/// `breaker` of an edge, or one of a node's `breakers`.
pub fn breaker_badge(breaker: &Breaker) -> Value {
    json!({
        "name": breaker.name,
        "service": breaker.service,
        "state": breaker.state.as_str(),
        "open": breaker.state.is_open(),
        "since": rfc3339(breaker.since_unix_nano),
        "since_unix_nano": breaker.since_unix_nano,
    })
}

pub fn group(group: &GroupLag, edge: Option<&EdgeKey>) -> Value {
    let partitions: Vec<Value> = group
        .partitions
        .iter()
        .map(|partition| {
            json!({
                "partition": partition.partition,
                "lag": partition.lag,
                "updated": rfc3339(partition.updated_unix_nano),
            })
        })
        .collect();
    json!({
        "group": group.group,
        "topic": group.topic,
        "reporter": group.reporter,
        "service": edge.map(|key| key.target.id()),
        "edge": edge_ref(edge),
        "lag": group.lag,
        "trend": group.trend,
        "rate_per_s": group.rate_per_s,
        "time_to_drain_s": group.time_to_drain_secs,
        "updated": rfc3339(group.updated_unix_nano),
        "updated_unix_nano": group.updated_unix_nano,
        "partitions": partitions,
        "history": group.history,
    })
}

/// `/api/v1/kafka`: every group on every topic, and the topics' totals.
pub fn kafka(overlay: &SignalOverlay, is_truncated: bool) -> Value {
    let mut topics: BTreeMap<&str, (f64, Vec<&str>)> = BTreeMap::new();
    for (lag, _) in &overlay.groups {
        let topic = topics.entry(lag.topic.as_str()).or_default();
        topic.0 += lag.lag;
        topic.1.push(lag.group.as_str());
    }
    let topics: Vec<Value> = topics
        .into_iter()
        .map(|(topic, (lag, groups))| json!({ "topic": topic, "lag": lag, "groups": groups }))
        .collect();
    json!({
        "groups": overlay.groups.iter().map(|(lag, edge)| group(lag, edge.as_ref())).collect::<Vec<_>>(),
        "topics": topics,
        "truncated": is_truncated,
    })
}

/// `/api/v1/breakers`: every breaker with its history and the calls it short-circuited.
pub fn breakers(
    overlay: &SignalOverlay,
    stats_of: impl Fn(&EdgeKey) -> Option<EdgeStats>,
    is_truncated: bool,
) -> Value {
    let breakers: Vec<Value> = overlay
        .breakers
        .iter()
        .map(|(breaker, edge)| {
            let transitions: Vec<Value> = breaker
                .transitions
                .iter()
                .map(|transition| {
                    json!({
                        "from": transition.from.map(|state| state.as_str()),
                        "to": transition.to.as_str(),
                        "at": rfc3339(transition.at_unix_nano),
                        "at_unix_nano": transition.at_unix_nano,
                    })
                })
                .collect();
            let short_circuited = edge
                .as_ref()
                .and_then(&stats_of)
                .map(|stats| stats.num_short_circuited);
            let mut body = breaker_badge(breaker);
            body["target"] = json!(breaker.target);
            body["edge"] = edge_ref(edge.as_ref());
            body["last_seen"] = rfc3339(breaker.last_seen_unix_nano);
            body["short_circuited"] = json!(short_circuited);
            body["transitions"] = json!(transitions);
            body["transitions_dropped"] = json!(breaker.num_transitions_dropped);
            body
        })
        .collect();
    json!({ "breakers": breakers, "truncated": is_truncated })
}
