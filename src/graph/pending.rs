//! The bounded store of span halves waiting for their counterpart: a slab of slots in one
//! insertion-ordered list (oldest first, so expiry and eviction pop from the front in O(1))
//! and an index from [`SpanRef`] to the slots waiting under it. A slot may be indexed under
//! several keys (a consumer waits on its parent and on each of its links) and several slots
//! may wait under one key (two consumer groups waiting for one producer).
//!
//! Knows nothing of pairing rules: what a half is, and what expiry means, is `pairing.rs`'s.
//! The caller keeps it bounded: [`PendingStore::is_full`] before [`PendingStore::insert`].

use super::classify::SpanRef;
use super::hash::FastMap;

const NIL: u32 = u32::MAX;

/// A slot's position; valid until that slot is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u32);

struct Slot<H> {
    half: Option<H>,
    key: SpanRef,
    extra_keys: Vec<SpanRef>,
    expires_at_unix_nano: u64,
    /// Towards the oldest slot.
    prev: u32,
    /// Towards the newest slot.
    next: u32,
}

/// The slots waiting under one key, oldest first.
struct Waiters {
    first: u32,
    more: Vec<u32>,
}

pub struct PendingStore<H> {
    slots: Vec<Slot<H>>,
    free: Vec<u32>,
    oldest: u32,
    newest: u32,
    num_items: usize,
    max_items: usize,
    index: FastMap<SpanRef, Waiters>,
}

impl<H> PendingStore<H> {
    pub fn new(max_items: usize) -> Self {
        debug_assert!(max_items > 0 && max_items < NIL as usize);
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            oldest: NIL,
            newest: NIL,
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
        let slot = Slot {
            half: Some(half),
            key,
            extra_keys,
            expires_at_unix_nano,
            prev: self.newest,
            next: NIL,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        match self.newest {
            NIL => self.oldest = id,
            newest => self.slots[newest as usize].next = id,
        }
        self.newest = id;
        self.num_items += 1;
        let slot = &self.slots[id as usize];
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

    /// Removes a slot from the list and from the index under all its keys.
    pub fn remove(&mut self, id: SlotId) -> Option<H> {
        let slot = self.slots.get_mut(id.0 as usize)?;
        let half = slot.half.take()?;
        let (prev, next) = (slot.prev, slot.next);
        let key = slot.key;
        let extra_keys = std::mem::take(&mut slot.extra_keys);
        match prev {
            NIL => self.oldest = next,
            prev => self.slots[prev as usize].next = next,
        }
        match next {
            NIL => self.newest = prev,
            next => self.slots[next as usize].prev = prev,
        }
        for key in std::iter::once(key).chain(extra_keys) {
            self.unindex(key, id.0);
        }
        self.free.push(id.0);
        self.num_items -= 1;
        Some(half)
    }

    /// Removes and returns the oldest half if its time is up at `now_unix_nano`.
    pub fn pop_expired(&mut self, now_unix_nano: u64) -> Option<H> {
        let oldest = self.slots.get(self.oldest as usize)?;
        if oldest.expires_at_unix_nano > now_unix_nano {
            return None;
        }
        self.remove(SlotId(self.oldest))
    }

    /// Removes and returns the oldest half, expired or not (to make room).
    pub fn pop_oldest(&mut self) -> Option<H> {
        match self.oldest {
            NIL => None,
            oldest => self.remove(SlotId(oldest)),
        }
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
        assert_eq!(store.find(&key(1, 2), |half| *half == "c").map(|_| ()), Some(()));
        let mut found = Vec::new();
        store.find_all(&key(1, 2), |_| true, &mut found);
        assert_eq!(found.len(), 2);

        assert_eq!(store.remove(second), Some("b"));
        assert_eq!(store.remove(second), None, "removing twice is harmless");
        assert_eq!(store.find(&key(2, 2), |_| true), None, "extra keys are unindexed");
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
}
