//! The map as Prometheus series in Tempo's `traces_service_graph_*` shape, so Grafana's
//! service-graph view can read Cartograph too, plus the engine's own counters.
//!
//! Counters are cumulative since start: closed minutes are folded into totals under the
//! engine's lock (see `pipeline::graph_feed`), and a scrape adds the open minute, so every
//! series only grows. The number of series is bounded; calls on further edges are counted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use crate::graph::{GraphCounters, WindowEdge};
use crate::model::LatencySketch;
use crate::model::graph::{EdgeKey, EdgeRollup, EdgeStats, NodeKind};
use crate::model::sketch::bucket_value_nanos;

/// Tempo's default histogram buckets, in seconds.
const BUCKET_BOUNDS_SECS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];
/// Most edges exported as series.
pub const MAX_SERIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    client: String,
    server: String,
    connection_type: &'static str,
}

impl SeriesKey {
    fn of(key: &EdgeKey) -> Self {
        let connection_type = match key.target.kind {
            NodeKind::Database => "database",
            NodeKind::Topic => "messaging_system",
            NodeKind::External => "virtual_node",
            NodeKind::Service | NodeKind::Client => match key.source.kind {
                NodeKind::Topic => "messaging_system",
                NodeKind::Client => "virtual_node",
                _ => "",
            },
        };
        Self {
            client: key.source.name.clone(),
            server: key.target.name.clone(),
            connection_type,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    cumulative_buckets: [u64; BUCKET_BOUNDS_SECS.len()],
    count: u64,
    sum_secs: f64,
}

impl Histogram {
    fn add(&mut self, sketch: &LatencySketch) {
        self.count += sketch.count();
        self.sum_secs += sketch.sum_nanos() / 1e9;
        for (bound, bucket) in BUCKET_BOUNDS_SECS.iter().zip(&mut self.cumulative_buckets) {
            *bucket += count_at_most(sketch, bound * 1e9);
        }
    }
}

/// Observations at or below `bound_nanos`, within the sketch's relative accuracy.
fn count_at_most(sketch: &LatencySketch, bound_nanos: f64) -> u64 {
    let below: u64 = sketch
        .buckets()
        .iter()
        .take_while(|(index, _)| bucket_value_nanos(*index) <= bound_nanos)
        .map(|(_, count)| count)
        .sum();
    sketch.zero_count() + below
}

#[derive(Debug, Clone, Default)]
struct Totals {
    requests: u64,
    failed: u64,
    client: Histogram,
    server: Histogram,
}

impl Totals {
    fn add(&mut self, stats: &EdgeStats) {
        self.requests += stats.num_requests;
        self.failed += stats.num_errors;
        self.client.add(&stats.client_latency);
        // Where no server reports (a database, an external host, an uninstrumented service),
        // Tempo records the client's time as the server's: Grafana's service map divides
        // server seconds by requests for a node's response time, which would read 0 ms.
        let server = if stats.server_latency.count() == 0 {
            &stats.client_latency
        } else {
            &stats.server_latency
        };
        self.server.add(server);
    }
}

#[derive(Debug, Default)]
struct State {
    totals: HashMap<SeriesKey, Totals>,
    num_calls_over_series_limit: u64,
}

impl State {
    fn add(&mut self, key: &EdgeKey, stats: &EdgeStats) {
        let series = SeriesKey::of(key);
        if !self.totals.contains_key(&series) && self.totals.len() >= MAX_SERIES {
            self.num_calls_over_series_limit += stats.num_requests;
            return;
        }
        self.totals.entry(series).or_default().add(stats);
    }
}

#[derive(Debug, Default)]
pub struct ServiceGraphMetrics {
    state: Mutex<State>,
}

impl ServiceGraphMetrics {
    /// Folds closed minutes into the totals. Call under the engine lock, with the minutes
    /// that `tick` just closed, so no scrape sees a call twice or not at all.
    pub fn add_closed(&self, edges: &[EdgeRollup]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for rollup in edges {
            state.add(&rollup.key, &rollup.stats);
        }
    }

    /// Renders totals plus the `open` minute's edges, and the engine's counters.
    pub fn render(&self, open: &[WindowEdge], counters: &GraphCounters) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut view = State {
            totals: state.totals.clone(),
            num_calls_over_series_limit: state.num_calls_over_series_limit,
        };
        drop(state);
        for edge in open {
            view.add(&edge.key, &edge.stats);
        }
        let mut series: Vec<(&SeriesKey, &Totals)> = view.totals.iter().collect();
        series.sort_by(|a, b| (&a.0.client, &a.0.server).cmp(&(&b.0.client, &b.0.server)));
        let mut out = String::with_capacity(256 * series.len() + 2048);
        render_counters(&mut out, &series);
        render_histogram(
            &mut out,
            "traces_service_graph_request_client_seconds",
            &series,
            |totals| &totals.client,
        );
        render_histogram(
            &mut out,
            "traces_service_graph_request_server_seconds",
            &series,
            |totals| &totals.server,
        );
        render_engine(&mut out, counters, view.num_calls_over_series_limit);
        out
    }
}

fn labels(key: &SeriesKey) -> String {
    format!(
        "client=\"{}\",server=\"{}\",connection_type=\"{}\"",
        escape(&key.client),
        escape(&key.server),
        key.connection_type
    )
}

/// Prometheus label value escaping.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A counter series: name, help text, and how to read it from the totals.
type CounterSpec = (&'static str, &'static str, fn(&Totals) -> u64);

fn render_counters(out: &mut String, series: &[(&SeriesKey, &Totals)]) {
    let counters: [CounterSpec; 2] = [
        (
            "traces_service_graph_request_total",
            "Calls between two nodes.",
            |totals| totals.requests,
        ),
        (
            "traces_service_graph_request_failed_total",
            "Failed calls between two nodes.",
            |totals| totals.failed,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (key, totals) in series {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(key), value(totals));
        }
    }
}

fn render_histogram(
    out: &mut String,
    name: &str,
    series: &[(&SeriesKey, &Totals)],
    histogram: fn(&Totals) -> &Histogram,
) {
    let _ = writeln!(
        out,
        "# HELP {name} Call durations between two nodes.\n# TYPE {name} histogram"
    );
    for (key, totals) in series {
        let histogram = histogram(totals);
        let labels = labels(key);
        for (bound, count) in BUCKET_BOUNDS_SECS.iter().zip(&histogram.cumulative_buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum_secs);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
    }
}

/// A self-metric: name, help text, value.
type Series = (&'static str, &'static str, u64);

fn pairing_series(pairing: &crate::graph::PairingCounters) -> [Series; 7] {
    [
        (
            "cartograph_graph_spans_total",
            "Spans fed to the graph engine.",
            pairing.num_spans,
        ),
        (
            "cartograph_graph_pairs_total",
            "Client/server span pairs completed.",
            pairing.num_paired,
        ),
        (
            "cartograph_graph_pending_spans",
            "Span halves waiting for their partner now (bounded by graph.max_pending_spans).",
            pairing.num_pending,
        ),
        (
            "cartograph_graph_expired_total",
            "Span halves whose partner did not arrive within the TTL (recorded as unpaired calls).",
            pairing.num_expired,
        ),
        (
            "cartograph_graph_evicted_total",
            "Span halves let go early because the pending store was full.",
            pairing.num_evicted,
        ),
        (
            "cartograph_graph_dropped_unnamed_total",
            "Unpaired client spans naming no peer (no edge to draw).",
            pairing.num_dropped_unnamed,
        ),
        (
            "cartograph_graph_dropped_duplicates_total",
            "Re-sent span halves ignored.",
            pairing.num_dropped_duplicates,
        ),
    ]
}

fn window_series(window: &crate::graph::WindowCounters) -> [Series; 9] {
    [
        (
            "cartograph_graph_calls_over_edge_limit_total",
            "Calls not mapped because a minute reached its edge limit.",
            window.num_calls_over_edge_limit,
        ),
        (
            "cartograph_graph_spans_over_operation_limit_total",
            "Spans not counted because a minute reached its operation limit.",
            window.num_spans_over_operation_limit,
        ),
        (
            "cartograph_graph_instances_over_limit_total",
            "Spans whose service.instance.id was not counted (instances per operation or minute full).",
            window.num_instances_over_limit,
        ),
        (
            "cartograph_graph_versions_over_limit_total",
            "Spans whose service.version was not kept (16 versions per operation and minute).",
            window.num_versions_over_limit,
        ),
        (
            "cartograph_graph_calls_over_operation_split_limit_total",
            "Calls counted in their edge's other operations (8 operation pairs per edge and minute).",
            window.num_calls_over_operation_split_limit,
        ),
        (
            "cartograph_graph_late_total",
            "Calls and spans counted in a minute that had already closed (still in memory).",
            window.num_late,
        ),
        (
            "cartograph_graph_late_merged_total",
            "Calls and spans of minutes older than memory, merged into the stored rollups.",
            window.num_late_merged,
        ),
        (
            "cartograph_graph_too_late_total",
            "Calls and spans older than graph.max_lateness_secs: stored, not on the map.",
            window.num_too_late,
        ),
        (
            "cartograph_graph_clock_ahead_total",
            "Calls and spans stamped after the current minute, counted in the current minute.",
            window.num_clock_ahead,
        ),
    ]
}

fn render_engine(out: &mut String, counters: &GraphCounters, num_over_series_limit: u64) {
    let series_limit = (
        "cartograph_graph_calls_over_series_limit_total",
        "Calls not exported as traces_service_graph series (series limit).",
        num_over_series_limit,
    );
    let sampling = [
        (
            "cartograph_graph_sampled_spans_total",
            "Spans counted for more than one by their sampling (tracestate ot=th, multipliers).",
            counters.sampling.num_weighted_spans,
        ),
        (
            "cartograph_graph_malformed_tracestate_total",
            "Spans whose tracestate sampling threshold could not be read (weighed as unsampled).",
            counters.sampling.num_malformed,
        ),
    ];
    let values = pairing_series(&counters.pairing)
        .into_iter()
        .chain(window_series(&counters.window))
        .chain(sampling)
        .chain([series_limit]);
    for (name, help, value) in values {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{EdgeKind, NodeKey, NodePlacement};

    fn rollup(target: NodeKey, kind: EdgeKind, client_ms: &[u64], server_ms: &[u64]) -> EdgeRollup {
        let mut stats = EdgeStats {
            num_requests: client_ms.len().max(server_ms.len()) as u64,
            ..EdgeStats::default()
        };
        for ms in client_ms {
            stats.client_latency.record(ms * 1_000_000);
        }
        for ms in server_ms {
            stats.server_latency.record(ms * 1_000_000);
        }
        EdgeRollup {
            minute: 29_000_000,
            key: EdgeKey {
                source: NodeKey::service("orders"),
                target,
                kind,
            },
            source_placement: NodePlacement::default(),
            target_placement: NodePlacement::default(),
            stats,
        }
    }

    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
    }

    #[test]
    fn a_database_edge_has_the_client_time_as_server_seconds_as_tempo_does() {
        let metrics = ServiceGraphMetrics::default();
        let database = NodeKey::new(NodeKind::Database, "postgresql orders-db");
        metrics.add_closed(&[
            rollup(database, EdgeKind::Database, &[50], &[]),
            rollup(NodeKey::service("payments"), EdgeKind::Http, &[30], &[20]),
        ]);
        let text = metrics.render(&[], &GraphCounters::default());
        let db = r#"{client="orders",server="postgresql orders-db",connection_type="database"}"#;
        let server = "traces_service_graph_request_server_seconds";
        assert_eq!(sample(&text, &format!("{server}_count{db}")), 1.0);
        let sum = sample(&text, &format!("{server}_sum{db}"));
        assert!((sum - 0.05).abs() < 0.05 * 0.02, "{sum}");
        // Where the server reports, its own time is kept.
        let http = r#"{client="orders",server="payments",connection_type=""}"#;
        let sum = sample(&text, &format!("{server}_sum{http}"));
        assert!((sum - 0.02).abs() < 0.02 * 0.02, "{sum}");
    }
}
