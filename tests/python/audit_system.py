"""A system that breaks every rule the audit checks, sent with the Python OpenTelemetry SDK: one
TracerProvider (and resource) per service, spans parented through contexts, explicit
timestamps ending a few seconds ago, exported over OTLP/HTTP (the SDK gives each resource a
`service.instance.id` of its own: one instance per service). For tests/api/audit_e2e.rs.

Per request (REQUESTS of them, plus ADMIN_REQUESTS through a side door):
    user -> gateway  GET /shop                      (the gateway takes most outside calls)
      gateway -> orders   POST /orders              correlation_id on the caller, not on orders;
                                                    1 in 8 fails, no retries, no breaker
        orders -> postgresql shop-db                (shared with reports)
        orders -> items   GET /v1/items/{id}        (items serves v2 to the gateway)
        orders -> payments POST /pay                the caller waits 120 ms, payments works 400
          payments -> ledger -> vault -> keys       (gateway -> ... -> keys: five sync hops)
        orders -> kafka orders.audit                (published, never consumed)
        orders -> 10.0.0.7:8080                     (a hard-coded address)
        orders -> inventory.corp.example            (a name matching a configured pattern)
        orders -> notify  POST /notify              (notify's span starts a trace of its own)
      gateway -> items    GET /v2/items/{id}
        items -> pricing -> items                   (a synchronous cycle)
      gateway -> stock    GET /stock x3             (two of three are retries: 3x)
        stock -> warehouse GET /bins x2             (one of two a retry: 2x, 6x along the chain)
      gateway -> catalog  GET /catalog/{n} x12      (chatty; the busiest per instance)
      gateway -> home -> widget-1 .. widget-8       (fan-out)
    user -> reports  GET /reports                   (outside traffic bypassing the gateway)
      reports -> postgresql shop-db

Usage: audit_system.py --otlp-endpoint http://127.0.0.1:PORT
"""

import argparse

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
import time

REQUESTS = 40
ADMIN_REQUESTS = 6
MS = 1_000_000


class System:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.providers = {}

    def tracer(self, service: str):
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service, "service.namespace": "audit"}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self.endpoint}/v1/traces", timeout=10)))
            self.providers[service] = provider
        return self.providers[service].get_tracer("audit-system")

    def span(self, service, name, kind, parent, start, duration, attributes=None, error=False):
        """A finished span of `service` under `parent` (a span, or None for a root)."""
        context = trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        span = self.tracer(service).start_span(name, context=context, kind=kind, start_time=start, attributes=attributes or {})
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + duration)
        return span

    def call(self, caller, parent, callee, method, route, start, duration, server_duration=None, client_attributes=None, server_attributes=None, error=False, status=200):
        """caller -> callee over HTTP: a CLIENT span and the callee's SERVER span under it."""
        attributes = {"http.request.method": method, "server.address": callee, "server.port": 8080, "http.response.status_code": status}
        attributes.update(client_attributes or {})
        client = self.span(caller, method, SpanKind.CLIENT, parent, start, duration, attributes, error)
        served = {"http.request.method": method, "http.route": route, "http.response.status_code": status}
        served.update(server_attributes or {})
        server_time = server_duration if server_duration is not None else duration - 2 * MS
        server = self.span(callee, f"{method} {route}", SpanKind.SERVER, client, start + MS, server_time, served, error)
        return client, server

    def shutdown(self):
        for provider in self.providers.values():
            provider.shutdown()


def request(system: System, number: int, start: int):
    s = system
    gateway = s.span("gateway", "GET /shop", SpanKind.SERVER, None, start, 900 * MS, {"http.request.method": "GET", "http.route": "/shop"})
    failed = number % 8 == 0
    _, orders = s.call("gateway", gateway, "orders", "POST", "/orders", start + 2 * MS, 700 * MS,
                       client_attributes={"correlation_id": f"c-{number}"}, error=failed, status=500 if failed else 200)
    at = start + 5 * MS
    s.span("orders", "INSERT orders", SpanKind.CLIENT, orders, at, 3 * MS,
           {"db.system": "postgresql", "server.address": "shop-db", "server.port": 5432, "db.namespace": "shop"})
    s.call("orders", orders, "items", "GET", "/v1/items/{id}", at + 5 * MS, 8 * MS)
    _, payments = s.call("orders", orders, "payments", "POST", "/pay", at + 20 * MS, 120 * MS, server_duration=400 * MS)
    _, ledger = s.call("payments", payments, "ledger", "POST", "/entries", at + 25 * MS, 30 * MS)
    _, vault = s.call("ledger", ledger, "vault", "GET", "/secrets", at + 27 * MS, 20 * MS)
    s.call("vault", vault, "keys", "GET", "/keys", at + 29 * MS, 10 * MS)
    s.span("orders", "send orders.audit", SpanKind.PRODUCER, orders, at + 430 * MS, 2 * MS,
           {"messaging.system": "kafka", "messaging.destination.name": "orders.audit", "messaging.operation.type": "send"})
    s.span("orders", "GET", SpanKind.CLIENT, orders, at + 440 * MS, 5 * MS,
           {"http.request.method": "GET", "server.address": "10.0.0.7", "server.port": 8080, "http.response.status_code": 200})
    s.span("orders", "GET", SpanKind.CLIENT, orders, at + 445 * MS, 3 * MS,
           {"http.request.method": "GET", "server.address": "inventory.corp.example", "server.port": 443, "http.response.status_code": 200})
    # orders -> notify: notify's span does not take the caller's context, it starts a trace.
    s.span("orders", "POST", SpanKind.CLIENT, orders, at + 450 * MS, 6 * MS,
           {"http.request.method": "POST", "server.address": "notify", "server.port": 8080, "peer.service": "notify"})
    s.span("notify", "POST /notify", SpanKind.SERVER, None, at + 451 * MS, 4 * MS, {"http.request.method": "POST", "http.route": "/notify"})

    _, items = s.call("gateway", gateway, "items", "GET", "/v2/items/{id}", start + 710 * MS, 30 * MS)
    _, pricing = s.call("items", items, "pricing", "GET", "/prices/{id}", start + 712 * MS, 20 * MS)
    s.call("pricing", pricing, "items", "GET", "/v2/items/{id}", start + 714 * MS, 10 * MS)
    for attempt in range(3):
        _, stock = s.call("gateway", gateway, "stock", "GET", "/stock", start + (745 + 5 * attempt) * MS, 4 * MS,
                          client_attributes={"http.request.resend_count": attempt} if attempt else None)
        for bin_attempt in range(2):
            s.call("stock", stock, "warehouse", "GET", "/bins", start + (746 + 5 * attempt + bin_attempt) * MS, MS // 2,
                   server_duration=MS // 4, client_attributes={"http.request.resend_count": bin_attempt} if bin_attempt else None)
    for item in range(12):
        s.call("gateway", gateway, "catalog", "GET", "/catalog/{n}", start + (765 + 2 * item) * MS, MS * 3 // 2, server_duration=MS)
    _, home = s.call("gateway", gateway, "home", "GET", "/home", start + 800 * MS, 60 * MS)
    for widget in range(1, 9):
        s.call("home", home, f"widget-{widget}", "GET", "/render", start + (802 + 6 * widget) * MS, 5 * MS)


def admin_request(system: System, start: int):
    reports = system.span("reports", "GET /reports", SpanKind.SERVER, None, start, 40 * MS, {"http.request.method": "GET", "http.route": "/reports"})
    system.span("reports", "SELECT orders", SpanKind.CLIENT, reports, start + MS, 20 * MS,
                {"db.system": "postgresql", "server.address": "shop-db", "server.port": 5432, "db.namespace": "shop"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otlp-endpoint", required=True)
    args = parser.parse_args()
    system = System(args.otlp_endpoint)
    now = time.time_ns()
    first = now - 40 * 1_000_000_000
    for number in range(REQUESTS):
        request(system, number, first + number * 900 * MS)
    for number in range(ADMIN_REQUESTS):
        admin_request(system, first + number * 3_000 * MS + 100 * MS)
    system.shutdown()
    print(f"sent {REQUESTS} requests and {ADMIN_REQUESTS} admin requests")


if __name__ == "__main__":
    main()
