"""A webhook receiver that verifies Standard Webhooks signatures itself.

It implements the receiver side of https://www.standardwebhooks.com/ from the
spec, not from Tonehub's code: the secret is ``whsec_`` + base64, the signed
content ``{webhook-id}.{webhook-timestamp}.{body}``, ``webhook-signature`` a
space-separated list of ``v1,<base64 HMAC-SHA256>``; a message is genuine if
any signature matches and the timestamp is within 5 minutes. Every delivery
is recorded with whether it verified. ``plan`` programs the answers (status,
delay, headers) so tests can drive retries, 410s, redirects and timeouts.

Standalone, for demos::

    python -m tests.fakes.webhook_receiver --secret whsec_...   # port 8790
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass

from tests.fakes._server import FakeService, Request, Response, serve_forever

TOLERANCE_SECONDS = 300


def verify(
    secrets: list[str], headers: dict[str, str], body: bytes, *, now: float
) -> bool:
    """Whether a message carries a valid signature by any of ``secrets``."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures and stamp.isdigit()):
        return False
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        return False
    content = f"{msg_id}.{stamp}.".encode() + body
    expected = {
        base64.b64encode(
            hmac.new(
                base64.b64decode(s.removeprefix("whsec_")), content, hashlib.sha256
            ).digest()
        ).decode()
        for s in secrets
    }
    for sig in signatures.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and any(hmac.compare_digest(value, e) for e in expected):
            return True
    return False


@dataclass
class Delivery:
    """One message received."""

    msg_id: str
    event: dict
    verified: bool
    signatures: list[str]
    received_at: float


@dataclass
class Answer:
    """What to answer to the next message."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] | None = None
    body: bytes = b"ok"


class WebhookReceiver(FakeService):
    """Records and verifies deliveries; answers as planned (else 200)."""

    def __init__(self, secrets: list[str] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.secrets: list[str] = list(secrets or [])
        self.deliveries: list[Delivery] = []
        self.plan: deque[Answer] = deque()
        self.arrived = threading.Condition()

    def handle(self, request: Request) -> Response:
        answer = self.plan.popleft() if self.plan else Answer()
        if answer.delay:
            time.sleep(answer.delay)
        try:
            event = json.loads(request.body)
        except ValueError:
            event = {}
        delivery = Delivery(
            msg_id=request.header("webhook-id") or "",
            event=event,
            verified=verify(
                self.secrets, request.headers, request.body, now=time.time()
            ),
            signatures=(request.header("webhook-signature") or "").split(" "),
            received_at=time.time(),
        )
        with self.arrived:
            self.deliveries.append(delivery)
            self.arrived.notify_all()
        status = answer.status
        if self.secrets and not delivery.verified and status < 300:
            status = 401
        return Response(status, answer.body, dict(answer.headers or {}))

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Delivery]:
        """Block until ``count`` deliveries arrived (or the timeout)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--secret", action="append", default=[])
    args = parser.parse_args()

    class Printing(WebhookReceiver):
        def handle(self, request: Request) -> Response:
            response = super().handle(request)
            last = self.deliveries[-1]
            print(
                f"{last.msg_id} {last.event.get('type')} verified={last.verified} "
                f"-> {response.status}",
                flush=True,
            )
            return response

    receiver = Printing(args.secret, port=args.port)
    serve_forever(
        receiver,
        "webhook receiver",
        {"TONEHUB_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"},
    )


if __name__ == "__main__":
    main()
