"""Writes the OTLP/JSON fixtures of tests/fixtures/graph/ (read by tests/api/graph_*.rs).

The fixtures are committed; rerun this after changing a scenario and commit what it writes:

    python3 tests/python/make_graph_fixtures.py

Standard library only. Every time is written relative to BASE_NANOS; the Rust loader shifts each
`*TimeUnixNano` by (now - BASE_NANOS) so the spans are recent when posted. Ids come from counters
shared by all fixtures, so several fixtures can be posted to one app without colliding.
Each file is one ExportTraceServiceRequest (postable with curl), or a JSON array of them when a
scenario needs several requests (posted in order, with a pause the test chooses).
"""

import json
import pathlib

BASE_NANOS = 1_700_000_000_000_000_000
MS = 1_000_000
OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "graph"
NAMESPACE = "shop"

SPAN_KIND = {"server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_ERROR = {"code": 2, "message": "failed"}

_next_trace = 0
_next_span = 0


def new_trace() -> str:
    global _next_trace
    _next_trace += 1
    return format(0xC0DE << 112 | _next_trace, "032x")


def new_span_id() -> str:
    global _next_span
    _next_span += 1
    return format(0x5A << 56 | _next_span, "016x")


def value(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": v}


def attrs(mapping: dict) -> list:
    return [{"key": k, "value": value(v)} for k, v in mapping.items()]


def nanos(ms: float) -> str:
    return str(BASE_NANOS + round(ms * MS))


class Fixture:
    """Spans grouped by request part and service, written as OTLP/JSON."""

    def __init__(self, namespaces=None):
        self.parts = [{}]
        # service -> service.namespace, for services outside NAMESPACE
        self.namespaces = namespaces or {}

    def part(self):
        """Spans added after this go into the next export request."""
        self.parts.append({})

    def span(self, service, kind, name, trace, start_ms, dur_ms, parent=None, attributes=None,
             error=False, links=(), span_id=None):
        span_id = span_id or new_span_id()
        span = {
            "traceId": trace,
            "spanId": span_id,
            "name": name,
            "kind": SPAN_KIND[kind],
            "startTimeUnixNano": nanos(start_ms),
            "endTimeUnixNano": nanos(start_ms + dur_ms),
            "attributes": attrs(attributes or {}),
        }
        if error:
            span["status"] = STATUS_ERROR
        if parent:
            span["parentSpanId"] = parent
        if links:
            span["links"] = [{"traceId": t, "spanId": s} for t, s in links]
        self.parts[-1].setdefault(service, []).append(span)
        return span_id

    def call(self, client, server, trace, start_ms, dur_ms, proto="http", parent=None,
             client_error=False, server_error=False, client_extra=None):
        """A client span and the server span it caused (0.25 ms later, 0.5 ms shorter).

        Returns (client span id, server span id)."""
        client_attrs, server_attrs, name = protocol_attrs(proto, server, client_error or server_error)
        client_attrs.update(client_extra or {})
        client_id = self.span(client, "client", name, trace, start_ms, dur_ms, parent,
                              client_attrs, client_error)
        server_id = self.span(server, "server", name, trace, start_ms + 0.25, dur_ms - 0.5,
                              client_id, server_attrs, server_error)
        return client_id, server_id

    def requests(self) -> list:
        return [request(services, self.namespaces) for services in self.parts]

    def write(self, name: str):
        requests = self.requests()
        body = requests[0] if len(requests) == 1 else requests
        (OUT / f"{name}.json").write_text(render(body))


def protocol_attrs(proto, server, failed):
    if proto == "grpc":
        common = {"rpc.system": "grpc", "rpc.service": f"{server}.v1.Api", "rpc.method": "Get"}
        status = {"rpc.grpc.status_code": 14 if failed else 0}
        client = {**common, "server.address": server, "server.port": 50051, **status}
        return client, {**common, **status}, f"{server}.v1.Api/Get"
    status = {"http.response.status_code": 500 if failed else 200}
    client = {"http.request.method": "POST", "server.address": server, "server.port": 8080,
              "url.full": f"http://{server}:8080/api", **status}
    server_attrs = {"http.request.method": "POST", "http.route": "/api", "url.path": "/api", **status}
    return client, server_attrs, "POST /api"


def request(services: dict, namespaces: dict) -> dict:
    def resource(service):
        return {"service.name": service, "service.namespace": namespaces.get(service, NAMESPACE)}

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attrs(resource(service))},
                "scopeSpans": [{"scope": {"name": "cartograph-fixtures"}, "spans": spans}],
            }
            for service, spans in services.items()
        ]
    }


def render(body) -> str:
    """Pretty enough to read, with one span per line."""
    def spans_lines(spans, indent):
        return (",\n" + indent).join(json.dumps(s) for s in spans)

    def request_text(req, indent):
        pad = indent + "  "
        resources = []
        for rs in req["resourceSpans"]:
            scope = rs["scopeSpans"][0]
            resources.append(
                f'{pad}{{"resource": {json.dumps(rs["resource"])},\n'
                f'{pad} "scopeSpans": [{{"scope": {json.dumps(scope["scope"])}, "spans": [\n'
                f'{pad}  {spans_lines(scope["spans"], pad + "  ")}\n'
                f"{pad} ]}}]}}"
            )
        return f'{indent}{{"resourceSpans": [\n' + ",\n".join(resources) + f"\n{indent}]}}"

    if isinstance(body, list):
        return "[\n" + ",\n".join(request_text(r, "  ") for r in body) + "\n]\n"
    return request_text(body, "") + "\n"


# --- scenarios (tests/fixtures/graph/README.md lists what each one must produce) ---


def http_pair():
    f = Fixture()
    f.call("checkout", "payments", new_trace(), 0, 20)
    f.call("checkout", "payments", new_trace(), 100, 20, client_error=True)  # client timed out
    f.call("checkout", "payments", new_trace(), 200, 20, client_error=True, server_error=True)
    f.write("http_pair")


def grpc_pair():
    f = Fixture()
    f.call("cart", "pricing", new_trace(), 0, 5, proto="grpc")
    f.call("cart", "pricing", new_trace(), 50, 5, proto="grpc", client_error=True, server_error=True)
    f.write("grpc_pair")


def reverse_order():
    """Call A's server in the first request, its client in the second; call B the other way."""
    f = Fixture()
    a_trace, b_trace = new_trace(), new_trace()
    a_client_attrs, a_server_attrs, name = protocol_attrs("http", "payments", False)
    a_client_id = new_span_id()
    f.span("payments", "server", name, a_trace, 0.25, 9.5, a_client_id, a_server_attrs)
    b_client = f.span("checkout", "client", name, b_trace, 100, 10, None, dict(a_client_attrs))
    f.part()
    f.span("checkout", "client", name, a_trace, 0, 10, None, a_client_attrs, span_id=a_client_id)
    f.span("payments", "server", name, b_trace, 100.25, 9.5, b_client, a_server_attrs)
    f.write("reverse_order")


def uninstrumented_peers():
    f = Fixture()
    peer = {"http.request.method": "POST", "peer.service": "fraud-check", "server.address": "fraud.internal",
            "server.port": 443, "url.full": "https://fraud.internal/score", "http.response.status_code": 200}
    for start in (0, 50):
        f.span("checkout", "client", "POST", new_trace(), start, 10, None, peer)
    stripe = {"http.request.method": "POST", "server.address": "api.stripe.com", "server.port": 443,
              "url.full": "https://api.stripe.com/v1/charges", "http.response.status_code": 502}
    f.span("checkout", "client", "POST", new_trace(), 100, 10, None, stripe, error=True)
    geo = {**protocol_attrs("grpc", "geo", False)[0], "service.peer.name": "geo",
           "server.address": "10.0.0.7"}
    f.span("checkout", "client", "geo.v1.Api/Get", new_trace(), 150, 10, None, geo)
    f.write("uninstrumented_peers")


def databases():
    f = Fixture()
    orders_db = {"db.system.name": "postgresql", "server.address": "orders-db", "server.port": 5432,
                 "db.namespace": "orders", "db.operation.name": "SELECT"}
    for i in range(3):
        f.span("orders", "client", "SELECT orders", new_trace(), i * 10, 3, None, orders_db, error=i == 2)
    users_db = {"db.system": "postgresql", "server.address": "users-db", "server.port": 5432,
                "db.name": "users", "db.operation": "SELECT"}
    for i in range(2):
        f.span("users", "client", "SELECT users", new_trace(), 50 + i * 10, 3, None, users_db)
    catalog_db = {"db.system.name": "sqlite", "db.namespace": "catalog.db", "db.operation.name": "SELECT"}
    f.span("catalog", "client", "SELECT items", new_trace(), 100, 1, None, catalog_db)
    f.write("databases")


def kafka_messages(f, by_links: bool):
    """orders publishes two messages to order-created; billing (new group attribute) and shipping
    (old attribute) consume each, 10 ms and 30 ms after the publish ends; billing fails once."""
    topic = {"messaging.system": "kafka", "messaging.destination.name": "order-created"}
    for i in range(2):
        trace, start = new_trace(), i * 100
        producer = f.span("orders", "producer", "order-created publish", trace, start, 2, None,
                          {**topic, "messaging.operation.type": "send"})
        consumers = [("billing", {"messaging.consumer.group.name": "billing"}, 10, i == 1),
                     ("shipping", {"messaging.kafka.consumer.group": "shipping"}, 30, False)]
        for service, group, delay_ms, failed in consumers:
            consumer_attrs = {**topic, **group, "messaging.operation.type": "process"}
            if by_links:
                f.span(service, "consumer", "order-created process", new_trace(), start + 2 + delay_ms, 5,
                       None, consumer_attrs, failed, links=[(trace, producer)])
            else:
                f.span(service, "consumer", "order-created process", trace, start + 2 + delay_ms, 5,
                       producer, consumer_attrs, failed)


def kafka():
    for name, by_links in (("kafka_by_parent", False), ("kafka_by_links", True)):
        f = Fixture()
        kafka_messages(f, by_links)
        f.write(name)


def root_span():
    f = Fixture()
    for i in range(4):
        trace, start, failed = new_trace(), i * 100, i == 3
        status = {"http.response.status_code": 500 if failed else 200}
        root = f.span("frontend", "server", "GET /", trace, start, 30, None,
                      {"http.request.method": "GET", "http.route": "/", "url.path": "/", **status}, failed)
        f.call("frontend", "catalog", trace, start + 1, 10, parent=root)
    f.write("root_span")


def missing_parent():
    """payments' server span names a caller that never reports; orders' client span names a local
    parent that never reports (its call to stock is still complete)."""
    f = Fixture()
    server_attrs = protocol_attrs("http", "payments", False)[1]
    f.span("payments", "server", "POST /api", new_trace(), 0, 10, new_span_id(), server_attrs)
    f.call("orders", "stock", new_trace(), 50, 10, parent=new_span_id())
    f.write("missing_parent")


# Client durations of the 100 calls: 1..100 ms, except that the values either side of the ranks of
# p50, p95 and p99 are equal (items 50/51 = 50, 95/96 = 95, 99/100 = 99), so every percentile
# definition (nearest rank, interpolated, DDSketch's rank) gives exactly 50, 95 and 99 ms.
PERCENTILE_DURATIONS_MS = [{51: 50, 96: 95, 100: 99}.get(i, i) for i in range(1, 101)]


def percentiles():
    """100 calls checkout -> payments; errors on calls 10,20,30,40 (both sides), 50,60 (client
    only), 70 (server only) = 7; calls 2,4,6 are retries."""
    f = Fixture()
    for i, dur_ms in enumerate(PERCENTILE_DURATIONS_MS, start=1):
        both = i in (10, 20, 30, 40)
        extra = {"http.request.resend_count": 1} if i in (2, 4, 6) else {}
        f.call("checkout", "payments", new_trace(), -25_000 + i * 200, dur_ms,
               client_error=both or i in (50, 60), server_error=both or i == 70, client_extra=extra)
    f.write("percentiles")


def cycles():
    """a -> b -> c -> a (and d -> a outside it); x -> topic jobs -> y -> x through a topic."""
    f = Fixture()
    trace = new_trace()
    _, b = f.call("a", "b", trace, 0, 40)
    _, c = f.call("b", "c", trace, 1, 30, parent=b)
    f.call("c", "a", trace, 2, 20, parent=c)
    f.call("d", "a", new_trace(), 100, 10)
    trace = new_trace()
    topic = {"messaging.system": "kafka", "messaging.destination.name": "jobs"}
    producer = f.span("x", "producer", "jobs publish", trace, 200, 2, None, topic)
    consumer = f.span("y", "consumer", "jobs process", trace, 210, 20, producer,
                      {**topic, "messaging.consumer.group.name": "y"})
    f.call("y", "x", trace, 211, 10, parent=consumer)
    f.write("cycles")


def chain():
    """s1 -> s2 -> s3 =grpc=> s4 -> s5 -> s6 synchronously (5 hops), then s6 publishes to topic
    audit, consumed by s7, which calls s8: the chain must stop at the topic."""
    f = Fixture()
    trace = new_trace()
    parent = None
    for hop in range(1, 6):
        proto = "grpc" if hop == 3 else "http"
        _, parent = f.call(f"s{hop}", f"s{hop + 1}", trace, hop, 100 - hop * 10, proto, parent)
    topic = {"messaging.system": "kafka", "messaging.destination.name": "audit"}
    producer = f.span("s6", "producer", "audit publish", trace, 20, 1, parent, topic)
    consumer = f.span("s7", "consumer", "audit process", trace, 100, 20, producer,
                      {**topic, "messaging.consumer.group.name": "s7"})
    f.call("s7", "s8", trace, 101, 10, parent=consumer)
    f.write("chain")


def chatty():
    """Two traces in which cart calls pricing 12 times and inventory once."""
    f = Fixture()
    for t in range(2):
        trace, start = new_trace(), t * 1000
        for i in range(12):
            f.call("cart", "pricing", trace, start + i * 10, 5)
        f.call("cart", "inventory", trace, start + 200, 5)
    f.write("chatty")


def blast_radius():
    """web -> api (4), mobile-bff -> api (2), api -> ledger (6), batch -> ledger (3), api -> auth
    (6), search -> index (1). ledger is a leaf; its callers are api, web, mobile-bff and batch."""
    f = Fixture()
    for i in range(6):
        trace, start = new_trace(), i * 100
        _, api = f.call("web" if i < 4 else "mobile-bff", "api", trace, start, 50)
        f.call("api", "auth", trace, start + 1, 5, parent=api)
        f.call("api", "ledger", trace, start + 10, 20, parent=api)
    for i in range(3):
        f.call("batch", "ledger", new_trace(), 1000 + i * 100, 20)
    f.call("search", "index", new_trace(), 2000, 5)
    f.write("blast_radius")


def namespaces():
    """web -> api in shop; api -> gateway -> processor, gateway and processor in namespace pay."""
    f = Fixture(namespaces={"gateway": "pay", "processor": "pay"})
    trace = new_trace()
    _, api = f.call("web", "api", trace, 0, 30)
    _, gateway = f.call("api", "gateway", trace, 1, 20, parent=api)
    f.call("gateway", "processor", trace, 2, 10, parent=gateway)
    f.write("namespaces")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for scenario in (http_pair, grpc_pair, reverse_order, uninstrumented_peers, databases, kafka,
                     root_span, missing_parent, percentiles, cycles, chain, chatty, blast_radius, namespaces):
        scenario()


if __name__ == "__main__":
    main()
