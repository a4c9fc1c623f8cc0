//! Names of the nodes a span implies but no resource reports: databases, topics, external
//! peers and the `client:user` node. Pure string rules, one function per node kind, so the
//! naming scheme is readable in one place (and documented in `graph/mod.rs`).
//!
//! Names come from span attributes, i.e. from clients: they are cut to
//! [`MAX_VIRTUAL_NAME_BYTES`] so one odd attribute cannot hold megabytes in every window.

use std::fmt::{self, Write as _};

/// Longest virtual node name kept (longer ones are cut at a character boundary).
pub const MAX_VIRTUAL_NAME_BYTES: usize = 256;

/// Name of the node calling root server spans (and server spans whose caller never reported).
pub const CLIENT_USER_NAME: &str = "user";

/// Destination part of a topic whose span named no destination.
pub const UNKNOWN_DESTINATION: &str = "(unknown)";
/// Destination part of a topic for temporary / anonymous destinations without a template.
pub const TEMPORARY_DESTINATION: &str = "(temporary)";
/// System part of a topic for producer/consumer spans without `messaging.system`.
pub const UNKNOWN_MESSAGING_SYSTEM: &str = "messaging";

/// A port as sent: an int (the semantic conventions) or a string (older SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port<'a> {
    Int(i64),
    Text(&'a str),
}

impl fmt::Display for Port<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Int(port) => write!(f, "{port}"),
            Port::Text(port) => f.write_str(port),
        }
    }
}

/// A peer address: host (name or IP) and maybe a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address<'a> {
    pub host: &'a str,
    pub port: Option<Port<'a>>,
}

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// `database:{system} {host}[:{port}][/{namespace}]`, or `{system} {namespace}` without an
/// address, or just `{system}` with neither. `host` is the explicit logical name
/// (`peer.service`) when the span has one, else the server address.
/// Two PostgreSQL databases differ in address or namespace, so they are two nodes.
pub fn database_name(system: &str, host: Option<Address<'_>>, namespace: Option<&str>) -> String {
    let mut name = String::with_capacity(64);
    name.push_str(system);
    match (host, namespace) {
        (Some(address), Some(namespace)) => {
            let _ = write!(name, " {address}/{namespace}");
        }
        (Some(address), None) => {
            let _ = write!(name, " {address}");
        }
        (None, Some(namespace)) => {
            let _ = write!(name, " {namespace}");
        }
        (None, None) => {}
    }
    bounded(name)
}

/// `topic:{system} {destination}`, e.g. `topic:kafka orders.created`.
pub fn topic_name(system: Option<&str>, destination: &str) -> String {
    let system = system.unwrap_or(UNKNOWN_MESSAGING_SYSTEM);
    bounded(format!("{system} {destination}"))
}

/// `external:{host}[:{port}]`, or `external:{peer.service}` for a logical name.
pub fn external_name(address: Address<'_>) -> String {
    bounded(address.to_string())
}

/// The host and port of an absolute URL (`scheme://[user@]host[:port]/…`), for client spans
/// of older instrumentations that only set `http.url` / `url.full`.
pub fn url_address(url: &str) -> Option<Address<'_>> {
    let (_, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    // Bracketed IPv6 literal: the port follows the closing bracket.
    let (host, port) = if let Some(after_bracket) = host_port.strip_prefix('[') {
        let (host, rest) = after_bracket.split_once(']')?;
        (host, rest.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = port.filter(|port| !port.is_empty()).map(Port::Text);
    Some(Address { host, port })
}

/// The breaker name in resilience4j's message
/// `CircuitBreaker 'payments' is OPEN and does not permit further calls`.
pub fn breaker_name_from_message(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("CircuitBreaker '")?;
    let (name, _) = rest.split_once('\'')?;
    (!name.is_empty()).then_some(name)
}

/// Cuts `name` to [`MAX_VIRTUAL_NAME_BYTES`] at a character boundary.
pub fn bounded(mut name: String) -> String {
    if name.len() > MAX_VIRTUAL_NAME_BYTES {
        let mut end = MAX_VIRTUAL_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address<'a>(host: &'a str, port: Option<i64>) -> Address<'a> {
        Address {
            host,
            port: port.map(Port::Int),
        }
    }

    #[test]
    fn database_names_combine_system_address_and_namespace() {
        let orders = address("orders-db", Some(5432));
        assert_eq!(
            database_name("postgresql", Some(orders), Some("orders")),
            "postgresql orders-db:5432/orders"
        );
        assert_eq!(
            database_name("postgresql", Some(orders), None),
            "postgresql orders-db:5432"
        );
        assert_eq!(
            database_name("redis", None, Some("0")),
            "redis 0",
            "namespace alone"
        );
        assert_eq!(database_name("mysql", None, None), "mysql");
    }

    #[test]
    fn topic_and_external_names() {
        assert_eq!(
            topic_name(Some("kafka"), "orders.created"),
            "kafka orders.created"
        );
        assert_eq!(topic_name(None, UNKNOWN_DESTINATION), "messaging (unknown)");
        assert_eq!(
            external_name(address("api.stripe.com", Some(443))),
            "api.stripe.com:443"
        );
        assert_eq!(external_name(address("payments", None)), "payments");
    }

    #[test]
    fn url_addresses() {
        let parse = |url| url_address(url).map(|address| address.to_string());
        assert_eq!(
            parse("https://api.stripe.com/v1/charges?x=1").as_deref(),
            Some("api.stripe.com")
        );
        assert_eq!(
            parse("http://user:pw@inventory:8080").as_deref(),
            Some("inventory:8080")
        );
        assert_eq!(parse("http://[::1]:9000/x").as_deref(), Some("::1:9000"));
        assert_eq!(parse("/relative/path"), None);
        assert_eq!(parse("http:///no-host"), None);
    }

    #[test]
    fn breaker_names_and_bounds() {
        assert_eq!(
            breaker_name_from_message(
                "CircuitBreaker 'payments' is OPEN and does not permit further calls"
            ),
            Some("payments")
        );
        assert_eq!(breaker_name_from_message("Breaker is open"), None);
        let long = "é".repeat(200);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_VIRTUAL_NAME_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
