//! Optional authentication: tokens for ingest (OTLP/gRPC and OTLP/HTTP), tokens or basic
//! credentials for the UI and API. Comparisons take the same time whatever matches, and no
//! secret is ever logged (the config's `Debug` redacts them).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The `[security]` section.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Tokens exporters must send as `Authorization: Bearer TOKEN` or `x-service-auth: TOKEN`;
    /// empty: ingest is open.
    pub ingest_tokens: Vec<String>,
    /// Tokens accepted on the UI port as `Authorization: Bearer TOKEN`.
    pub ui_tokens: Vec<String>,
    /// `user = "password"` pairs accepted on the UI port as HTTP basic credentials (browsers
    /// ask for them). With neither tokens nor users the UI is open.
    pub ui_users: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field(
                "ingest_tokens",
                &format!("{} redacted", self.ingest_tokens.len()),
            )
            .field("ui_tokens", &format!("{} redacted", self.ui_tokens.len()))
            .field("ui_users", &self.ui_users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Equal bytes, in time that depends on the lengths only (secrets, tokens).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn any_token(tokens: &[String], candidate: &str) -> bool {
    tokens.iter().fold(false, |found, token| {
        found | same(token.as_bytes(), candidate.as_bytes())
    })
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who may send telemetry.
#[derive(Debug, Clone, Default)]
pub struct IngestAuth {
    tokens: Arc<Vec<String>>,
}

impl IngestAuth {
    pub fn new(config: &SecurityConfig) -> Self {
        Self {
            tokens: Arc::new(config.ingest_tokens.clone()),
        }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether a request with these header values may send.
    pub fn allows(&self, authorization: Option<&str>, service_auth: Option<&str>) -> bool {
        if self.is_open() {
            return true;
        }
        let by_bearer = bearer(authorization).is_some_and(|token| any_token(&self.tokens, token));
        let by_header = service_auth.is_some_and(|token| any_token(&self.tokens, token.trim()));
        by_bearer | by_header
    }
}

/// Who may read the UI and API.
#[derive(Debug, Clone, Default)]
pub struct UiAuth {
    tokens: Arc<Vec<String>>,
    /// `user:password` as basic credentials carry them.
    credentials: Arc<Vec<String>>,
}

impl UiAuth {
    pub fn new(config: &SecurityConfig) -> Self {
        Self {
            tokens: Arc::new(config.ui_tokens.clone()),
            credentials: Arc::new(
                config
                    .ui_users
                    .iter()
                    .map(|(user, password)| format!("{user}:{password}"))
                    .collect(),
            ),
        }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.credentials.is_empty()
    }

    /// Whether a request with this `Authorization` header may read.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        if self.is_open() {
            return true;
        }
        if let Some(token) = bearer(authorization) {
            return any_token(&self.tokens, token);
        }
        let basic = authorization
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, encoded)| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok());
        basic.is_some_and(|credentials| any_token(&self.credentials, &credentials))
    }

    /// Whether basic credentials are configured (the 401 then invites a browser to ask).
    pub fn has_users(&self) -> bool {
        !self.credentials.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SecurityConfig {
        SecurityConfig {
            ingest_tokens: vec!["ingest-secret".to_owned(), "other".to_owned()],
            ui_tokens: vec!["ui-secret".to_owned()],
            ui_users: [("ana".to_owned(), "pa:ss".to_owned())].into(),
        }
    }

    #[test]
    fn ingest_takes_a_bearer_or_the_service_header_and_nothing_else() {
        let auth = IngestAuth::new(&config());
        assert!(auth.allows(Some("Bearer ingest-secret"), None));
        assert!(auth.allows(Some("bearer other"), None));
        assert!(auth.allows(None, Some("ingest-secret")));
        assert!(!auth.allows(None, None));
        assert!(!auth.allows(Some("Bearer ingest-secre"), None));
        assert!(!auth.allows(Some("Basic ingest-secret"), None));
        assert!(!auth.allows(Some("ingest-secret"), Some("wrong")));
        assert!(IngestAuth::new(&SecurityConfig::default()).allows(None, None));
    }

    #[test]
    fn the_ui_takes_its_tokens_or_basic_credentials() {
        let auth = UiAuth::new(&config());
        assert!(auth.allows(Some("Bearer ui-secret")));
        assert!(!auth.allows(Some("Bearer ingest-secret")));
        let basic = |text: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            )
        };
        assert!(auth.allows(Some(&basic("ana:pa:ss"))));
        assert!(!auth.allows(Some(&basic("ana:pa"))));
        assert!(!auth.allows(Some(&basic("bob:pa:ss"))));
        assert!(!auth.allows(Some("Basic !!!")));
        assert!(!auth.allows(None));
        assert!(
            !format!("{:?}", config()).contains("secret"),
            "Debug redacts"
        );
    }
}
