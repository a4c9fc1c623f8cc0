//! Retries multiplying load along a synchronous chain: if `a → b` sends 2× its first tries
//! and `b → c` sends 3× its own, `c` takes about 6 calls per first try of `a`, though neither
//! edge alone is a retry storm.
//!
//! Chains are paths of consecutive retrying hops on the map (a hop without retries ends a
//! chain: its callee's calls may come from other callers). The search is bounded so a dense
//! mesh where every edge retries stays fast: at most [`MAX_CHAIN_HOPS`] hops per chain,
//! [`MAX_CHAIN_STEPS`] hops tried over the whole map, [`MAX_CHAIN_FINDINGS`] chains reported.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::{Finding, FindingKind, Severity, edge_id, judged_sync, load_multiplier};
use crate::graph::analysis::GraphView;
use crate::model::graph::{EdgeKey, NodeKey, NodeKind};

/// Load multiplier along a chain of two retrying hops or more from which it is a retry storm.
pub const CHAIN_AMPLIFICATION: f64 = 3.0;
/// … and from which that storm is critical.
pub const CHAIN_AMPLIFICATION_CRITICAL: f64 = 10.0;
/// Hops followed per chain at most.
pub const MAX_CHAIN_HOPS: usize = 8;
/// Hops tried over the whole map at most: the search stops there (a dense mesh where every
/// edge retries has more chains than anyone can read).
pub const MAX_CHAIN_STEPS: usize = 10_000;
/// Chains reported at most, the most amplified first.
pub const MAX_CHAIN_FINDINGS: usize = 10;

/// One retrying synchronous edge.
struct Hop<'a> {
    key: &'a EdgeKey,
    multiplier: f64,
}

/// The retrying hops of `view`, by caller, each caller's in edge order.
fn retrying_hops(view: &GraphView) -> BTreeMap<&NodeKey, Vec<Hop<'_>>> {
    let mut by_caller: BTreeMap<&NodeKey, Vec<Hop<'_>>> = BTreeMap::new();
    for (key, stats) in &view.edges {
        if !judged_sync(key, stats) || stats.num_retries == 0 || key.source == key.target {
            continue;
        }
        by_caller.entry(&key.source).or_default().push(Hop {
            key,
            multiplier: load_multiplier(stats),
        });
    }
    for hops in by_caller.values_mut() {
        hops.sort_by(|a, b| a.key.cmp(b.key));
    }
    by_caller
}

/// The depth-first walk over retrying hops, recording every chain that cannot go further.
struct Walk<'a, 'v> {
    hops: &'a BTreeMap<&'v NodeKey, Vec<Hop<'v>>>,
    num_steps: usize,
    path: Vec<&'a Hop<'v>>,
    /// (amplification, hops) of each chain over the threshold.
    found: Vec<(f64, Vec<&'a Hop<'v>>)>,
    visited: HashSet<&'v NodeKey>,
}

impl<'a, 'v> Walk<'a, 'v> {
    fn from(&mut self, node: &'v NodeKey) {
        self.visited.insert(node);
        let on_path = |path: &[&Hop<'_>], next: &NodeKey| {
            path.iter().any(|hop| hop.key.source == *next) || next == node
        };
        let mut extended = false;
        if self.path.len() < MAX_CHAIN_HOPS
            && let Some(outgoing) = self.hops.get(node)
        {
            for hop in outgoing {
                if self.num_steps >= MAX_CHAIN_STEPS {
                    break;
                }
                if on_path(&self.path, &hop.key.target) {
                    continue;
                }
                self.num_steps += 1;
                extended = true;
                self.path.push(hop);
                if hop.key.target.kind == NodeKind::Service {
                    self.from(&hop.key.target);
                } else {
                    self.record();
                }
                self.path.pop();
            }
        }
        if !extended {
            self.record();
        }
    }

    fn record(&mut self) {
        let amplification: f64 = self.path.iter().map(|hop| hop.multiplier).product();
        if self.path.len() >= 2 && amplification >= CHAIN_AMPLIFICATION {
            self.found.push((amplification, self.path.clone()));
        }
    }
}

/// Chains of two retrying synchronous hops or more whose load multipliers multiply to
/// [`CHAIN_AMPLIFICATION`] or more, each followed as far as it goes, the most amplified
/// first.
pub(super) fn amplified_chains(view: &GraphView) -> Vec<Finding> {
    let hops = retrying_hops(view);
    let called: HashSet<&NodeKey> = hops.values().flatten().map(|hop| &hop.key.target).collect();
    let mut walk = Walk {
        hops: &hops,
        num_steps: 0,
        path: Vec::new(),
        found: Vec::new(),
        visited: HashSet::new(),
    };
    // Chains start where retried calls do not arrive; then whatever only cycles reach.
    for caller in hops.keys().filter(|caller| !called.contains(*caller)) {
        walk.from(caller);
    }
    for caller in hops.keys() {
        if !walk.visited.contains(*caller) {
            walk.from(caller);
        }
    }
    let mut found = walk.found;
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.len().cmp(&a.1.len())));
    found.truncate(MAX_CHAIN_FINDINGS);
    found
        .into_iter()
        .map(|(amplification, path)| chain_finding(amplification, &path))
        .collect()
}

fn chain_finding(amplification: f64, path: &[&Hop<'_>]) -> Finding {
    let round = |value: f64| (value * 100.0).round() / 100.0;
    let mut nodes = vec![&path[0].key.source];
    nodes.extend(path.iter().map(|hop| &hop.key.target));
    let names: Vec<&str> = nodes.iter().map(|node| node.name.as_str()).collect();
    let factors: Vec<String> = path
        .iter()
        .map(|hop| format!("{:.1}×", hop.multiplier))
        .collect();
    let summary = format!(
        "{}: retries multiply load {amplification:.1}× along the chain ({})",
        names.join(" → "),
        factors.join(" · ")
    );
    let evidence = json!({
        "amplification": round(amplification),
        "path": nodes.iter().map(|node| node.id()).collect::<Vec<_>>(),
        "hops": path.iter().map(|hop| json!({
            "edge": edge_id(hop.key),
            "amplification": round(hop.multiplier),
        })).collect::<Vec<_>>(),
    });
    Finding::new(
        FindingKind::RetryStorm,
        Severity::warning_or_critical(amplification >= CHAIN_AMPLIFICATION_CRITICAL),
        path.iter().map(|hop| edge_id(hop.key)).collect(),
        summary,
        evidence,
    )
}
