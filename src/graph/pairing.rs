//! Pairing rules: which spans make a call on an edge, alone or with their counterpart.
//!
//! - CLIENT waits under (trace, span id) for the SERVER that waits under (trace, parent id);
//!   either may come first, in any batch, within the TTL. A pair is one call
//!   `service:client → service:server` with both latencies.
//! - Calls that can have no server report at once: database clients (`→ database:`), clients
//!   rejected by an open breaker (`→` their peer), root SERVER spans (`client:user →`).
//! - PRODUCER: at once `service → topic:`; then remembered for one to two TTLs so every
//!   consumer group can find it. CONSUMER: `topic: → service` with its consumer group, once it
//!   finds its producer through its parent or any link (publish→consume latency = consumer
//!   start − producer end, clamped at 0 against clock skew; for a batch, the largest), or
//!   when it gives up waiting.
//! - Expiry (TTL, or eviction of the oldest when full): a client becomes a client-only call to
//!   its virtual peer (`peer.service` of a known service → that service); a server becomes a
//!   server-only call from `client:user` (its caller propagated context but never reported,
//!   like a browser or an uninstrumented proxy: Tempo drops these, we keep them visible); a
//!   consumer becomes a call without publish latency, counted server-only.
//!
//! Emits [`Call`]s into the caller's buffer; knows nothing of windows or minutes.

use std::sync::Arc;
use std::time::Duration;

use crate::model::graph::{EdgeKind, NodeKind, NodePlacement};
use crate::model::{SpanId, TraceId};

use super::classify::{GraphSpan, NodeRef, SpanRef, SpanRole};
use super::generations::Generations;
use super::naming::CLIENT_USER_NAME;
use super::pending::{PendingStore, SlotId};
use super::services::KnownServices;

/// Whether both sides of a call reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSides {
    /// Paired, or a call that has one side by nature (database, root server, producer).
    Complete,
    /// The server never reported within the TTL.
    ClientOnly,
    /// The caller (or the producer) never reported within the TTL.
    ServerOnly,
}

/// What is known of one call, apart from its edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFacts {
    pub sides: CallSides,
    pub is_error: bool,
    pub is_retry: bool,
    pub is_short_circuited: bool,
    pub client_nanos: Option<u64>,
    pub server_nanos: Option<u64>,
    pub publish_consume_nanos: Option<u64>,
    /// The calls this one counts for: the weight of the calling side's span (the callee's
    /// when it reported alone). 1 unless sampled.
    pub weight: u64,
}

/// One call on one edge, ready to be counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub trace_id: TraceId,
    pub source: NodeRef,
    pub target: NodeRef,
    pub kind: EdgeKind,
    pub source_placement: Arc<NodePlacement>,
    pub target_placement: Arc<NodePlacement>,
    pub facts: CallFacts,
    pub consumer_group: Option<Box<str>>,
    /// When the call happened: the start of its calling side (client, producer), else of
    /// the side that reported (server, consumer). The map counts it in this minute.
    pub start_unix_nano: u64,
    /// The calling span's parent (whose operation is the caller's), if it reported.
    pub caller_parent: Option<SpanId>,
    /// The operation called: the server or consumer span's name, a database call's statement
    /// name; empty for other peers.
    pub callee_operation: Box<str>,
}

/// Where completed calls go (the window, in the engine; a `Vec` in tests).
pub trait CallSink {
    fn record(&mut self, call: Call);
}

impl CallSink for Vec<Call> {
    fn record(&mut self, call: Call) {
        self.push(call);
    }
}

/// What the pairing stage did, since start. Monotonic except `num_pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairingCounters {
    /// Spans offered.
    pub num_spans: u64,
    /// Spans taking no part in edges (internal spans, messaging polls).
    pub num_ignored: u64,
    /// Client/server pairs completed.
    pub num_paired: u64,
    /// Calls complete with one span: database calls, short-circuited calls, root servers,
    /// producers, consumers without parent or links.
    pub num_single_sided: u64,
    /// Consumers that found their producer.
    pub num_consumers_matched: u64,
    /// Client, server and consumer halves whose TTL passed unpaired.
    pub num_expired: u64,
    /// Halves expired before their TTL because the store was full (oldest first).
    pub num_evicted: u64,
    /// Client halves that expired naming no peer at all: no edge to draw, dropped.
    pub num_dropped_unnamed: u64,
    /// Spans whose same half was already waiting (re-sent spans): dropped.
    pub num_dropped_duplicates: u64,
    /// Consumer links beyond `max_links_per_span`, not followed.
    pub num_links_ignored: u64,
    /// Producers forgotten (after one to two TTLs) without any consumer having found them.
    pub num_producers_unconsumed: u64,
    /// Times the producer memory filled before its TTL (its producers were forgotten early).
    pub num_producer_early_rotations: u64,
    /// Halves waiting now (clients, servers, consumers).
    pub num_pending: u64,
    /// Producers remembered now, for consumers still to come.
    pub num_producers_remembered: u64,
}

struct ProducerHalf {
    end_time_unix_nano: u64,
    num_consumers: u64,
}

enum Half {
    Client(GraphSpan),
    Server(GraphSpan),
    Consumer(GraphSpan),
}

pub struct Pairing {
    store: PendingStore<Half>,
    /// Producers stay (one to two TTLs) after their call was counted, so every consumer
    /// group can find them; apart from the store, so a busy topic cannot crowd out
    /// client/server pairing, and cheaper (no list links, no span kept).
    producers: Generations<SpanRef, ProducerHalf>,
    ttl_nanos: u64,
    max_links_per_span: usize,
    user: NodeRef,
    counters: PairingCounters,
    found: Vec<SlotId>,
}

fn is_client(half: &Half) -> bool {
    matches!(half, Half::Client(_))
}

fn is_server(half: &Half) -> bool {
    matches!(half, Half::Server(_))
}

fn is_consumer(half: &Half) -> bool {
    matches!(half, Half::Consumer(_))
}

impl Pairing {
    pub fn new(ttl: Duration, max_pending_items: usize, max_links_per_span: usize) -> Self {
        let ttl_nanos = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        Self {
            store: PendingStore::new(max_pending_items),
            producers: Generations::new(ttl_nanos, max_pending_items),
            ttl_nanos,
            max_links_per_span,
            user: NodeRef::new(NodeKind::Client, CLIENT_USER_NAME),
            counters: PairingCounters::default(),
            found: Vec::new(),
        }
    }

    pub fn counters(&self) -> PairingCounters {
        PairingCounters {
            num_pending: self.store.len() as u64,
            num_producers_remembered: self.producers.len() as u64,
            num_producer_early_rotations: self.producers.num_early_rotations(),
            ..self.counters
        }
    }

    /// Applies the rules to one span; calls it completes go to `out`.
    pub fn ingest(
        &mut self,
        span: GraphSpan,
        now_unix_nano: u64,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        self.counters.num_spans += 1;
        match span.role {
            SpanRole::Internal => self.counters.num_ignored += 1,
            SpanRole::Client if span.edge_kind == EdgeKind::Database || span.is_short_circuited => {
                self.counters.num_single_sided += 1;
                self.client_alone(span, CallSides::Complete, services, out);
            }
            SpanRole::Client => self.client(span, now_unix_nano, services, out),
            SpanRole::Server if span.parent_span_id.is_none() => {
                self.counters.num_single_sided += 1;
                out.record(self.call_from_user(span, CallSides::Complete));
            }
            SpanRole::Server => self.server(span, now_unix_nano, services, out),
            SpanRole::Producer => self.producer(span, now_unix_nano, services, out),
            SpanRole::Consumer => self.consumer(span, now_unix_nano, services, out),
        }
    }

    /// Lets every half whose TTL has passed at `now_unix_nano` go, emitting unpaired calls,
    /// and forgets producers older than one to two TTLs.
    pub fn expire(&mut self, now: u64, services: &KnownServices, out: &mut impl CallSink) {
        while let Some(half) = self.store.pop_expired(now) {
            self.counters.num_expired += 1;
            self.depart(half, services, out);
        }
        let unconsumed = &mut self.counters.num_producers_unconsumed;
        self.producers
            .rotate_if_due(now, |producer| count_unconsumed(unconsumed, &producer));
    }

    fn client(
        &mut self,
        span: GraphSpan,
        now: u64,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        let key = span.span_ref();
        if let Some(server) = self.take(&key, is_server) {
            out.record(paired(span, server));
            self.counters.num_paired += 1;
        } else if self.store.find(&key, is_client).is_some() {
            self.counters.num_dropped_duplicates += 1;
        } else {
            self.wait(key, Vec::new(), Half::Client(span), now, services, out);
        }
    }

    fn server(
        &mut self,
        span: GraphSpan,
        now: u64,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        let Some(key) = span.parent_ref() else {
            debug_assert!(false, "root servers do not wait");
            return;
        };
        if let Some(client) = self.take(&key, is_client) {
            out.record(paired(client, span));
            self.counters.num_paired += 1;
            return;
        }
        let span_id = span.span_id;
        let same_span = |half: &Half| matches!(half, Half::Server(s) if s.span_id == span_id);
        if self.store.find(&key, same_span).is_some() {
            self.counters.num_dropped_duplicates += 1;
            return;
        }
        self.wait(key, Vec::new(), Half::Server(span), now, services, out);
    }

    fn producer(
        &mut self,
        span: GraphSpan,
        now: u64,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        let key = span.span_ref();
        if self.producers.contains_key(&key) {
            self.counters.num_dropped_duplicates += 1;
            return;
        }
        self.counters.num_single_sided += 1;
        let mut producer = ProducerHalf {
            end_time_unix_nano: span.end_time_unix_nano,
            num_consumers: 0,
        };
        self.client_alone(span, CallSides::Complete, services, out);

        let mut waiting = std::mem::take(&mut self.found);
        self.store.find_all(&key, is_consumer, &mut waiting);
        for id in waiting.drain(..) {
            if let Some(Half::Consumer(consumer)) = self.store.remove(id) {
                let latency = consumer
                    .start_time_unix_nano
                    .saturating_sub(producer.end_time_unix_nano);
                out.record(consumed(consumer, CallSides::Complete, Some(latency)));
                producer.num_consumers += 1;
                self.counters.num_consumers_matched += 1;
            }
        }
        self.found = waiting;
        let unconsumed = &mut self.counters.num_producers_unconsumed;
        self.producers.insert(key, producer, now, |forgotten| {
            count_unconsumed(unconsumed, &forgotten);
        });
    }

    fn consumer(
        &mut self,
        span: GraphSpan,
        now: u64,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        let num_links = span.links.len().min(self.max_links_per_span);
        self.counters.num_links_ignored += (span.links.len() - num_links) as u64;
        let candidates = span
            .parent_ref()
            .into_iter()
            .chain(span.links[..num_links].iter().copied());
        // A batch waited as long as its oldest message: keep the largest latency.
        let mut latency_opt: Option<u64> = None;
        for key in candidates.clone() {
            if let Some(producer) = self.producers.get_mut(&key) {
                producer.num_consumers += 1;
                let latency = span
                    .start_time_unix_nano
                    .saturating_sub(producer.end_time_unix_nano);
                latency_opt = Some(latency_opt.map_or(latency, |max| max.max(latency)));
            }
        }
        if latency_opt.is_some() {
            self.counters.num_consumers_matched += 1;
            out.record(consumed(span, CallSides::Complete, latency_opt));
            return;
        }
        let mut keys = candidates;
        let Some(primary) = keys.next() else {
            self.counters.num_single_sided += 1;
            out.record(consumed(span, CallSides::Complete, None));
            return;
        };
        let mut extra_keys: Vec<SpanRef> = Vec::new();
        for key in keys {
            if key != primary && !extra_keys.contains(&key) {
                extra_keys.push(key);
            }
        }
        self.wait(
            primary,
            extra_keys,
            Half::Consumer(span),
            now,
            services,
            out,
        );
    }

    /// Stores a half, first making room by letting the oldest go (as unpaired) if full.
    fn wait(
        &mut self,
        key: SpanRef,
        extra_keys: Vec<SpanRef>,
        half: Half,
        now: u64,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        while self.store.is_full() {
            let Some(oldest) = self.store.pop_oldest() else {
                break;
            };
            self.counters.num_evicted += 1;
            self.depart(oldest, services, out);
        }
        let expires_at = now.saturating_add(self.ttl_nanos);
        self.store.insert(key, extra_keys, half, expires_at);
    }

    /// A half leaves unpaired: the call is counted with the side that reported.
    fn depart(&mut self, half: Half, services: &KnownServices, out: &mut impl CallSink) {
        match half {
            Half::Client(span) => self.client_alone(span, CallSides::ClientOnly, services, out),
            Half::Server(span) => out.record(self.call_from_user(span, CallSides::ServerOnly)),
            Half::Consumer(span) => out.record(consumed(span, CallSides::ServerOnly, None)),
        }
    }

    fn take(&mut self, key: &SpanRef, wanted: fn(&Half) -> bool) -> Option<GraphSpan> {
        let id = self.store.find(key, wanted)?;
        match self.store.remove(id)? {
            Half::Client(span) | Half::Server(span) | Half::Consumer(span) => Some(span),
        }
    }

    /// A client (or producer) call to the peer it names, without a server side.
    fn client_alone(
        &mut self,
        span: GraphSpan,
        sides: CallSides,
        services: &KnownServices,
        out: &mut impl CallSink,
    ) {
        let Some(peer) = &span.peer else {
            self.counters.num_dropped_unnamed += 1;
            return;
        };
        let target = services.resolve(peer);
        let facts = CallFacts {
            sides,
            is_error: span.is_error,
            is_retry: span.is_retry,
            is_short_circuited: span.is_short_circuited,
            client_nanos: Some(span.duration_nanos()),
            server_nanos: None,
            publish_consume_nanos: None,
            weight: span.weight.count,
        };
        out.record(Call {
            trace_id: span.trace_id,
            start_unix_nano: span.start_time_unix_nano,
            source: NodeRef {
                kind: NodeKind::Service,
                name: span.service,
            },
            target,
            kind: span.edge_kind,
            target_placement: Arc::clone(&span.placement),
            source_placement: span.placement,
            facts,
            consumer_group: None,
            caller_parent: span.parent_span_id,
            callee_operation: span.name,
        });
    }

    fn call_from_user(&self, span: GraphSpan, sides: CallSides) -> Call {
        let facts = CallFacts {
            sides,
            is_error: span.is_error,
            is_retry: false,
            is_short_circuited: false,
            client_nanos: None,
            server_nanos: Some(span.duration_nanos()),
            publish_consume_nanos: None,
            weight: span.weight.count,
        };
        Call {
            trace_id: span.trace_id,
            start_unix_nano: span.start_time_unix_nano,
            source: self.user.clone(),
            target: NodeRef {
                kind: NodeKind::Service,
                name: span.service,
            },
            kind: span.edge_kind,
            source_placement: Arc::clone(&span.placement),
            target_placement: span.placement,
            facts,
            consumer_group: None,
            caller_parent: None,
            callee_operation: span.name,
        }
    }
}

fn count_unconsumed(num_unconsumed: &mut u64, producer: &ProducerHalf) {
    *num_unconsumed += u64::from(producer.num_consumers == 0);
}

fn paired(client: GraphSpan, server: GraphSpan) -> Call {
    let kind = match client.edge_kind {
        EdgeKind::Other => server.edge_kind,
        kind => kind,
    };
    let facts = CallFacts {
        sides: CallSides::Complete,
        is_error: client.is_error || server.is_error,
        is_retry: client.is_retry,
        is_short_circuited: client.is_short_circuited,
        client_nanos: Some(client.duration_nanos()),
        server_nanos: Some(server.duration_nanos()),
        publish_consume_nanos: None,
        weight: client.weight.count,
    };
    Call {
        trace_id: client.trace_id,
        start_unix_nano: client.start_time_unix_nano,
        source: NodeRef {
            kind: NodeKind::Service,
            name: client.service,
        },
        target: NodeRef {
            kind: NodeKind::Service,
            name: server.service,
        },
        kind,
        source_placement: client.placement,
        target_placement: server.placement,
        facts,
        consumer_group: None,
        caller_parent: client.parent_span_id,
        callee_operation: server.name,
    }
}

/// `topic → consumer service`; the topic takes the consumer's placement.
fn consumed(consumer: GraphSpan, sides: CallSides, latency_opt: Option<u64>) -> Call {
    let facts = CallFacts {
        sides,
        is_error: consumer.is_error,
        is_retry: false,
        is_short_circuited: false,
        client_nanos: None,
        server_nanos: Some(consumer.duration_nanos()),
        publish_consume_nanos: latency_opt,
        weight: consumer.weight.count,
    };
    let topic = match consumer.peer {
        Some(peer) => peer.node,
        None => {
            debug_assert!(false, "consumers always name a topic");
            NodeRef::new(NodeKind::Topic, super::naming::UNKNOWN_DESTINATION)
        }
    };
    Call {
        trace_id: consumer.trace_id,
        start_unix_nano: consumer.start_time_unix_nano,
        source: topic,
        target: NodeRef {
            kind: NodeKind::Service,
            name: consumer.service,
        },
        kind: EdgeKind::Messaging,
        source_placement: Arc::clone(&consumer.placement),
        target_placement: consumer.placement,
        facts,
        consumer_group: consumer.consumer_group,
        caller_parent: None,
        callee_operation: consumer.name,
    }
}
