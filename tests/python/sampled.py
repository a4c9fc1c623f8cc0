"""Sampled traces, sent with the Python OpenTelemetry SDK, for tests/api/sampling_e2e.rs.

Two services, each with its own TracerProvider (and resource) exporting over OTLP/HTTP:
`sampled-web` calls `sampled-pay` CALLS times (POST /pay; every FAIL_EVERY-th call fails).
The root sampler is a consistent probability sampler at 25 %: it keeps a trace when the 56
random bits of its trace id are at least the threshold 0xc0000000000000 and writes that
threshold into the span's tracestate as `ot=th:c`, as OpenTelemetry's consistent probability
samplers do; children follow their parent (ParentBased), inheriting the tracestate. Trace ids
come from a seeded generator, so the same traces are kept on every run.

Prints one JSON line: {"calls": CALLS, "sampled": kept calls, "sampled_failed": kept failures}.

Usage: sampled.py --otlp-endpoint http://127.0.0.1:PORT
"""

import argparse
import json
import random

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode, TraceState

CALLS = 400
FAIL_EVERY = 5
THRESHOLD = 0xC0_0000_0000_0000
RANDOMNESS_MASK = (1 << 56) - 1


class ConsistentProbability(Sampler):
    """Keeps 25 % of traces by their randomness and says so in tracestate (`ot=th:c`)."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        if trace_id & RANDOMNESS_MASK < THRESHOLD:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, TraceState([("ot", "th:c")]))

    def get_description(self) -> str:
        return "ConsistentProbability{0.25}"


class SeededIds(IdGenerator):
    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.random.getrandbits(128) or 1


def provider(endpoint: str, service: str, sampler: Sampler, seed: int) -> TracerProvider:
    tracer_provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=sampler,
        id_generator=SeededIds(seed),
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=10)
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    return tracer_provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otlp-endpoint", required=True)
    args = parser.parse_args()
    web = provider(args.otlp_endpoint, "sampled-web", ParentBased(root=ConsistentProbability()), 7)
    pay = provider(args.otlp_endpoint, "sampled-pay", ParentBased(root=ALWAYS_ON), 8)
    web_tracer = web.get_tracer("sampled")
    pay_tracer = pay.get_tracer("sampled")
    sampled = sampled_failed = 0
    for number in range(1, CALLS + 1):
        fails = number % FAIL_EVERY == 0
        client_attributes = {"http.request.method": "POST", "server.address": "pay.internal", "server.port": 8080}
        with web_tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=client_attributes) as client:
            server_attributes = {"http.request.method": "POST", "http.route": "/pay"}
            with pay_tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER, attributes=server_attributes) as server:
                if fails:
                    server.set_status(Status(StatusCode.ERROR, "declined"))
            if fails:
                client.set_status(Status(StatusCode.ERROR, "declined"))
            if client.get_span_context().trace_flags.sampled:
                sampled += 1
                sampled_failed += int(fails)
    web.shutdown()
    pay.shutdown()
    print(json.dumps({"calls": CALLS, "sampled": sampled, "sampled_failed": sampled_failed}))


if __name__ == "__main__":
    main()
