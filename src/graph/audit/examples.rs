//! Example traces for findings drawn from the map (a shared database, a missed target, a
//! cycle…), which name edges and nodes but no trace: among the traces the query layer read,
//! those holding a call on one of a finding's edges, or to or from one of its nodes when it
//! names no edge; failed traces first, then the newest.

use std::collections::{HashMap, HashSet};

use super::Finding;

/// Example traces a finding gets at most.
pub const MAX_EXAMPLES: usize = 3;

/// What one read trace holds: the edges its calls cross (as [`super::edge_between`]) and their
/// ends, and whether a call in it failed.
#[derive(Debug, Clone, Default)]
pub struct TraceEdges {
    pub trace_id: String,
    pub edges: HashSet<String>,
    pub nodes: HashSet<String>,
    pub failed: bool,
}

/// Gives each finding without example traces up to [`MAX_EXAMPLES`] of `traces` (newest
/// first) that concern it, failed ones first.
pub fn attach_examples(findings: &mut [Finding], traces: &[TraceEdges]) {
    let by_failure: Vec<&TraceEdges> = traces
        .iter()
        .filter(|trace| trace.failed)
        .chain(traces.iter().filter(|trace| !trace.failed))
        .collect();
    // Each edge and node to the traces holding it (positions in `by_failure`, ascending): a
    // large map has thousands of findings, most of which no read trace concerns.
    let mut with_edge: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut with_node: HashMap<&str, Vec<usize>> = HashMap::new();
    for (position, trace) in by_failure.iter().enumerate() {
        for edge in &trace.edges {
            with_edge.entry(edge).or_default().push(position);
        }
        for node in &trace.nodes {
            with_node.entry(node).or_default().push(position);
        }
    }
    for finding in findings
        .iter_mut()
        .filter(|finding| finding.example_trace_ids.is_empty())
    {
        let has_edges = finding
            .subjects
            .iter()
            .any(|subject| subject.contains(" -> "));
        let mut concerning: Vec<usize> = finding
            .subjects
            .iter()
            .filter(|subject| subject.contains(" -> ") == has_edges)
            .filter_map(|subject| {
                let index = if has_edges { &with_edge } else { &with_node };
                index.get(subject.as_str())
            })
            .flatten()
            .copied()
            .collect();
        concerning.sort_unstable();
        concerning.dedup();
        finding.example_trace_ids = concerning
            .into_iter()
            .take(MAX_EXAMPLES)
            .map(|position| by_failure[position].trace_id.clone())
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FindingKind, Severity};
    use super::*;

    fn trace(id: &str, edges: &[(&str, &str)], failed: bool) -> TraceEdges {
        TraceEdges {
            trace_id: id.to_owned(),
            edges: edges
                .iter()
                .map(|(source, target)| format!("{source} -> {target}"))
                .collect(),
            nodes: edges
                .iter()
                .flat_map(|(source, target)| [source.to_string(), target.to_string()])
                .collect(),
            failed,
        }
    }

    fn finding(kind: FindingKind, subjects: &[&str]) -> Finding {
        Finding::new(
            kind,
            Severity::Warning,
            subjects.iter().map(|s| (*s).to_owned()).collect(),
            "summary".to_owned(),
            serde_json::Value::Null,
        )
    }

    #[test]
    fn findings_get_the_traces_crossing_their_edges_failed_first() {
        let traces = [
            trace("t1", &[("service:a", "database:db")], false),
            trace("t2", &[("service:x", "service:y")], true),
            trace("t3", &[("service:b", "database:db")], true),
            trace("t4", &[("service:a", "database:db")], false),
            trace("t5", &[("service:a", "database:db")], false),
        ];
        let mut findings = [
            finding(
                FindingKind::SharedDatabase,
                &[
                    "database:db",
                    "service:a -> database:db",
                    "service:b -> database:db",
                ],
            ),
            finding(FindingKind::TargetMissed, &["service:q -> service:r"]),
            finding(FindingKind::SinglePointOfFailure, &["service:y"]),
        ];
        attach_examples(&mut findings, &traces);
        assert_eq!(findings[0].example_trace_ids, ["t3", "t1", "t4"]);
        assert!(
            findings[1].example_trace_ids.is_empty(),
            "no trace crosses it"
        );
        assert_eq!(
            findings[2].example_trace_ids,
            ["t2"],
            "a node-only finding: traces touching the node"
        );
    }

    #[test]
    fn examples_a_rule_found_itself_are_kept() {
        let traces = [trace("t1", &[("service:a", "service:b")], false)];
        let mut findings = [finding(
            FindingKind::TimeoutMismatch,
            &["service:a -> service:b"],
        )];
        findings[0].example_trace_ids = vec!["own".to_owned()];
        attach_examples(&mut findings, &traces);
        assert_eq!(findings[0].example_trace_ids, ["own"]);
    }
}
