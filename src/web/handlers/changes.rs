//! `/api/v1/deploys` and `/api/v1/graph/diff`: what changed on the map over time.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::graph::deploys::Deploy;
use crate::graph::diff::judged_sketch;
use crate::model::figures::{p95_ms, per_second};
use crate::model::graph::EdgeStats;
use crate::model::{MinuteRange, UnixMinute};
use crate::query::{Baseline, GraphDiff, GraphRange};
use crate::web::WebState;
use crate::web::error::ApiError;
use crate::web::params::Params;
use crate::web::signals_json::rfc3339;

const DEPLOYS_PARAMS: &[&str] = &["window", "from", "to", "service"];
const DIFF_PARAMS: &[&str] = &[
    "window",
    "from",
    "to",
    "base_from",
    "base_to",
    "compare",
    "deploy",
];

/// `/api/v1/graph/diff`: the range (`window` or `from`/`to`) against `base_from`/`base_to`,
/// `compare=previous|day|week` (the default: `previous`), or `deploy=SERVICE@VERSION` (also
/// `compare=deploy:SERVICE@VERSION`: the same length of time before and after it, up to an
/// hour each, found within the range).
pub async fn graph_diff(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(request.query_string(), DIFF_PARAMS)?;
    let baseline = baseline(&params)?;
    let range = state.query.covered(params.graph_range()?).await?;
    let Some((base, now)) = state.query.diff_periods(range, &baseline).await? else {
        return Err(ApiError::NotFound(format!(
            "no deploy {:?} in this range",
            params.text("deploy").unwrap_or_default()
        )));
    };
    let diff = state.query.graph_diff(base, now).await?;
    Ok(HttpResponse::Ok().json(diff_json(&diff)))
}

/// What the query string compares with; explicit base times, a named period or a deploy, one
/// at most.
pub fn baseline(params: &Params) -> Result<Baseline, ApiError> {
    let explicit = params.text("base_from").is_some() || params.text("base_to").is_some();
    let named = [params.text("compare"), params.text("deploy")];
    if usize::from(explicit) + named.iter().flatten().count() > 1 {
        return Err(ApiError::BadRequest(
            "give one of base_from/base_to, compare or deploy".to_owned(),
        ));
    }
    if explicit {
        if params.text("base_from").is_none() || params.text("base_to").is_none() {
            return Err(ApiError::BadRequest(
                "base_from and base_to go together".to_owned(),
            ));
        }
        let (from, to) = params.time_range_of("base_from", "base_to")?;
        return Ok(Baseline::Minutes(MinuteRange::covering_unix_nano(from, to)));
    }
    let deploy = params.text("deploy").or_else(|| {
        params
            .text("compare")
            .and_then(|compare| compare.strip_prefix("deploy:").map(str::to_owned))
    });
    if let Some(deploy) = deploy {
        let Some((service, version)) = deploy
            .rsplit_once('@')
            .filter(|(s, v)| !s.is_empty() && !v.is_empty())
        else {
            return Err(ApiError::BadRequest(format!(
                "invalid deploy {deploy:?}: expected SERVICE@VERSION"
            )));
        };
        return Ok(Baseline::Deploy {
            service: service.to_owned(),
            version: version.to_owned(),
        });
    }
    match params.text("compare").as_deref() {
        None | Some("previous") => Ok(Baseline::Previous),
        Some("day") => Ok(Baseline::EarlierBy(MINUTES_PER_DAY)),
        Some("week") => Ok(Baseline::EarlierBy(7 * MINUTES_PER_DAY)),
        Some(other) => Err(ApiError::BadRequest(format!(
            "invalid compare {other:?}: expected previous, day or week"
        ))),
    }
}

const MINUTES_PER_DAY: i64 = 24 * 60;

fn period_json(range: &GraphRange) -> Value {
    let (from, to) = range.minutes.unix_nano_bounds();
    json!({ "from": rfc3339(from), "to": rfc3339(to), "window_secs": range.window_secs })
}

fn figures_json(stats: &EdgeStats, window_secs: f64) -> Value {
    json!({
        "requests": stats.num_requests,
        "rate_per_s": per_second(stats.num_requests, window_secs),
        "errors": stats.num_failed(),
        "error_rate": stats.error_rate(),
        "client_p95_ms": p95_ms(&stats.client_latency),
        "server_p95_ms": p95_ms(&stats.server_latency),
    })
}

fn diff_json(diff: &GraphDiff) -> Value {
    let nodes: Vec<Value> = diff
        .nodes
        .iter()
        .map(|(key, placement, change)| {
            json!({
                "id": key.id(),
                "name": key.name,
                "kind": key.kind.as_str(),
                "namespace": placement.namespace,
                "change": change,
            })
        })
        .collect();
    let edges: Vec<Value> = diff
        .edges
        .iter()
        .map(|edge| {
            let base = figures_json(&edge.base, diff.base.window_secs);
            let now = figures_json(&edge.now, diff.now.window_secs);
            let minus = |field: &str| match (now[field].as_f64(), base[field].as_f64()) {
                (Some(after), Some(before)) => json!(after - before),
                _ => Value::Null,
            };
            let judged = |stats| p95_ms(judged_sketch(stats));
            let p95_ratio = match (judged(&edge.now), judged(&edge.base)) {
                (Some(after), Some(before)) if before > 0.0 => json!(after / before),
                _ => Value::Null,
            };
            json!({
                "source": edge.key.source.id(),
                "target": edge.key.target.id(),
                "kind": edge.key.kind.as_str(),
                "change": edge.change,
                "reasons": edge.reasons,
                "delta": {
                    "rate_per_s": minus("rate_per_s"),
                    "error_rate": minus("error_rate"),
                    "client_p95_ms": minus("client_p95_ms"),
                    "p95_ratio": p95_ratio,
                },
                "base": base,
                "now": now,
            })
        })
        .collect();
    json!({
        "base": period_json(&diff.base),
        "now": period_json(&diff.now),
        "nodes": nodes,
        "edges": edges,
    })
}

pub async fn deploys(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(request.query_string(), DEPLOYS_PARAMS)?;
    let range = params.graph_range()?;
    let service = params.text("service");
    let found = state.query.deploys(range, service.as_deref()).await?;
    let deploys: Vec<Value> = found.iter().map(deploy_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "deploys": deploys })))
}

/// The start of `minute` as RFC 3339.
fn minute_start(minute: i64) -> Value {
    rfc3339(UnixMinute(minute).start_unix_nano())
}

pub fn deploy_json(deploy: &Deploy) -> Value {
    json!({
        "service": deploy.service,
        "version": deploy.version,
        "previous_version": deploy.previous_version,
        "first_seen": minute_start(deploy.first_seen),
        // The previous version's last minute, as the time that minute ended.
        "last_seen_previous": deploy.last_seen_previous.map(|minute| minute_start(minute + 1)),
        "rolling": deploy.overlapped(),
    })
}
