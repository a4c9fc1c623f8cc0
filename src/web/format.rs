//! How a figure is printed, once for the map, every page and the API's text renderings (DOT,
//! Mermaid): the same number reads the same wherever it appears. Rates are per second and
//! always say so ("/s"). What the figures mean is `model::figures`'s business.
//!
//! Where a page prints a figure it also marks it ([`Mark`]: `data-figure` and `data-subject`
//! beside the text), so a test or a script can find it without reading prose.

use crate::model::LatencySketch;
use crate::model::figures::per_second;
use crate::model::graph::{EdgeKey, EdgeStats, NodeKey, OperationStats};

/// Printed when a figure has no value (no calls, no latency).
pub const NONE: &str = "–";

/// A rate per second: "0/s", "0.017/s" (two significant digits under one a second),
/// "3.2/s", "140/s"; "<0.001/s" for less than one call in a quarter of an hour.
pub fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".to_owned();
    }
    if per_sec >= 100.0 {
        return format!("{per_sec:.0}/s");
    }
    if per_sec >= 1.0 {
        return format!("{per_sec:.1}/s");
    }
    if per_sec < 0.001 {
        return "<0.001/s".to_owned();
    }
    let decimals = (1.0 - per_sec.log10().floor()) as usize;
    format!("{per_sec:.decimals$}/s")
}

/// `count` over `window_secs`, printed as its rate.
pub fn rate_of(count: u64, window_secs: f64) -> String {
    rate_text(per_second(count, window_secs))
}

/// A count's rate, marked "≈ " when the count was estimated from sampled traces
/// (`observed_share`, see `model::figures::observed_share`).
pub fn counted_rate(count: u64, observed_share: Option<f64>, window_secs: f64) -> String {
    let rate = rate_of(count, window_secs);
    if observed_share.is_some() {
        format!("{ESTIMATED}{rate}")
    } else {
        rate
    }
}

/// A count estimated from sampled traces beside what was received: "≈ 400 (100 received)";
/// an exact count as it is.
pub fn counted_text(count: u64, num_observed: u64) -> String {
    if num_observed < count {
        format!("{ESTIMATED}{count} ({num_observed} received)")
    } else {
        count.to_string()
    }
}

/// A deploy in words: "orders 1.0 → 1.1 at 14:05 UTC (rolling until 14:09)".
pub fn deploy_text(deploy: &crate::graph::deploys::Deploy) -> String {
    let at = |minute: i64| clock_text(crate::model::UnixMinute(minute).start_unix_nano());
    let mut text = match &deploy.previous_version {
        Some(previous) => format!("{} {previous} → {}", deploy.service, deploy.version),
        None => format!("{} → {}", deploy.service, deploy.version),
    };
    text.push_str(&format!(" at {} UTC", at(deploy.first_seen)));
    if let Some(last) = deploy.last_seen_previous.filter(|_| deploy.overlapped()) {
        text.push_str(&format!(" (rolling until {})", at(last + 1)));
    }
    text
}

/// What changed on an edge, as the diff's reasons: "p95 ×5.0 · rate ×2.10".
pub fn changes_text(reasons: &[String]) -> String {
    reasons.join(" · ")
}

/// What marks an estimate.
pub const ESTIMATED: &str = "≈ ";

/// How counts built from sampled traces say so: "≈ estimated from 25 % of traces"; `None`
/// for exact counts.
pub fn sampled_note(observed_share: Option<f64>) -> Option<String> {
    observed_share.map(|share| {
        let percent = percent_text(Some(share));
        // A sampling rate reads whole where it is: "25 %", not "25.0 %".
        let percent = percent.replace(".0 %", " %");
        format!("{ESTIMATED}estimated from {percent} of traces")
    })
}

/// A rate that may fall (a lag's change per second): "+3.2/s", "-0.50/s".
pub fn rate_change_text(per_sec: f64) -> String {
    let sign = if per_sec < 0.0 { "-" } else { "+" };
    format!("{sign}{}", rate_text(per_sec.abs()))
}

/// An error rate (a share from 0 to 1) in percent: "0 %", "0.25 %", "2.4 %", "31.9 %",
/// "100 %"; [`NONE`] without calls.
pub fn percent_text(share_opt: Option<f64>) -> String {
    let Some(share) = share_opt else {
        return NONE.to_owned();
    };
    let percent = share * 100.0;
    if percent <= 0.0 {
        "0 %".to_owned()
    } else if percent >= 100.0 {
        "100 %".to_owned()
    } else if percent < 0.01 {
        "<0.01 %".to_owned()
    } else if percent < 1.0 {
        format!("{percent:.2} %")
    } else {
        format!("{percent:.1} %")
    }
}

/// A count with thousands grouped: "999", "2,000", "1,234,567".
pub fn count_text(count: u64) -> String {
    let digits = count.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// A duration: "0.4 ms", "14.2 ms", "140 ms".
pub fn millis_text(nanos: f64) -> String {
    let millis = nanos / 1e6;
    if millis >= 100.0 {
        format!("{millis:.0} ms")
    } else {
        format!("{millis:.1} ms")
    }
}

/// A count of messages (a consumer group's lag): "0", "1250".
pub fn messages_text(count: f64) -> String {
    format!("{count:.0}")
}

/// A value axis tick, with the decimals its step needs ("0", "2.5", "0.05") and large steps
/// shortened ("15k" in steps of 5000, "1.5M").
pub fn tick_text(value: f64, step: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    // Decided by the step, so every tick of an axis has the same suffix.
    let (scale, suffix) = if step >= 1e5 {
        (1e6, "M")
    } else if step >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let (value, step) = (value / scale, step / scale);
    let decimals = (0..6)
        .find(|decimals| {
            let shifted = step * 10f64.powi(*decimals);
            (shifted - shifted.round()).abs() < 1e-6 * shifted.max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{value:.decimals$}{suffix}")
}

/// A time of day in UTC on a chart: "09:05".
pub fn clock_text(unix_nano: u64) -> String {
    utc(unix_nano).map_or_else(
        || NONE.to_owned(),
        |time| format!("{:02}:{:02}", time.hour(), time.minute()),
    )
}

/// A time of day in UTC to the second: "09:05:07".
pub fn clock_secs_text(unix_nano: u64) -> String {
    utc(unix_nano).map_or_else(
        || NONE.to_owned(),
        |time| {
            format!(
                "{:02}:{:02}:{:02}",
                time.hour(),
                time.minute(),
                time.second()
            )
        },
    )
}

/// A day in UTC on a chart's time axis: "Dec 5".
pub fn day_text(unix_nano: u64) -> String {
    utc(unix_nano).map_or_else(
        || NONE.to_owned(),
        |time| {
            let month = time.month().to_string();
            format!("{} {}", &month[..3.min(month.len())], time.day())
        },
    )
}

fn utc(unix_nano: u64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nano)).ok()
}

/// A latency quantile, [`NONE`] without latencies.
pub fn quantile_text(sketch: &LatencySketch, quantile: f64) -> String {
    sketch
        .quantile_nanos(quantile)
        .map_or_else(|| NONE.to_owned(), millis_text)
}

/// The colour class of an error rate: ok under 1 %, warn under 5 %, bad from 5 %, idle
/// without calls.
pub fn health_class(error_rate_opt: Option<f64>) -> &'static str {
    match error_rate_opt {
        None => "idle",
        Some(rate) if rate >= 0.05 => "bad",
        Some(rate) if rate >= 0.01 => "warn",
        Some(_) => "ok",
    }
}

/// The worse of the error rate's class ([`health_class`]) and the latency's against its
/// target: over the target amber, over twice the target red.
pub fn health_of(
    error_rate_opt: Option<f64>,
    latency_opt: Option<crate::model::figures::LatencyLoad>,
) -> &'static str {
    let rank = |class: &str| match class {
        "bad" => 3,
        "warn" => 2,
        "ok" => 1,
        _ => 0,
    };
    let errors = health_class(error_rate_opt);
    let latency = match latency_opt.map(|latency| latency.ratio()) {
        None => "idle",
        Some(ratio) if ratio > 2.0 => "bad",
        Some(ratio) if ratio > 1.0 => "warn",
        Some(_) => "ok",
    };
    if rank(latency) > rank(errors) {
        latency
    } else {
        errors
    }
}

/// A service's (or one operation's) figures as every page prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFigures {
    pub rate: String,
    pub error_rate: String,
    pub p50: String,
    pub p95: String,
    pub p99: String,
}

impl ServiceFigures {
    pub fn of(stats: &OperationStats, window_secs: f64) -> Self {
        Self {
            rate: counted_rate(stats.num_requests, stats.observed_share(), window_secs),
            error_rate: percent_text(stats.error_rate()),
            p50: quantile_text(&stats.latency, 0.5),
            p95: quantile_text(&stats.latency, 0.95),
            p99: quantile_text(&stats.latency, 0.99),
        }
    }

    /// Each figure with what it is, in the order tables show them.
    pub fn listed(self) -> [(Figure, String); 5] {
        [
            (Figure::Rate, self.rate),
            (Figure::ErrorRate, self.error_rate),
            (Figure::P50, self.p50),
            (Figure::P95, self.p95),
            (Figure::P99, self.p99),
        ]
    }
}

/// An edge's figures as the map, the service and edge pages print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeFigures {
    pub rate: String,
    pub error_rate: String,
    pub refused: String,
    pub client_p95: String,
    pub server_p95: String,
}

impl EdgeFigures {
    pub fn of(stats: &EdgeStats, window_secs: f64) -> Self {
        Self {
            rate: counted_rate(stats.num_requests, stats.observed_share(), window_secs),
            error_rate: percent_text(stats.error_rate()),
            refused: stats.num_refused().to_string(),
            client_p95: quantile_text(&stats.client_latency, 0.95),
            server_p95: quantile_text(&stats.server_latency, 0.95),
        }
    }

    /// Each figure with what it is, in the order tables show them.
    pub fn listed(self) -> [(Figure, String); 5] {
        [
            (Figure::Rate, self.rate),
            (Figure::ErrorRate, self.error_rate),
            (Figure::Refused, self.refused),
            (Figure::ClientP95, self.client_p95),
            (Figure::ServerP95, self.server_p95),
        ]
    }
}

/// What a marked figure is (`data-figure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Requests (a service's) or calls (an edge's) per second.
    Rate,
    ErrorRate,
    /// Calls refused by the caller's open breaker.
    Refused,
    P50,
    P95,
    P99,
    ClientP95,
    ServerP95,
    /// From a message's publish to its consumer's start (a topic → consumer edge).
    PublishConsumeP50,
    PublishConsumeP95,
}

impl Figure {
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Rate => "rate",
            Figure::ErrorRate => "error-rate",
            Figure::Refused => "refused",
            Figure::P50 => "p50",
            Figure::P95 => "p95",
            Figure::P99 => "p99",
            Figure::ClientP95 => "client-p95",
            Figure::ServerP95 => "server-p95",
            Figure::PublishConsumeP50 => "publish-consume-p50",
            Figure::PublishConsumeP95 => "publish-consume-p95",
        }
    }

    /// Its name on a page's card.
    pub fn label(self) -> &'static str {
        match self {
            Figure::Rate => "rate",
            Figure::ErrorRate => "errors",
            Figure::Refused => "refused by breaker",
            Figure::P50 => "p50",
            Figure::P95 => "p95",
            Figure::P99 => "p99",
            Figure::ClientP95 => "client p95",
            Figure::ServerP95 => "server p95",
            Figure::PublishConsumeP50 => "publish → consume p50",
            Figure::PublishConsumeP95 => "publish → consume p95",
        }
    }
}

/// A printed figure's mark: what it is and whose (`data-subject`: a node id, or an edge as
/// [`edge_subject`]). Subjects are span data: templates and the SVG escape them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub figure: &'static str,
    pub subject: String,
}

impl Mark {
    pub fn node(figure: Figure, key: &NodeKey) -> Self {
        Self {
            figure: figure.as_str(),
            subject: key.id(),
        }
    }

    pub fn edge(figure: Figure, key: &EdgeKey) -> Self {
        Self {
            figure: figure.as_str(),
            subject: edge_subject(key),
        }
    }
}

/// An anomaly as the map's badge says it: "p95 ×4.0 vs last week", "rate ×0.25 vs
/// yesterday", "errors 12 % vs 0.5 % yesterday", "rate up from 0 vs yesterday".
pub fn anomaly_badge(anomaly: &crate::query::Anomaly) -> String {
    use crate::graph::anomaly::Figure;
    let departure = &anomaly.departure;
    let reference = departure.reference.words();
    let name = match anomaly.figure {
        Figure::Rate => "rate",
        Figure::ErrorRate => {
            return format!(
                "errors {} vs {} {reference}",
                percent_text(Some(departure.now)),
                percent_text(Some(departure.baseline))
            );
        }
        Figure::P95Ms => "p95",
    };
    match departure.ratio() {
        Some(ratio) if ratio >= 1.0 => format!("{name} ×{ratio:.1} vs {reference}"),
        Some(ratio) => format!("{name} ×{ratio:.2} vs {reference}"),
        None => format!("{name} up from 0 vs {reference}"),
    }
}

/// An edge as a mark's subject: `service:orders -> service:payments (http)`.
pub fn edge_subject(key: &EdgeKey) -> String {
    format!(
        "{} -> {} ({})",
        key.source.id(),
        key.target.id(),
        key.kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_with_their_unit_at_every_size() {
        let printed: Vec<String> = [0.0, 0.0002, 0.017, 0.5, 3.21, 140.4, f64::NAN]
            .into_iter()
            .map(rate_text)
            .collect();
        assert_eq!(
            printed,
            [
                "0/s", "<0.001/s", "0.017/s", "0.50/s", "3.2/s", "140/s", "0/s"
            ]
        );
        assert_eq!(rate_change_text(-0.5), "-0.50/s");
        assert_eq!(rate_change_text(3.21), "+3.2/s");
    }

    #[test]
    fn error_rates_keep_small_shares_visible() {
        let printed: Vec<String> = [
            None,
            Some(0.0),
            Some(0.00001),
            Some(0.0025),
            Some(0.0241),
            Some(0.319),
            Some(1.0),
        ]
        .into_iter()
        .map(percent_text)
        .collect();
        assert_eq!(
            printed,
            ["–", "0 %", "<0.01 %", "0.25 %", "2.4 %", "31.9 %", "100 %"]
        );
    }

    #[test]
    fn axis_ticks_and_times_read_alike_everywhere() {
        let ticks: Vec<String> = [(0.0, 5.0), (2.5, 2.5), (0.05, 0.05), (15_000.0, 5_000.0)]
            .into_iter()
            .map(|(value, step)| tick_text(value, step))
            .collect();
        assert_eq!(ticks, ["0", "2.5", "0.05", "15k"]);
        assert_eq!(tick_text(1_500_000.0, 500_000.0), "1.5M");
        assert_eq!(tick_text(120.0, 20.0), "120");
        assert_eq!(tick_text(0.0, 0.1), "0");
        // 2026-12-05T09:05:07Z
        let at = 1_796_461_507_000_000_000;
        assert_eq!(clock_text(at), "09:05");
        assert_eq!(clock_secs_text(at), "09:05:07");
        assert_eq!(day_text(at), "Dec 5");
        assert_eq!(messages_text(1249.6), "1250");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        let printed: Vec<String> = [0, 999, 2_000, 100_000, 1_234_567]
            .into_iter()
            .map(count_text)
            .collect();
        assert_eq!(printed, ["0", "999", "2,000", "100,000", "1,234,567"]);
    }

    #[test]
    fn health_is_the_worse_of_errors_and_latency_against_its_target() {
        use crate::model::figures::LatencyLoad;
        let load = |p95_ms| {
            Some(LatencyLoad {
                p95_ms,
                target_ms: 100.0,
            })
        };
        assert_eq!(health_of(Some(0.0), load(90.0)), "ok");
        assert_eq!(health_of(Some(0.0), load(150.0)), "warn");
        assert_eq!(health_of(Some(0.0), load(250.0)), "bad");
        assert_eq!(health_of(Some(0.10), load(50.0)), "bad");
        assert_eq!(health_of(None, load(150.0)), "warn");
        assert_eq!(health_of(None, None), "idle");
    }

    #[test]
    fn health_follows_the_error_rate() {
        assert_eq!(health_class(None), "idle");
        assert_eq!(health_class(Some(0.0)), "ok");
        assert_eq!(health_class(Some(0.0241)), "warn");
        assert_eq!(health_class(Some(0.05)), "bad");
    }
}
