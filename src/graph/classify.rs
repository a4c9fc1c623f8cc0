//! From a model [`Span`] to the compact [`GraphSpan`] the engine works on: ids, role, edge
//! kind, flags and the virtual peer the span names. Runs on the ingest threads, so it reads
//! the attributes in one pass, borrows until the end, and shares the service name and placement
//! of one resource between its spans ([`GraphSpan::from_spans`]). Knows no engine state.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::model::graph::{EdgeKind, NodeKey, NodeKind, NodePlacement};
use crate::model::{AttrValue, Resource, Span, SpanId, SpanKind, TraceId};

use super::naming::{self, Address, Port};
use super::sampling::{SamplingRules, SpanWeight};

/// Exception types / messages of calls an open circuit breaker rejected: resilience4j,
/// Polly (and its manual isolation), opossum.
const SHORT_CIRCUIT_MARKERS: [&str; 4] = [
    "CallNotPermittedException",
    "BrokenCircuitException",
    "IsolatedCircuitException",
    "Breaker is open",
];

/// A span by identity: the key pending halves are stored and found under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

impl Hash for SpanRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let trace = self.trace_id.as_bytes();
        let mut high = [0u8; 8];
        let mut low = [0u8; 8];
        high.copy_from_slice(&trace[..8]);
        low.copy_from_slice(&trace[8..]);
        state.write_u64(u64::from_le_bytes(high));
        state.write_u64(u64::from_le_bytes(low));
        state.write_u64(u64::from_le_bytes(*self.span_id.as_bytes()));
    }
}

/// A node with a shared name: cloning is a reference count, not an allocation.
#[derive(Debug, Clone, Eq, PartialOrd, Ord)]
pub struct NodeRef {
    pub kind: NodeKind,
    pub name: Arc<str>,
}

impl NodeRef {
    pub fn new(kind: NodeKind, name: &str) -> Self {
        Self {
            kind,
            name: Arc::from(name),
        }
    }

    pub fn to_key(&self) -> NodeKey {
        NodeKey::new(self.kind, &*self.name)
    }

    /// Whether this is the node `key` names (without building a key).
    pub fn is(&self, key: &NodeKey) -> bool {
        self.kind == key.kind && *self.name == *key.name
    }
}

impl PartialEq for NodeRef {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name)
    }
}

impl Hash for NodeRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.name.hash(state);
    }
}

/// What a span does for the graph (its span kind, refined by its attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanRole {
    /// Waits for a server span (or, for databases and open breakers, is a call on its own).
    Client,
    Server,
    /// Sends to a topic: PRODUCER spans, and CLIENT spans whose messaging operation is a send.
    Producer,
    Consumer,
    /// Takes no part in edges: INTERNAL/UNSPECIFIED spans and messaging receive/settle polls.
    Internal,
}

/// The node on the far side that a span names by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node: NodeRef,
    /// Named by `peer.service` / `service.peer.name` / a breaker name: a logical service name,
    /// which the engine maps to the instrumented service of that name when it knows one.
    pub is_logical_name: bool,
}

/// What pairing, statistics and chains need of one span.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSpan {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub kind: SpanKind,
    pub role: SpanRole,
    /// Resource `service.name`, shared by the spans of one resource.
    pub service: Arc<str>,
    /// Resource `service.namespace` and `deployment.environment(.name)`.
    pub placement: Arc<NodePlacement>,
    /// A 64-bit hash of resource `service.instance.id`, 0 when it has none.
    pub instance: u64,
    /// Resource `service.version`, shared by the spans of one resource.
    pub version: Option<Arc<str>>,
    /// The operation: the span name for SERVER and CONSUMER spans, empty for the others
    /// (nothing reads it there, and it saves an allocation per span).
    pub name: Box<str>,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub is_error: bool,
    pub edge_kind: EdgeKind,
    /// `http.request.resend_count` > 0.
    pub is_retry: bool,
    /// Rejected by an open circuit breaker (status or exception names it).
    pub is_short_circuited: bool,
    /// Client: the database or external peer; producer and consumer: the topic.
    pub peer: Option<Peer>,
    /// Consumer: `messaging.consumer.group.name`, else `messaging.kafka.consumer.group`.
    pub consumer_group: Option<Box<str>>,
    /// Consumer: the spans it links to (the producers of a batch, in newer conventions).
    pub links: Vec<SpanRef>,
    /// How many calls or operations this span counts for (sampling, see `graph::sampling`).
    pub weight: SpanWeight,
}

impl GraphSpan {
    /// One span, weighed by its `tracestate` alone.
    pub fn from_span(span: &Span) -> GraphSpan {
        let parts = resource_parts(&span.resource);
        classify(span, parts, &SamplingRules::default())
    }

    /// Converts a batch, sharing service name and placement between consecutive spans of
    /// the same resource (the usual layout of an export request): prefer this on ingest.
    pub fn from_spans(spans: &[Span], rules: &SamplingRules) -> Vec<GraphSpan> {
        let mut converted = Vec::with_capacity(spans.len());
        let mut current: Option<(&Arc<Resource>, ResourceParts)> = None;
        for span in spans {
            let parts = match &current {
                Some((resource, parts)) if Arc::ptr_eq(resource, &span.resource) => parts.clone(),
                _ => {
                    let parts = resource_parts(&span.resource);
                    current = Some((&span.resource, parts.clone()));
                    parts
                }
            };
            converted.push(classify(span, parts, rules));
        }
        converted
    }

    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    pub fn span_ref(&self) -> SpanRef {
        SpanRef {
            trace_id: self.trace_id,
            span_id: self.span_id,
        }
    }

    /// The key of the span this one answers: its parent (server and consumer spans).
    pub fn parent_ref(&self) -> Option<SpanRef> {
        self.parent_span_id.map(|span_id| SpanRef {
            trace_id: self.trace_id,
            span_id,
        })
    }
}

/// What the spans of one resource share: service, placement, instance hash.
#[derive(Clone)]
struct ResourceParts {
    service: Arc<str>,
    placement: Arc<NodePlacement>,
    instance: u64,
    version: Option<Arc<str>>,
}

fn resource_parts(resource: &Resource) -> ResourceParts {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let placement = NodePlacement {
        namespace: resource.service_namespace.clone(),
        environment: resource.deployment_environment.clone(),
    };
    let instance = crate::model::attr_get(&resource.attributes, "service.instance.id")
        .and_then(|value| value.as_str())
        .filter(|id| !id.is_empty())
        // SipHash with fixed keys: the same id hashes alike in every batch; 0 means none.
        .map_or(0, |id| {
            BuildHasherDefault::<DefaultHasher>::default()
                .hash_one(id)
                .max(1)
        });
    ResourceParts {
        service: Arc::from(resource.service_name.as_str()),
        placement: Arc::new(placement),
        instance,
        version: resource
            .service_version
            .as_deref()
            .filter(|version| !version.is_empty())
            .map(Arc::from),
    }
}

fn classify(span: &Span, parts: ResourceParts, rules: &SamplingRules) -> GraphSpan {
    let ResourceParts {
        service,
        placement,
        instance,
        version,
    } = parts;
    let attributes = KnownAttributes::scan(span);
    let role = attributes.role(span.kind);
    let edge_kind = attributes.edge_kind(role);
    let is_short_circuited = is_short_circuited(span);
    let peer = match role {
        SpanRole::Client if edge_kind == EdgeKind::Database => Some(attributes.database_peer()),
        SpanRole::Client => attributes
            .external_peer()
            .or_else(|| is_short_circuited.then(|| breaker_peer(span)).flatten()),
        SpanRole::Producer | SpanRole::Consumer => Some(attributes.topic_peer()),
        SpanRole::Server | SpanRole::Internal => None,
    };
    let is_operation = matches!(role, SpanRole::Server | SpanRole::Consumer);
    let is_consumer = role == SpanRole::Consumer;
    let weight = rules.weigh(span, &service);
    GraphSpan {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        kind: span.kind,
        role,
        service,
        placement,
        instance,
        version,
        // A database call's name is its statement's (`SELECT orders`): what it called.
        name: if is_operation || (role == SpanRole::Client && edge_kind == EdgeKind::Database) {
            span.name.as_str().into()
        } else {
            Box::default()
        },
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        is_error: span.is_error(),
        edge_kind,
        is_retry: attributes.resend_count > 0,
        is_short_circuited,
        peer,
        consumer_group: attributes
            .consumer_group
            .filter(|_| is_consumer)
            .map(Box::from),
        links: if is_consumer {
            span.links
                .iter()
                .map(|link| SpanRef {
                    trace_id: link.trace_id,
                    span_id: link.span_id,
                })
                .collect()
        } else {
            Vec::new()
        },
        weight,
    }
}

fn is_short_circuited(span: &Span) -> bool {
    let names_breaker = |text: &str| SHORT_CIRCUIT_MARKERS.iter().any(|m| text.contains(m));
    if names_breaker(&span.status_message) {
        return true;
    }
    span.events
        .iter()
        .filter(|event| event.name == "exception")
        .flat_map(|event| &event.attributes)
        .filter(|(key, _)| key == "exception.type" || key == "exception.message")
        .filter_map(|(_, value)| value.as_str())
        .any(names_breaker)
}

/// resilience4j names the breaker in its message; the breaker is usually named after the peer.
fn breaker_peer(span: &Span) -> Option<Peer> {
    let messages = std::iter::once(span.status_message.as_str()).chain(
        span.events
            .iter()
            .flat_map(|event| &event.attributes)
            .filter(|(key, _)| key == "exception.message")
            .filter_map(|(_, value)| value.as_str()),
    );
    let name = messages
        .filter_map(naming::breaker_name_from_message)
        .next()?;
    Some(Peer {
        node: NodeRef::new(NodeKind::External, &naming::bounded(name.to_owned())),
        is_logical_name: true,
    })
}

fn text(value: &AttrValue) -> Option<&str> {
    value.as_str().filter(|text| !text.is_empty())
}

fn port(value: &AttrValue) -> Option<Port<'_>> {
    match value {
        AttrValue::Int(port) => Some(Port::Int(*port)),
        AttrValue::Str(port) if !port.is_empty() => Some(Port::Text(port)),
        _ => None,
    }
}

fn int(value: &AttrValue) -> Option<i64> {
    match value {
        AttrValue::Int(number) => Some(*number),
        AttrValue::Str(number) => number.parse().ok(),
        _ => None,
    }
}

/// The span attributes classification reads, found in one pass. `*_legacy` are the names of
/// older semantic conventions, used only when the current name is absent.
#[derive(Default)]
struct KnownAttributes<'a> {
    rpc_system: Option<&'a str>,
    rpc_service: Option<&'a str>,
    has_http_method: bool,
    messaging_system: Option<&'a str>,
    messaging_operation: Option<&'a str>,
    messaging_operation_legacy: Option<&'a str>,
    destination: Option<&'a str>,
    destination_template: Option<&'a str>,
    destination_legacy: Option<&'a str>,
    is_temporary_destination: bool,
    consumer_group: Option<&'a str>,
    consumer_group_legacy: Option<&'a str>,
    db_system: Option<&'a str>,
    db_system_legacy: Option<&'a str>,
    db_namespace: Option<&'a str>,
    db_namespace_legacy: Option<&'a str>,
    peer_service: Option<&'a str>,
    peer_service_legacy: Option<&'a str>,
    server_address: Option<&'a str>,
    server_port: Option<Port<'a>>,
    net_peer_name: Option<&'a str>,
    net_peer_port: Option<Port<'a>>,
    network_peer_address: Option<&'a str>,
    network_peer_port: Option<Port<'a>>,
    url: Option<&'a str>,
    url_legacy: Option<&'a str>,
    resend_count: i64,
}

impl<'a> KnownAttributes<'a> {
    fn scan(span: &'a Span) -> Self {
        let mut known = KnownAttributes::default();
        for (key, value) in &span.attributes {
            match key.as_str() {
                "rpc.system" => known.rpc_system = text(value),
                "rpc.service" => known.rpc_service = text(value),
                "http.request.method" | "http.method" => known.has_http_method = true,
                "messaging.system" => known.messaging_system = text(value),
                "messaging.operation.type" => known.messaging_operation = text(value),
                "messaging.operation" => known.messaging_operation_legacy = text(value),
                "messaging.destination.name" => known.destination = text(value),
                "messaging.destination.template" => known.destination_template = text(value),
                "messaging.destination" => known.destination_legacy = text(value),
                "messaging.destination.temporary" | "messaging.destination.anonymous" => {
                    known.is_temporary_destination |= matches!(value, AttrValue::Bool(true));
                }
                "messaging.consumer.group.name" => known.consumer_group = text(value),
                "messaging.kafka.consumer.group" => known.consumer_group_legacy = text(value),
                "db.system.name" => known.db_system = text(value),
                "db.system" => known.db_system_legacy = text(value),
                "db.namespace" => known.db_namespace = text(value),
                "db.name" => known.db_namespace_legacy = text(value),
                "peer.service" => known.peer_service_legacy = text(value),
                "service.peer.name" => known.peer_service = text(value),
                "server.address" => known.server_address = text(value),
                "server.port" => known.server_port = port(value),
                "net.peer.name" => known.net_peer_name = text(value),
                "net.peer.port" => known.net_peer_port = port(value),
                "network.peer.address" => known.network_peer_address = text(value),
                "network.peer.port" => known.network_peer_port = port(value),
                "url.full" => known.url = text(value),
                "http.url" => known.url_legacy = text(value),
                "http.request.resend_count" => known.resend_count = int(value).unwrap_or(0),
                _ => {}
            }
        }
        known.consumer_group = known.consumer_group.or(known.consumer_group_legacy);
        known.db_system = known.db_system.or(known.db_system_legacy);
        known.db_namespace = known.db_namespace.or(known.db_namespace_legacy);
        known.peer_service = known.peer_service.or(known.peer_service_legacy);
        known.messaging_operation = known
            .messaging_operation
            .or(known.messaging_operation_legacy);
        known.url = known.url.or(known.url_legacy);
        known
    }

    fn role(&self, kind: SpanKind) -> SpanRole {
        match kind {
            SpanKind::Server => SpanRole::Server,
            SpanKind::Producer => SpanRole::Producer,
            SpanKind::Consumer => SpanRole::Consumer,
            // The span kind decides first: a CLIENT span is a call that waits for its server,
            // even when it carries `messaging.system` as an extra dimension (the Collector's
            // `extra-dimensions-queue-db` fixture). Only the messaging operation says otherwise:
            // newer conventions make a batch send a CLIENT span (a producer), and receive and
            // settle CLIENT spans (polls, not calls).
            SpanKind::Client if self.messaging_system.is_some() => match self.messaging_operation {
                None => SpanRole::Client,
                Some("send" | "publish" | "create") => SpanRole::Producer,
                Some(_) => SpanRole::Internal,
            },
            SpanKind::Client => SpanRole::Client,
            SpanKind::Internal | SpanKind::Unspecified => SpanRole::Internal,
        }
    }

    /// messaging > database > rpc > http > other: a Kafka or Elasticsearch call over HTTP is
    /// messaging or database, a Spanner call over gRPC is a database call.
    fn edge_kind(&self, role: SpanRole) -> EdgeKind {
        if matches!(role, SpanRole::Producer | SpanRole::Consumer)
            || self.messaging_system.is_some()
        {
            EdgeKind::Messaging
        } else if self.db_system.is_some() {
            EdgeKind::Database
        } else if self.rpc_system.is_some() {
            EdgeKind::Grpc
        } else if self.has_http_method {
            EdgeKind::Http
        } else {
            EdgeKind::Other
        }
    }

    /// Where the peer is, most specific source first.
    fn address(&self) -> Option<Address<'a>> {
        let pairs = [
            (self.server_address, self.server_port),
            (self.net_peer_name, self.net_peer_port),
        ];
        pairs
            .into_iter()
            .find_map(|(host, port)| host.map(|host| Address { host, port }))
    }

    fn database_peer(&self) -> Peer {
        let system = self.db_system.unwrap_or("database");
        let host = self
            .peer_service
            .map(|host| Address { host, port: None })
            .or_else(|| self.address())
            .or_else(|| {
                self.network_peer_address.map(|host| Address {
                    host,
                    port: self.network_peer_port,
                })
            });
        let name = naming::database_name(system, host, self.db_namespace);
        Peer {
            node: NodeRef::new(NodeKind::Database, &name),
            is_logical_name: false,
        }
    }

    /// `peer.service` first (a logical name), then the server address, then the URL's host,
    /// then the RPC service. Never a bare peer IP: pod IPs churn and would flood the map.
    fn external_peer(&self) -> Option<Peer> {
        if let Some(logical) = self.peer_service {
            let name = naming::bounded(logical.to_owned());
            return Some(Peer {
                node: NodeRef::new(NodeKind::External, &name),
                is_logical_name: true,
            });
        }
        let address = self
            .address()
            .or_else(|| self.url.and_then(naming::url_address))
            .or_else(|| self.rpc_service.map(|host| Address { host, port: None }))?;
        Some(Peer {
            node: NodeRef::new(NodeKind::External, &naming::external_name(address)),
            is_logical_name: false,
        })
    }

    fn topic_peer(&self) -> Peer {
        let destination = if self.is_temporary_destination {
            self.destination_template
                .unwrap_or(naming::TEMPORARY_DESTINATION)
        } else {
            self.destination
                .or(self.destination_template)
                .or(self.destination_legacy)
                .unwrap_or(naming::UNKNOWN_DESTINATION)
        };
        let name = naming::topic_name(self.messaging_system, destination);
        Peer {
            node: NodeRef::new(NodeKind::Topic, &name),
            is_logical_name: false,
        }
    }
}

#[cfg(test)]
mod tests;
