//! Correlation ids lost on the way: a service whose callers carry a correlation id (one of
//! the configured attribute keys) in a trace while its own span of that call does not. The
//! query layer reads the calls from stored traces; which services drop the id, and how often,
//! is decided here.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Finding, FindingKind, Severity, percent};

/// Attribute keys read as a correlation id when `[insights] correlation_keys` is not set.
pub const DEFAULT_CORRELATION_KEYS: [&str; 5] = [
    "correlation_id",
    "correlation.id",
    "app.correlation_id",
    "http.request.header.x-correlation-id",
    "messaging.message.correlation_id",
];
/// Calls that carried the id in from which a service is judged.
pub const MIN_CARRIED_CALLS: u64 = 5;
/// Share of those calls whose callee lost the id from which it is a finding.
pub const LOST_SHARE: f64 = 0.2;

/// One call seen in a stored trace whose caller carried a correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedCall {
    /// Node ids.
    pub caller: String,
    pub callee: String,
    /// The callee's span of the call has the id too.
    pub kept: bool,
    pub trace_id: String,
}

/// Per callee service, the share of calls carrying the id in whose callee span lost it.
pub fn correlation_gaps(calls: &[CarriedCall]) -> Vec<Finding> {
    #[derive(Default)]
    struct Seen<'a> {
        carried: u64,
        lost: u64,
        from: BTreeMap<&'a str, u64>,
        examples: Vec<&'a str>,
    }
    let mut by_callee: BTreeMap<&str, Seen> = BTreeMap::new();
    for call in calls {
        let seen = by_callee.entry(&call.callee).or_default();
        seen.carried += 1;
        if !call.kept {
            seen.lost += 1;
            *seen.from.entry(&call.caller).or_default() += 1;
            if seen.examples.len() < 3 && !seen.examples.contains(&call.trace_id.as_str()) {
                seen.examples.push(&call.trace_id);
            }
        }
    }
    by_callee
        .into_iter()
        .filter(|(_, seen)| seen.carried >= MIN_CARRIED_CALLS)
        .filter(|(_, seen)| seen.lost as f64 / seen.carried as f64 >= LOST_SHARE)
        .map(|(callee, seen)| {
            let share = seen.lost as f64 / seen.carried as f64;
            let name = callee.split_once(':').map_or(callee, |(_, name)| name);
            let summary = format!(
                "{name} drops the correlation id its callers send in {} of calls ({} of {})",
                percent(share),
                seen.lost,
                seen.carried
            );
            let mut subjects = vec![callee.to_owned()];
            subjects.extend(
                seen.from
                    .keys()
                    .map(|caller| format!("{caller} -> {callee}")),
            );
            let mut finding = Finding::new(
                FindingKind::CorrelationIdGap,
                Severity::Warning,
                subjects,
                summary,
                json!({
                    "service": callee,
                    "calls_carrying_the_id": seen.carried,
                    "calls_losing_it": seen.lost,
                    "share": share,
                    "callers": seen.from,
                }),
            );
            finding.example_trace_ids = seen.examples.iter().map(|id| (*id).to_owned()).collect();
            finding
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(callee: &str, kept: bool, trace: u8) -> CarriedCall {
        CarriedCall {
            caller: "service:gateway".to_owned(),
            callee: callee.to_owned(),
            kept,
            trace_id: format!("{trace:032x}"),
        }
    }

    #[test]
    fn a_service_that_loses_the_id_is_found_and_one_that_keeps_it_is_not() {
        let mut calls: Vec<CarriedCall> = (0..10)
            .map(|n| call("service:orders", n % 2 == 0, n))
            .collect();
        calls.extend((0..10).map(|n| call("service:users", true, n)));
        // One lost call in ten is under the share; three calls in all are too few to judge.
        calls.extend((0..10).map(|n| call("service:stock", n != 0, n)));
        calls.extend((0..3).map(|n| call("service:rare", false, n)));
        let found = correlation_gaps(&calls);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].subjects,
            ["service:orders", "service:gateway -> service:orders"]
        );
        assert_eq!(found[0].evidence["share"], 0.5);
        assert_eq!(found[0].example_trace_ids.len(), 3);
    }
}
