//! The UI's URL scheme: the paths of its pages (and of the API resources pages link to), built
//! in one place so the dashboards and alert notifications link alike. Every name from span
//! data goes through [`url_encode`]. The routes these paths reach are registered in
//! `web::configure`; this module knows nothing of HTTP and must depend on nothing but `model`.

use std::fmt::Write as _;

use crate::model::TraceId;
use crate::model::graph::{EdgeKey, NodeKey, NodeKind};

pub const MAP: &str = "/";
pub const SERVICES: &str = "/services";
pub const TRACES: &str = "/traces";
pub const KAFKA: &str = "/kafka";
pub const BREAKERS: &str = "/breakers";
pub const INSIGHTS: &str = "/insights";
pub const ALERTS: &str = "/alerts";

/// A path segment or query value, percent-encoded (everything but unreserved characters).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Where the navigation's trace-id box sends the id typed into it.
pub const OPEN_TRACE: &str = "/traces/open";

/// Pages that read a time range (`window`, or `from` and `to`): the map, services, one
/// service, one edge, Kafka, breakers, insights and the trace search (not one trace's page).
fn takes_range(path: &str) -> bool {
    path == MAP
        || path == TRACES
        || [SERVICES, "/edges/", KAFKA, BREAKERS, INSIGHTS]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// `href` with the time range `range_query` (`window=…`, or `from=…&to=…`, already encoded)
/// added, so the range a user picked follows every link between pages that read one. Other
/// links, and links that name a range of their own, are left as they are.
pub fn with_range(href: &str, range_query: &str) -> String {
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let names_range = query
        .split('&')
        .any(|pair| matches!(pair.split('=').next(), Some("window" | "from" | "to")));
    if range_query.is_empty() || names_range || !takes_range(path) {
        return href.to_owned();
    }
    let separator = if query.is_empty() && !href.contains('?') {
        '?'
    } else {
        '&'
    };
    format!("{href}{separator}{range_query}")
}

/// The page of the service named `name`.
pub fn service(name: &str) -> String {
    format!("{SERVICES}/{}", url_encode(name))
}

/// The page of the edge between the nodes with API ids `source_id` and `target_id`
/// (`kind:name`, see [`NodeKey::id`]).
pub fn edge_between(source_id: &str, target_id: &str) -> String {
    format!("/edges/{}/{}", url_encode(source_id), url_encode(target_id))
}

/// The page of `key`'s edge.
pub fn edge(key: &EdgeKey) -> String {
    edge_between(&key.source.id(), &key.target.id())
}

/// The map focused on the node with API id `node_id` and its direct neighbours.
pub fn map_focus(node_id: &str) -> String {
    format!("{MAP}?focus={}&depth=1", url_encode(node_id))
}

/// Where a node's page is: a service's own page, the Kafka page for topics, else the map
/// focused on the node.
pub fn node(key: &NodeKey) -> String {
    match key.kind {
        NodeKind::Service => service(&key.name),
        NodeKind::Topic => KAFKA.to_owned(),
        _ => map_focus(&key.id()),
    }
}

/// The trace search for the spans of `service`, of its operation `operation` when given.
pub fn trace_search(service: &str, operation: Option<&str>) -> String {
    let mut href = format!("{TRACES}?service={}", url_encode(service));
    if let Some(operation) = operation {
        let _ = write!(href, "&operation={}", url_encode(operation));
    }
    href
}

/// The waterfall page of a trace.
pub fn trace(trace_id: TraceId) -> String {
    format!("{TRACES}/{trace_id}")
}

/// A trace's spans in the JSON API (the first page).
pub fn trace_api(trace_id: TraceId) -> String {
    format!("/api/v1/traces/{trace_id}")
}

/// A page of a trace's spans in the JSON API.
pub fn trace_api_page(trace_id: TraceId, offset: usize, limit: usize) -> String {
    format!("{}?offset={offset}&limit={limit}", trace_api(trace_id))
}

/// The stored points of the metric named `name` in the JSON API.
pub fn metric_points_api(name: &str) -> String {
    format!("/api/v1/metric-points?name={}", url_encode(name))
}

/// The alerts page with its silence form filled in for the alert with `fingerprint`.
pub fn silence_form(fingerprint: &str) -> String {
    format!("{ALERTS}?silence={}#silence", url_encode(fingerprint))
}

/// Where the alerts page posts a new silence.
pub const ADD_SILENCE: &str = "/alerts/silences";

/// The form action expiring the silence with `id` (`csrf` is the page's token).
pub fn expire_silence(id: &str, csrf: &str) -> String {
    format!(
        "{ADD_SILENCE}/{}/expire?csrf={}",
        url_encode(id),
        url_encode(csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_follows_links_between_pages_that_read_one() {
        let range = "window=1h";
        assert_eq!(
            with_range("/services/orders", range),
            "/services/orders?window=1h"
        );
        assert_eq!(
            with_range("/?focus=x&depth=1", range),
            "/?focus=x&depth=1&window=1h"
        );
        assert_eq!(with_range("/edges/a/b", range), "/edges/a/b?window=1h");
        assert_eq!(
            with_range("/services?sort=rate", range),
            "/services?sort=rate&window=1h"
        );
        assert_eq!(
            with_range(&trace_search("a&b", Some("GET /x")), range),
            "/traces?service=a%26b&operation=GET%20%2Fx&window=1h"
        );
        // Pages without a range, links with their own, and no range at all: unchanged.
        assert_eq!(with_range("/traces/0af7", range), "/traces/0af7");
        assert_eq!(with_range("/alerts", range), "/alerts");
        assert_eq!(
            with_range("/services?window=5m", range),
            "/services?window=5m"
        );
        assert_eq!(with_range("/services", ""), "/services");
        assert_eq!(
            with_range("https://example.com/services", range),
            "https://example.com/services"
        );
    }

    #[test]
    fn names_from_span_data_are_percent_encoded() {
        assert_eq!(url_encode("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
        assert_eq!(service("pay ments"), "/services/pay%20ments");
        assert_eq!(
            edge_between("service:orders", "database:pg/main"),
            "/edges/service%3Aorders/database%3Apg%2Fmain"
        );
        assert_eq!(
            metric_points_api("kafka.lag&x"),
            "/api/v1/metric-points?name=kafka.lag%26x"
        );
    }

    #[test]
    fn each_node_kind_links_to_its_page() {
        assert_eq!(
            node(&NodeKey::new(NodeKind::Service, "orders")),
            "/services/orders"
        );
        assert_eq!(node(&NodeKey::new(NodeKind::Topic, "orders")), KAFKA);
        let database = NodeKey::new(NodeKind::Database, "postgresql orders");
        assert_eq!(
            node(&database),
            format!("/?focus={}&depth=1", url_encode(&database.id()))
        );
        let key = EdgeKey {
            source: NodeKey::new(NodeKind::Service, "orders"),
            target: database.clone(),
            kind: crate::model::graph::EdgeKind::Database,
        };
        assert_eq!(edge(&key), edge_between("service:orders", &database.id()));
    }
}
