"""A threaded loopback HTTP server for the fakes of external services.

Binds port 0 and publishes the real port (``url``); records every request so
tests can assert on what the product sent. A fake subclasses ``FakeService``
and implements ``handle``. Stdlib only: the fakes import nothing from the
product, so each one also runs on its own for demos (``python -m tests.fakes.X``).
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header, case-insensitively."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What the fake answers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> Response:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def html(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


class FakeService:
    """Base of a fake: a server thread, a request log, a ``handle`` method."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[Request] = []
        self._log_lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with fake._log_lock:
                    fake.requests.append(req)
                try:
                    resp = fake.handle(req)
                except Exception as exc:  # a bug in the fake: say so loudly
                    resp = Response.json(500, {"fake_error": repr(exc)})
                self.send_response(resp.status)
                for name, value in resp.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                if fake.verbose:
                    super().log_message(format, *args)

        self.verbose = False
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def handle(self, request: Request) -> Response:  # pragma: no cover
        raise NotImplementedError

    def start(self) -> FakeService:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def received(self, method: str, path: str) -> list[Request]:
        """Requests with this method and path, in order."""
        with self._log_lock:
            return [r for r in self.requests if r.method == method and r.path == path]


def serve_forever(fake: FakeService, name: str, settings: dict[str, str]) -> None:
    """Run a fake in the foreground (``python -m tests.fakes.X``) until Ctrl-C,
    printing the settings that point Tonehub at it."""
    fake.verbose = True
    fake.start()
    print(f"Fake {name} on {fake.url}")
    for key, value in settings.items():
        print(f"  {key}={value}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


def parse_form(body: bytes) -> dict[str, Any]:
    """Decode Stripe-style form bodies: ``a[b][0][c]=v`` -> nested dicts/lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({})
                if last:
                    node[index] = value
                else:
                    nxt = parts[i + 1]
                    if not isinstance(node[index], (dict, list)) or node[index] == {}:
                        node[index] = [] if nxt.isdigit() else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    nxt = parts[i + 1]
                    node = node.setdefault(part, [] if nxt.isdigit() else {})
    return root
