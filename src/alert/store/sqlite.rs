//! [`AlertStore`] on SQLite: its own small database (`alerts.sqlite3` beside the telemetry
//! store, so alert writes never wait behind ingest's big transactions), WAL with full sync so
//! a queued notification survives a power cut, one connection behind a mutex.

use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use super::{AlertStore, Attempt, Delivery, DeliveryState, NewDelivery, Outcome, parse_state};
use crate::alert::silence::{MAX_SILENCES, Silence};
use crate::store::StoreError;
use crate::store::sqlite::SqliteLocation;

const FILE_NAME: &str = "alerts.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    saved_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    num_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    last_latency_ms INTEGER,
    finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (state, receiver, id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    receiver TEXT NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    ends_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    silence TEXT NOT NULL
);
";

#[derive(Debug)]
pub struct SqliteAlertStore {
    conn: Mutex<Connection>,
}

fn nanos(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl SqliteAlertStore {
    pub fn open(location: &SqliteLocation) -> Result<Self, StoreError> {
        let conn = match location {
            SqliteLocation::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|err| StoreError::Open {
                    path: dir.display().to_string(),
                    reason: err.to_string(),
                })?;
                let path = dir.join(FILE_NAME);
                let conn = Connection::open(&path).map_err(|err| StoreError::Open {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?;
                conn.execute_batch(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 5000;",
                )?;
                conn
            }
            SqliteLocation::Memory => Connection::open_in_memory()?,
        };
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut conn)
    }
}

const DELIVERY_COLUMNS: &str = "id, receiver, url, body, idempotency_key, created_at, state, \
     num_attempts, next_attempt_at, last_status, last_error, last_latency_ms, finished_at";

fn delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    let state: String = row.get(6)?;
    Ok((
        Delivery {
            id: row.get(0)?,
            receiver: row.get(1)?,
            url: row.get(2)?,
            body: row.get(3)?,
            idempotency_key: row.get(4)?,
            created_at_unix_nano: unsigned(row.get(5)?),
            state: DeliveryState::Pending,
            num_attempts: row.get(7)?,
            next_attempt_at_unix_nano: unsigned(row.get(8)?),
            last_status: row.get(9)?,
            last_error: row.get(10)?,
            last_latency_ms: row.get::<_, Option<i64>>(11)?.map(unsigned),
            finished_at_unix_nano: row.get::<_, Option<i64>>(12)?.map(unsigned),
        },
        state,
    ))
}

fn deliveries_of(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Delivery>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, delivery)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut delivery, state) = row?;
        delivery.state = parse_state(&state)?;
        out.push(delivery);
    }
    Ok(out)
}

impl AlertStore for SqliteAlertStore {
    fn load_state(&self) -> Result<Option<String>, StoreError> {
        self.with(|conn| {
            Ok(conn
                .query_row("SELECT state FROM alert_state WHERE id = 1", [], |row| {
                    row.get(0)
                })
                .optional()?)
        })
    }

    fn commit(
        &self,
        state: &str,
        deliveries: &[NewDelivery],
        now: u64,
        max_outbox: usize,
    ) -> Result<u64, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO alert_state (id, state, saved_at) VALUES (1, ?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
                params![state, nanos(now)],
            )?;
            for new in deliveries {
                tx.execute(
                    "INSERT INTO deliveries (receiver, url, body, idempotency_key, created_at, \
                     state, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?5)",
                    params![
                        new.receiver,
                        new.url,
                        new.body,
                        new.idempotency_key,
                        nanos(now)
                    ],
                )?;
            }
            let pending: i64 = tx.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )?;
            let excess = unsigned(pending).saturating_sub(max_outbox as u64);
            if excess > 0 {
                tx.execute(
                    "UPDATE deliveries SET state = 'failed', finished_at = ?1, \
                     last_error = 'outbox full: given up for newer notifications' \
                     WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' \
                     ORDER BY id LIMIT ?2)",
                    params![nanos(now), nanos(excess)],
                )?;
            }
            tx.commit()?;
            Ok(excess)
        })
    }

    fn due_deliveries(&self, now: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with(|conn| {
            deliveries_of(
                conn,
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id IN \
                     (SELECT MIN(id) FROM deliveries WHERE state = 'pending' GROUP BY receiver) \
                     AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
                ),
                params![nanos(now), nanos(limit as u64)],
            )
        })
    }

    fn next_due(&self) -> Result<Option<u64>, StoreError> {
        self.with(|conn| {
            let next: Option<i64> = conn.query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )?;
            Ok(next.map(unsigned))
        })
    }

    fn record_attempt(
        &self,
        attempt: &Attempt,
        outcome: Outcome,
        max_log: usize,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO attempts (delivery_id, receiver, at, status, latency_ms, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    attempt.delivery_id,
                    attempt.receiver,
                    nanos(attempt.at_unix_nano),
                    attempt.status,
                    nanos(attempt.latency_ms),
                    attempt.error
                ],
            )?;
            let (state, next, finished) = match outcome {
                Outcome::Delivered => (
                    "delivered",
                    attempt.at_unix_nano,
                    Some(attempt.at_unix_nano),
                ),
                Outcome::Failed => ("failed", attempt.at_unix_nano, Some(attempt.at_unix_nano)),
                Outcome::RetryAt(at) => ("pending", at, None),
            };
            tx.execute(
                "UPDATE deliveries SET state = ?2, num_attempts = num_attempts + 1, \
                 next_attempt_at = ?3, last_status = ?4, last_error = ?5, last_latency_ms = ?6, \
                 finished_at = ?7 WHERE id = ?1",
                params![
                    attempt.delivery_id,
                    state,
                    nanos(next),
                    attempt.status,
                    attempt.error,
                    nanos(attempt.latency_ms),
                    finished.map(nanos)
                ],
            )?;
            let keep = nanos(max_log as u64);
            tx.execute(
                "DELETE FROM attempts WHERE id <= (SELECT id FROM attempts ORDER BY id DESC \
                 LIMIT 1 OFFSET ?1)",
                params![keep],
            )?;
            tx.execute(
                "DELETE FROM deliveries WHERE state != 'pending' AND id <= (SELECT id FROM \
                 deliveries WHERE state != 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                params![keep],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with(|conn| {
            deliveries_of(
                conn,
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY id DESC LIMIT ?1"),
                params![nanos(limit as u64)],
            )
        })
    }

    fn attempts(&self, limit: usize) -> Result<Vec<Attempt>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT delivery_id, receiver, at, status, latency_ms, error FROM attempts \
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map(params![nanos(limit as u64)], |row| {
                Ok(Attempt {
                    delivery_id: row.get(0)?,
                    receiver: row.get(1)?,
                    at_unix_nano: unsigned(row.get(2)?),
                    status: row.get(3)?,
                    latency_ms: unsigned(row.get(4)?),
                    error: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn put_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        let json = serde_json::to_string(silence)
            .map_err(|err| StoreError::InvalidData(err.to_string()))?;
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO silences (id, ends_at, updated_at, silence) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, \
                 updated_at = excluded.updated_at, silence = excluded.silence",
                params![
                    silence.id,
                    nanos(silence.ends_at_unix_nano),
                    nanos(silence.updated_at_unix_nano),
                    json
                ],
            )?;
            tx.execute(
                "DELETE FROM silences WHERE id IN (SELECT id FROM silences ORDER BY ends_at DESC \
                 LIMIT -1 OFFSET ?1)",
                params![nanos(MAX_SILENCES as u64)],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.with(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT silence FROM silences ORDER BY updated_at DESC, id")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                let silence = serde_json::from_str(&row?)
                    .map_err(|err| StoreError::Corrupt(format!("silence: {err}")))?;
                out.push(silence);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteAlertStore;
    use crate::store::sqlite::SqliteLocation;

    mod memory {
        use super::*;

        fn fresh() -> (SqliteAlertStore, ()) {
            (
                SqliteAlertStore::open(&SqliteLocation::Memory).expect("open"),
                (),
            )
        }

        crate::alert_store_conformance_tests!(fresh);
    }

    mod file {
        use super::*;

        fn fresh() -> (SqliteAlertStore, tempfile::TempDir) {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = SqliteAlertStore::open(&SqliteLocation::Dir(dir.path().join("data")))
                .expect("open");
            (store, dir)
        }

        crate::alert_store_conformance_tests!(fresh);
    }
}
