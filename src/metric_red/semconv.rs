//! Which OpenTelemetry semantic-convention duration histograms describe calls, and what one
//! point of them says: the serving operation (server side) or the edge (client side), whether
//! its calls failed, and the unit of its values. Nodes are named with the same rules as the
//! trace path (`graph::naming`): `peer.service` is a logical name, else `server.address[:port]`
//! names an external peer; databases by `db.system(.name)` + address / `db.namespace`;
//! topics by `messaging.system` + destination.

use crate::graph::naming::{self, Address, Port};
use crate::model::graph::{EdgeKind, NodeKey, NodeKind};
use crate::model::{AttrValue, Attributes, MetricPoint, attr_get};

/// The kind of call an instrument measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Http,
    Rpc,
    Messaging,
    Database,
}

/// Which end of a call recorded the duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// What the service served (a server, or a consumer processing a message).
    Serving,
    /// What the service waited for (a client, a producer, a database call).
    Calling,
}

/// A recognised histogram: its family, its side and its values' unit when the point names
/// none the conventions define.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instrument {
    pub family: Family,
    pub side: Side,
    pub default_unit_nanos: f64,
}

const SECONDS: f64 = 1e9;
const MILLIS: f64 = 1e6;

/// The recognised names: the stable conventions (seconds) and the older ones still sent by
/// many SDKs (milliseconds).
pub const INSTRUMENTS: [(&str, Instrument); 10] = [
    (
        "http.server.request.duration",
        instrument(Family::Http, Side::Serving, SECONDS),
    ),
    (
        "http.server.duration",
        instrument(Family::Http, Side::Serving, MILLIS),
    ),
    (
        "http.client.request.duration",
        instrument(Family::Http, Side::Calling, SECONDS),
    ),
    (
        "http.client.duration",
        instrument(Family::Http, Side::Calling, MILLIS),
    ),
    (
        "rpc.server.duration",
        instrument(Family::Rpc, Side::Serving, MILLIS),
    ),
    (
        "rpc.client.duration",
        instrument(Family::Rpc, Side::Calling, MILLIS),
    ),
    (
        "messaging.process.duration",
        instrument(Family::Messaging, Side::Serving, SECONDS),
    ),
    (
        "messaging.client.operation.duration",
        instrument(Family::Messaging, Side::Calling, SECONDS),
    ),
    (
        "messaging.publish.duration",
        instrument(Family::Messaging, Side::Calling, SECONDS),
    ),
    (
        "db.client.operation.duration",
        instrument(Family::Database, Side::Calling, SECONDS),
    ),
];

const fn instrument(family: Family, side: Side, default_unit_nanos: f64) -> Instrument {
    Instrument {
        family,
        side,
        default_unit_nanos,
    }
}

pub fn instrument_of(name: &str) -> Option<Instrument> {
    INSTRUMENTS
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|(_, instrument)| *instrument)
}

/// Nanoseconds per unit of the point's values (UCUM units as the conventions write them).
pub fn unit_nanos(unit: &str, instrument: Instrument) -> f64 {
    match unit {
        "s" => SECONDS,
        "ms" => MILLIS,
        "us" | "µs" => 1e3,
        "ns" => 1.0,
        _ => instrument.default_unit_nanos,
    }
}

/// The other end of a call a client-side point describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub node: NodeKey,
    /// Named by `peer.service`: the service of that name when one reports.
    pub is_logical_name: bool,
}

/// What one point is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A serving operation of the reporting service; `from` is the topic a consumer read.
    Serving {
        operation: String,
        from_opt: Option<NodeKey>,
    },
    /// A call from the reporting service to `peer`.
    Calling { peer: Peer, kind: EdgeKind },
    /// A point of a recognised name that describes no call (a messaging receive or settle).
    NotACall,
}

/// Why a point of a recognised name was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unusable {
    /// A client-side point naming no peer (no `peer.service`, `server.address`, …).
    NoPeer,
}

fn text<'a>(attributes: &'a Attributes, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| match attr_get(attributes, key) {
        Some(AttrValue::Str(value)) if !value.is_empty() => Some(value.as_str()),
        _ => None,
    })
}

fn int(attributes: &Attributes, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|key| match attr_get(attributes, key) {
        Some(AttrValue::Int(value)) => Some(*value),
        Some(AttrValue::Str(value)) => value.parse().ok(),
        _ => None,
    })
}

fn port(attributes: &Attributes) -> Option<Port<'_>> {
    match attr_get(attributes, "server.port") {
        Some(AttrValue::Int(port)) => Some(Port::Int(*port)),
        Some(AttrValue::Str(port)) if !port.is_empty() => Some(Port::Text(port)),
        _ => None,
    }
}

fn address(attributes: &Attributes) -> Option<Address<'_>> {
    text(attributes, &["server.address", "net.peer.name"]).map(|host| Address {
        host,
        port: port(attributes),
    })
}

fn logical_peer(attributes: &Attributes) -> Option<&str> {
    text(attributes, &["peer.service", "service.peer.name"])
}

/// What `point` of `instrument` describes.
pub fn subject(instrument: Instrument, point: &MetricPoint) -> Result<Subject, Unusable> {
    let attributes = &point.attributes;
    match (instrument.family, instrument.side) {
        (family, Side::Serving) => Ok(Subject::Serving {
            operation: operation(family, attributes),
            from_opt: (family == Family::Messaging).then(|| topic(attributes)),
        }),
        (Family::Messaging, Side::Calling) => {
            let operation = text(
                attributes,
                &["messaging.operation.type", "messaging.operation"],
            );
            if !matches!(operation, None | Some("send" | "publish" | "create")) {
                return Ok(Subject::NotACall);
            }
            Ok(Subject::Calling {
                peer: Peer {
                    node: topic(attributes),
                    is_logical_name: false,
                },
                kind: EdgeKind::Messaging,
            })
        }
        (Family::Database, Side::Calling) => {
            let system = text(attributes, &["db.system.name", "db.system"]).unwrap_or("database");
            let host = logical_peer(attributes)
                .map(|host| Address { host, port: None })
                .or_else(|| address(attributes));
            let namespace = text(attributes, &["db.namespace", "db.name"]);
            let name = naming::database_name(system, host, namespace);
            Ok(Subject::Calling {
                peer: Peer {
                    node: NodeKey::new(NodeKind::Database, name),
                    is_logical_name: false,
                },
                kind: EdgeKind::Database,
            })
        }
        (family, Side::Calling) => {
            let kind = if family == Family::Rpc {
                EdgeKind::Grpc
            } else {
                EdgeKind::Http
            };
            if let Some(logical) = logical_peer(attributes) {
                let name = naming::bounded(logical.to_owned());
                return Ok(Subject::Calling {
                    peer: Peer {
                        node: NodeKey::new(NodeKind::External, name),
                        is_logical_name: true,
                    },
                    kind,
                });
            }
            let address = address(attributes).ok_or(Unusable::NoPeer)?;
            Ok(Subject::Calling {
                peer: Peer {
                    node: NodeKey::new(NodeKind::External, naming::external_name(address)),
                    is_logical_name: false,
                },
                kind,
            })
        }
    }
}

fn topic(attributes: &Attributes) -> NodeKey {
    let destination = text(
        attributes,
        &[
            "messaging.destination.name",
            "messaging.destination.template",
            "messaging.destination",
        ],
    )
    .unwrap_or(naming::UNKNOWN_DESTINATION);
    let system = text(attributes, &["messaging.system"]);
    NodeKey::new(NodeKind::Topic, naming::topic_name(system, destination))
}

/// The operation's name as its server span would be named: `GET /orders/{id}`,
/// `shop.Cart/Add`, `process orders`.
fn operation(family: Family, attributes: &Attributes) -> String {
    let name = match family {
        Family::Http => {
            let method = text(attributes, &["http.request.method", "http.method"]);
            let route = text(attributes, &["http.route"]);
            match (method, route) {
                (Some(method), Some(route)) => format!("{method} {route}"),
                (Some(method), None) => method.to_owned(),
                (None, Some(route)) => route.to_owned(),
                (None, None) => "HTTP".to_owned(),
            }
        }
        Family::Rpc => match (
            text(attributes, &["rpc.service"]),
            text(attributes, &["rpc.method"]),
        ) {
            (Some(service), Some(method)) => format!("{service}/{method}"),
            (Some(name), None) | (None, Some(name)) => name.to_owned(),
            (None, None) => "RPC".to_owned(),
        },
        Family::Messaging => {
            let destination = text(attributes, &["messaging.destination.name"]);
            let verb = text(attributes, &["messaging.operation.name"]).unwrap_or("process");
            match destination {
                Some(destination) => format!("{verb} {destination}"),
                None => verb.to_owned(),
            }
        }
        Family::Database => text(attributes, &["db.operation.name"])
            .unwrap_or("query")
            .to_owned(),
    };
    naming::bounded(name)
}

/// Whether the calls of a point failed: an `error.type`, an HTTP status the conventions
/// call an error (5xx on the server, 4xx and 5xx on the client), a gRPC status other than OK.
pub fn is_error(instrument: Instrument, attributes: &Attributes) -> bool {
    if text(attributes, &["error.type"]).is_some() {
        return true;
    }
    match instrument.family {
        Family::Http => int(
            attributes,
            &["http.response.status_code", "http.status_code"],
        )
        .is_some_and(|status| match instrument.side {
            Side::Serving => status >= 500,
            Side::Calling => status >= 400,
        }),
        Family::Rpc => int(attributes, &["rpc.grpc.status_code"]).is_some_and(|code| code != 0),
        Family::Messaging | Family::Database => false,
    }
}
