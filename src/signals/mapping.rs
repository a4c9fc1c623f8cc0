//! Which metric names and attributes carry Kafka consumer lag and circuit-breaker state. The
//! defaults cover the Collector's kafkametrics receiver, kafka_exporter through the Collector's
//! Prometheus receiver, Kafka client instrumentation, resilience4j (Micrometer, OTLP or
//! Prometheus names), Polly and our own `circuit_breaker.state`; every list is configurable.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::model::{AttrValue, Attributes};

/// What a recognised metric name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// Lag of one partition (or of a whole group/topic when no partition attribute is set).
    Lag,
    /// A breaker's state: one point per state valued 1 for the current one (a `state`
    /// attribute), or one point whose value is 0 closed, 1 open, 2 half-open.
    BreakerState,
    /// A counter of breaker events (Polly's `OnCircuitOpened`, …) named by an attribute.
    BreakerEvents,
}

/// The configurable mapping and the trackers' limits (the `[signals]` config section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalSettings {
    /// Metric names whose value is a consumer group's lag in messages.
    pub lag_metrics: Vec<String>,
    /// Attributes naming the consumer group, first present wins.
    pub lag_group_attributes: Vec<String>,
    /// Attributes naming the topic, first present wins.
    pub lag_topic_attributes: Vec<String>,
    /// Attributes naming the partition, first present wins.
    pub lag_partition_attributes: Vec<String>,
    /// Metric names of breaker state gauges.
    pub breaker_state_metrics: Vec<String>,
    /// Metric names of breaker event counters.
    pub breaker_event_metrics: Vec<String>,
    /// Attributes naming the breaker, first present wins.
    pub breaker_name_attributes: Vec<String>,
    /// Attributes naming the service a breaker guards, first present wins.
    pub breaker_target_attributes: Vec<String>,
    /// Attribute of a breaker event counter that names the event.
    pub breaker_event_attribute: String,
    /// The lag trend's window fit covers this window; the last minute of samples decides
    /// whenever it shows a move (see `signals::lag_trend`).
    pub lag_trend_window_secs: u64,
    /// Live lag samples and breaker transitions are kept this long.
    pub history_secs: u64,
    /// Lag series (group, topic, partition) tracked at most; further ones are counted, not kept.
    pub max_lag_series: NonZeroUsize,
    /// Breakers tracked at most; further ones are counted, not kept.
    pub max_breakers: NonZeroUsize,
    /// Transitions kept per breaker (oldest let go first).
    pub max_transitions_per_breaker: NonZeroUsize,
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

impl Default for SignalSettings {
    fn default() -> Self {
        Self {
            lag_metrics: strings(&[
                "kafka.consumer_group.lag",
                "kafka.consumer_group.lag_sum",
                "kafka_consumergroup_lag",
                "kafka_consumergroup_lag_sum",
                "kafka.consumer.records_lag",
                "kafka.consumer.records_lag_max",
                "messaging.kafka.consumer.lag",
            ]),
            lag_group_attributes: strings(&[
                "group",
                "consumergroup",
                "messaging.consumer.group.name",
                "messaging.kafka.consumer.group",
                "consumer_group",
            ]),
            lag_topic_attributes: strings(&["topic", "messaging.destination.name"]),
            lag_partition_attributes: strings(&["partition", "messaging.destination.partition.id"]),
            breaker_state_metrics: strings(&[
                "resilience4j.circuitbreaker.state",
                "resilience4j_circuitbreaker_state",
                "circuit_breaker.state",
            ]),
            breaker_event_metrics: strings(&["resilience.polly.strategy.events"]),
            breaker_name_attributes: strings(&["name", "circuit_breaker.name", "pipeline.name"]),
            breaker_target_attributes: strings(&["peer.service", "service.peer.name"]),
            breaker_event_attribute: "event.name".to_owned(),
            lag_trend_window_secs: 300,
            history_secs: 3600,
            max_lag_series: NonZeroUsize::new(10_000).expect("non-zero"),
            max_breakers: NonZeroUsize::new(1_000).expect("non-zero"),
            max_transitions_per_breaker: NonZeroUsize::new(100).expect("non-zero"),
        }
    }
}

impl SignalSettings {
    /// Every metric name the mapper reads (to replay them from the store).
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.lag_metrics
            .iter()
            .chain(&self.breaker_state_metrics)
            .chain(&self.breaker_event_metrics)
            .map(String::as_str)
    }

    /// The names as a lookup table; a name listed twice keeps its first meaning.
    pub fn index(&self) -> HashMap<String, SignalKind> {
        let mut index = HashMap::new();
        let lists = [
            (&self.lag_metrics, SignalKind::Lag),
            (&self.breaker_state_metrics, SignalKind::BreakerState),
            (&self.breaker_event_metrics, SignalKind::BreakerEvents),
        ];
        for (names, kind) in lists {
            for name in names {
                index.entry(name.clone()).or_insert(kind);
            }
        }
        index
    }

    /// Checks what types cannot; the message names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let non_empty = [
            ("signals.lag_topic_attributes", &self.lag_topic_attributes),
            (
                "signals.breaker_name_attributes",
                &self.breaker_name_attributes,
            ),
        ];
        for (field, list) in non_empty {
            if list.iter().all(|key| key.trim().is_empty()) {
                return Err((field, "must name at least one attribute".to_owned()));
            }
        }
        if self.lag_trend_window_secs < 10 {
            return Err((
                "signals.lag_trend_window_secs",
                "must be at least 10".to_owned(),
            ));
        }
        if self.history_secs < self.lag_trend_window_secs {
            return Err((
                "signals.history_secs",
                "must be at least signals.lag_trend_window_secs".to_owned(),
            ));
        }
        if self.breaker_event_attribute.trim().is_empty() {
            return Err((
                "signals.breaker_event_attribute",
                "must name an attribute".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The first attribute of `keys` that is present, as text (ints and bools in their usual
/// form); empty strings count as absent.
pub fn first_text(attributes: &Attributes, keys: &[String]) -> Option<String> {
    keys.iter().find_map(|key| {
        attributes
            .iter()
            .find(|(candidate, _)| candidate == key)
            .and_then(|(_, value)| match value {
                AttrValue::Str(text) if !text.is_empty() => Some(text.clone()),
                AttrValue::Int(number) => Some(number.to_string()),
                AttrValue::Bool(flag) => Some(flag.to_string()),
                _ => None,
            })
    })
}
