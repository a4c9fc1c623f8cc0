//! The one integration test binary: spawns the whole app on free ports and talks to it the
//! way exporters and users do.

// A scenario reads best as one story from setup to assertion (clippy.toml).
#![allow(clippy::too_many_lines)]

mod alert_support;
mod compare;
mod fixtures;
mod graph_support;
mod helpers;
mod process;
mod tls_support;

mod alertmanager;
mod alerts;
mod alerts_page;
mod anomalies;
mod audit_e2e;
mod backpressure;
mod bad_input;
mod bombs;
mod clickhouse;
mod connections;
mod dashboards;
mod dashboards_charts;
mod dashboards_drill;
mod dashboards_figures;
mod dashboards_map;
mod demo;
mod durability;
mod edge_operations;
mod exporters_python;
mod exporters_rust;
mod graph_analyses;
mod graph_e2e;
mod graph_fixtures;
mod graph_limits;
mod graph_queries;
mod graph_restart;
mod hostile;
mod loadgen;
mod map_changes;
mod metrics_source;
mod minutes;
mod replay_bench;
mod restart;
mod sampling_e2e;
mod security;
mod signals_sdk;
mod signals_store;
mod store_faults;
mod store_v3;
mod tls;
mod trace_pages;
