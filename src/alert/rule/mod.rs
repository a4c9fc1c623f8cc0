//! Rules: what each kind watches and its settings (parsed from TOML, range-checked by
//! [`RuleKind::validate`]). [`evaluate`] says, purely, for which label sets a rule's condition
//! holds, given the map of the evaluation window with lag and breakers placed on it, the
//! services' RED, the window before (rate drops, dependency changes) and stored metric points.
//! `for`, grouping and delivery live elsewhere (`state`, `group`, `delivery`).

#[cfg(test)]
mod anomaly_tests;
mod evaluate;
#[cfg(test)]
mod tests;

pub use evaluate::evaluate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph::analysis::GraphView;
use crate::graph::anomaly::Figure;
use crate::graph::audit::{Finding, FindingKind, Severity};
use crate::model::MetricPoint;
use crate::model::graph::EdgeKind;
use crate::query::{Anomaly, ServiceSummary, SignalOverlay};

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// Errors / requests of an edge above `threshold` (0–1), with at least `min_requests`.
    EdgeErrorRate {
        threshold: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
        /// Only edges of these kinds (empty: all).
        #[serde(default)]
        edge_kinds: Vec<EdgeKind>,
    },
    /// Errors / requests a service served above `threshold` (0–1).
    ServiceErrorRate {
        threshold: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// A client-side latency quantile of an edge above `threshold_ms`.
    EdgeLatency {
        quantile: f64,
        threshold_ms: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
        #[serde(default)]
        edge_kinds: Vec<EdgeKind>,
    },
    /// A latency quantile of what a service served above `threshold_ms`.
    ServiceLatency {
        quantile: f64,
        threshold_ms: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// The request rate of a service (or of each edge) fell by more than `drop_ratio` (0–1)
    /// from the window before, which had at least `min_baseline_requests`.
    RequestRateDrop {
        drop_ratio: f64,
        #[serde(default = "default_min_baseline")]
        min_baseline_requests: u64,
        #[serde(default)]
        scope: DropScope,
    },
    /// Publish → consume latency quantile of a topic → consumer edge above `threshold_ms`.
    PublishConsumeLatency { quantile: f64, threshold_ms: f64 },
    /// Consumer lag of a topic → consumer edge above `threshold` messages.
    KafkaLag { threshold: f64 },
    /// Consumer lag growing now (the lag trend: the last minute, or the window fit when the
    /// lag moves too slowly to show in a minute).
    KafkaLagGrowing,
    /// Any breaker in one of `states` (default: open, forced_open).
    BreakerState {
        #[serde(default = "default_breaker_states")]
        states: Vec<String>,
    },
    /// An edge that is new in this window, or that carried traffic in the window before and
    /// none now. Holds only when the window before had traffic at all (a first start is not a
    /// change).
    DependencyChange {
        #[serde(default)]
        change: ChangeFilter,
        #[serde(default = "one")]
        min_requests: u64,
    },
    /// Any cycle of synchronous calls (or through a topic when `include_async`).
    Cycle {
        #[serde(default)]
        include_async: bool,
    },
    /// An audit finding (`kinds`, e.g. `shared_database`, `gateway_bypass`; empty: every
    /// kind) of at least `min_severity` (`info`, `warning`, `critical`): one alert per finding,
    /// labelled with its kind and subjects, valued by its severity (1 info, 2 warning, 3
    /// critical).
    Finding {
        #[serde(default)]
        kinds: Vec<String>,
        #[serde(default = "default_min_severity")]
        min_severity: String,
    },
    /// An edge's or a service's figure (`figures`: `rate`, `error_rate`, `p95_ms`; empty: all)
    /// departing from the same time a day and a week before (docs/anomalies.md): one alert
    /// per subject and figure, labelled `figure` and `direction`, valued by the current
    /// figure. Templates read `{{ $labels.now }}`, `{{ $labels.baseline }}` (printed with
    /// their unit), `{{ $labels.reference }}` and `{{ $labels.score }}`, which are not labels:
    /// they change between evaluations without making a new alert. Windows longer than an
    /// hour are judged over their last hour.
    Anomaly {
        #[serde(default)]
        figures: Vec<String>,
        #[serde(default)]
        subjects: AnomalySubjects,
    },
    /// The latest value of each series of a stored metric compared with `threshold`.
    MetricThreshold {
        metric: String,
        /// Point or resource attributes that must equal these values (`service.name` too).
        #[serde(default)]
        matchers: BTreeMap<String, String>,
        #[serde(default)]
        op: Comparison,
        threshold: f64,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropScope {
    #[default]
    Service,
    Edge,
}

/// Which anomalies a rule watches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalySubjects {
    #[default]
    Any,
    Edges,
    Services,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeFilter {
    #[default]
    Any,
    New,
    Vanished,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[default]
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
}

impl Comparison {
    pub(super) fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold,
        }
    }
}

/// What one evaluation of a rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The map of the rule's window, with lag and breakers placed.
    pub view: &'a GraphView,
    pub overlay: &'a SignalOverlay,
    /// Per-service RED of the window.
    pub services: &'a [ServiceSummary],
    /// The map and RED of the window just before (rate drops, dependency changes).
    pub baseline: &'a GraphView,
    pub baseline_services: &'a [ServiceSummary],
    /// Stored points of the rule's metric in the window (metric thresholds), oldest first.
    pub metric_points: &'a [MetricPoint],
    /// The audit's findings on the window's map (finding rules).
    pub findings: &'a [Finding],
    /// What departs from its baseline over the window (anomaly rules; empty for others).
    pub anomalies: &'a [Anomaly],
}

/// How a rule's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    Percent,
    Millis,
    Plain,
}

impl RuleKind {
    pub fn value_format(&self) -> ValueFormat {
        match self {
            RuleKind::EdgeErrorRate { .. }
            | RuleKind::ServiceErrorRate { .. }
            | RuleKind::RequestRateDrop { .. } => ValueFormat::Percent,
            RuleKind::EdgeLatency { .. }
            | RuleKind::ServiceLatency { .. }
            | RuleKind::PublishConsumeLatency { .. } => ValueFormat::Millis,
            RuleKind::Anomaly { figures, .. } => match figures.as_slice() {
                [only] if only == Figure::ErrorRate.name() => ValueFormat::Percent,
                [only] if only == Figure::P95Ms.name() => ValueFormat::Millis,
                _ => ValueFormat::Plain,
            },
            _ => ValueFormat::Plain,
        }
    }

    /// The metric a rule reads from the store, if any.
    pub fn metric_name(&self) -> Option<&str> {
        match self {
            RuleKind::MetricThreshold { metric, .. } => Some(metric),
            _ => None,
        }
    }

    /// Checks ranges serde cannot: `(field, message)` of the first problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            RuleKind::EdgeErrorRate { threshold, .. }
            | RuleKind::ServiceErrorRate { threshold, .. } => check_ratio("threshold", *threshold),
            RuleKind::EdgeLatency {
                quantile: q,
                threshold_ms,
                ..
            }
            | RuleKind::ServiceLatency {
                quantile: q,
                threshold_ms,
                ..
            }
            | RuleKind::PublishConsumeLatency {
                quantile: q,
                threshold_ms,
            } => check_quantile(*q).and_then(|()| check_positive("threshold_ms", *threshold_ms)),
            RuleKind::RequestRateDrop { drop_ratio, .. } => {
                check_ratio("drop_ratio", *drop_ratio)?;
                if *drop_ratio == 0.0 {
                    return Err(("drop_ratio", "must be above 0".to_owned()));
                }
                Ok(())
            }
            RuleKind::KafkaLag { threshold } => {
                if threshold.is_finite() && *threshold >= 0.0 {
                    Ok(())
                } else {
                    Err(("threshold", format!("{threshold} must be 0 or more")))
                }
            }
            RuleKind::BreakerState { states } => check_breaker_states(states),
            RuleKind::MetricThreshold {
                metric, threshold, ..
            } => {
                if metric.is_empty() {
                    return Err(("metric", "is empty".to_owned()));
                }
                if !threshold.is_finite() {
                    return Err(("threshold", "must be a finite number".to_owned()));
                }
                Ok(())
            }
            RuleKind::Finding {
                kinds,
                min_severity,
            } => {
                if let Some(unknown) = kinds.iter().find(|kind| FindingKind::parse(kind).is_none())
                {
                    let known: Vec<&str> =
                        FindingKind::ALL.iter().map(|kind| kind.name()).collect();
                    return Err((
                        "kinds",
                        format!(
                            "unknown finding kind `{unknown}`: one of {}",
                            known.join(", ")
                        ),
                    ));
                }
                if Severity::parse(min_severity).is_none() {
                    return Err((
                        "min_severity",
                        format!("`{min_severity}` is not one of info, warning, critical"),
                    ));
                }
                Ok(())
            }
            RuleKind::Anomaly { figures, .. } => check_figures(figures),
            RuleKind::KafkaLagGrowing
            | RuleKind::DependencyChange { .. }
            | RuleKind::Cycle { .. } => Ok(()),
        }
    }
}

type Invalid = (&'static str, String);

fn check_ratio(field: &'static str, value: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err((field, format!("{value} is not between 0 and 1")))
    }
}

fn check_quantile(value: f64) -> Result<(), Invalid> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err((
            "quantile",
            format!("{value} is not between 0 and 1 (exclusive), e.g. 0.95"),
        ))
    }
}

fn check_positive(field: &'static str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err((field, format!("{value} must be above 0")))
    }
}

/// Each a figure anomalies are judged by.
fn check_figures(figures: &[String]) -> Result<(), Invalid> {
    match figures
        .iter()
        .find(|figure| Figure::parse(figure).is_none())
    {
        Some(unknown) => Err((
            "figures",
            format!("`{unknown}` is not one of rate, error_rate, p95_ms"),
        )),
        None => Ok(()),
    }
}

/// At least one state, each a breaker state's name.
fn check_breaker_states(states: &[String]) -> Result<(), Invalid> {
    let known = |state: &String| {
        crate::signals::BreakerState::ALL
            .iter()
            .any(|candidate| candidate.as_str() == state)
    };
    match states.iter().find(|state| !known(state)) {
        Some(state) => Err((
            "states",
            format!(
                "`{state}` is not one of {}",
                crate::signals::BreakerState::ALL
                    .map(crate::signals::BreakerState::as_str)
                    .join(", ")
            ),
        )),
        None if states.is_empty() => Err(("states", "is empty".to_owned())),
        None => Ok(()),
    }
}

fn default_min_requests() -> u64 {
    10
}

fn default_min_severity() -> String {
    "warning".to_owned()
}

fn default_min_baseline() -> u64 {
    60
}

fn one() -> u64 {
    1
}

fn default_breaker_states() -> Vec<String> {
    vec!["open".to_owned(), "forced_open".to_owned()]
}
