"""Times what `cartograph serve --demo` shows a new user (BENCHMARKS.md): when the whole shop is
on the map, when the payments breaker opened and closed again, when consumer lag grew and
drained. Usage: python3 scripts/demo-watch.py target/release/cartograph
"""
import json, time, urllib.request, subprocess, sys
B = sys.argv[1]
p = subprocess.Popen([B, "serve", "--demo", "--store", "memory"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t0 = time.time()
def get(path):
    try:
        return json.load(urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=2))
    except Exception:
        return None
want = {"service:gateway","service:users","service:orders","service:payments","service:inventory","service:notifications",
        "database:postgresql orders-db:5432/orders","database:redis users-cache:6379/0","topic:kafka orders.created","external:payment-provider"}
full = None; opened = None; closed = None; peak = 0; drained = None
while time.time() - t0 < 130:
    g = get("/api/v1/graph?window=5m")
    if g and full is None:
        nodes = {n["id"] for n in g["nodes"]}
        if want <= nodes: full = time.time() - t0
    b = get("/api/v1/breakers?window=5m")
    if b and b["breakers"]:
        states = [t["to"] for t in b["breakers"][0]["transitions"]]
        if "open" in states and opened is None: opened = time.time() - t0
        if opened and "closed" in states[states.index("open"):] and closed is None: closed = time.time() - t0
    k = get("/api/v1/kafka?window=5m")
    if k:
        lag = sum(g["lag"] for g in k["groups"])
        peak = max(peak, lag)
        if peak >= 20 and lag <= peak / 4 and drained is None: drained = time.time() - t0
    if full and closed and drained: break
    time.sleep(0.5)
p.terminate(); p.wait()
print(f"full map {full}, breaker opened {opened} closed {closed}, lag peak {peak} drained {drained}")
