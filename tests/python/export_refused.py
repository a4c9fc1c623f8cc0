"""Exports two batches with the Python SDK's OTLP/gRPC span exporter and prints, as JSON, what the
exporter reported and how long it took: a batch over the server's `ingest.max_message_bytes`
(it must fail at once: the exporter retries only the codes the OTLP specification calls
retryable) and a small one (it must succeed). For tests/api/hostile.rs.

Usage: export_refused.py HOST:PORT
"""

import json
import sys
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def spans(count, attribute_bytes):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("export_refused")
    for index in range(count):
        with tracer.start_as_current_span(f"GET /item/{index}") as span:
            span.set_attribute("payload", "x" * attribute_bytes)
    return memory.get_finished_spans()


def timed_export(exporter, batch):
    started = time.monotonic()
    result = exporter.export(batch)
    return {"result": result.name, "seconds": round(time.monotonic() - started, 3)}


def main():
    exporter = OTLPSpanExporter(endpoint=sys.argv[1], insecure=True, timeout=20)
    # ~200 KB, over a 64 KiB limit.
    large = timed_export(exporter, spans(50, 4000))
    small = timed_export(exporter, spans(1, 10))
    exporter.shutdown()
    print(json.dumps({"large": large, "small": small}))


if __name__ == "__main__":
    main()
