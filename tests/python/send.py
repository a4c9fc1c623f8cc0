"""Sends one trace and a set of metrics to Cartograph with the Python OpenTelemetry SDK's own OTLP
exporters, then prints what was sent as JSON on stdout for tests/api/exporters_python.rs.

What is printed is read from the SDK itself (InMemorySpanExporter, InMemoryMetricReader), written
in the shape of Cartograph's JSON API (src/web/json.rs): ids as lowercase hex, times as strings
of Unix nanoseconds, attribute values as OTLP/JSON AnyValue objects chosen by their Python type.
Fields the API derives (duration_ms, the resource's service_name, ...) are left to the Rust side.

Usage: send.py --protocol grpc|http/protobuf --grpc-endpoint URL --http-endpoint URL
               [--compression none|gzip] [--temporality cumulative|delta]
               [--ca-file PEM] [--header NAME=VALUE ...]

With --ca-file the endpoints are https and the exporters trust that CA (nothing else); each
--header is sent with every export (e.g. authorization=Bearer TOKEN).
"""

import argparse
import base64
import json
import sys
import time
import uuid

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    InMemoryMetricReader,
    MetricExportResult,
    Sum,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.metrics import Observation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

SERVICE_NAME = "py-checkout"
EXPORT_TIMEOUT_SECONDS = 10
# OTLP span flags the exporters add: the SDK knows whether the parent is remote.
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200
# Histogram bounds set through a view, so the test sees that custom bounds survive.
LATENCY_BOUNDS_MS = [5.0, 25.0, 100.0, 500.0]


def main() -> int:
    args = parse_args()
    resource = Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.namespace": "shop",
            "service.version": "2.3.4",
            "deployment.environment.name": "test",
            "team.owner": "payments",
            "build.number": 42,
        }
    )
    correlation_id = str(uuid.uuid4())
    spans = send_trace(args, resource, correlation_id)
    points = send_metrics(args, resource)
    json.dump({"correlation_id": correlation_id, "spans": spans, "points": points}, sys.stdout)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["grpc", "http/protobuf"], required=True)
    parser.add_argument("--grpc-endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--http-endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--compression", choices=["none", "gzip"], default="none")
    parser.add_argument("--temporality", choices=["cumulative", "delta"], default="cumulative")
    parser.add_argument("--ca-file", help="PEM CA certificate to trust (TLS endpoints)")
    parser.add_argument("--header", action="append", default=[], help="NAME=VALUE")
    return parser.parse_args()


def headers(args: argparse.Namespace) -> dict:
    return dict(header.split("=", 1) for header in args.header)


def exporters(args: argparse.Namespace):
    """The OTLP span and metric exporters for the chosen protocol."""
    if args.protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        common = {
            "endpoint": args.grpc_endpoint,
            "insecure": args.ca_file is None,
            "timeout": EXPORT_TIMEOUT_SECONDS,
            "compression": Compression.Gzip if args.compression == "gzip" else Compression.NoCompression,
            "headers": headers(args),
        }
        if args.ca_file:
            from grpc import ssl_channel_credentials

            with open(args.ca_file, "rb") as ca:
                common["credentials"] = ssl_channel_credentials(root_certificates=ca.read())
        return OTLPSpanExporter(**common), OTLPMetricExporter(**common)

    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
    return (
        OTLPSpanExporter(
            endpoint=f"{args.http_endpoint}/v1/traces",
            timeout=EXPORT_TIMEOUT_SECONDS,
            compression=compression,
            certificate_file=args.ca_file,
            headers=headers(args),
        ),
        OTLPMetricExporter(
            endpoint=f"{args.http_endpoint}/v1/metrics",
            timeout=EXPORT_TIMEOUT_SECONDS,
            compression=compression,
            certificate_file=args.ca_file,
            headers=headers(args),
        ),
    )


def send_trace(args, resource: Resource, correlation_id: str) -> list:
    span_exporter, _ = exporters(args)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    tracer = provider.get_tracer(
        "cartograph-tests.python", "0.1.0", attributes={"scope.purpose": "exporter-test"}
    )

    # Explicit times with odd nanoseconds, so a rounding to micro- or milliseconds shows.
    base = time.time_ns() - 5_000_000_000 + 123_457
    root = tracer.start_span(
        "GET /checkout",
        context=Context(),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.path": "/checkout",
            "http.response.status_code": 200,
            "x-correlation-id": correlation_id,
        },
        start_time=base,
    )
    root_context = trace.set_span_in_context(root)

    remote = SpanContext(
        trace_id=uuid.uuid4().int,
        span_id=uuid.uuid4().int >> 64,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    client = tracer.start_span(
        "POST /payments",
        context=root_context,
        kind=SpanKind.CLIENT,
        attributes={
            "peer.service": "payments",
            "text": "héllo \"quoted\"",
            "flag": True,
            "count": -9_007_199_254_740_993,
            "ratio": 0.1,
            "raw": b"\x00\x01\xfe\xff",
            "strings": ["a", "b", ""],
            "bools": [True, False],
            "ints": [1, -2, 3],
            "floats": [1.5, -0.25],
            "nested": {"region": "eu-west-1", "retries": 2},
            "nothing": None,
        },
        links=[Link(remote, attributes={"link.reason": "retry-of", "link.attempt": 1})],
        start_time=base + 1_000_001,
    )
    client.add_event(
        "payment.retry",
        attributes={"attempt": 2, "backoff.ms": 12.5, "idempotent": True},
        timestamp=base + 2_000_003,
    )
    try:
        raise TimeoutError("payment gateway timed out")
    except TimeoutError as error:
        client.record_exception(error, timestamp=base + 3_000_005)
    client.set_status(Status(StatusCode.ERROR, "payment declined"))
    client.end(end_time=base + 40_000_007)

    internal = tracer.start_span(
        "render receipt", context=root_context, kind=SpanKind.INTERNAL, start_time=base + 41_000_011
    )
    internal.end(end_time=base + 42_000_013)

    producer = tracer.start_span(
        "orders publish",
        context=root_context,
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"},
        start_time=base + 43_000_017,
    )
    producer.end(end_time=base + 44_000_019)
    consumer = tracer.start_span(
        "orders process",
        context=trace.set_span_in_context(producer),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.consumer.group.name": "billing"},
        links=[Link(producer.get_span_context())],
        start_time=base + 45_000_023,
    )
    consumer.set_status(Status(StatusCode.OK))
    consumer.end(end_time=base + 46_000_029)
    root.end(end_time=base + 50_000_031)

    flushed = provider.force_flush(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)
    provider.shutdown()
    if not flushed:
        sys.exit("send.py: spans were not flushed in time")
    return [span_json(span) for span in memory.get_finished_spans()]


def send_metrics(args, resource: Resource) -> list:
    _, metric_exporter = exporters(args)
    temporality = (
        AggregationTemporality.DELTA if args.temporality == "delta" else AggregationTemporality.CUMULATIVE
    )
    reader = InMemoryMetricReader(
        preferred_temporality={
            Counter: temporality,
            UpDownCounter: temporality,
            Histogram: temporality,
            ObservableGauge: temporality,
        }
    )
    provider = MeterProvider(
        metric_readers=[reader],
        resource=resource,
        views=[
            View(
                instrument_name="checkout.latency",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=LATENCY_BOUNDS_MS),
            ),
            View(
                instrument_name="checkout.latency.exp",
                aggregation=ExponentialBucketHistogramAggregation(max_size=20),
            ),
        ],
    )
    meter = provider.get_meter("cartograph-tests.python", "0.1.0", attributes={"scope.purpose": "exporter-test"})

    orders = meter.create_counter("orders.placed", unit="{order}", description="Orders placed")
    orders.add(3, {"payment.method": "card"})
    orders.add(2, {"payment.method": "card"})
    orders.add(1, {"payment.method": "invoice", "first.order": True})

    in_flight = meter.create_up_down_counter("checkout.in_flight", unit="{request}")
    in_flight.add(5, {"route": "/checkout"})
    in_flight.add(-7, {"route": "/checkout"})

    meter.create_observable_gauge(
        "pool.usage",
        callbacks=[lambda _options: [Observation(0.75, {"pool": "db"}), Observation(3, {"pool": "http"})]],
        unit="1",
        description="Share of the pool in use",
    )

    latency = meter.create_histogram("checkout.latency", unit="ms", description="Checkout latency")
    for value in [1.5, 7.0, 30.0, 30.0, 720.25]:
        latency.record(value, {"route": "/checkout"})

    # Zero and positive values (histograms take no negative ones), so the zero count is used too.
    latency_exp = meter.create_histogram("checkout.latency.exp", unit="ms")
    for value in [0.0, 0.5, 1.0, 3.0, 3.5, 100.0]:
        latency_exp.record(value, {"route": "/checkout"})

    metrics_data = reader.get_metrics_data()
    result = metric_exporter.export(metrics_data, timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)
    metric_exporter.shutdown()
    provider.shutdown()
    if result != MetricExportResult.SUCCESS:
        sys.exit(f"send.py: metric export failed: {result}")
    return [
        point
        for resource_metrics in metrics_data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric_points_json(resource_metrics.resource, scope_metrics.scope, metric)
    ]


def any_value(value) -> dict:
    """An attribute value in OTLP/JSON form, typed the way the OTLP encoder types it."""
    if value is None:
        return {}
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(v)} for k, v in value.items()]}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    raise TypeError(f"unexpected attribute value {value!r} of type {type(value)}")


def attributes(attrs) -> dict:
    return {key: any_value(value) for key, value in (attrs or {}).items()}


def hex_span_id(span_id: int) -> str:
    return format(span_id, "016x")


def hex_trace_id(trace_id: int) -> str:
    return format(trace_id, "032x")


def span_flags(parent) -> int:
    return FLAG_HAS_IS_REMOTE | (FLAG_IS_REMOTE if parent is not None and parent.is_remote else 0)


def resource_json(resource: Resource) -> dict:
    return {"attributes": attributes(resource.attributes), "dropped_attributes_count": 0}


def scope_json(scope) -> dict:
    return {
        "name": scope.name,
        "version": scope.version or "",
        "attributes": attributes(scope.attributes),
        "dropped_attributes_count": 0,
    }


def span_json(span) -> dict:
    context = span.get_span_context()
    return {
        "trace_id": hex_trace_id(context.trace_id),
        "span_id": hex_span_id(context.span_id),
        "parent_span_id": hex_span_id(span.parent.span_id) if span.parent else None,
        "trace_state": ",".join(f"{key}={value}" for key, value in context.trace_state.items()),
        "flags": span_flags(span.parent),
        "name": span.name,
        "kind": span.kind.name.lower(),
        "start_time_unix_nano": str(span.start_time),
        "end_time_unix_nano": str(span.end_time),
        "status": {"code": span.status.status_code.name.lower(), "message": span.status.description or ""},
        "attributes": attributes(span.attributes),
        "dropped_attributes_count": span.dropped_attributes,
        "events": [
            {
                "time_unix_nano": str(event.timestamp),
                "name": event.name,
                "attributes": attributes(event.attributes),
                "dropped_attributes_count": event.dropped_attributes,
            }
            for event in span.events
        ],
        "dropped_events_count": span.dropped_events,
        "links": [
            {
                "trace_id": hex_trace_id(link.context.trace_id),
                "span_id": hex_span_id(link.context.span_id),
                # The Python OTLP encoder does not send a link's trace state.
                "trace_state": "",
                "flags": span_flags(link.context),
                "attributes": attributes(link.attributes),
                "dropped_attributes_count": link.dropped_attributes,
            }
            for link in span.links
        ],
        "dropped_links_count": span.dropped_links,
        "resource": resource_json(span.resource),
        "scope": scope_json(span.instrumentation_scope),
    }


def temporality_name(temporality: AggregationTemporality) -> str:
    return {AggregationTemporality.DELTA: "delta", AggregationTemporality.CUMULATIVE: "cumulative"}.get(
        temporality, "unspecified"
    )


def number(value) -> dict:
    return {"int": value} if isinstance(value, int) else {"double": value}


def point_value(data, point) -> dict:
    """The API's `value` object of one data point."""
    if isinstance(data, Sum):
        return {
            "type": "sum",
            "value": number(point.value),
            "temporality": temporality_name(data.aggregation_temporality),
            "is_monotonic": data.is_monotonic,
        }
    if isinstance(data, Gauge):
        return {"type": "gauge", "value": number(point.value)}
    common = {
        "count": point.count,
        "sum": float(point.sum),
        "min": float(point.min),
        "max": float(point.max),
        "temporality": temporality_name(data.aggregation_temporality),
    }
    if isinstance(data, ExponentialHistogram):
        return {
            "type": "exponential_histogram",
            **common,
            "scale": point.scale,
            "zero_count": point.zero_count,
            # The Python SDK has no zero threshold setting; the exporter sends none (0).
            "zero_threshold": 0.0,
            "positive": {"offset": point.positive.offset, "bucket_counts": list(point.positive.bucket_counts)},
            "negative": {"offset": point.negative.offset, "bucket_counts": list(point.negative.bucket_counts)},
        }
    return {
        "type": "histogram",
        **common,
        "bucket_counts": list(point.bucket_counts),
        "explicit_bounds": [float(bound) for bound in point.explicit_bounds],
    }


def metric_points_json(resource: Resource, scope, metric) -> list:
    points = []
    for point in metric.data.data_points:
        value = point_value(metric.data, point)
        points.append(
            {
                "name": metric.name,
                "description": metric.description or "",
                "unit": metric.unit or "",
                "type": value["type"],
                # The OTLP encoder sends no start time for gauges.
                "start_time_unix_nano": "0" if isinstance(metric.data, Gauge) else str(point.start_time_unix_nano),
                "time_unix_nano": str(point.time_unix_nano),
                "attributes": attributes(point.attributes),
                "flags": getattr(point, "flags", 0),
                "value": value,
                "resource": resource_json(resource),
                "scope": scope_json(scope),
            }
        )
    return points


if __name__ == "__main__":
    sys.exit(main())
