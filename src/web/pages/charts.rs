//! The charts of the service, edge, Kafka and breakers pages: each reads its figures per
//! bucket of the page's range (and the same buckets a day, else a week, earlier to compare
//! with) and hands the numbers to `web::chart`. Rates divide by the seconds a bucket covers:
//! the bucket in progress by the seconds so far, an earlier bucket by all of its own.

use std::future::Future;

use super::*;
use crate::model::LatencySketch;
use crate::model::figures::per_second;
use crate::model::graph::{EdgeStats, OperationStats};
use crate::query::{BreakerHistory, QueryError, SignalHistory};
use crate::web::chart::{
    Band, ERRORS_COLOUR, LineChart, Marker, Series, Timeline, TimelineRow, Unit,
};

/// Buckets a chart has at most (whole minutes each).
const CHART_BUCKETS: i64 = 60;
/// Lag series drawn at most (the largest); the table lists every group.
const MAX_LAG_SERIES: usize = 8;
/// The earlier periods to compare with, tried in order: minutes back, and the legend's words.
const EARLIER: [(i64, &str); 2] = [(24 * 60, "1 day earlier"), (7 * 24 * 60, "1 week earlier")];

/// A section of charts without a table.
fn chart_section(title: &str, charts: Vec<String>) -> Section {
    let mut section = Section::new(title, "", &[]);
    section.charts = charts;
    section
}

/// What `read` finds in `buckets`, and in the first earlier period it finds data in
/// (`has_data` of a bucket) with that period's buckets.
async fn now_and_earlier<T, Read, Fut>(
    buckets: &SeriesBuckets,
    read: Read,
    has_data: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<(&'static str, SeriesBuckets, Vec<T>)>), QueryError>
where
    Read: Fn(SeriesBuckets) -> Fut,
    Fut: Future<Output = Result<Vec<T>, QueryError>>,
{
    let now = read(buckets.clone()).await?;
    for (minutes_back, label) in EARLIER {
        let earlier = buckets.earlier_by(minutes_back);
        let values = read(earlier.clone()).await?;
        if values.iter().any(&has_data) {
            return Ok((now, Some((label, earlier, values))));
        }
    }
    Ok((now, None))
}

/// The charts' section of a page, each drawn over `buckets`.
fn over_the_range(
    charts: &mut [LineChart],
    markers: &[Marker],
    buckets: &SeriesBuckets,
    now: u64,
) -> Section {
    let rendered = charts
        .iter_mut()
        .map(|chart| {
            chart.markers = markers.to_vec();
            chart.render(buckets, now)
        })
        .collect();
    chart_section("Over the range", rendered)
}

/// The deploys of `services` in `range`, as chart markers ("orders 1.1").
async fn deploy_markers(
    state: &WebState,
    range: GraphRange,
    services: &[&str],
) -> Result<Vec<Marker>, PageError> {
    let mut markers = Vec::new();
    for service in services {
        for deploy in state.query.deploys(range, Some(service)).await? {
            markers.push(Marker {
                unix_nano: crate::model::UnixMinute(deploy.first_seen).start_unix_nano(),
                label: format!("{} {}", deploy.service, deploy.version),
                title: format::deploy_text(&deploy),
            });
        }
    }
    Ok(markers)
}

/// Per bucket, `count` of it per second of the bucket.
fn rates<T>(
    stats: &[T],
    buckets: &SeriesBuckets,
    now: u64,
    count: impl Fn(&T) -> u64,
) -> Vec<Option<f64>> {
    stats
        .iter()
        .enumerate()
        .map(|(index, stats)| Some(per_second(count(stats), buckets.covered_secs(index, now))))
        .collect()
}

/// Per bucket, a quantile of `sketch` in milliseconds; none without latencies.
fn millis<T>(
    stats: &[T],
    quantile: f64,
    sketch: impl Fn(&T) -> &LatencySketch,
) -> Vec<Option<f64>> {
    stats
        .iter()
        .map(|stats| {
            sketch(stats)
                .quantile_nanos(quantile)
                .map(|nanos| nanos / 1e6)
        })
        .collect()
}

/// Per bucket, an error rate in percent; none without calls.
fn percents<T>(stats: &[T], error_rate: impl Fn(&T) -> Option<f64>) -> Vec<Option<f64>> {
    stats
        .iter()
        .map(|stats| error_rate(stats).map(|share| share * 100.0))
        .collect()
}

/// The earlier period's series named as such ("requests 1 day earlier"), for an overlay.
fn earlier_series(name: &str, label: &str, values: Vec<Option<f64>>) -> Option<Series> {
    Some(Series::new(format!("{name} {label}"), values))
}

/// Requests and errors per second, the error rate and p50/p95/p99 of one service.
pub(super) async fn service_charts(
    state: &WebState,
    range: GraphRange,
    service: &str,
) -> Result<Section, PageError> {
    let buckets = SeriesBuckets::new(range.minutes, CHART_BUCKETS);
    let read = |buckets: SeriesBuckets| async move {
        let series = state.query.service_series(&buckets, Some(service)).await?;
        Ok(series
            .into_iter()
            .map(|mut services| services.remove(service).unwrap_or_default())
            .collect::<Vec<OperationStats>>())
    };
    let (stats, earlier) = now_and_earlier(&buckets, read, |stats| stats.num_requests > 0).await?;
    let now = now_unix_nano();
    let num_requests = |stats: &OperationStats| stats.num_requests;
    let mut requests = LineChart::new("Requests", Unit::Rate("req/s"));
    requests.series = vec![
        Series::new("requests", rates(&stats, &buckets, now, num_requests)),
        Series::new("errors", rates(&stats, &buckets, now, |s| s.num_errors))
            .coloured(ERRORS_COLOUR),
    ];
    let mut errors = LineChart::new("Error rate", Unit::Percent);
    errors.series = vec![
        Series::new("errors", percents(&stats, OperationStats::error_rate)).coloured(ERRORS_COLOUR),
    ];
    let mut latency = LineChart::new("Latency", Unit::Millis);
    latency.series = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]
        .into_iter()
        .map(|(name, quantile)| Series::new(name, millis(&stats, quantile, |s| &s.latency)))
        .collect();
    if let Some((label, earlier_buckets, before)) = earlier {
        requests.overlay = earlier_series(
            "requests",
            label,
            rates(&before, &earlier_buckets, now, num_requests),
        );
        errors.overlay = earlier_series(
            "errors",
            label,
            percents(&before, OperationStats::error_rate),
        );
        latency.overlay = earlier_series("p95", label, millis(&before, 0.95, |s| &s.latency));
    }
    let markers = deploy_markers(state, range, &[service]).await?;
    Ok(over_the_range(
        &mut [requests, errors, latency],
        &markers,
        &buckets,
        now,
    ))
}

/// Calls, errors and refused calls per second, the error rate, and both sides' latencies of
/// one edge (every kind of call between the two nodes together).
pub(super) async fn edge_charts(
    state: &WebState,
    range: GraphRange,
    source: &NodeKey,
    target: &NodeKey,
) -> Result<Section, PageError> {
    let buckets = SeriesBuckets::new(range.minutes, CHART_BUCKETS);
    let read = |buckets: SeriesBuckets| async move {
        state.query.edge_series(&buckets, source, target).await
    };
    let (stats, earlier) = now_and_earlier(&buckets, read, |stats| stats.num_requests > 0).await?;
    let now = now_unix_nano();
    let num_calls = |stats: &EdgeStats| stats.num_requests;
    let mut calls = LineChart::new("Calls", Unit::Rate("calls/s"));
    calls.series = vec![
        Series::new("calls", rates(&stats, &buckets, now, num_calls)),
        Series::new(
            "errors",
            rates(&stats, &buckets, now, EdgeStats::num_failed),
        )
        .coloured(ERRORS_COLOUR),
    ];
    if stats.iter().any(|stats| stats.num_refused() > 0) {
        calls.series.push(Series::new(
            "refused by breaker",
            rates(&stats, &buckets, now, EdgeStats::num_refused),
        ));
    }
    let mut errors = LineChart::new("Error rate (refused calls left out)", Unit::Percent);
    errors.series = vec![
        Series::new("errors", percents(&stats, EdgeStats::error_rate)).coloured(ERRORS_COLOUR),
    ];
    let mut latency = edge_latency_chart(&stats);
    if let Some((label, earlier_buckets, before)) = earlier {
        calls.overlay = earlier_series(
            "calls",
            label,
            rates(&before, &earlier_buckets, now, num_calls),
        );
        errors.overlay = earlier_series("errors", label, percents(&before, EdgeStats::error_rate));
        latency.overlay = earlier_series(
            "client p95",
            label,
            millis(&before, 0.95, |s| &s.client_latency),
        );
    }
    let services: Vec<&str> = [source, target]
        .into_iter()
        .filter(|node| node.kind == NodeKind::Service)
        .map(|node| node.name.as_str())
        .collect();
    let markers = deploy_markers(state, range, &services).await?;
    Ok(over_the_range(
        &mut [calls, errors, latency],
        &markers,
        &buckets,
        now,
    ))
}

/// Both sides' latencies of an edge per bucket (and publish → consume, for a topic's).
fn edge_latency_chart(stats: &[EdgeStats]) -> LineChart {
    let mut latency = LineChart::new(
        "Latency: what the caller waited, what the callee spent",
        Unit::Millis,
    );
    let client = [
        ("client p50", 0.5),
        ("client p95", 0.95),
        ("client p99", 0.99),
    ];
    latency.series = client
        .into_iter()
        .map(|(name, quantile)| Series::new(name, millis(stats, quantile, |s| &s.client_latency)))
        .collect();
    latency.series.push(Series::new(
        "server p95",
        millis(stats, 0.95, |s| &s.server_latency),
    ));
    if stats
        .iter()
        .any(|stats| !stats.publish_consume_latency.is_empty())
    {
        latency.series.push(Series::new(
            "publish → consume p95",
            millis(stats, 0.95, |s| &s.publish_consume_latency),
        ));
    }
    latency
}

/// Lag and breaker states over `range`.
async fn signal_history(
    state: &WebState,
    range: GraphRange,
) -> Result<(SeriesBuckets, SignalHistory), PageError> {
    let buckets = SeriesBuckets::new(range.minutes, CHART_BUCKETS);
    let history = state.query.signal_history(&buckets).await?;
    Ok((buckets, history))
}

/// Each consumer group's lag over the range (the largest ones when there are many).
pub(super) async fn lag_chart(state: &WebState, range: GraphRange) -> Result<Section, PageError> {
    let (buckets, history) = signal_history(state, range).await?;
    let peak = |values: &[Option<f64>]| values.iter().flatten().copied().fold(0.0, f64::max);
    let mut groups: Vec<&crate::query::LagSeries> = history.lag.iter().collect();
    groups.sort_by(|a, b| peak(&b.values).total_cmp(&peak(&a.values)));
    let mut chart = LineChart::new("Lag per consumer group", Unit::Messages);
    chart.series = groups
        .iter()
        .take(MAX_LAG_SERIES)
        .map(|lag| {
            Series::new(
                format!("{} on {}", lag.group, lag.topic),
                lag.values.clone(),
            )
        })
        .collect();
    let mut notes = Vec::new();
    if groups.len() > MAX_LAG_SERIES {
        notes.push(format!(
            "The {MAX_LAG_SERIES} largest of {} groups; the table lists all.",
            groups.len()
        ));
    }
    if history.is_truncated {
        notes.push("Too many points in this range: the oldest are left out.".to_owned());
    }
    chart.note = (!notes.is_empty()).then(|| notes.join(" "));
    Ok(chart_section(
        "Lag over the range",
        vec![chart.render(&buckets, now_unix_nano())],
    ))
}

/// The states of a breaker as the timeline colours them.
const BREAKER_COLOURS: [(&str, &str); 6] = [
    ("closed", "#2e7d32"),
    ("half_open", "#d08a00"),
    ("open", "#c62828"),
    ("forced_open", "#7f1d1d"),
    ("disabled", "#8a8f98"),
    ("metrics_only", "#b0b6bf"),
];

/// Every breaker's state over the range as coloured bands.
pub(super) async fn breaker_timeline(
    state: &WebState,
    range: GraphRange,
) -> Result<Section, PageError> {
    let (buckets, history) = signal_history(state, range).await?;
    let (from, _) = buckets.range().unix_nano_bounds();
    let rows: Vec<TimelineRow> = history
        .breakers
        .iter()
        .map(|breaker| TimelineRow {
            name: breaker_row_name(breaker),
            bands: breaker
                .stretches(from)
                .into_iter()
                .map(|(from_unix_nano, to_unix_nano, state)| Band {
                    from_unix_nano,
                    to_unix_nano,
                    state: state.as_str(),
                })
                .collect(),
        })
        .collect();
    let shown = |state: &str| {
        ["closed", "half_open", "open"].contains(&state)
            || rows
                .iter()
                .flat_map(|row| &row.bands)
                .any(|band| band.state == state)
    };
    let timeline = Timeline {
        title: "Breaker states".to_owned(),
        states: BREAKER_COLOURS
            .into_iter()
            .filter(|(state, _)| shown(state))
            .collect(),
        rows,
    };
    Ok(chart_section(
        "States over the range",
        vec![timeline.render(buckets.range(), now_unix_nano())],
    ))
}

/// "orders · payments → payment-provider": the reporting service, the breaker and, when it
/// names one, what it guards.
fn breaker_row_name(breaker: &BreakerHistory) -> String {
    match &breaker.target {
        Some(target) if *target != breaker.name => {
            format!("{} · {} → {target}", breaker.service, breaker.name)
        }
        _ => format!("{} · {}", breaker.service, breaker.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::BreakerState;

    #[test]
    fn every_breaker_state_has_a_colour() {
        for state in BreakerState::ALL {
            assert!(
                BREAKER_COLOURS
                    .iter()
                    .any(|(name, _)| *name == state.as_str()),
                "{state:?}"
            );
        }
    }
}
