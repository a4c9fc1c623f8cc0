//! The map compared with an earlier period (`compare=previous|day|week`, or
//! `compare=deploy:SERVICE@VERSION` / `deploy=SERVICE@VERSION` for the same length of time
//! before and after a deploy), and the strip of the range's deploys.

use super::*;
use crate::graph::diff::Change;
use crate::web::handlers::changes::baseline;
use crate::web::map::changes::MapChanges;
use crate::web::params::Params;

/// Deploys listed above the map at most (the newest).
const MAX_DEPLOYS_SHOWN: usize = 6;

/// What the compare select offers: value and words.
pub(super) const COMPARE_CHOICES: [(&str, &str); 4] = [
    ("", "–"),
    ("previous", "period before"),
    ("day", "day before"),
    ("week", "week before"),
];

/// The map of the period compared, and what changed since the base period.
pub(super) struct Comparison {
    /// The current period (a deploy's compares the time after it).
    pub now: GraphRange,
    pub view: analysis::GraphView,
    pub overlay: SignalOverlay,
    /// Edges (with their base figures) and nodes only the base period had.
    pub vanished_edges: Vec<(EdgeKey, crate::model::graph::EdgeStats)>,
    pub vanished_nodes: Vec<(NodeKey, crate::model::graph::NodePlacement)>,
    pub changes: MapChanges,
    /// "Compared with 13:00–13:15 UTC: 1 new, 1 gone, 1 changed."
    pub note: String,
}

/// The comparison the query asks for (`None` without `compare` or `deploy`).
pub(super) async fn compared(
    state: &WebState,
    range: GraphRange,
    filter: &GraphFilter,
    params: &Params,
) -> Result<Option<Comparison>, PageError> {
    if params.text("compare").is_none() && params.text("deploy").is_none() {
        return Ok(None);
    }
    let baseline = baseline(params)?;
    let Some((base, now)) = state.query.diff_periods(range, &baseline).await? else {
        let named = match &baseline {
            crate::query::Baseline::Deploy { service, version } => format!("{service}@{version}"),
            _ => String::new(),
        };
        return Err(ApiError::NotFound(format!("No deploy {named:?} in this range.")).into());
    };
    // The diff names the operation pair that moved most: read with the splits.
    let with_splits = GraphFilter {
        operation_splits: true,
        ..filter.clone()
    };
    let (view, overlay) = placed_view(state, now, &with_splits).await?;
    let unfiltered = filter.namespace.is_none() && filter.focus.is_none();
    // An unfiltered view is the whole map the diff compares: read once.
    let diff = if unfiltered {
        state.query.graph_diff_of(base, now, &view).await?
    } else {
        state.query.graph_diff(base, now).await?
    };
    let shown = |key: &NodeKey| view.nodes.iter().any(|(node, _)| node == key);
    let vanished_edges: Vec<_> = diff
        .edges
        .iter()
        .filter(|edge| edge.change == Change::Vanished)
        .filter(|edge| unfiltered || shown(&edge.key.source) || shown(&edge.key.target))
        .map(|edge| (edge.key.clone(), edge.base.clone()))
        .collect();
    let vanished_nodes: Vec<_> = diff
        .nodes
        .iter()
        .filter(|(key, _, _)| !shown(key))
        .filter(|(key, _, _)| {
            vanished_edges
                .iter()
                .any(|(edge, _)| edge.source == *key || edge.target == *key)
        })
        .map(|(key, placement, _)| (key.clone(), placement.clone()))
        .collect();
    let count = |change| {
        diff.edges
            .iter()
            .filter(|edge| edge.change == change)
            .count()
    };
    let (from, to) = diff.base.minutes.unix_nano_bounds();
    let note = format!(
        "Compared with {} – {} UTC: {} new, {} gone, {} changed edges (green new, dashed grey gone, blue what changed).",
        time_text(from),
        format::clock_text(to),
        count(Change::New),
        count(Change::Vanished),
        count(Change::Changed),
    );
    Ok(Some(Comparison {
        now,
        view,
        overlay,
        vanished_edges,
        vanished_nodes,
        changes: MapChanges::of(&diff),
        note,
    }))
}

/// What the map draws: the range's map, or the compared period's with what vanished added.
pub(super) struct Drawn {
    pub view: analysis::GraphView,
    pub overlay: SignalOverlay,
    pub traffic: HashMap<NodeKey, crate::model::figures::NodeTraffic>,
    pub comparison: Option<Comparison>,
}

pub(super) async fn drawn(
    state: &WebState,
    range: GraphRange,
    filter: &GraphFilter,
    params: &Params,
) -> Result<Drawn, PageError> {
    let mut comparison = compared(state, range, filter, params).await?;
    let (mut view, mut overlay, shown_range) = match comparison.as_mut() {
        Some(compared) => (
            std::mem::take(&mut compared.view),
            std::mem::take(&mut compared.overlay),
            compared.now,
        ),
        None => {
            let (view, overlay) = placed_view(state, range, filter).await?;
            (view, overlay, range)
        }
    };
    let traffic = state
        .query
        .node_traffic(shown_range, filter, &view)
        .await?
        .traffic;
    overlay.anomalies = super::map::anomaly_badges(state, shown_range, view.edges.len()).await;
    // Vanished edges are drawn with what they carried before; their nodes serve nothing now.
    if let Some(compared) = comparison.as_mut() {
        view.edges.append(&mut compared.vanished_edges);
        view.nodes.append(&mut compared.vanished_nodes);
    }
    Ok(Drawn {
        view,
        overlay,
        traffic,
        comparison,
    })
}

/// The deploy the map is compared before and after (`SERVICE@VERSION`), or "".
pub(super) fn deploy_compared(params: &Params) -> String {
    params.text("deploy").unwrap_or_else(|| {
        let compare = params.text("compare").unwrap_or_default();
        compare
            .strip_prefix("deploy:")
            .unwrap_or_default()
            .to_owned()
    })
}

/// The newest deploys of `range`, each with the map compared before and after it.
pub(super) async fn deploy_strip(
    state: &WebState,
    range: GraphRange,
    query_string: &str,
) -> Result<Vec<(String, String)>, PageError> {
    let deploys = state.query.deploys(range, None).await?;
    let kept: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query_string)
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| key != "compare" && key != "deploy")
            .collect();
    Ok(deploys
        .iter()
        .rev()
        .take(MAX_DEPLOYS_SHOWN)
        .map(|deploy| {
            let mut pairs = kept.clone();
            pairs.push((
                "compare".to_owned(),
                format!("deploy:{}@{}", deploy.service, deploy.version),
            ));
            let href = format!(
                "/?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            );
            (format::deploy_text(deploy), href)
        })
        .collect())
}
