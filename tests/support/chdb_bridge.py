"""ClickHouse's HTTP interface over a chDB session: the real ClickHouse engine (PyPI
`chdb-core`), served on loopback so the official `clickhouse` Rust crate runs against it
unchanged (with compression off).

    python chdb_bridge.py --port 8123 --path DIR [--port-file FILE]

What it serves, as a ClickHouse server would:
- `GET /` and `GET /ping`: `Ok.`
- `POST /?database=D&default_format=F` with the SQL in the body: the result in format F.
- `POST /?database=D&query=INSERT INTO t(cols) FORMAT RowBinary[WithNamesAndTypes]` with the
  rows in the body: the body is written to a temporary file and inserted through `file()`.
- `param_NAME=value` in the URL: `{NAME:Type}` substitution by the engine (SET param_...).
- Errors: HTTP 500 with ClickHouse's own `Code: N. DB::Exception: ...` text and the
  `X-ClickHouse-Exception-Code` header.

Queries run one at a time, in arrival order (a chDB session is not thread-safe).
"""

import argparse
import os
import re
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chdb import session as chdb_session

class FairLock:
    """First come, first served: a client polling in a loop must not starve a writer."""

    def __init__(self):
        self._condition = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self):
        with self._condition:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._condition.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *exc):
        with self._condition:
            self._serving += 1
            self._condition.notify_all()


LOCK = FairLock()
SESSION = None
SCRATCH = None

INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>.+?)\s*\((?P<columns>[^)]*)\)\s*FORMAT\s+(?P<format>\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)


class Output:
    """A result's bytes as a view of the engine's own buffer, kept alive with it: a large read
    is 100+ MB, and copying it into a Python `bytes` took as long as the query."""

    def __init__(self, result):
        self._result = result
        self._wrapper = result.get_memview() if result is not None else None
        self.data = self._wrapper.view() if self._wrapper is not None else memoryview(b"")

    def text(self):
        return bytes(self.data).decode()


def run(sql, database, fmt, params):
    """Runs one statement in `database`; returns its [`Output`]."""
    with LOCK:
        if database:
            SESSION.query(f"USE `{database.replace('`', '')}`")
        for name, value in params.items():
            escaped = value.replace("\\", "\\\\").replace("'", "\\'")
            SESSION.query(f"SET param_{name} = '{escaped}'")
        return Output(SESSION.query(sql, fmt or "TabSeparated"))


def insert(statement, body, database):
    match = INSERT.match(statement)
    if not match:
        raise ValueError(f"Code: 62. DB::Exception: the bridge only takes INSERT INTO t(cols) FORMAT X with data, got: {statement[:200]}")
    fd, path = tempfile.mkstemp(dir=SCRATCH, suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(body)
        fmt = match["format"]
        columns = match["columns"]
        if fmt.lower() == "rowbinary":
            # Plain RowBinary carries no types: take them from the table.
            table = match["table"].strip()
            described = run(f"DESCRIBE TABLE {table}", database, "TabSeparated", {}).text()
            types = dict(line.split("\t")[:2] for line in described.splitlines() if line)
            names = [name.strip().strip("`") for name in columns.split(",")]
            structure = ", ".join(f"`{name}` {types[name]}" for name in names)
            source = f"file('{path}', 'RowBinary', '{structure}')"
        else:
            source = f"file('{path}', '{fmt}')"
        run(f"INSERT INTO {match['table']} ({columns}) SELECT * FROM {source}", database, None, {})
    finally:
        os.unlink(path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # As ClickHouse's server does: a reply's headers and body go out as written. With Nagle's
    # algorithm a small body waited for the client's delayed ACK of the headers (~40 ms).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        """The request body, whole: Content-Length or chunked (the client streams inserts)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.reply(200, b"Ok.\n")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        body = self.read_body()
        database = query.get("database")
        params = {key[len("param_"):]: value for key, value in query.items() if key.startswith("param_")}
        try:
            if "query" in query:
                if body:
                    insert(query["query"], body, database)
                    output = Output(None)
                else:
                    output = run(query["query"], database, query.get("default_format"), params)
            else:
                output = run(body.decode(), database, query.get("default_format"), params)
            self.reply(200, output.data, [("X-ClickHouse-Format", query.get("default_format") or "TabSeparated")])
        except Exception as error:  # the engine's own message, as ClickHouse sends it
            text = str(error)
            code = re.search(r"Code: (\d+)", text)
            if not code:
                text = f"Code: 1000. DB::Exception: {text}"
            self.reply(500, (text + "\n").encode(), [("X-ClickHouse-Exception-Code", code[1] if code else "1000")])


def main():
    global SESSION, SCRATCH
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", required=True)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    os.makedirs(args.path, exist_ok=True)
    SCRATCH = tempfile.mkdtemp(prefix="chdb-bridge-")
    SESSION = chdb_session.Session(args.path)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as file:
            file.write(str(server.server_address[1]))
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"chdb bridge on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
