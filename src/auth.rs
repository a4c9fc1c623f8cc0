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
    /// `tenant = ["TOKEN", …]`: ingest tokens that also say whose telemetry it is. Cartograph
    /// sets the resource attribute `cartograph.tenant` from the token (replacing any the
    /// sender claimed); with tenants configured, requests on a shared `ingest_tokens` token
    /// carry no tenant.
    pub tenants: BTreeMap<String, Vec<String>>,
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
            .field("tenants", &self.tenants.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecurityConfig {
    /// Tokens must be non-empty, without spaces (a header carries them), and name one
    /// tenant at most. Errors name the field, never the token.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        let ingest = self.ingest_tokens.iter().map(|token| ("", token));
        let tenants = self
            .tenants
            .iter()
            .flat_map(|(tenant, tokens)| tokens.iter().map(move |token| (tenant.as_str(), token)));
        for (owner, token) in ingest.chain(tenants) {
            check_token("security.ingest_tokens / security.tenants", token)?;
            if let Some(previous) = owners.insert(token, owner)
                && previous != owner
            {
                return Err((
                    "security.tenants",
                    format!(
                        "one token is given to both `{}` and `{}`",
                        or_shared(previous),
                        or_shared(owner)
                    ),
                ));
            }
        }
        for tenant in self.tenants.keys() {
            if tenant.is_empty() || tenant.chars().any(char::is_control) {
                return Err((
                    "security.tenants",
                    "tenant names must be printable text".into(),
                ));
            }
        }
        for token in &self.ui_tokens {
            check_token("security.ui_tokens", token)?;
        }
        Ok(())
    }
}

fn or_shared(owner: &str) -> &str {
    if owner.is_empty() {
        "ingest_tokens"
    } else {
        owner
    }
}

fn check_token(field: &'static str, token: &str) -> Result<(), (&'static str, String)> {
    if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err((
            field,
            "tokens must be non-empty printable ASCII without spaces (they travel in headers)"
                .into(),
        ));
    }
    Ok(())
}

/// A secret or a candidate for one, as it is compared: its SHA-256 digest. Configured secrets
/// are digested once at start, a request's candidate once per request.
type Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Equal digests, compared whole whatever differs.
fn equal(a: &Digest, b: &Digest) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Equal bytes, in time that depends on neither content nor which bytes differ: SHA-256
/// digests of both are compared whole, so not even the secret's length shows.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    equal(&digest(a), &digest(b))
}

fn digests<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Vec<Digest> {
    secrets
        .into_iter()
        .map(|secret| digest(secret.as_bytes()))
        .collect()
}

/// Whether `candidate` is one of `tokens`, every token compared.
fn any_token(tokens: &[Digest], candidate: &Digest) -> bool {
    tokens
        .iter()
        .fold(false, |found, token| found | equal(token, candidate))
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whose telemetry an admitted request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenancy {
    /// No tenants are configured: resources are left as sent.
    Off,
    /// Tenants are configured, the request came with a shared token: it has no tenant.
    Shared,
    /// The request came with this tenant's token.
    Tenant(Arc<str>),
}

/// A secret held outside the config (a CLI token): its `Debug` shows no text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

/// Who may send telemetry, and as which tenant.
#[derive(Clone, Default)]
pub struct IngestAuth {
    tokens: Arc<Vec<Digest>>,
    tenants: Arc<Vec<(Arc<str>, Vec<Digest>)>>,
}

impl std::fmt::Debug for IngestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestAuth")
            .field("tokens", &format!("{} redacted", self.tokens.len()))
            .field(
                "tenants",
                &self
                    .tenants
                    .iter()
                    .map(|(tenant, _)| tenant)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl IngestAuth {
    pub fn new(config: &SecurityConfig) -> Self {
        Self {
            tokens: Arc::new(digests(&config.ingest_tokens)),
            tenants: Arc::new(
                config
                    .tenants
                    .iter()
                    .map(|(tenant, tokens)| (Arc::from(tenant.as_str()), digests(tokens)))
                    .collect(),
            ),
        }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.tenants.is_empty()
    }

    /// Whether a request with these header values may send.
    pub fn allows(&self, authorization: Option<&str>, service_auth: Option<&str>) -> bool {
        self.admit(authorization, service_auth).is_some()
    }

    /// Admits a request with these header values, saying as which tenant; `None`: refused.
    pub fn admit(
        &self,
        authorization: Option<&str>,
        service_auth: Option<&str>,
    ) -> Option<Tenancy> {
        if self.is_open() {
            return Some(Tenancy::Off);
        }
        let by_bearer = bearer(authorization).map(|token| digest(token.as_bytes()));
        let by_header = service_auth.map(|token| digest(token.trim().as_bytes()));
        let matches = |tokens: &[Digest]| {
            by_bearer.is_some_and(|token| any_token(tokens, &token))
                | by_header.is_some_and(|token| any_token(tokens, &token))
        };
        // Every tenant is checked, whichever matches, so timing says nothing about which.
        let tenants: Vec<&Arc<str>> = self
            .tenants
            .iter()
            .filter(|(_, tokens)| matches(tokens))
            .map(|(tenant, _)| tenant)
            .collect();
        let shared = matches(&self.tokens);
        match (tenants.as_slice(), shared) {
            // Two credentials naming different owners: refused rather than guessed.
            ([_, _, ..], _) | ([_], true) => None,
            ([tenant], false) => Some(Tenancy::Tenant(Arc::clone(tenant))),
            ([], true) if self.tenants.is_empty() => Some(Tenancy::Off),
            ([], true) => Some(Tenancy::Shared),
            ([], false) => None,
        }
    }
}

/// Who may read the UI and API.
#[derive(Clone, Default)]
pub struct UiAuth {
    tokens: Arc<Vec<Digest>>,
    /// `user:password` as basic credentials carry them.
    credentials: Arc<Vec<Digest>>,
}

impl std::fmt::Debug for UiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiAuth")
            .field("tokens", &format!("{} redacted", self.tokens.len()))
            .field(
                "credentials",
                &format!("{} redacted", self.credentials.len()),
            )
            .finish()
    }
}

impl UiAuth {
    pub fn new(config: &SecurityConfig) -> Self {
        Self {
            tokens: Arc::new(digests(&config.ui_tokens)),
            credentials: Arc::new(
                config
                    .ui_users
                    .iter()
                    .map(|(user, password)| digest(format!("{user}:{password}").as_bytes()))
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
            return any_token(&self.tokens, &digest(token.as_bytes()));
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
        basic.is_some_and(|credentials| {
            any_token(&self.credentials, &digest(credentials.as_bytes()))
        })
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
            tenants: BTreeMap::new(),
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
    fn a_tenant_token_names_its_tenant_and_a_shared_one_none() {
        let mut with_tenants = config();
        with_tenants.tenants = [
            ("shop".to_owned(), vec!["shop-token".to_owned()]),
            ("billing".to_owned(), vec!["billing-token".to_owned()]),
        ]
        .into();
        let auth = IngestAuth::new(&with_tenants);
        assert_eq!(
            auth.admit(Some("Bearer shop-token"), None),
            Some(Tenancy::Tenant("shop".into()))
        );
        assert_eq!(
            auth.admit(None, Some("billing-token")),
            Some(Tenancy::Tenant("billing".into()))
        );
        assert_eq!(auth.admit(None, Some("other")), Some(Tenancy::Shared));
        assert_eq!(auth.admit(Some("Bearer shop"), None), None);
        assert_eq!(
            auth.admit(Some("Bearer shop-token"), Some("billing-token")),
            None,
            "two tenants at once are refused"
        );
        assert_eq!(auth.admit(Some("Bearer shop-token"), Some("other")), None);
        assert_eq!(
            auth.admit(Some("Bearer shop-token"), Some("shop-token")),
            Some(Tenancy::Tenant("shop".into()))
        );
        assert_eq!(
            IngestAuth::new(&config()).admit(None, Some("other")),
            Some(Tenancy::Off)
        );
        let only_tenants = SecurityConfig {
            tenants: with_tenants.tenants.clone(),
            ..SecurityConfig::default()
        };
        let auth = IngestAuth::new(&only_tenants);
        assert!(!auth.is_open());
        assert_eq!(auth.admit(None, None), None);
        assert!(!format!("{with_tenants:?}").contains("shop-token"));
    }

    #[test]
    fn empty_spaced_or_doubly_given_tokens_are_refused_without_showing_them() {
        assert!(config().validate().is_ok());
        let mut bad = config();
        bad.ingest_tokens.push(String::new());
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.ui_tokens.push("has space".to_owned());
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.ui_tokens.push("café".to_owned());
        assert!(bad.validate().is_err(), "headers cannot carry it");
        let mut bad = config();
        bad.tenants = [("shop".to_owned(), vec!["other".to_owned()])].into();
        let (field, message) = bad.validate().expect_err("shared with ingest_tokens");
        assert_eq!(field, "security.tenants");
        assert!(message.contains("ingest_tokens") && message.contains("shop"));
        assert!(
            !message.contains("other"),
            "the token is not shown: {message}"
        );
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
