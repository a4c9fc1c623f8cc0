//! The `[alerts]` section: rules (built-in defaults plus `[[alerts.rules]]`), grouping and
//! timing, receivers and delivery. Parsing names the rule and field of every mistake; semantic
//! checks (ranges, unique names, URLs) run in [`AlertsConfig::validate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::builtin::builtin_rules;
use super::duration::Span;
use super::rule::RuleKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate rules and deliver notifications at all.
    pub enabled: bool,
    /// How often every rule is evaluated.
    pub evaluation_interval: Span,
    /// Base of the links in notifications (`generatorURL`, `externalURL`); empty: the UI address.
    pub external_url: String,
    /// Run the built-in rules (see [`builtin_rules`]) besides the configured ones.
    pub builtin_rules: bool,
    /// Names of built-in rules to leave out.
    pub disabled_rules: Vec<String>,
    /// Labels whose values split alerts into notification groups.
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first notification.
    pub group_wait: Span,
    /// How long a group waits before notifying about alerts added or resolved since.
    pub group_interval: Span,
    /// How long before a notification that changed nothing is sent again.
    pub repeat_interval: Span,
    /// Alerts tracked per rule at most (overflow counted at /metrics).
    pub max_alerts_per_rule: usize,
    /// Alerts listed per notification at most (the rest counted in `truncatedAlerts`).
    pub max_alerts_per_notification: usize,
    pub delivery: DeliveryConfig,
    /// Optional push of firing and resolved alerts to Alertmanager's `/api/v2/alerts`.
    pub alertmanager: AlertmanagerConfig,
    pub receivers: Vec<ReceiverConfig>,
    pub rules: Vec<RuleSpec>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            evaluation_interval: Span::secs(15),
            external_url: String::new(),
            builtin_rules: true,
            disabled_rules: Vec::new(),
            group_by: vec!["alertname".to_owned()],
            group_wait: Span::secs(30),
            group_interval: Span::secs(300),
            repeat_interval: Span::secs(4 * 3600),
            max_alerts_per_rule: 1000,
            max_alerts_per_notification: 200,
            delivery: DeliveryConfig::default(),
            alertmanager: AlertmanagerConfig::default(),
            receivers: Vec::new(),
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// One attempt's time limit (connect, send, response).
    pub timeout: Span,
    /// First retry delay; each further retry doubles it, with ±50 % jitter.
    pub initial_backoff: Span,
    /// Longest delay between two attempts.
    pub max_backoff: Span,
    /// A notification not delivered within this long is given up (marked failed).
    pub give_up_after: Span,
    /// Notifications waiting in the outbox at most; beyond this the oldest undelivered are
    /// given up (counted at /metrics).
    pub max_outbox: usize,
    /// Delivery log entries (attempts) kept.
    pub max_log_entries: usize,
    /// PEM file of CA certificates trusted for https receivers besides the system's; empty:
    /// the system's only.
    pub ca_file: std::path::PathBuf,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Span::secs(10),
            initial_backoff: Span::secs(1),
            max_backoff: Span::secs(300),
            give_up_after: Span::secs(24 * 3600),
            max_outbox: 10_000,
            max_log_entries: 2_000,
            ca_file: std::path::PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Alertmanager base URLs (e.g. `http://127.0.0.1:9093`); empty: no push.
    pub urls: Vec<String>,
}

/// A webhook target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    pub url: String,
    /// Also notify when alerts resolve.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Signs each body with HMAC-SHA256 under this secret (`signature_header`).
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Header carrying `sha256=<hex>` of the body when `hmac_secret` is set.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// Extra headers sent with every notification (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

fn default_signature_header() -> String {
    "X-Cartograph-Signature".to_owned()
}

/// One rule: what it watches (`kind` and its fields) and how it alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The alert's name (`alertname` label); letters, digits and `_`.
    pub name: String,
    pub kind: RuleKind,
    /// How long the condition must hold before the alert fires.
    pub for_duration: Span,
    /// How long a firing alert stays firing after its condition stops holding.
    pub keep_firing_for: Span,
    /// The span of data each evaluation looks at.
    pub window: Span,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    /// Templates: `{{ $value }}`, `{{ $value | percent }}`, `{{ $labels.source | name }}`.
    pub annotations: BTreeMap<String, String>,
}

/// Fields every rule has, besides those of its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonFields {
    #[serde(rename = "for", default)]
    for_duration: Span,
    #[serde(default)]
    keep_firing_for: Span,
    #[serde(default = "default_window")]
    window: Span,
    #[serde(default = "default_severity")]
    severity: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

const COMMON_KEYS: &[&str] = &[
    "for",
    "keep_firing_for",
    "window",
    "severity",
    "labels",
    "annotations",
];

fn default_window() -> Span {
    Span::secs(300)
}

fn default_severity() -> String {
    "warning".to_owned()
}

impl<'de> Deserialize<'de> for RuleSpec {
    /// Splits a rule table into its common fields and its kind's, so an unknown or misspelt
    /// field is refused with the rule's name (serde's `flatten` would swallow it).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(deserializer)?;
        let name = match table.remove("name") {
            Some(toml::Value::String(name)) => name,
            Some(_) => return Err(D::Error::custom("alert rule: `name` must be a string")),
            None => return Err(D::Error::custom("alert rule without a `name`")),
        };
        let in_rule = |err: toml::de::Error| {
            D::Error::custom(format!("alert rule `{name}`: {}", err.message()))
        };
        let mut common = toml::Table::new();
        for key in COMMON_KEYS {
            if let Some(value) = table.remove(*key) {
                common.insert((*key).to_owned(), value);
            }
        }
        if !table.contains_key("kind") {
            return Err(D::Error::custom(format!(
                "alert rule `{name}`: missing field `kind`"
            )));
        }
        let kind: RuleKind = toml::Value::Table(table).try_into().map_err(in_rule)?;
        let common: CommonFields = toml::Value::Table(common).try_into().map_err(in_rule)?;
        Ok(RuleSpec {
            name,
            kind,
            for_duration: common.for_duration,
            keep_firing_for: common.keep_firing_for,
            window: common.window,
            severity: common.severity,
            labels: common.labels,
            annotations: common.annotations,
        })
    }
}

impl Serialize for RuleSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut table = toml::Table::try_from(&self.kind).map_err(S::Error::custom)?;
        table.insert("name".to_owned(), self.name.clone().into());
        table.insert("for".to_owned(), self.for_duration.to_string().into());
        table.insert(
            "keep_firing_for".to_owned(),
            self.keep_firing_for.to_string().into(),
        );
        table.insert("window".to_owned(), self.window.to_string().into());
        table.insert("severity".to_owned(), self.severity.clone().into());
        let map = |entries: &BTreeMap<String, String>| -> toml::Table {
            entries
                .iter()
                .map(|(key, value)| (key.clone(), value.clone().into()))
                .collect()
        };
        table.insert("labels".to_owned(), map(&self.labels).into());
        table.insert("annotations".to_owned(), map(&self.annotations).into());
        table.serialize(serializer)
    }
}

/// A rule or receiver setting that cannot work, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAlertConfig {
    /// `rule NAME`, `receiver NAME` or `alerts`.
    pub place: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for InvalidAlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: field `{}`: {}",
            self.place, self.field, self.message
        )
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AlertsConfig {
    /// The rules that run: built-ins not disabled, then the configured ones.
    pub fn active_rules(&self) -> Vec<RuleSpec> {
        let builtins = if self.builtin_rules {
            builtin_rules()
        } else {
            Vec::new()
        };
        builtins
            .into_iter()
            .filter(|rule| !self.disabled_rules.contains(&rule.name))
            .chain(self.rules.iter().cloned())
            .collect()
    }

    /// Checks what parsing cannot: ranges, names, unique names, URLs, the CA file. Reports the
    /// first mistake, in the order of the section's fields.
    pub fn validate(&self) -> Result<(), InvalidAlertConfig> {
        self.validate_timing_and_grouping()?;
        self.validate_rules()?;
        self.validate_receivers()?;
        self.validate_delivery_targets()
    }

    fn validate_timing_and_grouping(&self) -> Result<(), InvalidAlertConfig> {
        if self.evaluation_interval.0.as_millis() < 100 {
            return invalid(
                "alerts",
                "evaluation_interval",
                "must be at least 100ms".into(),
            );
        }
        if self.group_interval.0.is_zero() || self.repeat_interval.0.is_zero() {
            return invalid(
                "alerts",
                "group_interval",
                "group_interval and repeat_interval must be above 0".into(),
            );
        }
        if self.max_alerts_per_rule == 0 || self.max_alerts_per_notification == 0 {
            return invalid(
                "alerts",
                "max_alerts_per_rule",
                "limits must be at least 1".into(),
            );
        }
        if self.delivery.max_outbox == 0 || self.delivery.timeout.0.is_zero() {
            return invalid(
                "alerts.delivery",
                "max_outbox",
                "max_outbox and timeout must be above 0".into(),
            );
        }
        for label in &self.group_by {
            if !is_label_name(label) {
                return invalid(
                    "alerts",
                    "group_by",
                    format!("`{label}` is not a label name"),
                );
            }
        }
        Ok(())
    }

    /// The disabled built-ins exist; every active rule has a unique label name, a window of at
    /// least a minute, label names as labels, and a valid kind.
    fn validate_rules(&self) -> Result<(), InvalidAlertConfig> {
        let builtin_names: Vec<String> = builtin_rules().into_iter().map(|r| r.name).collect();
        for name in &self.disabled_rules {
            if !builtin_names.contains(name) {
                return invalid(
                    "alerts",
                    "disabled_rules",
                    format!(
                        "`{name}` is not a built-in rule (built-ins: {})",
                        builtin_names.join(", ")
                    ),
                );
            }
        }
        let mut names = Vec::new();
        for rule in self.active_rules() {
            let place = format!("alert rule `{}`", rule.name);
            if !is_label_name(&rule.name) {
                return invalid(
                    &place,
                    "name",
                    "use letters, digits and _ (not starting with a digit)".into(),
                );
            }
            if names.contains(&rule.name) {
                return invalid(&place, "name", "another rule has this name".into());
            }
            names.push(rule.name.clone());
            if rule.window.0.as_secs() < 60 {
                return invalid(
                    &place,
                    "window",
                    "must be at least 1m (the map counts by minute)".into(),
                );
            }
            for key in rule.labels.keys() {
                if !is_label_name(key) {
                    return invalid(&place, "labels", format!("`{key}` is not a label name"));
                }
            }
            if let Err((field, message)) = rule.kind.validate() {
                return invalid(&place, field, message);
            }
        }
        Ok(())
    }

    fn validate_receivers(&self) -> Result<(), InvalidAlertConfig> {
        let mut receiver_names = Vec::new();
        for receiver in &self.receivers {
            let place = format!("alert receiver `{}`", receiver.name);
            if receiver.name.is_empty() || receiver_names.contains(&receiver.name) {
                return invalid(&place, "name", "must be non-empty and unique".into());
            }
            receiver_names.push(receiver.name.clone());
            check_url(&receiver.url).or_else(|message| invalid(&place, "url", message))?;
            for (name, value) in &receiver.headers {
                let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && reqwest::header::HeaderValue::from_str(value).is_ok();
                if !valid {
                    return invalid(&place, "headers", format!("`{name}` is not a valid header"));
                }
            }
            if reqwest::header::HeaderName::from_bytes(receiver.signature_header.as_bytes())
                .is_err()
            {
                return invalid(&place, "signature_header", "not a header name".into());
            }
        }
        Ok(())
    }

    /// The delivery CA file, the Alertmanager URLs and the external URL.
    fn validate_delivery_targets(&self) -> Result<(), InvalidAlertConfig> {
        if !self.delivery.ca_file.as_os_str().is_empty() {
            crate::tls::certificates(&self.delivery.ca_file)
                .map(drop)
                .or_else(|err| invalid("alerts.delivery", "ca_file", err.to_string()))?;
        }
        for url in &self.alertmanager.urls {
            check_url(url).or_else(|message| invalid("alerts.alertmanager", "urls", message))?;
        }
        if !self.external_url.is_empty() {
            check_url(&self.external_url)
                .or_else(|message| invalid("alerts", "external_url", message))?;
        }
        Ok(())
    }
}

/// The mistake `message` in `field` of `place`.
fn invalid<T>(place: &str, field: &str, message: String) -> Result<T, InvalidAlertConfig> {
    Err(InvalidAlertConfig {
        place: place.to_owned(),
        field: field.to_owned(),
        message,
    })
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("`{url}`: {err}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("`{url}`: scheme `{other}` is not http or https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertsConfig, String> {
        toml::from_str::<AlertsConfig>(text).map_err(|err| err.to_string())
    }

    #[test]
    fn defaults_validate_and_builtins_can_be_turned_off() {
        let config = AlertsConfig::default();
        config.validate().expect("defaults");
        assert_eq!(config.active_rules().len(), 7);
        let config = parse("disabled_rules = [\"NewCycle\"]\n").expect("parses");
        assert!(
            !config
                .active_rules()
                .iter()
                .any(|rule| rule.name == "NewCycle")
        );
        let config = parse("disabled_rules = [\"NoSuchRule\"]\n").expect("parses");
        let err = config.validate().expect_err("unknown built-in");
        assert!(err.to_string().contains("NoSuchRule"), "{err}");
    }

    #[test]
    fn a_rule_parses_with_its_common_fields_and_round_trips() {
        let config = parse(
            "[[rules]]\nname = \"PaymentsErrors\"\nkind = \"edge_error_rate\"\nthreshold = 0.1\n\
             for = \"1m\"\nseverity = \"critical\"\nlabels = { team = \"payments\" }\n\
             annotations = { summary = \"{{ $value | percent }}\" }\n",
        )
        .expect("parses");
        let rule = &config.rules[0];
        assert_eq!(rule.name, "PaymentsErrors");
        assert_eq!(rule.for_duration, Span::secs(60));
        assert_eq!(rule.window, Span::secs(300));
        assert_eq!(rule.labels["team"], "payments");
        config.validate().expect("valid");
        let text = toml::to_string(&config).expect("serializes");
        assert_eq!(parse(&text).expect("parses back"), config);
    }

    #[test]
    fn mistakes_name_the_rule_and_the_field() {
        for (text, expected) in [
            (
                "[[rules]]\nname = \"Pay\"\nkind = \"edge_error_rate\"\nthreshhold = 0.1\n",
                "alert rule `Pay`: unknown field `threshhold`",
            ),
            (
                "[[rules]]\nname = \"Pay\"\nkind = \"edge_error_rate\"\n",
                "alert rule `Pay`: missing field `threshold`",
            ),
            (
                "[[rules]]\nname = \"Pay\"\nkind = \"edge_error_rate\"\nthreshold = 0.1\nfor = \"soon\"\n",
                "alert rule `Pay`",
            ),
            (
                "[[rules]]\nname = \"Pay\"\nkind = \"no_such_kind\"\n",
                "alert rule `Pay`: unknown variant `no_such_kind`",
            ),
            (
                "[[rules]]\nname = \"Pay\"\nthreshold = 0.1\n",
                "alert rule `Pay`: missing field `kind`",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}\n→ {err}");
        }
        for (text, expected) in [
            (
                "[[rules]]\nname = \"Pay\"\nkind = \"edge_error_rate\"\nthreshold = 5.0\n",
                "alert rule `Pay`: field `threshold`",
            ),
            (
                "[[rules]]\nname = \"Slow\"\nkind = \"edge_latency\"\nquantile = 95.0\nthreshold_ms = 100.0\n",
                "alert rule `Slow`: field `quantile`",
            ),
            (
                "[[rules]]\nname = \"EdgeErrorRateHigh\"\nkind = \"cycle\"\n",
                "alert rule `EdgeErrorRateHigh`: field `name`: another rule",
            ),
            (
                "[[rules]]\nname = \"Short\"\nkind = \"cycle\"\nwindow = \"10s\"\n",
                "alert rule `Short`: field `window`",
            ),
            (
                "[[receivers]]\nname = \"ops\"\nurl = \"ftp://example\"\n",
                "alert receiver `ops`: field `url`",
            ),
        ] {
            let err = parse(text).expect(text).validate().expect_err(text);
            assert!(err.to_string().contains(expected), "{text}\n→ {err}");
        }
    }
}
