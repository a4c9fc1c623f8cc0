"""One service of a small shop, instrumented with the Python OpenTelemetry SDK, for
tests/api/graph_e2e.rs. Each service is its own process with a real HTTP server on a loopback
port; calls between them carry W3C `traceparent` headers injected and extracted by the SDK's
global propagator, and every process exports its spans to Cartograph over OTLP/HTTP.

    frontend  GET  /checkout?order=N  -> orders POST /orders?order=N; 502 if that fails
    orders    POST /orders?order=N    -> inventory GET /stock twice (reserve, confirm), then
                                         payments POST /pay?order=N; 502 if payment fails
    payments  POST /pay?order=N       -> 500 when N is a multiple of 5, else 200
    inventory GET  /stock             -> 200

Usage: shop.py --service NAME --otlp-endpoint URL --port-file PATH [--downstream NAME=URL ...]
The server listens on 127.0.0.1 on a free port, writes the port to --port-file when it is
ready, and flushes its spans on SIGTERM.
"""

import argparse
import os
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

EXPORT_DELAY_MILLIS = 100
CALL_TIMEOUT_SECONDS = 10
# Downstream calls never go through a proxy, whatever the environment says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=sorted(ROUTES), required=True)
    parser.add_argument("--otlp-endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--downstream", action="append", default=[], metavar="NAME=URL")
    return parser.parse_args()


class Shop:
    def __init__(self, service: str, tracer, downstream: dict):
        self.service = service
        self.tracer = tracer
        self.downstream = downstream

    def call(self, target: str, method: str, path: str) -> int:
        """A CLIENT span around one HTTP call, its context injected as `traceparent`."""
        url = self.downstream[target] + path
        parsed = urllib.parse.urlsplit(url)
        attributes = {
            "http.request.method": method,
            "server.address": parsed.hostname,
            "server.port": parsed.port,
            "url.full": url,
        }
        with self.tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes) as span:
            headers = {}
            propagate.inject(headers)
            request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
            try:
                with OPENER.open(request, timeout=CALL_TIMEOUT_SECONDS) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            return status


def frontend(shop: Shop, order: int) -> int:
    return 200 if shop.call("orders", "POST", f"/orders?order={order}") == 200 else 502


def orders(shop: Shop, order: int) -> int:
    for _step in ("reserve", "confirm"):
        if shop.call("inventory", "GET", f"/stock?order={order}") != 200:
            return 502
    return 200 if shop.call("payments", "POST", f"/pay?order={order}") == 200 else 502


def payments(_shop: Shop, order: int) -> int:
    return 500 if order % 5 == 0 else 200


def inventory(_shop: Shop, _order: int) -> int:
    return 200


# service -> (method, path, handler)
ROUTES = {
    "frontend": ("GET", "/checkout", frontend),
    "orders": ("POST", "/orders", orders),
    "payments": ("POST", "/pay", payments),
    "inventory": ("GET", "/stock", inventory),
}


def handler_class(shop: Shop):
    method, route, handle = ROUTES[shop.service]

    class Handler(BaseHTTPRequestHandler):
        def serve(self):
            url = urllib.parse.urlsplit(self.path)
            if self.command != method or url.path != route:
                self.send_response(404)
                self.end_headers()
                return
            order = int(urllib.parse.parse_qs(url.query).get("order", ["0"])[0])
            attributes = {
                "http.request.method": method,
                "http.route": route,
                "url.path": url.path,
                "server.address": "127.0.0.1",
                "server.port": self.server.server_address[1],
            }
            # The caller's context from its `traceparent`; none (a root span) for outside callers.
            context = propagate.extract(self.headers)
            with shop.tracer.start_as_current_span(
                f"{method} {route}", context=context, kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                status = handle(shop, order)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = serve
        do_POST = serve

        def log_message(self, *_args):
            pass

    return Handler


def main() -> int:
    args = parse_args()
    downstream = dict(entry.split("=", 1) for entry in args.downstream)
    provider = TracerProvider(resource=Resource.create({"service.name": args.service, "service.namespace": "shop"}))
    exporter = OTLPSpanExporter(endpoint=f"{args.otlp_endpoint}/v1/traces", timeout=10)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MILLIS))
    shop = Shop(args.service, provider.get_tracer("cartograph-tests.shop"), downstream)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class(shop))

    def stop(_signum, _frame):
        provider.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    # Written whole, then renamed: the test never reads half a port number.
    partial = args.port_file + ".partial"
    with open(partial, "w") as port_file:
        port_file.write(str(server.server_address[1]))
    os.replace(partial, args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
