"""A stand-in for a non-Python HTTP app: it knows nothing of trimicro, only HTTP and JSON.

    GET  /health      → 200 {"status": "ok"}
    POST /say/hello   {"name": "Ann"} → 200 {"msg": "Hello Ann"}; no name → 400 {"detail": ...}

Run: `python -m examples.sidecar.app [--host 127.0.0.1] [--port 9000]` (port 0: any free
port). It prints `listening on HOST:PORT` on stderr once it serves.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"detail": f"no such path {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/say/hello":
            self._json(404, {"detail": f"no such path {self.path}"})
            return
        length = int(self.headers.get("content-length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._json(400, {"detail": "body is not JSON"})
            return
        name = request.get("name") if isinstance(request, dict) else None
        if not isinstance(name, str) or not name:
            self._json(400, {"detail": "name must not be empty"})
            return
        reply = {"msg": f"Hello {name}"}
        if self.headers.get("x-user"):  # call metadata arrives as X-* headers
            reply["user"] = self.headers["x-user"]
        self._json(200, reply)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the sidecar logs what matters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    with ThreadingHTTPServer((args.host, args.port), Handler) as server:
        host, port = server.server_address[:2]
        print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
