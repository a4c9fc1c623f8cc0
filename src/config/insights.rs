//! The `[insights]` section: what the communication-pattern audit holds the system to
//! (gateways, correlation-id keys, hard-coded endpoint patterns, the per-instance target),
//! validated at load.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The communication-pattern audit (`/api/v1/insights` findings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightsConfig {
    /// Services that are API gateways: calls from outside into any other service bypass
    /// them. Empty: the service taking the most calls from outside is the gateway.
    pub gateways: Vec<String>,
    /// Span attributes that carry a correlation id: a service whose callers' spans have one
    /// and whose own span of the call has none drops it (`correlation_id_gap`).
    pub correlation_keys: Vec<String>,
    /// Names that are hard-coded addresses though not IP literals (`*.internal.example.com`,
    /// `10.*`): `*` is any run of characters, matched against a called node's hosts, ignoring
    /// case (`hardcoded_endpoint`). Empty: IP literals only.
    pub endpoint_patterns: Vec<String>,
    /// Requests per second one instance (`service.instance.id`) of a service should serve
    /// at most; a service serving more per instance misses its target (`target_missed`).
    pub max_requests_per_instance: f64,
}

impl InsightsConfig {
    /// The query service's audit settings; `validate` has checked the patterns.
    pub fn audit_settings(&self) -> crate::query::AuditSettings {
        crate::query::AuditSettings {
            gateways: self.gateways.clone(),
            correlation_keys: self.correlation_keys.clone(),
            endpoint_patterns: self
                .endpoint_patterns
                .iter()
                .filter_map(|text| crate::graph::audit::EndpointPattern::parse(text).ok())
                .collect(),
            max_requests_per_instance: self.max_requests_per_instance,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for text in &self.endpoint_patterns {
            crate::graph::audit::EndpointPattern::parse(text).map_err(|message| {
                ConfigError::Invalid {
                    field: "insights.endpoint_patterns",
                    message,
                }
            })?;
        }
        if !(self.max_requests_per_instance.is_finite() && self.max_requests_per_instance > 0.0) {
            return Err(ConfigError::Invalid {
                field: "insights.max_requests_per_instance",
                message: "must be a positive number of requests per second".to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self {
            gateways: Vec::new(),
            correlation_keys: crate::graph::audit::DEFAULT_CORRELATION_KEYS
                .iter()
                .map(|key| (*key).to_owned())
                .collect(),
            endpoint_patterns: Vec::new(),
            max_requests_per_instance: crate::graph::audit::MAX_REQUESTS_PER_INSTANCE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn insights_endpoint_patterns_parse_and_a_bad_one_is_named() {
        let config: Config = toml::from_str(
            "[insights]\nendpoint_patterns = [\"*.internal.example.com\", \"10.*\"]\n",
        )
        .expect("parses");
        config.validate().expect("valid patterns");
        let settings = config.insights.audit_settings();
        assert_eq!(settings.endpoint_patterns.len(), 2);
        assert_eq!(settings.max_requests_per_instance, 10_000.0);
        for bad in ["", "*", "db host", "db/*"] {
            let mut config = Config::default();
            config.insights.endpoint_patterns = vec![bad.to_owned()];
            let err = config.validate().expect_err(bad).to_string();
            assert!(err.contains("insights.endpoint_patterns"), "{err}");
        }
        let mut config = Config::default();
        config.insights.max_requests_per_instance = 0.0;
        let err = config.validate().expect_err("zero").to_string();
        assert!(err.contains("insights.max_requests_per_instance"), "{err}");
    }
}
