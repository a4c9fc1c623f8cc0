//! `/api/v1/anomalies`: edges and services whose rate, error rate or p95 departs from the
//! same time a day and a week before (docs/anomalies.md).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::model::now_unix_nano;
use crate::query::{Anomalies, Anomaly, GraphRange, MAX_ANOMALY_WINDOW_MINUTES, Subject};
use crate::web::WebState;
use crate::web::error::ApiError;
use crate::web::params::Params;

const ANOMALY_PARAMS: &[&str] = &["window", "from", "to"];
/// The window judged when none is given: long enough for a few dozen calls on a quiet edge.
pub const DEFAULT_WINDOW_MINUTES: i64 = 15;

/// `/api/v1/anomalies?window=15m` (or `from`/`to`), at most an hour.
pub async fn anomalies(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(request.query_string(), ANOMALY_PARAMS)?;
    let range = anomaly_range(&params)?;
    let found = state.query.anomalies(range).await?;
    Ok(HttpResponse::Ok().json(anomalies_json(&found)))
}

/// The range the parameters name (15 minutes ending now by default), at most
/// [`MAX_ANOMALY_WINDOW_MINUTES`] long.
pub fn anomaly_range(params: &Params) -> Result<GraphRange, ApiError> {
    let names_range = ["window", "from", "to"]
        .iter()
        .any(|name| params.text(name).is_some());
    let range = if names_range {
        params.graph_range()?
    } else {
        GraphRange::last_minutes(DEFAULT_WINDOW_MINUTES, now_unix_nano())
    };
    if range.minutes.num_minutes() > MAX_ANOMALY_WINDOW_MINUTES {
        return Err(ApiError::BadRequest(format!(
            "anomalies are judged over at most {MAX_ANOMALY_WINDOW_MINUTES} minutes"
        )));
    }
    Ok(range)
}

pub fn anomaly_json(anomaly: &Anomaly) -> Value {
    let departure = &anomaly.departure;
    let mut body = json!({
        "subject": anomaly.subject.id(),
        "kind": anomaly.subject.kind(),
        "figure": anomaly.figure,
        "now": departure.now,
        "baseline": departure.baseline,
        "reference": departure.reference,
        "score": departure.score,
        "ratio": departure.ratio(),
        "direction": departure.direction(),
    });
    if let Subject::Edge(key) = &anomaly.subject {
        body["source"] = json!(key.source.id());
        body["target"] = json!(key.target.id());
        body["edge_kind"] = json!(key.kind.as_str());
    }
    body
}

fn anomalies_json(found: &Anomalies) -> Value {
    let anomalies: Vec<Value> = found.anomalies.iter().map(anomaly_json).collect();
    json!({
        "anomalies": anomalies,
        "num_without_baseline": found.num_without_baseline,
        "num_skipped": found.num_skipped,
    })
}
