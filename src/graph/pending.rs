//! The bounded store of span halves waiting for their counterpart: a slab of slots, a queue
//! of (slot, generation) in insertion order (oldest first, so expiry and eviction pop from the
//! front), and an index from [`SpanRef`] to the slots waiting under it. Removing a paired half
//! leaves its queue entry stale (its generation moved on) rather than unlinking it: no touching
//! of neighbouring slots, and stale entries are skipped at the front or compacted away once they
//! outnumber the live ones. A slot may be indexed under
//! several keys (a consumer waits on its parent and on each of its links) and several slots
//! may wait under one key (two consumer groups waiting for one producer).
//!
//! Knows nothing of pairing rules: what a half is, and what expiry means, is `pairing.rs`'s.
//! The caller keeps it bounded: [`PendingStore::is_full`] before [`PendingStore::insert`].

use std::collections::VecDeque;

use super::classify::SpanRef;
use super::hash::FastMap;

/// Stale queue entries tolerated beyond the live ones before compacting.
const QUEUE_SLACK: usize = 1024;

/// A slot's position; valid until that slot is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u32);

struct Slot<H> {
    half: Option<H>,
    key: SpanRef,
    extra_keys: Vec<SpanRef>,
    /// Bumped whenever the slot is emptied, so older queue entries for it are stale.
    generation: u32,
}

/// A half's place in the expiry order.
#[derive(Clone, Copy)]
struct Queued {
    id: u32,
    generation: u32,
    expires_at_unix_nano: u64,
}

/// The slots waiting under one key, oldest first.
struct Waiters {
    first: u32,
    more: Vec<u32>,
}

pub struct PendingStore<H> {
    slots: Vec<Slot<H>>,
    free: Vec<u32>,
    queue: VecDeque<Queued>,
    num_items: usize,
    max_items: usize,
    index: FastMap<SpanRef, Waiters>,
}

impl<H> PendingStore<H> {
    pub fn new(max_items: usize) -> Self {
        debug_assert!(max_items > 0 && max_items < u32::MAX as usize);
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            num_items: 0,
            max_items,
            index: FastMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.num_items
    }

    pub fn is_full(&self) -> bool {
        self.num_items >= self.max_items
    }

    /// Stores `half` under `key` (and `extra_keys`) until `expires_at_unix_nano`.
    pub fn insert(
        &mut self,
        key: SpanRef,
        extra_keys: Vec<SpanRef>,
        half: H,
        expires_at_unix_nano: u64,
    ) -> SlotId {
        debug_assert!(!self.is_full(), "the caller evicts before inserting");
        let id = match self.free.pop() {
            Some(id) => {
                let slot = &mut self.slots[id as usize];
                debug_assert!(slot.half.is_none());
                slot.half = Some(half);
                slot.key = key;
                slot.extra_keys = extra_keys;
                id
            }
            None => {
                self.slots.push(Slot {
                    half: Some(half),
                    key,
                    extra_keys,
                    generation: 0,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &self.slots[id as usize];
        self.queue.push_back(Queued {
            id,
            generation: slot.generation,
            expires_at_unix_nano,
        });
        self.num_items += 1;
        for key in std::iter::once(slot.key).chain(slot.extra_keys.iter().copied()) {
            self.index
                .entry(key)
                .and_modify(|waiters| waiters.more.push(id))
                .or_insert(Waiters {
                    first: id,
                    more: Vec::new(),
                });
        }
        SlotId(id)
    }

    /// The oldest slot under `key` whose half satisfies `wanted`.
    pub fn find(&self, key: &SpanRef, wanted: impl Fn(&H) -> bool) -> Option<SlotId> {
        let waiters = self.index.get(key)?;
        std::iter::once(waiters.first)
            .chain(waiters.more.iter().copied())
            .find(|&id| self.slots[id as usize].half.as_ref().is_some_and(&wanted))
            .map(SlotId)
    }

    /// Every slot under `key` whose half satisfies `wanted`, oldest first, into `found`.
    pub fn find_all(&self, key: &SpanRef, wanted: impl Fn(&H) -> bool, found: &mut Vec<SlotId>) {
        let Some(waiters) = self.index.get(key) else {
            return;
        };
        let ids = std::iter::once(waiters.first).chain(waiters.more.iter().copied());
        found.extend(
            ids.filter(|&id| self.slots[id as usize].half.as_ref().is_some_and(&wanted))
                .map(SlotId),
        );
    }

    /// Removes a slot's half, and the slot from the index under all its keys.
    pub fn remove(&mut self, id: SlotId) -> Option<H> {
        let slot = self.slots.get_mut(id.0 as usize)?;
        let half = slot.half.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        let key = slot.key;
        let extra_keys = std::mem::take(&mut slot.extra_keys);
        for key in std::iter::once(key).chain(extra_keys) {
            self.unindex(key, id.0);
        }
        self.free.push(id.0);
        self.num_items -= 1;
        if self.queue.len() > 2 * self.num_items + QUEUE_SLACK {
            self.compact_queue();
        }
        Some(half)
    }

    /// Removes and returns the oldest half if its time is up at `now_unix_nano`.
    pub fn pop_expired(&mut self, now_unix_nano: u64) -> Option<H> {
        let oldest = self.oldest_live()?;
        if oldest.expires_at_unix_nano > now_unix_nano {
            return None;
        }
        self.remove(SlotId(oldest.id))
    }

    /// Removes and returns the oldest half, expired or not (to make room).
    pub fn pop_oldest(&mut self) -> Option<H> {
        let oldest = self.oldest_live()?;
        self.remove(SlotId(oldest.id))
    }

    /// Drops stale entries from the front of the queue; the first live one.
    fn oldest_live(&mut self) -> Option<Queued> {
        while let Some(&queued) = self.queue.front() {
            if self.is_live(queued) {
                return Some(queued);
            }
            self.queue.pop_front();
        }
        None
    }

    fn is_live(&self, queued: Queued) -> bool {
        let slot = &self.slots[queued.id as usize];
        slot.generation == queued.generation && slot.half.is_some()
    }

    fn compact_queue(&mut self) {
        let mut queue = std::mem::take(&mut self.queue);
        queue.retain(|&queued| self.is_live(queued));
        self.queue = queue;
        debug_assert_eq!(self.queue.len(), self.num_items);
    }

    fn unindex(&mut self, key: SpanRef, id: u32) {
        let Some(waiters) = self.index.get_mut(&key) else {
            debug_assert!(false, "an indexed slot's key is in the index");
            return;
        };
        if waiters.first == id {
            if waiters.more.is_empty() {
                self.index.remove(&key);
            } else {
                waiters.first = waiters.more.remove(0);
            }
        } else {
            waiters.more.retain(|&other| other != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fixtures::{span_id, trace};

    fn key(trace_no: u64, span_no: u64) -> SpanRef {
        SpanRef {
            trace_id: trace(trace_no),
            span_id: span_id(span_no),
        }
    }

    #[test]
    fn finds_removes_and_expires_in_insertion_order() {
        let mut store = PendingStore::new(10);
        store.insert(key(1, 1), Vec::new(), "a", 100);
        let second = store.insert(key(1, 2), vec![key(2, 2)], "b", 200);
        store.insert(key(1, 2), Vec::new(), "c", 300);
        assert_eq!(store.len(), 3);
        assert_eq!(store.find(&key(2, 2), |_| true), Some(second));
        assert_eq!(
            store.find(&key(1, 2), |half| *half == "c").map(|_| ()),
            Some(())
        );
        let mut found = Vec::new();
        store.find_all(&key(1, 2), |_| true, &mut found);
        assert_eq!(found.len(), 2);

        assert_eq!(store.remove(second), Some("b"));
        assert_eq!(store.remove(second), None, "removing twice is harmless");
        assert_eq!(
            store.find(&key(2, 2), |_| true),
            None,
            "extra keys are unindexed"
        );
        assert_eq!(store.pop_expired(99), None);
        assert_eq!(store.pop_expired(100), Some("a"));
        assert_eq!(store.pop_oldest(), Some("c"));
        assert_eq!(store.pop_oldest(), None);
        assert_eq!(store.len(), 0);
        assert!(store.index.is_empty());
    }

    #[test]
    fn slots_are_reused_and_the_bound_is_reported() {
        let mut store = PendingStore::new(2);
        for round in 0..100 {
            store.insert(key(round, 1), Vec::new(), round, round);
            store.insert(key(round, 2), Vec::new(), round, round);
            assert!(store.is_full());
            assert_eq!(store.pop_oldest(), Some(round));
            assert_eq!(store.pop_oldest(), Some(round));
        }
        assert!(store.slots.len() <= 2);
    }

    #[test]
    fn paired_halves_leave_stale_queue_entries_that_are_compacted() {
        let mut store = PendingStore::new(10);
        let kept = store.insert(key(0, 1), Vec::new(), 0u64, 5);
        for round in 1..10_000 {
            let id = store.insert(key(round, 1), Vec::new(), round, 10);
            assert_eq!(store.remove(id), Some(round));
            assert!(store.queue.len() <= 2 * store.len() + QUEUE_SLACK + 1);
        }
        assert_eq!(store.pop_expired(4), None);
        assert_eq!(store.pop_expired(5), Some(0));
        assert_eq!(store.remove(kept), None);
        assert_eq!(store.pop_oldest(), None, "stale entries are skipped");
    }
}
