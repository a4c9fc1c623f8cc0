//! Request handlers: parse, ask the query service, shape the answer. No logic of their own.

pub mod alerts;
pub mod anomalies;
pub mod changes;
pub mod graph;
pub mod ops;
pub mod signals;
pub mod traces;
