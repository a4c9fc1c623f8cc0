"""Freshness of the map (BENCHMARKS.md): while `cartograph loadgen` sends 50k spans/s, a probe
exports one client/server pair between two fresh services over OTLP/HTTP JSON and times how long
until /api/v1/graph shows that edge. Prints p50/p99 over the probes.

Usage: python3 scripts/bench-freshness.py target/release/cartograph [probes=40] [serve args, default --store memory]
"""
import json, os, subprocess, sys, time, urllib.request

binary = sys.argv[1]
probes = int(sys.argv[2]) if len(sys.argv) > 2 else 40
server = subprocess.Popen([binary, *(sys.argv[3:] or ["--store", "memory"])],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(2)
load = subprocess.Popen([binary, "loadgen", "--rate", "50000", "--duration", str(probes + 20)],
                        stdout=subprocess.PIPE, text=True)
time.sleep(3)

def pair(n):
    trace = os.urandom(16).hex()
    client, server_id = os.urandom(8).hex(), os.urandom(8).hex()
    now = time.time_ns()
    def resource(name, span):
        return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
                "scopeSpans": [{"spans": [span]}]}
    common = {"traceId": trace, "startTimeUnixNano": str(now - 5_000_000), "endTimeUnixNano": str(now),
              "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}]}
    return {"resourceSpans": [
        resource(f"probe-caller-{n}", dict(common, spanId=client, name="GET", kind=3)),
        resource(f"probe-callee-{n}", dict(common, spanId=server_id, parentSpanId=client, name="GET /x", kind=2)),
    ]}

latencies = []
for n in range(probes):
    body = json.dumps(pair(n)).encode()
    request = urllib.request.Request("http://127.0.0.1:4318/v1/traces", body, {"content-type": "application/json"})
    sent = time.time()
    urllib.request.urlopen(request, timeout=5).read()
    want = (f"service:probe-caller-{n}", f"service:probe-callee-{n}")
    while True:
        graph = json.load(urllib.request.urlopen("http://127.0.0.1:8080/api/v1/graph?window=5m", timeout=30))
        if any((e["source"], e["target"]) == want for e in graph["edges"]):
            latencies.append(time.time() - sent)
            break
        if time.time() - sent > 30:
            latencies.append(float("inf"))
            break
        time.sleep(0.01)
    time.sleep(0.5)
load.terminate(); load.wait(); server.terminate(); server.wait()
latencies.sort()
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
print(f"{len(latencies)} probes under 50k spans/s: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {latencies[-1]*1000:.0f} ms")
