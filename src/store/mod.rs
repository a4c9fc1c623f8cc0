//! Storage: small traits with written contracts, and the backends that implement them.
//!
//! The write side is owned by one dedicated thread (see [`crate::pipeline`]); the read side is
//! shared and called from blocking tasks. Nothing here knows about HTTP, gRPC or OTLP.

pub mod conformance;
pub mod sqlite;

use std::time::Duration;

use serde::Serialize;

use crate::model::{Batch, MetricPoint, Span, TraceId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

/// Writes accepted telemetry. Owned by exactly one thread; calls never overlap.
pub trait StoreWriter: Send {
    /// Stores every span and metric point of `batch` in one transaction.
    ///
    /// Contract: when this returns `Ok`, the data is committed (durable against a process crash
    /// for file-backed stores) and visible to every [`TraceReader`] and [`MetricReader`] of the
    /// same store. On `Err` nothing of the batch is stored, so the caller may retry it whole.
    /// Writing a span whose `(trace_id, span_id)` is already stored replaces nothing and adds
    /// nothing: writes are idempotent per span, so a retried batch is stored once.
    fn write_batch(&mut self, batch: &Batch) -> Result<(), StoreError>;

    /// Deletes spans and metric points older than `policy.max_age` before `now_unix_nano`, then,
    /// while the store is larger than `policy.max_size_bytes`, the oldest data. Never deletes
    /// data newer than the age limit unless the size limit requires it.
    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_unix_nano: u64,
    ) -> Result<RetentionReport, StoreError>;
}

/// Reads traces. Safe to call from many threads at once, concurrently with the writer.
pub trait TraceReader: Send + Sync {
    /// All stored spans of one trace ordered by start time, or `Ok(None)` when none is stored.
    fn trace(&self, trace_id: TraceId) -> Result<Option<Vec<Span>>, StoreError>;

    /// Traces with at least one span matching every condition of `query`, newest first, at most
    /// `query.limit` of them.
    fn search_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError>;
}

/// Reads metric points. Same concurrency rules as [`TraceReader`].
pub trait MetricReader: Send + Sync {
    /// Points matching `query` ordered by time then name, at most `query.limit` of them.
    fn metric_points(&self, query: &MetricQuery) -> Result<Vec<MetricPoint>, StoreError>;
}

/// How long and how much data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_age: Duration,
    pub max_size_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub num_spans_deleted: u64,
    pub num_metric_points_deleted: u64,
    /// Size of the store after retention, in bytes.
    pub size_bytes: u64,
}

/// A trace search. Time bounds apply to span start times; `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub from_unix_nano: u64,
    pub to_unix_nano: u64,
    pub min_duration_nanos: Option<u64>,
    pub max_duration_nanos: Option<u64>,
    /// `Some(true)`: only spans with status error; `Some(false)`: only spans without.
    pub error: Option<bool>,
    /// Span or resource attribute `key = value`, the value compared in its search-text form
    /// (see [`crate::model::AttrValue::to_search_text`]).
    pub attribute: Option<(String, String)>,
    pub limit: usize,
}

/// One row of a trace search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// Service and name of the root span, or of the earliest span when the root is missing.
    pub root_service: String,
    pub root_name: String,
    pub start_time_unix_nano: u64,
    pub duration_nanos: u64,
    pub num_spans: u64,
    pub num_errors: u64,
    /// Distinct service names in the trace, sorted.
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    pub name: Option<String>,
    pub service: Option<String>,
    pub from_unix_nano: u64,
    pub to_unix_nano: u64,
    pub limit: usize,
}
