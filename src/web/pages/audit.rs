//! The audit half of the insights page: findings grouped by the rule they break, each with its
//! summary, a link to the map with what it concerns marked, and example traces; a card per
//! severity; and a scorecard of the services the findings concern.

use std::collections::BTreeMap;

use super::*;
use crate::graph::audit::{Finding, FindingKind, Severity};

fn severity_pill(severity: Severity) -> Cell {
    let class = match severity {
        Severity::Critical => "bad",
        Severity::Warning => "warn",
        Severity::Info => "idle",
    };
    Cell::pill(severity.name(), class)
}

/// The map around what `finding` concerns (two hops from its first node), those nodes and
/// edges marked.
pub(super) fn map_href(finding: &Finding) -> String {
    let first_node = finding
        .subjects
        .first()
        .map(|subject| subject.split(" -> ").next().unwrap_or(subject).to_owned())
        .unwrap_or_default();
    let mut pairs = vec![
        ("focus".to_owned(), first_node),
        ("depth".to_owned(), "2".to_owned()),
    ];
    pairs.extend(
        finding
            .subjects
            .iter()
            .map(|subject| ("mark".to_owned(), subject.clone())),
    );
    format!(
        "/?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// Findings the map offers to mark, most severe first: (what it says, where it goes,
/// whether the map shows it now).
pub(super) fn map_choices(findings: &[Finding], query_string: &str) -> Vec<(String, String, bool)> {
    const MAX_CHOICES: usize = 30;
    const MAX_CHARS: usize = 110;
    let marked: Vec<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query_string)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| key == "mark")
        .map(|(_, value)| value)
        .collect();
    findings
        .iter()
        .take(MAX_CHOICES)
        .map(|finding| {
            let text = format!("{} · {}", finding.severity.name(), finding.summary);
            let text: String = text.chars().take(MAX_CHARS).collect();
            let href = links::with_range(&map_href(finding), &params::range_query(query_string));
            (text, href, marked == finding.subjects)
        })
        .collect()
}

/// How many findings of each severity.
pub(super) fn severity_cards(findings: &[Finding]) -> Vec<Card> {
    [Severity::Critical, Severity::Warning, Severity::Info]
        .into_iter()
        .map(|severity| {
            let count = findings
                .iter()
                .filter(|finding| finding.severity == severity)
                .count();
            Card::new(severity.name(), count.to_string())
        })
        .collect()
}

/// One section per rule broken, the rule with the worst finding first (then the most
/// findings, then the order of [`FindingKind::ALL`]).
pub(super) fn rule_sections(findings: &[Finding]) -> Vec<Section> {
    let mut broken: Vec<(FindingKind, Vec<&Finding>)> = FindingKind::ALL
        .into_iter()
        .map(|kind| {
            let of_kind: Vec<&Finding> = findings
                .iter()
                .filter(|finding| finding.kind == kind)
                .collect();
            (kind, of_kind)
        })
        .filter(|(_, of_kind)| !of_kind.is_empty())
        .collect();
    let worst = |of_kind: &[&Finding]| of_kind.iter().map(|finding| finding.severity).max();
    broken.sort_by(|a, b| {
        (worst(&b.1), b.1.len())
            .cmp(&(worst(&a.1), a.1.len()))
            .then(a.0.cmp(&b.0))
    });
    let mut sections = Vec::new();
    for (kind, of_kind) in broken {
        let mut section = Section::new(
            format!("{} ({})", kind.name().replace('_', " "), of_kind.len()),
            "",
            &[
                ("Severity", false),
                ("Finding", false),
                ("Map", false),
                ("Example", false),
            ],
        );
        section.note = kind.rule().to_owned();
        for finding in of_kind {
            let example = match finding.example_trace_ids.first() {
                Some(trace_id) => Cell::link("trace", format!("/traces/{}", url_encode(trace_id))),
                None => Cell::text(""),
            };
            section.rows.push(vec![
                severity_pill(finding.severity),
                Cell::text(finding.summary.clone()),
                Cell::link("on the map", map_href(finding)),
                example,
            ]);
        }
        sections.push(section);
    }
    sections
}

/// Per service the findings that concern it (as a node or an end of an edge), worst first.
pub(super) fn scorecard_section(findings: &[Finding]) -> Section {
    let mut by_service: BTreeMap<&str, ([usize; 3], Vec<&'static str>)> = BTreeMap::new();
    for finding in findings {
        let mut services: Vec<&str> = finding
            .subjects
            .iter()
            .flat_map(|subject| subject.split(" -> "))
            .filter_map(|id| id.strip_prefix("service:"))
            .collect();
        services.sort_unstable();
        services.dedup();
        for service in services {
            let (counts, kinds) = by_service.entry(service).or_default();
            counts[finding.severity as usize] += 1;
            if !kinds.contains(&finding.kind.name()) {
                kinds.push(finding.kind.name());
            }
        }
    }
    let mut rows: Vec<(&str, [usize; 3], Vec<&'static str>)> = by_service
        .into_iter()
        .map(|(service, (counts, kinds))| (service, counts, kinds))
        .collect();
    rows.sort_by(|a, b| {
        (b.1[2], b.1[1], b.1[0])
            .cmp(&(a.1[2], a.1[1], a.1[0]))
            .then(a.0.cmp(b.0))
    });
    let mut section = Section::new(
        "Scorecard",
        "No service breaks a rule.",
        &[
            ("Service", false),
            ("Critical", true),
            ("Warning", true),
            ("Info", true),
            ("Rules", false),
        ],
    );
    section.note = "Each service with the findings that concern it, worst first.".to_owned();
    for (service, counts, kinds) in rows {
        section.rows.push(vec![
            Cell::link(service, links::service(service)),
            Cell::number(counts[2].to_string()),
            Cell::number(counts[1].to_string()),
            Cell::number(counts[0].to_string()),
            Cell::text(kinds.join(", ")),
        ]);
    }
    section
}
