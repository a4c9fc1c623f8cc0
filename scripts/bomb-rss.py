"""Peak memory of a cartograph process taking decoding bombs: ~87 KB of gzip that inflates to
60 MB of OTLP protobuf holding one span with 12M attributes, posted N times at once to
OTLP/HTTP. Prints the statuses and the process's peak RSS (VmHWM) before and after.

Usage: python3 scripts/bomb-rss.py PATH/TO/cartograph [N]   (N defaults to 1; standard library only)
"""

import gzip
import subprocess
import sys
import threading
import time
import urllib.request


def varint(value):
    out = b""
    while value >= 0x80:
        out += bytes([(value & 0x7F) | 0x80])
        value >>= 7
    return out + bytes([value])


def field(number, payload):
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def bomb():
    attributes = field(9, field(1, b"a")) * 12_000_000
    span = field(1, b"\x01" * 16) + field(2, b"\x02" * 8) + field(5, b"GET /bomb") + attributes
    resource = field(1, field(1, field(1, b"service.name") + field(2, field(1, b"bomber"))))
    return field(1, resource + field(2, field(2, span)))


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    binary, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
    server = subprocess.Popen(
        [binary, "serve", "--store", "memory", "--otlp-grpc", "127.0.0.1:24317",
         "--otlp-http", "127.0.0.1:24318", "--ui", "127.0.0.1:28080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        request = bomb()
        body = gzip.compress(request, 6)
        before = peak_mib(server.pid)

        def post():
            message = urllib.request.Request(
                "http://127.0.0.1:24318/v1/traces", data=body,
                headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"})
            try:
                with urllib.request.urlopen(message, timeout=120) as response:
                    print("status", response.status)
            except urllib.error.HTTPError as err:
                print("status", err.code)

        started = time.time()
        threads = [threading.Thread(target=post) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"{count} at once: {len(body) // 1000} KB gzip, {len(request) // 1_000_000} MB "
              f"protobuf; peak RSS {before} -> {peak_mib(server.pid)} MiB "
              f"in {time.time() - started:.1f} s")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
