//! One delivery attempt over HTTP and what it leads to: delivered on 2xx; given up on a 4xx
//! other than 408 and 429 (the receiver refuses the notification, retrying cannot help);
//! otherwise (5xx, 408, 429, timeouts, connection errors) retried with exponential backoff and
//! jitter, honouring `Retry-After`, until `give_up_after`. Secrets (HMAC key, headers) come
//! from the config at send time and are never stored or logged.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use sha2::Sha256;

use super::config::{DeliveryConfig, ReceiverConfig};
use super::store::{Attempt, Delivery, Outcome};

/// Longest response body text kept in the delivery log.
const MAX_ERROR_TEXT: usize = 300;

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    settings: DeliveryConfig,
    receivers: Vec<ReceiverConfig>,
}

impl Sender {
    /// A sender trusting the system's CAs and those in `settings.ca_file`. Fails naming the
    /// file when its certificates cannot be used.
    pub fn new(settings: DeliveryConfig, receivers: Vec<ReceiverConfig>) -> Result<Self, String> {
        crate::tls::install_provider();
        let ca_file = &settings.ca_file;
        let extra_roots = if ca_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            crate::tls::certificates(ca_file)
                .map_err(|err| format!("alerts.delivery.ca_file: {err}"))?
                .iter()
                .map(|der| reqwest::Certificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| format!("alerts.delivery.ca_file {}: {err}", ca_file.display()))?
        };
        let client = reqwest::Client::builder()
            .timeout(settings.timeout.0)
            .connect_timeout(settings.timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(extra_roots)
            .build()
            .map_err(|err| {
                format!(
                    "webhook client (alerts.delivery.ca_file `{}`): {}",
                    ca_file.display(),
                    describe(&err)
                )
            })?;
        Ok(Self {
            client,
            settings,
            receivers,
        })
    }

    fn receiver(&self, delivery: &Delivery) -> Option<&ReceiverConfig> {
        self.receivers
            .iter()
            .find(|receiver| receiver.name == delivery.receiver)
    }

    /// Tries `delivery` once, at `now`.
    pub async fn attempt(&self, delivery: &Delivery, now: u64) -> (Attempt, Outcome) {
        let is_alertmanager = delivery
            .receiver
            .starts_with(super::engine::ALERTMANAGER_RECEIVER);
        if self.receiver(delivery).is_none() && !is_alertmanager {
            let attempt = Attempt {
                delivery_id: delivery.id,
                receiver: delivery.receiver.clone(),
                at_unix_nano: now,
                status: None,
                latency_ms: 0,
                error: Some(format!(
                    "receiver `{}` is no longer configured",
                    delivery.receiver
                )),
            };
            return (attempt, Outcome::Failed);
        }
        let started = Instant::now();
        let result = self.send(delivery).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error, retry_after) = match result {
            Ok((status, retry_after, text)) => {
                let error = (!(200..300).contains(&status)).then(|| {
                    let text: String = text.chars().take(MAX_ERROR_TEXT).collect();
                    format!("HTTP {status}: {}", text.trim())
                });
                (Some(status), error, retry_after)
            }
            Err(error) => (None, Some(error), None),
        };
        let outcome = match status {
            Some(200..=299) => Outcome::Delivered,
            Some(code) if (400..500).contains(&code) && code != 408 && code != 429 => {
                Outcome::Failed
            }
            _ => self.retry(delivery, now, retry_after),
        };
        let attempt = Attempt {
            delivery_id: delivery.id,
            receiver: delivery.receiver.clone(),
            at_unix_nano: now,
            status,
            latency_ms,
            error,
        };
        (attempt, outcome)
    }

    /// When to try again, or `Failed` when the notification is too old to bother.
    fn retry(&self, delivery: &Delivery, now: u64, retry_after: Option<Duration>) -> Outcome {
        let age = now.saturating_sub(delivery.created_at_unix_nano);
        if u128::from(age) >= self.settings.give_up_after.0.as_nanos() {
            return Outcome::Failed;
        }
        let exponent = delivery.num_attempts.min(30);
        let base = self
            .settings
            .initial_backoff
            .0
            .saturating_mul(1u32 << exponent.min(20))
            .min(self.settings.max_backoff.0);
        // ±50 %, deterministic per delivery and attempt.
        let seed = (delivery.id as u64) ^ (u64::from(delivery.num_attempts) << 32) ^ now;
        let jitter = 0.5 + (crate::model::split_mix(seed) % 1000) as f64 / 1000.0;
        let delay = base
            .mul_f64(jitter)
            .max(retry_after.unwrap_or_default())
            .min(self.settings.max_backoff.0);
        Outcome::RetryAt(now.saturating_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX)))
    }

    async fn send(&self, delivery: &Delivery) -> Result<(u16, Option<Duration>, String), String> {
        let headers = headers(self.receiver(delivery), delivery)?;
        let response = self
            .client
            .post(&delivery.url)
            .headers(headers)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|err| describe(&err))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        Ok((status, retry_after, text))
    }
}

fn headers(receiver: Option<&ReceiverConfig>, delivery: &Delivery) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("cartograph/", env!("CARGO_PKG_VERSION"))),
    );
    let key = HeaderValue::from_str(&delivery.idempotency_key).map_err(|err| err.to_string())?;
    headers.insert(HeaderName::from_static("idempotency-key"), key);
    let Some(receiver) = receiver else {
        return Ok(headers);
    };
    for (name, value) in &receiver.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|err| err.to_string())?;
        let mut value = HeaderValue::from_str(value).map_err(|err| err.to_string())?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    if let Some(secret) = &receiver.hmac_secret {
        let name = HeaderName::from_bytes(receiver.signature_header.as_bytes())
            .map_err(|err| err.to_string())?;
        let value = HeaderValue::from_str(&signature(secret, delivery.body.as_bytes()))
            .map_err(|err| err.to_string())?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`, as GitHub-style receivers check it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() && !chain(err).contains("certificate") {
        "connection failed (receiver down?)".to_owned()
    } else {
        chain(err)
    }
}

/// The error and its causes, `: `-joined (a certificate problem hides in a cause).
fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::duration::Span;
    use crate::alert::store::DeliveryState;

    const SEC: u64 = 1_000_000_000;

    fn delivery(num_attempts: u32, created: u64) -> Delivery {
        Delivery {
            id: 7,
            receiver: "ops".to_owned(),
            url: "http://127.0.0.1:9/".to_owned(),
            body: "{}".to_owned(),
            idempotency_key: "k".to_owned(),
            created_at_unix_nano: created,
            state: DeliveryState::Pending,
            num_attempts,
            next_attempt_at_unix_nano: created,
            last_status: None,
            last_error: None,
            last_latency_ms: None,
            finished_at_unix_nano: None,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_limit_then_gives_up() {
        let sender = Sender::new(
            DeliveryConfig {
                initial_backoff: Span::secs(1),
                max_backoff: Span::secs(60),
                give_up_after: Span::secs(3600),
                ..DeliveryConfig::default()
            },
            vec![],
        )
        .expect("sender");
        let now = 100 * SEC;
        for (attempts, low, high) in [
            (0, 0.5, 1.5),
            (1, 1.0, 3.0),
            (3, 4.0, 12.0),
            (10, 30.0, 60.0),
        ] {
            let Outcome::RetryAt(at) = sender.retry(&delivery(attempts, now), now, None) else {
                panic!("retries");
            };
            let delay = (at - now) as f64 / 1e9;
            assert!(low <= delay && delay <= high, "{attempts}: {delay}");
        }
        let Outcome::RetryAt(at) =
            sender.retry(&delivery(0, now), now, Some(Duration::from_secs(30)))
        else {
            panic!("retries");
        };
        assert!(at - now >= 30 * SEC, "Retry-After honoured");
        assert_eq!(
            sender.retry(&delivery(3, 0), 3600 * SEC, None),
            Outcome::Failed
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
