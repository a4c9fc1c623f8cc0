//! The live dependency graph: turns spans into calls on edges between nodes, keeps per-minute
//! statistics of the last hour in memory, hands closed minutes to the store as rollups, and
//! records the longest synchronous call chains seen in traces. Pure and synchronous: no I/O,
//! no async, no clock of its own (every entry point takes `now_unix_nano`), no HTTP or SQL.
//!
//! Flow: [`GraphSpan::from_spans`] (ingest threads) → [`GraphEngine::ingest`] → `pairing`
//! (client/server and producer/consumer halves in a bounded TTL store) → `window` (minute
//! buckets) → [`GraphEngine::tick`] → rollups for the store. `analysis` works on snapshots.
//!
//! # Node ids (`kind:name`, see [`crate::model::graph::NodeKey`])
//! - `service:{service.name}`: an instrumented service (its resource).
//! - `database:{db.system.name|db.system} {host}[:{port}][/{db.namespace|db.name}]`, host
//!   being `peer.service`, else `server.address`, `net.peer.name`, `network.peer.address`;
//!   without a host `database:{system} {namespace}`, e.g. `database:postgresql orders-db:5432/orders`.
//! - `topic:{messaging.system} {destination}`, the destination being
//!   `messaging.destination.name` (else its template, else the legacy `messaging.destination`),
//!   `(temporary)` for temporary/anonymous ones, `(unknown)` if none, e.g. `topic:kafka orders`.
//! - `external:{peer.service|service.peer.name}` (or `service:` that name, if such a service
//!   reports spans), else `external:{server.address}[:{server.port}]` (or `net.peer.name`, the
//!   URL's host, `rpc.service`). Peer IPs alone are not used: they churn.
//! - `client:user`: the caller of root server spans and of server spans whose caller never
//!   reported (counted `num_server_only`).
//!
//! Virtual names are cut to [`naming::MAX_VIRTUAL_NAME_BYTES`].

pub mod analysis;
pub mod anomaly;
pub mod audit;
mod caller_operations;
mod chains;
mod classify;
pub mod deploys;
pub mod diff;
mod engine;
mod generations;
pub(crate) mod hash;
mod minute_bucket;
pub mod naming;
mod pairing;
mod pending;
pub mod sampling;
mod services;
mod settings;
mod stats;
mod trace_calls;
mod window;

#[cfg(test)]
pub(crate) mod fixtures;

pub use chains::{ChainCounters, ObservedChain};
pub use classify::{GraphSpan, NodeRef, Peer, SpanRef, SpanRole};
pub use engine::{GraphCounters, GraphEngine, SamplingCounters, WindowNode};
pub use pairing::PairingCounters;
pub use settings::GraphSettings;
pub use trace_calls::{TraceCall, trace_calls};
pub use window::{ClosedMinutes, WindowCounters, WindowEdge, WindowOperation};
