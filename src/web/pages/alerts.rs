//! The alerts page: firing and pending alerts linked to the map, every rule with its current
//! value, silences (with a form to add one and a button to expire one) and the delivery log.

use super::*;
use crate::alert::service::{AlertView, RuleView};
use crate::alert::silence::{Matcher, NewSilence, Silence, SilenceState};
use crate::alert::store::{Delivery, DeliveryState};
use views::{AlertsPage, SilenceForm};

/// Matcher rows of the silence form.
const FORM_ROWS: usize = 5;
const SHOWN_DELIVERIES: usize = 50;

fn about(labels: &crate::alert::state::Labels) -> String {
    labels
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "alertname" | "severity"))
        .map(|(name, value)| format!("{name}={}", shown(value)))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn status_pill(status: &str) -> Cell {
    let class = match status {
        "firing" => "bad",
        "pending" => "warn",
        _ => "ok",
    };
    Cell::pill(status, class)
}

fn alert_rows(section: &mut Section, alerts: &[AlertView], external_url: &str) {
    for alert in alerts {
        let page = alert
            .generator_url
            .strip_prefix(external_url)
            .unwrap_or(&alert.generator_url)
            .to_owned();
        let state = if alert.silenced_by.is_empty() {
            status_pill(alert.status)
        } else {
            Cell::pill(format!("{} · silenced", alert.status), "idle")
        };
        section.rows.push(vec![
            state,
            Cell::link(&alert.rule, page),
            Cell::text(about(&alert.labels)),
            Cell::number(&alert.value_text),
            Cell::text(time_text(alert.starts_at_unix_nano)),
            Cell::text(
                alert
                    .annotations
                    .get("summary")
                    .cloned()
                    .unwrap_or_default(),
            ),
            Cell::link("silence…", links::silence_form(&alert.fingerprint)),
        ]);
    }
}

/// A rule's condition in a few words, from its kind's fields.
fn condition(rule: &RuleView) -> String {
    let Some(fields) = rule.kind.as_object() else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(name, value)| {
            name.as_str() != "kind" && value.as_array().is_none_or(|list| !list.is_empty())
        })
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => format!("{name} {text}"),
            other => format!("{name} {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn rule_rows(section: &mut Section, rules: &[RuleView]) {
    for rule in rules {
        let kind = rule.kind["kind"].as_str().unwrap_or("").to_owned();
        let state = if rule.num_firing > 0 {
            Cell::pill(format!("{} firing", rule.num_firing), "bad")
        } else if rule.num_pending > 0 {
            Cell::pill(format!("{} pending", rule.num_pending), "warn")
        } else {
            Cell::pill("ok", "ok")
        };
        section.rows.push(vec![
            Cell::text(&rule.name),
            state,
            Cell::text(kind),
            Cell::text(condition(rule)),
            Cell::text(&rule.for_duration),
            Cell::text(&rule.window),
            Cell::number(rule.num_holding.to_string()),
            Cell::number(rule.value_text.clone().unwrap_or_else(|| "–".to_owned())),
            Cell::text(rule.last_error.clone().unwrap_or_default()),
        ]);
    }
}

pub async fn alerts(
    request: HttpRequest,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let params = params::Params::parse(&without_empty(request.query_string()), &["silence"])?;
    let prefill = params.text("silence");
    let page = alerts_page(&state, form_for(&state, prefill.as_deref()).await?).await?;
    Ok(respond(&page))
}

/// The navigation's alert badge (an htmx fragment that reloads itself): how many alerts fire
/// unsilenced, and whether any receiver would hear of them. Empty when nothing fires.
pub async fn alert_badge(state: web::Data<WebState>) -> Result<HttpResponse, PageError> {
    let alerts = state.alerting.alerts().await?;
    let num_firing = alerts
        .iter()
        .filter(|alert| alert.status == "firing" && alert.silenced_by.is_empty())
        .count();
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(badge_html(num_firing, state.alerting.num_receivers())))
}

fn badge_html(num_firing: usize, num_receivers: usize) -> String {
    let reload =
        r#"id="alert-badge" hx-get="/alerts/badge" hx-trigger="every 15s" hx-swap="outerHTML""#;
    match (num_firing, num_receivers) {
        (0, _) => format!("<span {reload}></span>"),
        (num, 0) => format!(
            r#"<a {reload} class="alert-badge" href="{}" title="No receiver is configured: nobody is notified">{num} firing · no receiver</a>"#,
            links::ALERTS
        ),
        (num, _) => format!(
            r#"<a {reload} class="alert-badge" href="{}">{num} firing</a>"#,
            links::ALERTS
        ),
    }
}

/// The silence form, prefilled with an alert's labels when `fingerprint` names one.
async fn form_for(state: &WebState, fingerprint: Option<&str>) -> Result<SilenceForm, PageError> {
    let mut form = SilenceForm::empty(FORM_ROWS);
    let Some(fingerprint) = fingerprint else {
        return Ok(form);
    };
    let alerts = state.alerting.alerts().await?;
    let Some(alert) = alerts.iter().find(|alert| alert.fingerprint == fingerprint) else {
        return Err(ApiError::NotFound(format!("no alert with fingerprint {fingerprint}")).into());
    };
    let labels = alert
        .labels
        .iter()
        .filter(|(name, _)| name.as_str() != "severity")
        .take(FORM_ROWS);
    for (row, (name, value)) in form.rows.iter_mut().zip(labels) {
        *row = (name.clone(), "=".to_owned(), value.clone());
    }
    form.comment = format!("silencing {}", alert.rule);
    Ok(form)
}

async fn alerts_page(state: &WebState, form: SilenceForm) -> Result<AlertsPage, PageError> {
    let alerting = &state.alerting;
    let alerts = alerting.alerts().await?;
    let rules = alerting.rules();
    let silences = alerting.silences().await?;
    let deliveries = alerting.deliveries(SHOWN_DELIVERIES).await?;
    let external_url = alerting.external_url();
    let now = now_unix_nano();

    let count = |status: &str| alerts.iter().filter(|alert| alert.status == status).count();
    let active_silences = silences
        .iter()
        .filter(|silence| silence.state(now) == SilenceState::Active)
        .count();
    let undelivered = deliveries
        .iter()
        .filter(|delivery| delivery.state == DeliveryState::Pending)
        .count();
    let mut page = AlertsPage::new(
        Frame::new("Alerts", "Alerts"),
        state.csrf_token.clone(),
        "Rules are evaluated on the map every few seconds; firing alerts go to the configured webhooks as Alertmanager v4 JSON.",
        form,
    );
    page.cards = vec![
        Card::new("firing", count("firing").to_string()),
        Card::new("pending", count("pending").to_string()),
        Card::new("active silences", active_silences.to_string()),
        Card::new("undelivered", undelivered.to_string()),
    ];
    let (current, recent) = alert_sections(alerts, &external_url);
    page.sections = vec![
        current,
        rule_section(&rules),
        silence_section(&silences, now, &state.csrf_token),
        delivery_section(&deliveries),
        recent,
    ];
    Ok(page)
}

/// Firing and pending alerts, then the recently resolved ones.
fn alert_sections(alerts: Vec<AlertView>, external_url: &str) -> (Section, Section) {
    let mut current = Section::new(
        "Firing and pending",
        "Nothing is firing or pending.",
        &[
            ("State", false),
            ("Alert", false),
            ("About", false),
            ("Value", true),
            ("Since", false),
            ("Summary", false),
            ("", false),
        ],
    );
    let (active, resolved): (Vec<AlertView>, Vec<AlertView>) = alerts
        .into_iter()
        .partition(|alert| alert.status != "resolved");
    alert_rows(&mut current, &active, external_url);
    let mut recent = Section::new(
        "Recently resolved",
        "Nothing resolved in the last 15 minutes.",
        &current
            .columns
            .iter()
            .map(|c| (c.name, c.numeric))
            .collect::<Vec<_>>(),
    );
    alert_rows(&mut recent, &resolved, external_url);
    (current, recent)
}

fn rule_section(rules: &[RuleView]) -> Section {
    let mut section = Section::new(
        "Rules",
        "No rules: built-in rules are off and none are configured.",
        &[
            ("Rule", false),
            ("State", false),
            ("Kind", false),
            ("Condition", false),
            ("For", false),
            ("Window", false),
            ("Holding", true),
            ("Value", true),
            ("Problem", false),
        ],
    );
    rule_rows(&mut section, rules);
    section
}

/// Every silence kept, with a button expiring those not expired yet (`csrf_token` proves the
/// form came from this page).
fn silence_section(silences: &[Silence], now: u64, csrf_token: &str) -> Section {
    let mut section = Section::new(
        "Silences",
        "No silences.",
        &[
            ("State", false),
            ("Matchers", false),
            ("Starts", false),
            ("Ends", false),
            ("By", false),
            ("Comment", false),
            ("", false),
        ],
    );
    for silence in silences {
        let silence_state = silence.state(now);
        let matchers: Vec<String> = silence.matchers.iter().map(matcher_text).collect();
        let class = match silence_state {
            SilenceState::Active => "warn",
            SilenceState::Pending => "idle",
            SilenceState::Expired => "ok",
        };
        section.rows.push(vec![
            Cell::pill(silence_state.as_str(), class),
            Cell::text(matchers.join(", ")),
            Cell::text(time_text(silence.starts_at_unix_nano)),
            Cell::text(time_text(silence.ends_at_unix_nano)),
            Cell::text(&silence.created_by),
            Cell::text(&silence.comment),
            if silence_state == SilenceState::Expired {
                Cell::text("")
            } else {
                Cell::button("Expire", links::expire_silence(&silence.id, csrf_token))
            },
        ]);
    }
    section
}

fn delivery_section(deliveries: &[Delivery]) -> Section {
    let mut section = Section::new(
        "Delivery log",
        "No notifications yet.",
        &[
            ("Receiver", false),
            ("State", false),
            ("Attempts", true),
            ("Last status", true),
            ("Latency", true),
            ("Last error", false),
            ("Queued", false),
            ("Done", false),
        ],
    );
    for delivery in deliveries {
        let class = match delivery.state {
            DeliveryState::Delivered => "ok",
            DeliveryState::Pending => "warn",
            DeliveryState::Failed => "bad",
        };
        section.rows.push(vec![
            Cell::text(&delivery.receiver),
            Cell::pill(delivery.state.as_str(), class),
            Cell::number(delivery.num_attempts.to_string()),
            Cell::number(
                delivery
                    .last_status
                    .map_or("–".to_owned(), |s| s.to_string()),
            ),
            Cell::number(
                delivery
                    .last_latency_ms
                    .map_or("–".to_owned(), |ms| format!("{ms} ms")),
            ),
            Cell::text(delivery.last_error.clone().unwrap_or_default()),
            Cell::text(time_text(delivery.created_at_unix_nano)),
            Cell::text(
                delivery
                    .finished_at_unix_nano
                    .map_or("–".to_owned(), time_text),
            ),
        ]);
    }
    section
}

fn matcher_text(matcher: &Matcher) -> String {
    let op = match (matcher.is_equal, matcher.is_regex) {
        (true, false) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (false, true) => "!~",
    };
    format!("{}{op}\"{}\"", matcher.name, matcher.value)
}

/// Refuses a form post from another site: without this process's CSRF token (`token`, from
/// the form or the action URL), or one a browser marks cross-site (`Sec-Fetch-Site`, or an
/// `Origin` that is not this host).
fn same_origin(request: &HttpRequest, state: &WebState, token: &str) -> Result<(), PageError> {
    if !crate::auth::same(token.as_bytes(), state.csrf_token.as_bytes()) {
        return Err(ApiError::Forbidden(
            "this form has no valid CSRF token: reload the page and submit it again".to_owned(),
        )
        .into());
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let cross_site = header("sec-fetch-site") == Some("cross-site");
    let foreign_origin = match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            origin != "null"
                && origin
                    .split_once("://")
                    .is_none_or(|(_, origin_host)| origin_host != host)
        }
        _ => false,
    };
    if cross_site || foreign_origin {
        return Err(ApiError::Forbidden("cross-site form posts are refused".to_owned()).into());
    }
    Ok(())
}

/// Reads the silence form: the form as entered (to show again) and the silence or what is
/// wrong with it.
fn parse_form(body: &[u8]) -> (SilenceForm, Result<NewSilence, String>) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    };
    let mut form = SilenceForm::empty(FORM_ROWS);
    form.duration = field("duration");
    form.created_by = field("created_by");
    form.comment = field("comment");
    for (index, row) in form.rows.iter_mut().enumerate() {
        *row = (
            field(&format!("name{index}")),
            field(&format!("op{index}")),
            field(&format!("value{index}")),
        );
    }
    let parsed = silence_of(&form);
    (form, parsed)
}

fn silence_of(form: &SilenceForm) -> Result<NewSilence, String> {
    let mut matchers = Vec::new();
    for (name, op, value) in form.rows.iter().filter(|(name, _, _)| !name.is_empty()) {
        let (is_equal, is_regex) = match op.as_str() {
            "=" | "" => (true, false),
            "!=" => (false, false),
            "=~" => (true, true),
            "!~" => (false, true),
            other => return Err(format!("unknown operator {other:?}")),
        };
        matchers.push(Matcher {
            name: name.clone(),
            value: value.clone(),
            is_regex,
            is_equal,
        });
    }
    let duration = crate::alert::duration::Span::parse(&form.duration)?;
    if duration.0.is_zero() {
        return Err("the duration must be above 0".to_owned());
    }
    let ends =
        now_unix_nano().saturating_add(u64::try_from(duration.0.as_nanos()).unwrap_or(u64::MAX));
    let ends_at = crate::model::rfc3339(ends).ok_or("the duration is too long")?;
    Ok(NewSilence {
        matchers,
        starts_at: None,
        ends_at,
        created_by: form.created_by.clone(),
        comment: form.comment.clone(),
    })
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", location))
        .finish()
}

pub async fn create_silence(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let body = crate::web::handlers::alerts::read_body(
        payload,
        crate::web::handlers::alerts::MAX_SILENCE_BYTES,
    )
    .await?;
    let token: String = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .unwrap_or_default()
        .into_iter()
        .find_map(|(key, value)| (key == "csrf").then_some(value))
        .unwrap_or_default();
    same_origin(&request, &state, &token)?;
    let (mut form, parsed) = parse_form(&body);
    let message = match parsed {
        Ok(new) => match state.alerting.add_silence(new).await {
            Ok(_) => return Ok(see_other(links::ALERTS)),
            Err(
                crate::alert::service::AlertingError::Invalid(message)
                | crate::alert::service::AlertingError::Full(message),
            ) => message,
            Err(err) => return Err(ApiError::from(err).into()),
        },
        Err(message) => message,
    };
    form.message = message;
    let page = alerts_page(&state, form).await?;
    let mut response = respond(&page);
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}

pub async fn expire_silence(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<WebState>,
) -> Result<HttpResponse, PageError> {
    let params = params::Params::parse(request.query_string(), &["csrf"])?;
    same_origin(&request, &state, &params.text("csrf").unwrap_or_default())?;
    let id = path.into_inner();
    if state.alerting.expire_silence(id.clone()).await? {
        Ok(see_other(links::ALERTS))
    } else {
        Err(ApiError::NotFound(format!("no silence with id {id:?}")).into())
    }
}

#[cfg(test)]
mod badge_tests {
    use super::badge_html;

    #[test]
    fn the_badge_counts_firing_alerts_and_says_when_nobody_hears_of_them() {
        assert!(!badge_html(0, 0).contains("firing"));
        assert!(badge_html(3, 1).contains(">3 firing</a>"));
        assert!(badge_html(10, 0).contains("10 firing · no receiver"));
        for html in [badge_html(0, 1), badge_html(2, 1)] {
            assert!(
                html.contains(r#"hx-get="/alerts/badge""#),
                "it reloads itself: {html}"
            );
        }
    }
}
