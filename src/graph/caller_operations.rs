//! The operations of recent server and consumer spans by span, so a call can name the caller's
//! operation it was made from (its calling span's parent). Bounded and short-lived like the
//! pairing store: two generations of at most `max_entries`, keyed by a 64-bit fingerprint of
//! (trace, span).

use std::hash::BuildHasher;
use std::sync::Arc;

use super::classify::{GraphSpan, SpanRole};
use super::generations::Generations;
use super::hash::{FoldBuildHasher, PrehashedBuildHasher};
use crate::model::{SpanId, TraceId};

pub struct CallerOperations {
    names: Generations<u64, Arc<str>, PrehashedBuildHasher>,
    fingerprints: FoldBuildHasher,
}

impl CallerOperations {
    pub fn new(ttl_nanos: u64, max_entries: usize) -> Self {
        Self {
            names: Generations::new(ttl_nanos, max_entries),
            fingerprints: FoldBuildHasher::default(),
        }
    }

    /// Remembers the operation of a server or consumer span (others are ignored).
    pub fn note(&mut self, span: &GraphSpan, now_unix_nano: u64) {
        if !matches!(span.role, SpanRole::Server | SpanRole::Consumer) {
            return;
        }
        let key = self.fingerprints.hash_one((span.trace_id, span.span_id));
        self.names
            .insert(key, Arc::from(&*span.name), now_unix_nano, drop);
    }

    /// The operation of span `span_id` of `trace_id`, when it was a recent server or consumer.
    pub fn of(&mut self, trace_id: TraceId, span_id: Option<SpanId>) -> Option<Arc<str>> {
        let key = self.fingerprints.hash_one((trace_id, span_id?));
        self.names.get_mut(&key).map(|name| Arc::clone(name))
    }

    pub fn rotate_if_due(&mut self, now_unix_nano: u64) {
        self.names.rotate_if_due(now_unix_nano, drop);
    }
}
