//! The insights page: the communication-pattern audit (findings by rule, a scorecard), then
//! the structure behind it: cycles, long chains, chatty pairs, fan-out, single points of
//! failure. Its departures from the baselines (two reads of the store a day and a week back)
//! are a section loaded after it (`insights_anomalies`).

use super::*;

pub async fn insights(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    let finding_filter = params::finding_filter(&query_string)?;
    let (range, view_filter) =
        graph_query(&state.query, &query_string, params::INSIGHTS_PARAMS).await?;
    let audit = state
        .query
        .audit(range, &view_filter, &finding_filter)
        .await?;
    let found = audit.insights;
    let mut page = TablePage::new(
        Frame::new("Insights", "Insights").ranged(request.path(), request.query_string(), true),
        "Audit",
        "The rules every microservices guide gives, checked against the live traffic: who shares a database, what bypasses the gateway, which calls have no protection, where retries pile up, callers that give up early, topics nobody reads, missed latency targets, cycles and long chains.",
    );
    page.cards = audit::severity_cards(&audit.findings);
    page.sections.extend(audit::rule_sections(&audit.findings));
    page.sections
        .push(audit::scorecard_section(&audit.findings));
    let mut anomalies = anomalies_section();
    anomalies.loaded_from = Some(format!("/insights/anomalies?{}", request.query_string()));
    page.sections.push(anomalies);
    page.sections.extend([
        cycle_section(&found),
        chain_section(&found),
        chatty_section(&found),
        fan_out_section(&found),
        spof_section(&found),
    ]);
    Ok(respond(&page))
}

/// The anomalies section, without its rows.
fn anomalies_section() -> Section {
    Section::new(
        "Departures from the same time yesterday and last week",
        "No edge or service departs from its baseline (or none has a day or a week of history).",
        &[("Subject", false), ("Departure", false), ("Score", true)],
    )
}

/// The insights page's edges and services departing from the same time a day and a week before
/// (docs/anomalies.md), over ranges of at most an hour: loaded after the page.
pub async fn insights_anomalies(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let query_string = without_empty(request.query_string());
    params::finding_filter(&query_string)?;
    let (range, _) = graph_query(&state.query, &query_string, params::INSIGHTS_PARAMS).await?;
    let frame =
        Frame::new("Insights", "Insights").ranged(request.path(), request.query_string(), false);
    let mut section = anomalies_section();
    fill_anomalies(&mut section, &state, range).await;
    Ok(respond(&SectionsFragment {
        frame,
        sections: vec![section],
    }))
}

/// The rows of the anomalies section (or why there are none).
async fn fill_anomalies(section: &mut Section, state: &WebState, range: GraphRange) {
    if range.minutes.num_minutes() > crate::query::MAX_ANOMALY_WINDOW_MINUTES {
        section.empty = "Judged over ranges of at most an hour: pick a shorter range.".to_owned();
        return;
    }
    let found = match state.query.anomalies(range).await {
        Ok(found) => found,
        Err(err) => {
            section.empty = format!("Could not read the baselines: {err}");
            return;
        }
    };
    for anomaly in &found.anomalies {
        let (text, href) = match &anomaly.subject {
            crate::query::Subject::Edge(key) => (
                format!("{} → {}", key.source.name, key.target.name),
                links::edge(key),
            ),
            crate::query::Subject::Service(name) => (name.clone(), links::service(name)),
        };
        section.rows.push(vec![
            Cell::link(text, href),
            Cell::text(format::anomaly_badge(anomaly)),
            Cell::number(format!("{:.1}", anomaly.departure.score)),
        ]);
    }
}

fn cycle_section(found: &analysis::Insights) -> Section {
    let mut cycles = Section::new(
        "Cycles",
        "No cycles.",
        &[
            ("Path", false),
            ("Synchronous", false),
            ("Through a topic", false),
        ],
    );
    for cycle in &found.cycles {
        cycles.rows.push(vec![
            Cell::text(
                cycle
                    .path
                    .iter()
                    .map(|id| shown(id))
                    .collect::<Vec<_>>()
                    .join(" → "),
            ),
            Cell::text(if cycle.synchronous { "yes" } else { "no" }),
            Cell::text(if cycle.through_topic { "yes" } else { "no" }),
        ]);
    }
    cycles
}

fn chain_section(found: &analysis::Insights) -> Section {
    let mut chains = Section::new(
        "Longest synchronous chains",
        "No synchronous chains observed yet.",
        &[
            ("Services", false),
            ("Hops", true),
            ("Seen", true),
            ("Example", false),
        ],
    );
    for chain in &found.longest_chains {
        chains.rows.push(vec![
            Cell::text(chain.services.join(" → ")),
            Cell::number(chain.num_hops.to_string()),
            Cell::number(chain.num_occurrences.to_string()),
            Cell::link("trace", links::trace(chain.example_trace_id)),
        ]);
    }
    chains
}

fn chatty_section(found: &analysis::Insights) -> Section {
    let mut chatty = Section::new(
        "Chatty pairs",
        "No pair makes many calls per trace.",
        &[
            ("From", false),
            ("To", false),
            ("Calls per trace", true),
            ("Max in one trace", true),
            ("Rate", true),
        ],
    );
    for pair in &found.chatty_pairs {
        chatty.rows.push(vec![
            Cell::text(shown(&pair.source)),
            Cell::text(shown(&pair.target)),
            Cell::number(format!("{:.1}", pair.calls_per_trace)),
            Cell::number(pair.max_calls_per_trace.to_string()),
            Cell::number(rate_text(pair.requests_per_s)),
        ]);
    }
    chatty
}

fn fan_out_section(found: &analysis::Insights) -> Section {
    let mut fan_out = Section::new(
        "Fan-out",
        "No fan-out hot spots.",
        &[
            ("Node", false),
            ("Callees", true),
            ("Synchronous", true),
            ("Rate", true),
        ],
    );
    for fan in &found.fan_out {
        fan_out.rows.push(vec![
            Cell::text(shown(&fan.node)),
            Cell::number(fan.num_callees.to_string()),
            Cell::number(fan.num_synchronous_callees.to_string()),
            Cell::number(rate_text(fan.requests_per_s)),
        ]);
    }
    fan_out
}

fn spof_section(found: &analysis::Insights) -> Section {
    let mut spof = Section::new(
        "Single points of failure",
        "No single node separates the map.",
        &[
            ("Node", false),
            ("Dependents", true),
            ("Parts it separates", true),
            ("Traffic affected", true),
        ],
    );
    for point in &found.single_points_of_failure {
        spof.rows.push(vec![
            Cell::text(shown(&point.node)),
            Cell::number(point.num_dependents.to_string()),
            Cell::number(point.num_separated_parts.to_string()),
            Cell::number(format!("{:.1} %", point.affected_traffic_share * 100.0)),
        ]);
    }
    spof
}
