//! Pure analyses of one snapshot of the dependency map: cycles, the longest observed call
//! chains, chatty pairs, fan-out hot spots, blast radius and single points of failure.
//!
//! Owns only computation: input is a [`GraphView`] (and the engine's [`ObservedChain`]s),
//! output is plain serde data for `/api/v1/insights` and the service page. Must not reach into
//! the engine's live state, the store or HTTP. Every result is in a deterministic order (ties
//! broken by node id) and every analysis is linear or near-linear in nodes + edges, except
//! [`single_points_of_failure`], which walks the graph once per articulation point.

mod blast;
mod chains;
mod cycles;
mod hotspots;
mod insights;
mod spof;
mod view;

#[cfg(test)]
pub(crate) mod fixtures;

pub use blast::{AffectedNode, BlastRadius, blast_radius};
pub use chains::{Chain, longest_chains};
pub use cycles::{Cycle, cycles};
pub use hotspots::{ChattyPair, FanOut, chatty_pairs, fan_out};
pub use insights::{DEFAULT_CHATTY_CALLS_PER_TRACE, DEFAULT_TOP_N, Insights, insights};
pub use spof::{SinglePoint, single_points_of_failure};
pub use view::{GraphView, ObservedChain};
