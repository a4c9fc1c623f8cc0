//! The Kafka lag and circuit-breaker pages, each with its chart over the range.

use super::*;

pub(super) const LAG_COLUMNS: [(&str, bool); 8] = [
    ("Group", false),
    ("Topic", false),
    ("Consumer", false),
    ("Lag", true),
    ("Trend", false),
    ("Rate", true),
    ("Time to drain", true),
    ("Partitions", false),
];

pub(super) fn lag_rows<'a>(
    section: &mut Section,
    groups: impl Iterator<Item = &'a (crate::signals::GroupLag, Option<EdgeKey>)>,
) {
    for (group, edge) in groups {
        let partitions: Vec<String> = group
            .partitions
            .iter()
            .map(|p| format!("{}: {:.0}", p.partition, p.lag))
            .collect();
        section.rows.push(vec![
            Cell::text(&group.group),
            Cell::text(&group.topic),
            edge.as_ref().map_or(Cell::text("(unmapped)"), |e| {
                Cell::link(&e.target.name, links::node(&e.target))
            }),
            Cell::number(format::messages_text(group.lag)),
            Cell::text(trend_arrow(group.trend)),
            Cell::number(
                group
                    .rate_per_s
                    .map_or_else(|| format::NONE.to_owned(), format::rate_change_text),
            ),
            Cell::number(
                group
                    .time_to_drain_secs
                    .map_or("–".to_owned(), |s| format!("{s:.0} s")),
            ),
            Cell::text(partitions.join(", ")),
        ]);
    }
}

pub async fn kafka(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (range, _) = graph_query(
        &state.query,
        &without_empty(request.query_string()),
        RANGE_PARAMS,
    )
    .await?;
    let (_, overlay) = placed_view(&state, range, &GraphFilter::default()).await?;
    let mut page = TablePage::new(
        Frame::new("Kafka", "Kafka").ranged(request.path(), request.query_string(), true),
        "Kafka consumer lag",
        "Lag per consumer group and topic, from kafkametrics, kafka_exporter or client metrics. Trend, rate and time to drain follow the last minute of samples (since the lag last turned); a change too slow to show in a minute is read from the 5-minute fit.",
    );
    let total: f64 = overlay.groups.iter().map(|(g, _)| g.lag).sum();
    page.cards = vec![
        Card::new("groups", overlay.groups.len().to_string()),
        Card::new("total lag", format::messages_text(total)),
    ];
    let mut section = Section::new(
        "Consumer groups",
        "No consumer lag metrics have arrived (see docs/kafka-lag-and-breakers.md).",
        &LAG_COLUMNS,
    );
    lag_rows(&mut section, overlay.groups.iter());
    page.sections
        .extend([charts::lag_chart(&state, range).await?, section]);
    Ok(respond(&page))
}

pub async fn breakers(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let (range, _) = graph_query(
        &state.query,
        &without_empty(request.query_string()),
        RANGE_PARAMS,
    )
    .await?;
    let (view, overlay) = placed_view(&state, range, &GraphFilter::default()).await?;
    let mut page = TablePage::new(
        Frame::new("Breakers", "Breakers").ranged(request.path(), request.query_string(), true),
        "Circuit breakers",
        "Every breaker reported by resilience4j, Polly or circuit_breaker.state metrics, with the calls it refused in this range.",
    );
    let num_open = overlay
        .breakers
        .iter()
        .filter(|(b, _)| b.state.is_open())
        .count();
    page.cards = vec![
        Card::new("breakers", overlay.breakers.len().to_string()),
        Card::new("open now", num_open.to_string()),
    ];
    let mut current = Section::new(
        "Now",
        "No circuit-breaker metrics have arrived (see docs/kafka-lag-and-breakers.md).",
        &[
            ("Service", false),
            ("Breaker", false),
            ("Guards", false),
            ("State", false),
            ("Since", false),
            ("Refused by breaker", true),
            ("Transitions", true),
        ],
    );
    let mut history = Section::new(
        "Transitions",
        "",
        &[
            ("Service", false),
            ("Breaker", false),
            ("From", false),
            ("To", false),
            ("At", false),
        ],
    );
    for (breaker, edge) in &overlay.breakers {
        let refused = edge
            .as_ref()
            .and_then(|key| view.edges.iter().find(|(k, _)| k == key))
            .map_or(Cell::number(format::NONE), |(key, stats)| {
                Cell::number(stats.num_refused().to_string())
                    .marked(Mark::edge(Figure::Refused, key))
            });
        current.rows.push(vec![
            Cell::link(&breaker.service, links::service(&breaker.service)),
            Cell::text(&breaker.name),
            edge.as_ref()
                .map_or(Cell::text("(the service itself)"), |key| {
                    Cell::link(&key.target.name, links::edge(key))
                }),
            Cell::pill(breaker.state.as_str(), breaker_class(breaker.state)),
            Cell::text(time_text(breaker.since_unix_nano)),
            refused,
            Cell::number(breaker.transitions.len().to_string()),
        ]);
        for transition in breaker.transitions.iter().rev() {
            history.rows.push(vec![
                Cell::text(&breaker.service),
                Cell::text(&breaker.name),
                Cell::text(transition.from.map_or("–", |s| s.as_str())),
                Cell::pill(transition.to.as_str(), breaker_class(transition.to)),
                Cell::text(time_text(transition.at_unix_nano)),
            ]);
        }
    }
    let timeline = charts::breaker_timeline(&state, range).await?;
    page.sections.extend([current, timeline, history]);
    Ok(respond(&page))
}
