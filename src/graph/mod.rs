//! The live dependency graph.

pub mod analysis;
