//! Storage: small traits with written contracts, and the backends that implement them.
//!
//! The write side is owned by one dedicated thread (see [`crate::pipeline`]); the read side is
//! shared and called from blocking tasks. Nothing here knows about HTTP, gRPC or OTLP.

pub mod batch_codec;
pub mod block_meta;
pub mod clickhouse;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod edge_sums;
pub mod parallel;
pub mod sqlite;
pub(crate) mod summary;
pub mod totals;

use std::time::Duration;

use serde::Serialize;

use crate::model::graph::{EdgeRollup, EdgeTotal, NodeKey, OperationRollup};
use crate::model::{Batch, MetricPoint, MinuteRange, NANOS_PER_MINUTE, Span, TraceId, UnixMinute};

/// The last minute a rollup can belong to: the minute of `u64::MAX` nanoseconds since the Unix
/// epoch, the latest time a span can carry. Rollup minutes lie in `0..=MAX_ROLLUP_MINUTE`.
pub const MAX_ROLLUP_MINUTE: i64 = (u64::MAX / NANOS_PER_MINUTE) as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// Data a write cannot store as given (e.g. a rollup minute out of range); nothing of the
    /// write was stored.
    #[error("invalid data: {0}")]
    InvalidData(String),
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

    /// Stores everything of `batch` and the spans of `frames` (already encoded on the ingest
    /// threads, see [`batch_codec::EncodedFrame`]) in one transaction, with the contract of
    /// [`StoreWriter::write_batch`]. Backends that keep spans as encoded blocks take the
    /// frames' span sections as they are; the default decodes them.
    fn write_with_frames(
        &mut self,
        batch: &Batch,
        frames: &[&batch_codec::EncodedFrame],
    ) -> Result<(), StoreError> {
        if frames.is_empty() {
            return self.write_batch(batch);
        }
        let mut all = batch.clone();
        for frame in frames {
            all.spans
                .extend(batch_codec::all_spans_of_sections(frame.section())?);
        }
        self.write_batch(&all)
    }

    /// Deletes spans, metric points and rollups older than `policy.max_age` before
    /// `now_unix_nano`, then, while the store is larger than `policy.max_size_bytes`, the oldest
    /// data of any kind. Never deletes data newer than the age limit unless the size limit
    /// requires it. A span or point is older than the cutoff when its time is before it; a
    /// rollup when its whole minute is (so the minute the cutoff falls into stays).
    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_unix_nano: u64,
    ) -> Result<RetentionReport, StoreError>;
}

/// Writes the graph engine's per-minute rollups. Owned by the same one thread as the
/// [`StoreWriter`] of the store; calls never overlap.
pub trait RollupWriter: Send {
    /// Stores `edges` and `operations` of one Cartograph `instance` in one transaction.
    ///
    /// `instance` identifies the process that counted the calls (a new one per start): rollups
    /// of different instances for the same minute and key are kept side by side, and readers
    /// add them up — so a restart within a minute, or several instances sharing one store,
    /// never overwrite each other's counts.
    ///
    /// Contract: idempotent per (instance, minute, key), the key of an edge rollup being its [`EdgeKey`]
    /// and of an operation rollup its `(service, operation)`: a rollup whose minute and key are
    /// already stored replaces the stored one whole, placements included, so a re-sent minute
    /// is never counted twice. Within one call, the later of two rollups with the same minute
    /// and key wins. When this returns `Ok` the rollups are committed (as durable as
    /// [`StoreWriter::write_batch`]) and visible to every [`RollupReader`] of the store. On
    /// `Err` nothing of the call is stored; a minute outside `0..=`[`MAX_ROLLUP_MINUTE`] fails
    /// the whole call with [`StoreError::InvalidData`]. Rollups age out through
    /// [`StoreWriter::apply_retention`].
    ///
    /// [`EdgeKey`]: crate::model::graph::EdgeKey
    fn write_rollups(
        &mut self,
        instance: u32,
        edges: &[EdgeRollup],
        operations: &[OperationRollup],
    ) -> Result<(), StoreError>;

    /// The rollups `instance` stored for the minutes of `range`, edges then operations, each
    /// ordered like [`RollupReader`]'s results. The writer reads its own rows with this before
    /// it adds late calls to them (see [`merged_with_stored`]).
    fn instance_rollups(
        &mut self,
        instance: u32,
        range: MinuteRange,
    ) -> Result<(Vec<EdgeRollup>, Vec<OperationRollup>), StoreError>;
}

/// Whose rollups a backend's read returns: every instance's but the one given (a running
/// instance reads its own minutes from memory), or one instance's (the writer reading back what
/// it stored before adding late calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instances {
    AllBut(Option<u32>),
    Only(u32),
}

/// Late additions (rollups of calls that arrived after their minute was stored) added to what
/// `instance` stored for the same minute and key, ready for [`RollupWriter::write_rollups`],
/// which replaces the stored rows: reading once and writing the sum keeps a retried write
/// from adding twice. Placements of the additions win.
pub fn merged_with_stored(
    writer: &mut (impl RollupWriter + ?Sized),
    instance: u32,
    late_edges: &[EdgeRollup],
    late_operations: &[OperationRollup],
) -> Result<(Vec<EdgeRollup>, Vec<OperationRollup>), StoreError> {
    let minutes: std::collections::BTreeSet<i64> = late_edges
        .iter()
        .map(|rollup| rollup.minute)
        .chain(late_operations.iter().map(|rollup| rollup.minute))
        .collect();
    let mut edges = std::collections::HashMap::new();
    let mut operations = std::collections::HashMap::new();
    for minute in minutes {
        let (stored_edges, stored_operations) =
            writer.instance_rollups(instance, MinuteRange::single(UnixMinute(minute)))?;
        for rollup in stored_edges {
            edges.insert((rollup.minute, rollup.key.clone()), rollup);
        }
        for rollup in stored_operations {
            let key = (
                rollup.minute,
                rollup.service.clone(),
                rollup.operation.clone(),
            );
            operations.insert(key, rollup);
        }
    }
    for late in late_edges {
        let key = (late.minute, late.key.clone());
        edges
            .entry(key)
            .and_modify(|sum: &mut EdgeRollup| {
                sum.stats.merge(&late.stats);
                sum.source_placement = late.source_placement.clone();
                sum.target_placement = late.target_placement.clone();
            })
            .or_insert_with(|| late.clone());
    }
    for late in late_operations {
        let key = (late.minute, late.service.clone(), late.operation.clone());
        operations
            .entry(key)
            .and_modify(|sum: &mut OperationRollup| {
                sum.stats.merge(&late.stats);
                sum.placement = late.placement.clone();
            })
            .or_insert_with(|| late.clone());
    }
    Ok((
        edges.into_values().collect(),
        operations.into_values().collect(),
    ))
}

/// Reads per-minute rollups. Same concurrency rules as [`TraceReader`].
///
/// Ranges are half-open [`MinuteRange`]s; an empty range returns nothing. Results are ordered by minute, then key (the
/// `Ord` of [`EdgeKey`] for edges, `(service, operation)` for operations), whatever the order
/// of the writes. Every rollup of the range is returned, so the caller bounds the range: an
/// hour of 2,000 edges is 120,000 rollups.
///
/// [`EdgeKey`]: crate::model::graph::EdgeKey
/// Whether totals of edges hold their operation splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Splits {
    /// With them: an edge's page and change over time show them.
    Read,
    /// Without (empty): the map, alerts and the audit do not read them, and a store may then
    /// leave them unread (ClickHouse keeps them in a column apart).
    #[default]
    Skipped,
}

pub trait RollupReader: Send + Sync {
    /// Every stored edge rollup of the range, exactly as written, one per instance that wrote
    /// it; those of `exclude_instance` are left out (a running instance reads its own minutes
    /// from memory).
    fn edge_rollups(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
    ) -> Result<Vec<EdgeRollup>, StoreError>;

    /// [`RollupReader::edge_rollups`] of the edges from `source` to `target` only (of any
    /// kind): what one edge's charts read, without reading the rest of the map.
    fn edge_rollups_between(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
        source: &NodeKey,
        target: &NodeKey,
    ) -> Result<Vec<EdgeRollup>, StoreError> {
        let mut rollups = self.edge_rollups(range, exclude_instance)?;
        rollups.retain(|rollup| rollup.key.source == *source && rollup.key.target == *target);
        Ok(rollups)
    }

    /// The stored edge rollups of the range but those of `exclude_instance`, merged per edge
    /// (every minute and instance), ordered by key: what a map of the range reads. Equal to
    /// merging [`RollupReader::edge_rollups`] one by one in its order
    /// ([`totals::edge_totals_of`]), with or without the operation splits as `splits` asks;
    /// a store may merge as it reads.
    fn edge_totals(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
        splits: Splits,
    ) -> Result<Vec<EdgeTotal>, StoreError> {
        let mut rollups = self.edge_rollups(range, exclude_instance)?;
        if splits == Splits::Skipped {
            for rollup in &mut rollups {
                rollup.stats.operations = Vec::new();
            }
        }
        totals::edge_totals_of(rollups)
    }

    /// Every stored operation rollup of the range but those of `exclude_instance`, one per
    /// instance that wrote it, of `service` only when given (an exact,
    /// case-sensitive match), exactly as written.
    fn operation_rollups(
        &self,
        range: MinuteRange,
        service: Option<&str>,
        exclude_instance: Option<u32>,
    ) -> Result<Vec<OperationRollup>, StoreError>;

    /// The minutes of the range holding at least one edge or operation rollup, ascending, each
    /// once. Tells "no traffic" from "no data": an edge without a rollup in a listed minute had
    /// no calls then, while an unlisted minute has nothing stored at all (nothing was rolled
    /// up, or it aged out).
    fn rollup_minutes(&self, range: MinuteRange) -> Result<Vec<i64>, StoreError>;
}

/// Reads traces. Safe to call from many threads at once, concurrently with the writer.
pub trait TraceReader: Send + Sync {
    /// All stored spans of one trace ordered by start time, then span id (a stable order
    /// readers page through), or `Ok(None)` when none is stored.
    fn trace(&self, trace_id: TraceId) -> Result<Option<Vec<Span>>, StoreError>;

    /// Traces with at least one span matching every condition of `query`, newest first, at most
    /// `query.limit` of them. "Newest" picks the traces by their latest matching span; the
    /// result is ordered by trace start time, latest first.
    fn search_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError>;

    /// The stored spans of the traces [`TraceReader::search_traces`] finds for `query`, in its
    /// order, each trace's spans as [`TraceReader::trace`] returns them: one read, where
    /// searching and then reading each trace would read them twice. Traces are read latest
    /// match first, and reading stops once they hold `max_spans` spans or more, so a caller
    /// bounds its work with `query.limit` and `max_spans` (the last trace read is returned
    /// whole). A trace that retention removed meanwhile is left out.
    fn search_trace_spans(
        &self,
        query: &TraceQuery,
        max_spans: usize,
    ) -> Result<Vec<Vec<Span>>, StoreError>;

    /// [`TraceReader::search_trace_spans`] of each of `queries`, in their order, as one read:
    /// what a page shows from several searches of the same traces (an edge's newest traces
    /// and its failed ones) comes from one state of the store, and a backend that can reads
    /// what the searches share once. Each search keeps its own bounds. The default runs them
    /// one after the other.
    fn search_trace_spans_of_each(
        &self,
        queries: &[TraceQuery],
        max_spans: usize,
    ) -> Result<Vec<Vec<Vec<Span>>>, StoreError> {
        queries
            .iter()
            .map(|query| self.search_trace_spans(query, max_spans))
            .collect()
    }
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
    /// Edge and operation rollups deleted, together.
    pub num_rollups_deleted: u64,
    /// Size of the store after retention, in bytes.
    pub size_bytes: u64,
    /// Spans the store holds after retention, where the backend knows it cheaply (else 0).
    pub num_spans_kept: u64,
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
    /// Stop after looking at about this many spans, newest first, whatever was found (a page
    /// that lists a few examples beside its figures); `None`: the backend's own bound. Only
    /// the embedded store scans spans; ClickHouse searches by index.
    pub max_scanned_spans: Option<usize>,
}

impl TraceQuery {
    /// Whether the query can find nothing whatever is stored: no room for a result, or an
    /// empty time range.
    pub fn finds_nothing(&self) -> bool {
        self.limit == 0 || self.from_unix_nano >= self.to_unix_nano
    }
}

/// One row of a trace search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// Service and name of the root span, or of the earliest span when the root is missing.
    pub root_service: String,
    pub root_name: String,
    pub start_time_unix_nano: u64,
    /// The whole trace: from its earliest span's start to its latest span's end.
    pub duration_nanos: u64,
    /// The longest span of the trace that met every condition of the search.
    pub matched_duration_nanos: u64,
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

impl MetricQuery {
    /// Whether the query can find nothing whatever is stored (see [`TraceQuery::finds_nothing`]).
    pub fn finds_nothing(&self) -> bool {
        self.limit == 0 || self.from_unix_nano >= self.to_unix_nano
    }
}
