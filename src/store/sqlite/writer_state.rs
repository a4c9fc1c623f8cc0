//! The writer's state besides its connection (partitions it knows, interned resources and
//! scopes, reused buffers, the span blocks), shared by the batch, rollup and retention writes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::Connection;

use crate::model::{Resource, Scope};
use crate::store::StoreError;

use super::blocks::BlockWriter;
use super::codec;
use super::intern::Interner;
use super::schema::{self, Partition};

/// Everything of the writer except its connection, so a transaction on the connection and
/// mutable state can be borrowed at once.
pub(super) struct WriterState {
    /// Existing point and rollup partitions.
    pub(super) partitions: HashSet<Partition>,
    pub(super) resources: Interner,
    pub(super) scopes: Interner,
    pub(super) buffers: Buffers,
    /// Span blocks and the parts they go to.
    pub(super) blocks: BlockWriter,
}

/// Encoding buffers reused from row to row.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) attributes: Vec<u8>,
    pub(super) value: Vec<u8>,
    pub(super) body: Vec<u8>,
}

/// Partitions created by a transaction not yet committed.
pub(super) type CreatedPartitions = Vec<Partition>;

/// The catalogue as the writer keeps it.
pub(super) fn load_partition_set(conn: &Connection) -> Result<HashSet<Partition>, StoreError> {
    Ok(schema::load_partitions(conn)?
        .into_iter()
        .map(|info| info.partition)
        .collect())
}

impl WriterState {
    /// Creates `partition`'s table inside `conn`'s transaction when new.
    pub(super) fn ensure_partition(
        &self,
        conn: &Connection,
        partition: Partition,
        created: &mut CreatedPartitions,
    ) -> Result<(), StoreError> {
        if self.partitions.contains(&partition) || created.contains(&partition) {
            return Ok(());
        }
        schema::create_partition(conn, partition, &[])?;
        created.push(partition);
        Ok(())
    }

    /// Interns the resource and scope shared by many rows, once per distinct `Arc` per batch.
    pub(super) fn refs(
        &mut self,
        conn: &Connection,
        cache: &mut RefCache,
        resource: &Arc<Resource>,
        scope: &Arc<Scope>,
        hour: i64,
    ) -> Result<(i64, i64), StoreError> {
        let resource_key = Arc::as_ptr(resource);
        let resource_id = match cache.resources.get(&resource_key) {
            Some(&id) => {
                self.resources.touch(conn, id, hour)?;
                id
            }
            None => {
                let body = &mut self.buffers.body;
                body.clear();
                codec::encode_resource(body, resource);
                let id = self.resources.intern(conn, body, hour)?;
                cache.resources.insert(resource_key, id);
                id
            }
        };
        let scope_key = Arc::as_ptr(scope);
        let scope_id = match cache.scopes.get(&scope_key) {
            Some(&id) => {
                self.scopes.touch(conn, id, hour)?;
                id
            }
            None => {
                let body = &mut self.buffers.body;
                body.clear();
                codec::encode_scope(body, scope);
                let id = self.scopes.intern(conn, body, hour)?;
                cache.scopes.insert(scope_key, id);
                id
            }
        };
        Ok((resource_id, scope_id))
    }
}

/// Ids of the resources and scopes already interned in this batch, keyed by `Arc` address
/// (the batch keeps every `Arc` alive, so addresses are not reused meanwhile).
#[derive(Default)]
pub(super) struct RefCache {
    resources: HashMap<*const Resource, i64>,
    scopes: HashMap<*const Scope, i64>,
}
