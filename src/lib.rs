//! Cartograph: a live service dependency map fed by OpenTelemetry.
//!
//! Data flows `ingest` → `pipeline` → `store` (and, later, the graph engine); `web` serves the
//! JSON API through `query`. `app` wires it all and owns the running tasks.

// A test reads best as one story from setup to assertion (clippy.toml).
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod alert;
pub mod app;
pub mod auth;
pub mod body_deadline;
pub mod cli;
pub mod config;
pub mod demo;
pub mod graph;
pub mod ingest;
pub mod links;
pub mod loadgen;
pub mod metric_red;
pub mod model;
pub mod pipeline;
pub mod query;
pub mod service_graph_metrics;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod wal;
pub mod web;

pub use app::App;
