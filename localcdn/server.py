"""The HTTP front: the emulated distribution, the gallery and the `/_localcdn/` controls."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from localcdn import gallery
from localcdn.distribution import PRIMARY_STATES, Distribution
from localcdn.jobs import LocalSync

CONTROL = "/_localcdn/"


class Service:
    """What the handler needs: the distribution, its storage, and the stack's name."""

    def __init__(self, distribution: Distribution, stack: str, *, quiet: bool = False):
        self.distribution = distribution
        self.storage = distribution.storage
        self.stack = stack
        self.sync = LocalSync(distribution)
        self.quiet = quiet


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


class Handler(BaseHTTPRequestHandler):
    service: Service
    server_version = "localcdn"
    protocol_version = "HTTP/1.1"

    # -- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        if not self.service.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(
            status,
            {"Content-Type": "application/json", "Cache-Control": "no-store"},
            json.dumps(data, indent=1).encode(),
        )

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _split(self) -> tuple[str, str]:
        path, _, query = self.path.partition("?")
        return path, query

    # -- methods ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_OPTIONS(self) -> None:
        self._send(
            204,
            {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": "*",
                "Access-Control-Max-Age": "86400",
            },
            b"",
        )

    def do_PUT(self) -> None:
        path, _ = self._split()
        if path == CONTROL + "primary":
            state = self._body().decode(errors="replace").strip().lower()
            if state not in PRIMARY_STATES:
                self._json(
                    400,
                    {
                        "error": "InvalidParameter",
                        "parameter": "primary",
                        "expected": "one of " + ", ".join(PRIMARY_STATES),
                        "received": state,
                    },
                )
                return
            self.service.distribution.set_primary(state)
            self._json(200, {"primary": state})
        elif path.startswith(CONTROL + "originals/"):
            self._json(*self.service.sync.upload(path[len(CONTROL + "originals/") :], self._body()))
        else:
            self._refuse()

    def do_POST(self) -> None:
        path, _ = self._split()
        if path == CONTROL + "invalidate":
            self._json(200, {"invalidated": self.service.distribution.invalidate(_paths(self._body()))})
        elif path == CONTROL + "sync":
            self._json(200, self.service.sync.reconcile())
        else:
            self._refuse()

    def do_DELETE(self) -> None:
        path, _ = self._split()
        if path.startswith(CONTROL + "originals/"):
            self._json(*self.service.sync.remove(path[len(CONTROL + "originals/") :]))
        else:
            self._refuse()

    def _refuse(self) -> None:
        self._json(
            403,
            {
                "error": "MethodNotAllowed",
                "message": f"{self.command} {self._split()[0]} is not something this distribution does",
            },
        )

    def _get(self, head: bool) -> None:
        path, query = self._split()
        service = self.service
        if path == "/":
            page = gallery.render(service.stack, service.distribution.primary.state, service.storage.originals())
            self._send(
                200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, page.encode(), head
            )
        elif path == CONTROL + "health":
            self._json(
                200,
                {
                    "status": "ready",
                    "stack": service.stack,
                    "primary": service.distribution.primary.state,
                    "s3_endpoint": service.storage.endpoint,
                },
            )
        elif path == CONTROL + "primary":
            self._json(200, {"primary": service.distribution.primary.state})
        elif path == CONTROL + "requests":
            self._json(200, list(service.distribution.log))
        elif path == CONTROL + "dlq":
            self._json(200, list(service.sync.dead_letters))
        elif path == CONTROL + "variants":
            originals = service.storage.originals()
            stored = {key: service.storage.variants_of(key) for key, _ in originals}
            self._json(200, gallery.variant_table(originals, stored))
        elif path.startswith(CONTROL):
            self._json(404, {"error": "NotFound", "message": f"no control endpoint {path}"})
        else:
            headers = {name: value for name, value in self.headers.items()}
            response = service.distribution.request("HEAD" if head else "GET", path, query, headers)
            self._send(response.status, response.headers, response.body, head)


def _paths(body: bytes) -> list[str] | None:
    """An invalidation body: nothing (everything), a JSON list, {"paths": [...]}, or one path per line."""
    text = body.decode(errors="replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    paths = data.get("paths") if isinstance(data, dict) else data
    return [str(p) for p in paths] if isinstance(paths, list) else None
