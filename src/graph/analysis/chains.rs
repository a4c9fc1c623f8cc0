//! The longest call chains seen in traces: how deep a request blocks before it is answered.
//! Identical hop sequences are reported once, with how often they were seen.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::TraceId;

use super::view::ObservedChain;

/// One distinct hop sequence and how often it was observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    /// Service names, caller first.
    pub services: Vec<String>,
    /// `services.len() - 1`.
    pub num_hops: usize,
    /// Observed chains with exactly this sequence.
    pub num_occurrences: u64,
    /// The trace of the first observation, to open in the waterfall.
    pub example_trace_id: TraceId,
}

/// The `top_n` longest distinct chains with at least one hop: longest first, then the most
/// frequent, then by service names.
pub fn longest_chains(observed: &[ObservedChain], top_n: usize) -> Vec<Chain> {
    let mut by_sequence: HashMap<&[String], (u64, TraceId)> = HashMap::new();
    for chain in observed.iter().filter(|chain| chain.services.len() > 1) {
        by_sequence
            .entry(chain.services.as_slice())
            .and_modify(|(num_occurrences, _)| *num_occurrences += 1)
            .or_insert((1, chain.trace_id));
    }
    let mut chains: Vec<Chain> = by_sequence
        .into_iter()
        .map(|(services, (num_occurrences, example_trace_id))| Chain {
            services: services.to_vec(),
            num_hops: services.len() - 1,
            num_occurrences,
            example_trace_id,
        })
        .collect();
    chains.sort_by(|left, right| {
        right
            .num_hops
            .cmp(&left.num_hops)
            .then_with(|| right.num_occurrences.cmp(&left.num_occurrences))
            .then_with(|| left.services.cmp(&right.services))
    });
    chains.truncate(top_n);
    chains
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::analysis::fixtures::{chain, trace_id};

    #[test]
    fn ranks_a_five_hop_chain_first_and_merges_repeats() {
        let five_hops = [
            "gateway",
            "orders",
            "pricing",
            "catalog",
            "inventory",
            "stock",
        ];
        let observed = vec![
            chain(1, &["gateway", "orders"]),
            chain(2, &five_hops),
            chain(3, &["gateway", "orders", "pricing"]),
            chain(4, &five_hops),
            chain(5, &["gateway"]),
            chain(6, &[]),
        ];

        let chains = longest_chains(&observed, 10);

        let summary: Vec<(usize, u64, TraceId)> = chains
            .iter()
            .map(|chain| {
                (
                    chain.num_hops,
                    chain.num_occurrences,
                    chain.example_trace_id,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (5, 2, trace_id(2)),
                (2, 1, trace_id(3)),
                (1, 1, trace_id(1))
            ]
        );
        assert_eq!(chains[0].services, five_hops.map(String::from).to_vec());
    }

    #[test]
    fn keeps_the_top_n_and_breaks_ties_by_frequency_then_names() {
        let observed = vec![
            chain(1, &["b", "c"]),
            chain(2, &["a", "c"]),
            chain(3, &["z", "y"]),
            chain(4, &["z", "y"]),
        ];

        let chains = longest_chains(&observed, 2);

        let sequences: Vec<Vec<String>> = chains.into_iter().map(|chain| chain.services).collect();
        assert_eq!(
            sequences,
            vec![
                vec!["z".to_owned(), "y".to_owned()],
                vec!["a".to_owned(), "c".to_owned()]
            ]
        );
    }
}
