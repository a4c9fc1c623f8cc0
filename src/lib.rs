//! Cartograph: a live service dependency map fed by OpenTelemetry.

pub mod ingest;
pub mod model;
pub mod store;
