//! What alerting keeps across restarts: the alert state (a snapshot of every rule's alerts and
//! the notification groups), the outbox of notifications with their delivery log, and
//! silences. Small and write-light, so it lives apart from the telemetry store: [`sqlite`]
//! keeps it in a database of its own. `conformance` holds the cases every implementation of
//! [`AlertStore`] must pass (built for tests and with the `conformance` feature).

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod sqlite;

use serde::Serialize;

pub use sqlite::SqliteAlertStore;

use super::silence::Silence;
use crate::store::StoreError;

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The configured receiver's name (`alertmanager` pushes use `alertmanager`).
    pub receiver: String,
    pub url: String,
    /// The JSON body, exactly as it will be sent.
    pub body: String,
    /// Sent as `Idempotency-Key`; the same on every attempt of this notification.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up: refused with a 4xx, too old, or pushed out of a full outbox.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// A notification in the outbox, with what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub receiver: String,
    pub url: String,
    #[serde(skip)]
    pub body: String,
    pub idempotency_key: String,
    pub created_at_unix_nano: u64,
    pub state: DeliveryState,
    pub num_attempts: u32,
    pub next_attempt_at_unix_nano: u64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    pub finished_at_unix_nano: Option<u64>,
}

/// One attempt at delivering a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub delivery_id: i64,
    pub receiver: String,
    pub at_unix_nano: u64,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// What an attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    RetryAt(u64),
    Failed,
}

/// Alerting's own store. Safe to call from many threads; every call is one transaction.
pub trait AlertStore: Send + Sync {
    /// The state saved last by [`AlertStore::commit`], if any.
    fn load_state(&self) -> Result<Option<String>, StoreError>;

    /// Saves `state` and adds `deliveries` to the outbox (due at `now`), together: after a
    /// crash either both are stored or neither, so a notification is never lost and never
    /// queued twice for the same state change. Then keeps at most `max_outbox` pending
    /// deliveries, failing the oldest beyond that; returns how many it failed.
    fn commit(
        &self,
        state: &str,
        deliveries: &[NewDelivery],
        now: u64,
        max_outbox: usize,
    ) -> Result<u64, StoreError>;

    /// Pending deliveries due at `now`: for each receiver only its oldest pending one (a
    /// receiver gets its notifications in order), at most `limit`.
    fn due_deliveries(&self, now: u64, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// When the next pending delivery is due, if any is pending.
    fn next_due(&self) -> Result<Option<u64>, StoreError>;

    /// Logs `attempt` and applies `outcome` to its delivery. Keeps the newest `max_log`
    /// attempts and finished deliveries.
    fn record_attempt(
        &self,
        attempt: &Attempt,
        outcome: Outcome,
        max_log: usize,
    ) -> Result<(), StoreError>;

    /// The newest deliveries, newest first.
    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// The newest attempts, newest first.
    fn attempts(&self, limit: usize) -> Result<Vec<Attempt>, StoreError>;

    /// Adds or replaces (by id) a silence; keeps at most
    /// [`MAX_SILENCES`](crate::alert::silence::MAX_SILENCES), forgetting the longest-expired.
    fn put_silence(&self, silence: &Silence) -> Result<(), StoreError>;

    /// Every silence kept, newest first.
    fn silences(&self) -> Result<Vec<Silence>, StoreError>;
}

pub(crate) fn parse_state(text: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery state `{text}`")))
}
