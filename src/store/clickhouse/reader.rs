//! Reads: traces (located through `trace_times`), search, metric points and rollups. Re-sent
//! rows collapse through `FINAL` (ReplacingMergeTree) and, for spans, one row per span id.

use std::collections::HashMap;
use std::sync::Arc;

use clickhouse::Row;
use serde::Deserialize;

use super::Shared;
use super::bound::{Bound, bound_query, rollup_condition};
use super::buckets::totals_statement;
use super::rows::{EdgeRollupReadRow, OperationRollupRow, PointRow, SpanRow, edge_key_prefix};
use super::totals::{TotalsRow, add_row};
use crate::model::graph::{EdgeRollup, EdgeTotal, NodeKey, OperationRollup};
use crate::model::{MetricPoint, MinuteRange, Span, TraceId};
use crate::store::edge_sums::EdgeSums;
use crate::store::parallel::try_map_in_order;
use crate::store::summary::{SpanBrief, TraceAcc, summaries_newest_first};
use crate::store::{
    Instances, MetricQuery, MetricReader, RollupReader, Splits, StoreError, TraceQuery,
    TraceReader, TraceSummary,
};

/// Trace ids asked for in one `IN (...)` at most.
const CHUNK: usize = 500;
/// Traces whose spans one read of `search_trace_spans` asks for.
const SPAN_READ_CHUNK: usize = 50;

#[derive(Debug, Clone)]
pub struct ClickHouseReader {
    shared: Arc<Shared>,
}

#[derive(Row, Deserialize)]
struct Candidate {
    trace_id: [u8; 16],
    #[allow(dead_code)]
    latest: u64,
    /// The longest matching span's duration.
    longest: u64,
}

impl ClickHouseReader {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn fetch<T: clickhouse::RowOwned + clickhouse::RowRead>(
        &self,
        sql: String,
        binds: Vec<Bound>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.shared.client.clone();
        self.shared
            .block(async move { bound_query(&client, &sql, binds).fetch_all::<T>().await })
    }

    /// Every stored span of `trace_ids`, one row per (trace, span).
    fn spans_of(&self, trace_ids: &[[u8; 16]]) -> Result<Vec<SpanRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in trace_ids.chunks(CHUNK) {
            let placeholders = vec!["unhex(?)"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT ?fields FROM {spans} FINAL WHERE trace_id IN ({placeholders}) \
                 AND start_time_unix_nano >= (SELECT min(start_time_unix_nano) FROM {times} WHERE trace_id IN ({placeholders})) \
                 AND start_time_unix_nano <= (SELECT max(start_time_unix_nano) FROM {times} WHERE trace_id IN ({placeholders})) \
                 ORDER BY start_time_unix_nano, span_id LIMIT 1 BY trace_id, span_id",
                spans = self.shared.table("spans"),
                times = self.shared.table("trace_times"),
            );
            let hexes: Vec<String> = chunk.iter().map(hex::encode).collect();
            let binds = (0..3)
                .flat_map(|_| hexes.iter().map(|id| Bound::Text(id.clone())))
                .collect();
            rows.extend(self.fetch::<SpanRow>(sql, binds)?);
        }
        Ok(rows)
    }
}

impl TraceReader for ClickHouseReader {
    fn trace(&self, trace_id: TraceId) -> Result<Option<Vec<Span>>, StoreError> {
        let rows = self.spans_of(&[*trace_id.as_bytes()])?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut spans = rows
            .into_iter()
            .map(SpanRow::into_span)
            .collect::<Result<Vec<_>, _>>()?;
        spans.sort_by_key(|span| (span.start_time_unix_nano, span.span_id));
        Ok(Some(spans))
    }

    fn search_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        if query.finds_nothing() {
            return Ok(Vec::new());
        }
        let found = self.candidates(query)?;
        let candidates: Vec<[u8; 16]> = found.iter().map(|candidate| candidate.trace_id).collect();
        let mut accs: HashMap<TraceId, TraceAcc> = HashMap::new();
        for row in self.spans_of(&candidates)? {
            let span = row.into_span()?;
            accs.entry(span.trace_id)
                .or_default()
                .add(SpanBrief::of(&span));
        }
        let ids: Vec<(TraceId, u64)> = found
            .iter()
            .filter_map(|candidate| {
                let trace_id = TraceId::from_bytes(&candidate.trace_id).ok()?;
                Some((trace_id, candidate.longest))
            })
            .collect();
        Ok(summaries_newest_first(&ids, accs))
    }

    fn search_trace_spans(
        &self,
        query: &TraceQuery,
        max_spans: usize,
    ) -> Result<Vec<Vec<Span>>, StoreError> {
        if query.finds_nothing() {
            return Ok(Vec::new());
        }
        let candidates: Vec<[u8; 16]> = self
            .candidates(query)?
            .iter()
            .map(|candidate| candidate.trace_id)
            .collect();
        let mut traces: Vec<Vec<Span>> = Vec::new();
        let mut num_spans = 0_usize;
        // A few traces a query, so reading stops soon after the bound.
        for chunk in candidates.chunks(SPAN_READ_CHUNK) {
            let mut by_trace: HashMap<[u8; 16], Vec<Span>> = HashMap::new();
            for row in self.spans_of(chunk)? {
                let span = row.into_span()?;
                by_trace
                    .entry(*span.trace_id.as_bytes())
                    .or_default()
                    .push(span);
            }
            for trace_id in chunk {
                if num_spans >= max_spans {
                    break;
                }
                if let Some(spans) = by_trace.remove(trace_id) {
                    num_spans += spans.len();
                    traces.push(spans);
                }
            }
        }
        traces.sort_by(|left, right| {
            let (left, right) = (&left[0], &right[0]);
            right
                .start_time_unix_nano
                .cmp(&left.start_time_unix_nano)
                .then(left.trace_id.cmp(&right.trace_id))
        });
        Ok(traces)
    }
}

impl ClickHouseReader {
    /// The `query.limit` traces whose latest matching span starts last, with their longest
    /// matching span, latest first.
    fn candidates(&self, query: &TraceQuery) -> Result<Vec<Candidate>, StoreError> {
        let mut conditions = vec![
            "start_time_unix_nano >= ?".to_owned(),
            "start_time_unix_nano < ?".to_owned(),
        ];
        let mut binds = vec![
            Bound::Number(query.from_unix_nano),
            Bound::Number(query.to_unix_nano),
        ];
        let mut add = |condition: &str, values: &[&String]| {
            conditions.push(condition.to_owned());
            binds.extend(values.iter().map(|value| Bound::Text((*value).clone())));
        };
        if let Some(service) = &query.service {
            add("service = ?", &[service]);
        }
        if let Some(operation) = &query.operation {
            add("name = ?", &[operation]);
        }
        if let Some((key, value)) = &query.attribute {
            add(
                "((mapContains(attributes, ?) AND attributes[?] = ?) OR \
                 (mapContains(resource_attributes, ?) AND resource_attributes[?] = ?))",
                &[key, key, value, key, key, value],
            );
        }
        if let Some(min) = query.min_duration_nanos {
            conditions.push("duration_nanos >= ?".to_owned());
            binds.push(Bound::Number(min));
        }
        if let Some(max) = query.max_duration_nanos {
            conditions.push("duration_nanos <= ?".to_owned());
            binds.push(Bound::Number(max));
        }
        if let Some(error) = query.error {
            conditions.push("is_error = ?".to_owned());
            binds.push(Bound::Number(u64::from(error)));
        }
        binds.push(Bound::Number(query.limit as u64));
        let sql = format!(
            "SELECT trace_id, max(start_time_unix_nano) AS latest, max(duration_nanos) AS longest \
             FROM {} FINAL WHERE {} GROUP BY trace_id ORDER BY latest DESC, trace_id LIMIT ?",
            self.shared.table("spans"),
            conditions.join(" AND ")
        );
        self.fetch::<Candidate>(sql, binds)
    }
}

impl MetricReader for ClickHouseReader {
    fn metric_points(&self, query: &MetricQuery) -> Result<Vec<MetricPoint>, StoreError> {
        if query.finds_nothing() {
            return Ok(Vec::new());
        }
        let mut conditions = vec!["time_unix_nano >= ?", "time_unix_nano < ?"];
        let mut binds = vec![
            Bound::Number(query.from_unix_nano),
            Bound::Number(query.to_unix_nano),
        ];
        if let Some(name) = &query.name {
            conditions.push("name = ?");
            binds.push(Bound::Text(name.clone()));
        }
        if let Some(service) = &query.service {
            conditions.push("service = ?");
            binds.push(Bound::Text(service.clone()));
        }
        binds.push(Bound::Number(query.limit as u64));
        let sql = format!(
            "SELECT ?fields FROM {} FINAL WHERE {} ORDER BY time_unix_nano, name, service, point_id LIMIT ?",
            self.shared.table("metric_points"),
            conditions.join(" AND ")
        );
        self.fetch::<PointRow>(sql, binds)?
            .into_iter()
            .map(PointRow::into_point)
            .collect()
    }
}

impl ClickHouseReader {
    /// Totals over `range`, with or without the operation splits: the rows streamed into
    /// per-edge sums as they arrive ([`EdgeSums`]), `operations` selected only when read.
    /// Without splits, ten-minute sets stand for their minutes where they can
    /// ([`super::buckets`]).
    fn summed_edges(
        &self,
        range: MinuteRange,
        instances: Instances,
        splits: Splits,
    ) -> Result<Vec<EdgeTotal>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let with_sets = match splits {
            Splits::Skipped => totals_statement(&self.shared, range, instances)?,
            Splits::Read => None,
        };
        let (sql, binds) = match with_sets {
            Some(statement) => statement,
            None => {
                let (condition, binds) = rollup_condition("minute", range, instances);
                let operations = match splits {
                    Splits::Read => "operations",
                    Splits::Skipped => "'' AS operations",
                };
                let sql = format!(
                    "SELECT minute, instance, payload, {operations} FROM {} FINAL WHERE {condition}",
                    self.shared.table("edge_rollups")
                );
                (sql, binds)
            }
        };
        let client = self.shared.client.clone();
        let summed = self.shared.block(async move {
            let mut cursor = bound_query(&client, &sql, binds).fetch::<TotalsRow<'_>>()?;
            let mut summed = EdgeSums::new(splits);
            while let Some(row) = cursor.next().await? {
                if let Err(err) = add_row(&mut summed, &row) {
                    return Ok(Err(err));
                }
            }
            Ok(Ok(summed))
        })??;
        summed.into_totals()
    }

    /// The edge rollups of `range` written by `instances` (of the edges between `pair` only
    /// when given), by minute, key and instance.
    pub(super) fn edges_of(
        &self,
        range: MinuteRange,
        instances: Instances,
        pair: Option<(&NodeKey, &NodeKey)>,
    ) -> Result<Vec<EdgeRollup>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let (mut condition, mut binds) = rollup_condition("minute", range, instances);
        if let Some((source, target)) = pair {
            // In hex: names may hold any character, and the key separates them with NULs.
            condition.push_str(" AND startsWith(key, unhex(?))");
            binds.push(Bound::Text(hex::encode(edge_key_prefix(source, target))));
        }
        let sql = format!(
            "SELECT ?fields FROM {} FINAL WHERE {condition}",
            self.shared.table("edge_rollups")
        );
        let fetched = self.fetch::<EdgeRollupReadRow>(sql, binds)?;
        let mut rows = try_map_in_order(fetched, |row| Ok((row.instance, row.into_rollup()?)))?;
        if let Some((source, target)) = pair {
            // Keys written before ids were escaped: a name holding a NUL could make another
            // edge's key start the same.
            rows.retain(|(_, rollup)| rollup.key.source == *source && rollup.key.target == *target);
        }
        // Positions are sorted, not the rollups (a few hundred bytes each).
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by(|&left, &right| {
            let ((left_instance, left), (right_instance, right)) = (&rows[left], &rows[right]);
            (left.minute, &left.key, left_instance).cmp(&(right.minute, &right.key, right_instance))
        });
        let mut taken: Vec<Option<EdgeRollup>> =
            rows.into_iter().map(|(_, rollup)| Some(rollup)).collect();
        Ok(order
            .into_iter()
            .filter_map(|position| taken[position].take())
            .collect())
    }

    pub(super) fn operations_of(
        &self,
        range: MinuteRange,
        service: Option<&str>,
        instances: Instances,
    ) -> Result<Vec<OperationRollup>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let (mut condition, mut binds) = rollup_condition("minute", range, instances);
        if let Some(service) = service {
            condition.push_str(" AND service = ?");
            binds.push(Bound::Text(service.to_owned()));
        }
        let sql = format!(
            "SELECT ?fields FROM {} FINAL WHERE {condition}",
            self.shared.table("operation_rollups")
        );
        let rows = self.fetch::<OperationRollupRow>(sql, binds)?;
        let mut rows = try_map_in_order(rows, |row| Ok((row.instance, row.into_rollup()?)))?;
        rows.sort_unstable_by(|(a_instance, a), (b_instance, b)| {
            (a.minute, &a.service, &a.operation, a_instance).cmp(&(
                b.minute,
                &b.service,
                &b.operation,
                b_instance,
            ))
        });
        Ok(rows.into_iter().map(|(_, rollup)| rollup).collect())
    }
}

impl RollupReader for ClickHouseReader {
    fn edge_rollups(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
    ) -> Result<Vec<EdgeRollup>, StoreError> {
        self.edges_of(range, Instances::AllBut(exclude_instance), None)
    }

    fn edge_rollups_between(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
        source: &NodeKey,
        target: &NodeKey,
    ) -> Result<Vec<EdgeRollup>, StoreError> {
        let instances = Instances::AllBut(exclude_instance);
        self.edges_of(range, instances, Some((source, target)))
    }

    fn edge_totals(
        &self,
        range: MinuteRange,
        exclude_instance: Option<u32>,
        splits: Splits,
    ) -> Result<Vec<EdgeTotal>, StoreError> {
        self.summed_edges(range, Instances::AllBut(exclude_instance), splits)
    }

    fn operation_rollups(
        &self,
        range: MinuteRange,
        service: Option<&str>,
        exclude_instance: Option<u32>,
    ) -> Result<Vec<OperationRollup>, StoreError> {
        self.operations_of(range, service, Instances::AllBut(exclude_instance))
    }

    fn rollup_minutes(&self, range: MinuteRange) -> Result<Vec<i64>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let (condition, mut binds) = rollup_condition("minute", range, Instances::AllBut(None));
        binds.extend(binds.clone());
        let sql = format!(
            "SELECT DISTINCT minute FROM (SELECT minute FROM {} WHERE {condition} \
             UNION ALL SELECT minute FROM {} WHERE {condition}) ORDER BY minute",
            self.shared.table("edge_rollups"),
            self.shared.table("operation_rollups"),
        );
        self.fetch::<i64>(sql, binds)
    }
}
