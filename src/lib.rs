//! Cartograph: a live service dependency map fed by OpenTelemetry.
//!
//! Data flows `ingest` → `pipeline` → `store` (and, later, the graph engine); `web` serves the
//! JSON API and pages through `query`. `app` wires it all and owns the task set.

pub mod ingest;
pub mod model;
pub mod store;
