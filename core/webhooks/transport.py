"""Posting one webhook: pinned to checked addresses, no redirects, 15 s.

``http.client`` is used directly (no redirect following, no proxies from the
environment, no connection pooling across endpoints): the connection goes to
an address ``core.webhooks.guard`` has just checked, while the Host header and
TLS (SNI and certificate) use the URL's host name.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import WebhookUrlForbidden
from core.webhooks.guard import Resolver, resolve_public, system_resolver

TIMEOUT_SECONDS = 15.0
"""The whole attempt: connect, send, and the response status and headers."""

EXCERPT_BYTES = 1024
"""Bytes of the response body kept in the delivery log."""

USER_AGENT = "Tonehub-Webhooks/1.0"


@dataclass(frozen=True)
class SendResult:
    """What one attempt got back.

    Attributes:
        status: HTTP status, or ``None`` when no response came.
        headers: Response headers (lower-case names).
        excerpt: The start of the response body.
        latency_ms: Time taken.
        error: Why there was no response (``timeout``, ``connect``,
            ``forbidden: ...``), else ``None``.
    """

    status: int | None
    headers: Mapping[str, str]
    excerpt: str
    latency_ms: int
    error: str | None = None


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, verifying the certificate for the host name."""

    def __init__(
        self,
        host: str,
        address: str,
        *,
        port: int,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port=port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.host
        )


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, *, port: int, timeout: float) -> None:
        super().__init__(host, port=port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_hosts: Collection[str],
    timeout: float = TIMEOUT_SECONDS,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> SendResult:
    """POST a webhook once and report what happened (never raises for HTTP).

    Args:
        url: The endpoint (http or https).
        body: The signed body.
        headers: The signed headers.
        allow_hosts: Hosts exempt from the SSRF guard.
        timeout: Seconds for the whole attempt.
        resolver: Name resolution (tests inject one).
        ssl_context: TLS settings (tests trust their own CA).
    """
    started = time.monotonic()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        address = resolve_public(
            host, port, allow_hosts=allow_hosts, resolver=resolver
        )[0]
    except WebhookUrlForbidden as exc:
        return SendResult(None, {}, "", elapsed(), f"forbidden: {exc.message}"[:255])
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl_context or ssl.create_default_context()
        conn = _PinnedHTTPS(host, address, port=port, timeout=timeout, context=context)
    else:
        conn = _PinnedHTTP(host, address, port=port, timeout=timeout)
    # Socket timeouts bound each read, not the attempt: a receiver dripping a
    # byte a second would hold the worker. The watchdog cuts the connection
    # when the attempt's time is up.
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST", path, body=body, headers={**headers, "user-agent": USER_AGENT}
        )
        if conn.sock is not None:
            conn.sock.settimeout(max(0.1, timeout - (time.monotonic() - started)))
        response = conn.getresponse()
        if conn.sock is not None:
            conn.sock.settimeout(max(0.1, timeout - (time.monotonic() - started)))
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", "replace")
        if expired.is_set():
            return SendResult(None, {}, "", elapsed(), "timeout")
        return SendResult(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            excerpt,
            elapsed(),
        )
    except TimeoutError:
        return SendResult(None, {}, "", elapsed(), "timeout")
    except ssl.SSLError as exc:
        if expired.is_set():
            return SendResult(None, {}, "", elapsed(), "timeout")
        return SendResult(None, {}, "", elapsed(), f"tls: {exc.reason or exc}"[:255])
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            return SendResult(None, {}, "", elapsed(), "timeout")
        return SendResult(None, {}, "", elapsed(), f"connect: {type(exc).__name__}")
    except (UnicodeError, ValueError) as exc:  # a URL or header http.client refuses
        return SendResult(None, {}, "", elapsed(), f"invalid: {type(exc).__name__}")
    finally:
        watchdog.cancel()
        conn.close()
