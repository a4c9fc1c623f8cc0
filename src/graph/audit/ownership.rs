//! Who owns what and who comes in where: shared databases, external traffic that bypasses
//! the gateway, hard-coded addresses, topics nobody reads or nobody writes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::json;

use super::{Finding, FindingKind, Severity, edge_id, percent};
use crate::graph::analysis::GraphView;
use crate::model::graph::{EdgeKey, NodeKind};

/// Requests per second over the view's window, rounded for reading.
fn rate(view: &GraphView, num_requests: u64) -> f64 {
    if view.window_secs > 0.0 {
        (num_requests as f64 / view.window_secs * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// A database node called by two services or more.
pub(super) fn shared_databases(view: &GraphView) -> Vec<Finding> {
    let mut callers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (key, stats) in &view.edges {
        if key.target.kind == NodeKind::Database && key.source.kind == NodeKind::Service {
            *callers
                .entry(key.target.id())
                .or_default()
                .entry(key.source.id())
                .or_default() += stats.num_requests;
        }
    }
    callers
        .into_iter()
        .filter(|(_, services)| services.len() >= 2)
        .map(|(database, services)| {
            let names: Vec<&str> = services
                .keys()
                .map(|id| id.trim_start_matches("service:"))
                .collect();
            let summary = format!(
                "{} services use {}: {}",
                services.len(),
                database.trim_start_matches("database:"),
                names.join(", ")
            );
            let evidence = json!({
                "database": database,
                "services": services.iter().map(|(service, requests)| json!({
                    "service": service,
                    "requests": requests,
                    "rate_per_s": rate(view, *requests),
                })).collect::<Vec<_>>(),
            });
            let mut subjects = vec![database.clone()];
            subjects.extend(
                services
                    .keys()
                    .map(|service| format!("{service} -> {database}")),
            );
            Finding::new(
                FindingKind::SharedDatabase,
                Severity::Warning,
                subjects,
                summary,
                evidence,
            )
        })
        .collect()
}

/// Services taking calls from outside (a `client` node) other than the gateways: the named
/// ones, else the service taking most calls from outside.
pub(super) fn gateway_bypasses(view: &GraphView, gateways: &[String]) -> Vec<Finding> {
    let mut from_outside: BTreeMap<String, u64> = BTreeMap::new();
    let mut served: BTreeMap<String, u64> = BTreeMap::new();
    for (key, stats) in &view.edges {
        if key.target.kind != NodeKind::Service {
            continue;
        }
        *served.entry(key.target.name.clone()).or_default() += stats.num_requests;
        if key.source.kind == NodeKind::Client {
            *from_outside.entry(key.target.name.clone()).or_default() += stats.num_requests;
        }
    }
    let gateways: BTreeSet<String> = if gateways.is_empty() {
        from_outside
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(name, _)| name.clone())
            .into_iter()
            .collect()
    } else {
        gateways.iter().cloned().collect()
    };
    let total_outside: u64 = from_outside.values().sum();
    from_outside
        .iter()
        .filter(|(service, requests)| !gateways.contains(*service) && **requests > 0)
        .map(|(service, &requests)| {
            let share_of_service = requests as f64 / served[service].max(1) as f64;
            let share_of_outside = requests as f64 / total_outside.max(1) as f64;
            let summary = format!(
                "{service} takes {} of outside traffic directly ({}/s, {} of its calls), not through {}",
                percent(share_of_outside),
                rate(view, requests),
                percent(share_of_service),
                gateways.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            let subject = format!("service:{service}");
            let evidence = json!({
                "service": subject,
                "gateways": gateways,
                "requests_from_outside": requests,
                "rate_per_s": rate(view, requests),
                "share_of_its_calls": share_of_service,
                "share_of_outside_traffic": share_of_outside,
            });
            Finding::new(FindingKind::GatewayBypass, Severity::Warning, vec![subject], summary, evidence)
        })
        .collect()
}

/// The hosts (or whole words) in a node name: `10.0.0.7` of `postgresql 10.0.0.7:5432`,
/// `::1` of `[::1]:80`, `payments.internal` of `payments.internal:8080`.
fn hosts(name: &str) -> impl Iterator<Item = &str> {
    name.split([' ', '/']).map(|word| {
        if let Some(rest) = word.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else if word.matches(':').count() == 1 {
            word.split(':').next().unwrap_or_default()
        } else {
            word
        }
    })
}

/// The IP literal in a node name (`10.0.0.7:5432`, `postgresql 10.0.0.7:5432`, `[::1]:80`).
pub(super) fn ip_literal(name: &str) -> Option<IpAddr> {
    hosts(name).find_map(|host| host.parse::<IpAddr>().ok())
}

/// A configured endpoint pattern (`[insights] endpoint_patterns`): names that are hard-coded
/// addresses though they are not IP literals (`*.internal.example.com`, `10.*`). `*` stands
/// for any run of characters; the rest matches itself, ignoring case. A pattern matches a
/// node when it matches one of its hosts or one of its words whole (`db-7:5432`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPattern {
    lowercase: String,
}

impl EndpointPattern {
    /// A pattern of letters, digits, `.`, `-`, `_`, `:` and `*`, with at least one character
    /// that is not `*` (a lone `*` would call every name hard-coded).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty pattern matches nothing: remove it".to_owned());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '*')))
        {
            return Err(format!(
                "pattern {text:?}: {bad:?} is not allowed (letters, digits, . - _ : and * only)"
            ));
        }
        if text.chars().all(|c| c == '*') {
            return Err(format!(
                "pattern {text:?} matches every name: name a part of the host"
            ));
        }
        Ok(Self {
            lowercase: text.to_ascii_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.lowercase
    }

    /// Whether a host or a word of `name` matches.
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        name.split([' ', '/'])
            .chain(hosts(&name))
            .any(|candidate| glob_matches(&self.lowercase, candidate))
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters (greedy with
/// backtracking to the last star: linear in practice, quadratic at worst).
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            last_star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = last_star {
            p = star + 1;
            t = matched + 1;
            last_star = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// Calls to an address instead of a name: an IP literal, or a name matching one of the
/// configured `patterns`.
pub(super) fn hardcoded_endpoints(view: &GraphView, patterns: &[EndpointPattern]) -> Vec<Finding> {
    let mut by_target: BTreeMap<String, Vec<(&EdgeKey, u64)>> = BTreeMap::new();
    for (key, stats) in &view.edges {
        if key.target.kind == NodeKind::Topic || key.target.kind == NodeKind::Client {
            continue;
        }
        if ip_literal(&key.target.name).is_some()
            || patterns
                .iter()
                .any(|pattern| pattern.matches_name(&key.target.name))
        {
            by_target
                .entry(key.target.id())
                .or_default()
                .push((key, stats.num_requests));
        }
    }
    by_target
        .into_iter()
        .map(|(target, calls)| {
            let name = &calls[0].0.target.name;
            let address = ip_literal(name).map(|ip| ip.to_string());
            let pattern = patterns
                .iter()
                .find(|pattern| pattern.matches_name(name))
                .map(EndpointPattern::as_str);
            let callers: Vec<String> = calls.iter().map(|(key, _)| key.source.id()).collect();
            let requests: u64 = calls.iter().map(|(_, requests)| requests).sum();
            let how = match (&address, pattern) {
                (None, Some(pattern)) => format!("by a hard-coded name (matches {pattern})"),
                _ => "by address".to_owned(),
            };
            let summary = format!(
                "{} call{} {name} {how} ({}/s)",
                callers.join(", "),
                if callers.len() == 1 { "s" } else { "" },
                rate(view, requests)
            );
            let mut subjects = vec![target.clone()];
            subjects.extend(calls.iter().map(|(key, _)| edge_id(key)));
            let evidence = json!({
                "target": target,
                "address": address,
                "pattern": pattern,
                "callers": callers,
                "rate_per_s": rate(view, requests),
            });
            Finding::new(
                FindingKind::HardcodedEndpoint,
                Severity::Warning,
                subjects,
                summary,
                evidence,
            )
        })
        .collect()
}

/// Topics with producers and no consumer (warning), or consumers and no producer (info: the
/// producer may not be instrumented).
pub(super) fn orphan_topics(view: &GraphView) -> Vec<Finding> {
    let mut producers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut consumers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (key, stats) in &view.edges {
        if key.target.kind == NodeKind::Topic {
            *producers
                .entry(key.target.id())
                .or_default()
                .entry(key.source.id())
                .or_default() += stats.num_requests;
            consumers.entry(key.target.id()).or_default();
        }
        if key.source.kind == NodeKind::Topic {
            *consumers
                .entry(key.source.id())
                .or_default()
                .entry(key.target.id())
                .or_default() += stats.num_requests;
            producers.entry(key.source.id()).or_default();
        }
    }
    let mut findings = Vec::new();
    for (topic, writers) in &producers {
        let readers = &consumers[topic];
        let name = topic.trim_start_matches("topic:");
        let (severity, sides, summary) = match (writers.is_empty(), readers.is_empty()) {
            (false, true) => {
                let messages: u64 = writers.values().sum();
                (
                    Severity::Warning,
                    writers,
                    format!(
                        "{name}: {} publish{} {}/s and no consumer reads it",
                        writers
                            .keys()
                            .map(|id| id.trim_start_matches("service:"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        if writers.len() == 1 { "es" } else { "" },
                        rate(view, messages)
                    ),
                )
            }
            (true, false) => (
                Severity::Info,
                readers,
                format!(
                    "{name}: consumed by {} and no producer seen (uninstrumented?)",
                    readers
                        .keys()
                        .map(|id| id.trim_start_matches("service:"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            _ => continue,
        };
        let evidence = json!({
            "topic": topic,
            "producers": writers.keys().collect::<Vec<_>>(),
            "consumers": readers.keys().collect::<Vec<_>>(),
            "rate_per_s": rate(view, sides.values().sum()),
        });
        findings.push(Finding::new(
            FindingKind::OrphanTopic,
            severity,
            vec![topic.clone()],
            summary,
            evidence,
        ));
    }
    findings
}
