"""Sends semantic-convention duration histograms with the Python OpenTelemetry SDK's own OTLP
exporter for tests/api/metrics_source.rs, and prints what was recorded as JSON.

Usage: red_metrics.py --endpoint URL --temporality cumulative|delta [--with-traces]

Two services that send no traces: `py-frontend` serves `GET /shop` (http.server.request.duration)
and calls `py-inventory` (http.client.request.duration with peer.service, server.address and
server.port); `py-inventory` serves `GET /stock`. Some calls fail (a 503 / error.type).
Each series is exported twice (two collections), so cumulative points are differenced.

With --with-traces, `py-web` instead sends client/server span pairs to `py-api` through the
trace exporter and a client histogram counting three times as many calls, so the two sources
disagree on that edge.
"""

import argparse
import json
import random
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

EXPORT_INTERVAL_MS = 3_600_000  # collections happen only when the script asks
# The bounds the HTTP semantic conventions advise (seconds), as the instrumentations set them.
HTTP_BOUNDS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


def duration_histogram(provider, scope, name):
    return provider.get_meter(scope).create_histogram(
        name, unit="s", explicit_bucket_boundaries_advisory=HTTP_BOUNDS_S
    )


def meter_provider(args, service):
    temporality = (
        AggregationTemporality.DELTA
        if args.temporality == "delta"
        else AggregationTemporality.CUMULATIVE
    )
    exporter = OTLPMetricExporter(
        endpoint=args.endpoint,
        insecure=True,
        preferred_temporality={Histogram: temporality},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS)
    return MeterProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "pyshop"}),
        metric_readers=[reader],
    )


def record_round(rng, server_frontend, client, server_inventory, recorded):
    for _ in range(rng.randint(40, 60)):
        failed = rng.random() < 0.1
        status = 503 if failed else 200
        seconds = rng.uniform(0.002, 0.080)
        inventory_attributes = {"http.request.method": "GET", "http.route": "/stock", "http.response.status_code": status}
        server_inventory.record(seconds * 0.8, inventory_attributes)
        client_attributes = {
            "http.request.method": "GET",
            "peer.service": "py-inventory",
            "server.address": "inventory.pyshop.svc",
            "server.port": 8080,
            "http.response.status_code": status,
        }
        if failed:
            client_attributes["error.type"] = "503"
        client.record(seconds, client_attributes)
        frontend_attributes = {"http.request.method": "GET", "http.route": "/shop", "http.response.status_code": status}
        server_frontend.record(seconds * 1.2, frontend_attributes)
        recorded["calls"] += 1
        recorded["errors"] += int(failed)


def send_metrics_only(args):
    rng = random.Random(20)
    frontend = meter_provider(args, "py-frontend")
    inventory = meter_provider(args, "py-inventory")
    server_frontend = duration_histogram(frontend, "shop", "http.server.request.duration")
    client = duration_histogram(frontend, "shop", "http.client.request.duration")
    server_inventory = duration_histogram(inventory, "stock", "http.server.request.duration")
    recorded = {"calls": 0, "errors": 0}
    for _ in range(2):
        record_round(rng, server_frontend, client, server_inventory, recorded)
        for provider in (frontend, inventory):
            if not provider.force_flush(timeout_millis=10_000):
                raise SystemExit("metric export failed")
    for provider in (frontend, inventory):
        provider.shutdown()
    return recorded


def send_with_traces(args):
    traced_calls = 10
    provider = meter_provider(args, "py-web")
    client = duration_histogram(provider, "web", "http.client.request.duration")
    for _ in range(traced_calls * 3):
        client.record(0.01, {"http.request.method": "GET", "peer.service": "py-api"})
    if not provider.force_flush(timeout_millis=10_000):
        raise SystemExit("metric export failed")
    provider.shutdown()

    tracers = {}
    for service in ("py-web", "py-api"):
        tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True))
        )
        tracers[service] = tracer_provider
    for _ in range(traced_calls):
        web = tracers["py-web"].get_tracer("web")
        api = tracers["py-api"].get_tracer("api")
        with web.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET", "peer.service": "py-api"}):
            with api.start_as_current_span("GET /items", kind=SpanKind.SERVER, attributes={"http.request.method": "GET", "http.route": "/items"}):
                pass
    for tracer_provider in tracers.values():
        tracer_provider.shutdown()
    return {"traced_calls": traced_calls, "metric_calls": traced_calls * 3}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--temporality", choices=["cumulative", "delta"], default="cumulative")
    parser.add_argument("--with-traces", action="store_true")
    args = parser.parse_args()
    recorded = send_with_traces(args) if args.with_traces else send_metrics_only(args)
    json.dump(recorded, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
