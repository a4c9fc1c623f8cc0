//! Deduplicated rows for resources and scopes, keyed by a stable hash of their encoding.
//!
//! Owns the `resources` and `scopes` tables on the write side and a bounded cache of what is
//! already stored, so a batch of spans sharing one resource costs one lookup, not one per span.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

use super::codec::stable_hash;

/// Above this many cached bodies the cache starts over (it only saves lookups).
const MAX_CACHED: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InternTable {
    Resources,
    Scopes,
}

impl InternTable {
    fn name(self) -> &'static str {
        match self {
            InternTable::Resources => "resources",
            InternTable::Scopes => "scopes",
        }
    }
}

pub(super) struct Interner {
    table: InternTable,
    id_by_body: HashMap<Vec<u8>, i64>,
    /// The `max_hour` known to be stored for each cached id.
    max_hour_by_id: HashMap<i64, i64>,
}

impl Interner {
    pub(super) fn new(table: InternTable) -> Self {
        Self {
            table,
            id_by_body: HashMap::new(),
            max_hour_by_id: HashMap::new(),
        }
    }

    /// Drops the cache; needed whenever a transaction that may have inserted rows rolled back,
    /// or retention deleted rows.
    pub(super) fn forget_all(&mut self) {
        self.id_by_body.clear();
        self.max_hour_by_id.clear();
    }

    /// The id of `body`, stored now if new, and marked as referenced from partition `hour`.
    pub(super) fn intern(
        &mut self,
        conn: &Connection,
        body: &[u8],
        hour: i64,
    ) -> Result<i64, StoreError> {
        if let Some(&id) = self.id_by_body.get(body) {
            self.touch(conn, id, hour)?;
            return Ok(id);
        }
        let (id, max_hour) = self.find_or_insert(conn, body, hour)?;
        if self.id_by_body.len() >= MAX_CACHED {
            self.forget_all();
        }
        self.id_by_body.insert(body.to_vec(), id);
        self.max_hour_by_id.insert(id, max_hour);
        Ok(id)
    }

    /// Records that partition `hour` references `id` (a no-op when already known).
    pub(super) fn touch(
        &mut self,
        conn: &Connection,
        id: i64,
        hour: i64,
    ) -> Result<(), StoreError> {
        let known = self.max_hour_by_id.get(&id).copied().unwrap_or(i64::MIN);
        if known >= hour {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {} SET max_hour = ?1 WHERE id = ?2 AND max_hour < ?1",
            self.table.name()
        );
        conn.prepare_cached(&sql)?.execute((hour, id))?;
        self.max_hour_by_id.insert(id, hour);
        Ok(())
    }

    /// Open addressing over the hash: a different body at the slot moves on to the next id.
    fn find_or_insert(
        &self,
        conn: &Connection,
        body: &[u8],
        hour: i64,
    ) -> Result<(i64, i64), StoreError> {
        let table = self.table.name();
        let mut select =
            conn.prepare_cached(&format!("SELECT body, max_hour FROM {table} WHERE id = ?1"))?;
        // A bit reinterpretation of the hash: any i64 is a valid rowid.
        let mut id = stable_hash(body) as i64;
        loop {
            let stored: Option<(Vec<u8>, i64)> = select
                .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            match stored {
                None => {
                    conn.prepare_cached(&format!(
                        "INSERT INTO {table} (id, body, max_hour) VALUES (?1, ?2, ?3)"
                    ))?
                    .execute((id, body, hour))?;
                    return Ok((id, hour));
                }
                Some((stored_body, max_hour)) if stored_body == body => {
                    if max_hour < hour {
                        conn.prepare_cached(&format!(
                            "UPDATE {table} SET max_hour = ?1 WHERE id = ?2"
                        ))?
                        .execute((hour, id))?;
                    }
                    return Ok((id, max_hour.max(hour)));
                }
                Some(_) => id = id.wrapping_add(1),
            }
        }
    }
}
