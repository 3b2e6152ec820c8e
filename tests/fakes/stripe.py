"""A loopback fake of the Stripe API, for the real ``stripe`` library.

Implements what Tonehub uses, with Stripe's request and response shapes:
form-encoded bodies with bracketed keys, ``Authorization: Bearer sk_...``,
``Idempotency-Key`` replay, error bodies ``{"error": {"type", "code",
"message", "param"}}`` with ``Request-Id``, 401/400/404/429 answers:

    POST   /v1/customers                 GET /v1/customers/{id}
    POST   /v1/checkout/sessions         GET /v1/checkout/sessions/{id}
    POST   /v1/billing_portal/sessions
    GET    /v1/subscriptions/{id}        POST /v1/subscriptions/{id}
    DELETE /v1/subscriptions/{id}

What a buyer or Stripe's clock would do is driven through control endpoints
(no auth) and the hosted pages, each emitting the events Stripe emits, signed
as Stripe signs them (``Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of
"<ts>.<body>">``). Events go to ``webhook_url`` when one is set, and are kept
in ``events`` for tests to deliver in any order:

    GET  /c/pay/{session}      hosted Checkout page; POST completes the payment
    GET  /p/session/{id}       Customer Portal page (cancel, switch plan)
    POST /_fake/checkout/{session}/complete
    POST /_fake/subscriptions/{id}/payment_failed | /pay | /cancel_at_period_end
         | /end_period
    POST /_fake/fail_next      {"status": 429} makes the next API call fail

Run it alone for a demo: ``python -m tests.fakes.stripe --port 12111
--webhook-url http://127.0.0.1:8000/webhooks/stripe``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.request
from typing import Any

from tests.fakes._server import (
    FakeService,
    Request,
    Response,
    parse_form,
    serve_forever,
)

API_KEY = "sk_test_tonehub_fake"
WEBHOOK_SECRET = "whsec_tonehub_fake"
PRICES = {"price_plus_monthly": 4900, "price_pro_monthly": 19900}
PERIOD_SECONDS = 30 * 86_400


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def stripe_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error answer in Stripe's shape."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return Response.json(
        status, {"error": error}, {"Request-Id": _id("req"), **(headers or {})}
    )


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` for a body, computed as Stripe does."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


class FakeStripe(FakeService):
    """The fake. ``events`` holds every event emitted, oldest first."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        webhook_secret: str = WEBHOOK_SECRET,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[tuple[str, int]] = []
        self._idempotent: dict[str, tuple[bytes, Response]] = {}
        self._fail_next: list[Response] = []
        self._lock = threading.RLock()

    # --- dispatch ----------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(request)
        if path.startswith("/c/pay/") or path.startswith("/p/session/"):
            return self._pages(request)
        if not path.startswith("/v1/"):
            return stripe_error(
                404, f"Unrecognized request URL ({request.method}: {path})."
            )
        auth = request.header("Authorization") or ""
        if auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")[:12] or "(none)"
            return stripe_error(401, f"Invalid API Key provided: {shown}***")
        with self._lock:
            if self._fail_next:
                return self._fail_next.pop(0)
            key = request.header("Idempotency-Key")
            if request.method == "POST" and key:
                seen = self._idempotent.get(key)
                if seen is not None:
                    if seen[0] != request.body:
                        return stripe_error(
                            400,
                            "Keys for idempotent requests can only be used with the "
                            "same parameters they were first used with.",
                            type_="idempotency_error",
                        )
                    replay = seen[1]
                    replay.headers["Idempotent-Replayed"] = "true"
                    return replay
            response = self._api(request)
            if request.method == "POST" and key and response.status < 500:
                self._idempotent[key] = (request.body, response)
            response.headers.setdefault("Request-Id", _id("req"))
            return response

    def _api(self, request: Request) -> Response:
        routes: list[tuple[str, str, Any]] = [
            ("POST", r"/v1/customers", self._create_customer),
            ("GET", r"/v1/customers/(?P<id>[^/]+)", self._get_customer),
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", self._get_session),
            ("POST", r"/v1/billing_portal/sessions", self._create_portal),
            (
                "POST",
                r"/v1/checkout/sessions/(?P<id>[^/]+)/expire",
                self._expire_session,
            ),
            ("GET", r"/v1/subscriptions", self._list_subscriptions),
            ("GET", r"/v1/subscriptions/(?P<id>[^/]+)", self._get_subscription),
            ("POST", r"/v1/subscriptions/(?P<id>[^/]+)", self._update_subscription),
            ("DELETE", r"/v1/subscriptions/(?P<id>[^/]+)", self._cancel_subscription),
        ]
        for method, pattern, fn in routes:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                if request.method == "POST":
                    params = parse_form(request.body)
                else:
                    params = dict(request.query)
                return fn(params, **match.groupdict())
        return stripe_error(
            404, f"Unrecognized request URL ({request.method}: {request.path})."
        )

    # --- API -------------------------------------------------------------------

    def _missing(self, kind: str, ident: str, param: str = "id") -> Response:
        return stripe_error(
            404 if param == "id" else 400,
            f"No such {kind}: '{ident}'",
            code="resource_missing",
            param=param,
        )

    def _create_customer(self, params: dict[str, Any]) -> Response:
        customer = {
            "id": _id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
            "livemode": False,
        }
        self.customers[customer["id"]] = customer
        return Response.json(200, customer)

    def _get_customer(self, _params: dict[str, Any], id: str) -> Response:
        if id not in self.customers:
            return self._missing("customer", id)
        return Response.json(200, self.customers[id])

    def _create_session(self, params: dict[str, Any]) -> Response:
        for required in ("mode", "success_url"):
            if not params.get(required):
                return stripe_error(
                    400,
                    f"Missing required param: {required}.",
                    code="parameter_missing",
                    param=required,
                )
        if params["mode"] != "subscription":
            return stripe_error(400, "This fake supports mode=subscription only.")
        customer = params.get("customer")
        if customer and customer not in self.customers:
            return self._missing("customer", customer, "customer")
        items = params.get("line_items") or []
        price = items[0].get("price") if items else None
        if price not in PRICES:
            return self._missing("price", str(price), "line_items[0][price]")
        session = {
            "id": _id("cs_test"),
            "object": "checkout.session",
            "created": int(time.time()),
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "status": "open",
            "payment_status": "unpaid",
            "subscription": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "livemode": False,
            "_price": price,
            "_subscription_metadata": (params.get("subscription_data") or {}).get(
                "metadata", {}
            ),
        }
        session["url"] = f"{self.url}/c/pay/{session['id']}"
        self.sessions[session["id"]] = session
        return Response.json(200, _public(session))

    def _get_session(self, _params: dict[str, Any], id: str) -> Response:
        if id not in self.sessions:
            return self._missing("checkout.session", id)
        return Response.json(200, _public(self.sessions[id]))

    def _expire_session(self, _params: dict[str, Any], id: str) -> Response:
        session = self.sessions.get(id)
        if session is None:
            return self._missing("checkout.session", id)
        if session["status"] != "open":
            return stripe_error(
                400,
                'Only Checkout Sessions with a status in ["open"] can be expired.',
            )
        session["status"] = "expired"
        return Response.json(200, _public(session))

    def _list_subscriptions(self, params: dict[str, Any]) -> Response:
        customer = params.get("customer")
        status = params.get("status")
        limit = int(params.get("limit", 10))
        subs = [
            s
            for s in sorted(
                self.subscriptions.values(), key=lambda s: s["created"], reverse=True
            )
            if (customer is None or s["customer"] == customer)
            and (
                status == "all"
                or (status is None and s["status"] != "canceled")
                or s["status"] == status
            )
        ]
        after = params.get("starting_after")
        if after:
            ids = [s["id"] for s in subs]
            subs = subs[ids.index(after) + 1 :] if after in ids else []
        return Response.json(
            200,
            {
                "object": "list",
                "url": "/v1/subscriptions",
                "has_more": len(subs) > limit,
                "data": subs[:limit],
            },
        )

    def _create_portal(self, params: dict[str, Any]) -> Response:
        customer = params.get("customer")
        if not customer:
            return stripe_error(
                400,
                "Missing required param: customer.",
                code="parameter_missing",
                param="customer",
            )
        if customer not in self.customers:
            return self._missing("customer", customer, "customer")
        portal = {
            "id": _id("bps"),
            "object": "billing_portal.session",
            "created": int(time.time()),
            "customer": customer,
            "return_url": params.get("return_url"),
            "livemode": False,
        }
        portal["url"] = f"{self.url}/p/session/{portal['id']}?customer={customer}"
        return Response.json(200, portal)

    def _get_subscription(self, _params: dict[str, Any], id: str) -> Response:
        if id not in self.subscriptions:
            return self._missing("subscription", id)
        return Response.json(200, self.subscriptions[id])

    def _update_subscription(self, params: dict[str, Any], id: str) -> Response:
        sub = self.subscriptions.get(id)
        if sub is None:
            return self._missing("subscription", id)
        if "cancel_at_period_end" in params:
            sub["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        items = params.get("items") or []
        if items and items[0].get("price"):
            if items[0]["price"] not in PRICES:
                return self._missing("price", items[0]["price"], "items[0][price]")
            sub["items"]["data"][0]["price"] = _price(items[0]["price"])
        self._emit("customer.subscription.updated", sub)
        return Response.json(200, sub)

    def _cancel_subscription(self, _params: dict[str, Any], id: str) -> Response:
        sub = self.subscriptions.get(id)
        if sub is None:
            return self._missing("subscription", id)
        sub["status"] = "canceled"
        sub["canceled_at"] = int(time.time())
        self._emit("customer.subscription.deleted", sub)
        return Response.json(200, sub)

    # --- what buyers and Stripe's clock do ------------------------------------

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """The buyer pays: a subscription starts and its events are emitted."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] == "complete":
                return self.subscriptions[session["subscription"]]
            if session["status"] == "expired":
                raise KeyError(f"checkout session {session_id} has expired")
            now = int(time.time())
            sub = {
                "id": _id("sub"),
                "object": "subscription",
                "created": now,
                "customer": session["customer"],
                "status": "active",
                "cancel_at_period_end": False,
                "canceled_at": None,
                "metadata": session["_subscription_metadata"],
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "id": _id("si"),
                            "object": "subscription_item",
                            "price": _price(session["_price"]),
                            "quantity": 1,
                            "current_period_start": now,
                            "current_period_end": now + PERIOD_SECONDS,
                        }
                    ],
                },
                "livemode": False,
            }
            self.subscriptions[sub["id"]] = sub
            session.update(
                status="complete", payment_status="paid", subscription=sub["id"]
            )
            self._emit("customer.subscription.created", sub)
            self._emit("checkout.session.completed", _public(session))
            self._emit("invoice.paid", self._invoice(sub, paid=True))
            return sub

    def payment_failed(self, sub_id: str) -> None:
        """A renewal charge fails: past_due, invoice.payment_failed."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            sub["status"] = "past_due"
            self._emit("invoice.payment_failed", self._invoice(sub, paid=False))
            self._emit("customer.subscription.updated", sub)

    def pay(self, sub_id: str) -> None:
        """A retried charge succeeds: active again, invoice.paid."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            sub["status"] = "active"
            self._emit("invoice.paid", self._invoice(sub, paid=True))
            self._emit("customer.subscription.updated", sub)

    def cancel_at_period_end(self, sub_id: str) -> None:
        """The customer cancels in the portal; it runs to the period's end."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            sub["cancel_at_period_end"] = True
            self._emit("customer.subscription.updated", sub)

    def end_period(self, sub_id: str) -> None:
        """The period of a subscription cancelled at its end runs out."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            item = sub["items"]["data"][0]
            item["current_period_end"] = int(time.time()) - 1
            sub["status"] = "canceled"
            sub["canceled_at"] = int(time.time())
            self._emit("customer.subscription.deleted", sub)

    def fail_next(self, status: int = 429) -> None:
        """Make the next API call fail as Stripe does under load or outage."""
        if status == 429:
            resp = stripe_error(
                429,
                "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code="rate_limit",
            )
        else:
            resp = stripe_error(status, "An unknown error occurred", type_="api_error")
        with self._lock:
            self._fail_next.append(resp)

    def _invoice(self, sub: dict[str, Any], *, paid: bool) -> dict[str, Any]:
        return {
            "id": _id("in"),
            "object": "invoice",
            "created": int(time.time()),
            "customer": sub["customer"],
            "status": "paid" if paid else "open",
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": sub["id"]},
            },
            "livemode": False,
        }

    # --- events ----------------------------------------------------------------

    def _emit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": _id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "type": kind,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        self.events.append(event)
        if self.webhook_url:
            threading.Thread(target=self.deliver, args=(event,), daemon=True).start()
        return event

    def signed(
        self, event: dict[str, Any], timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """The body and ``Stripe-Signature`` Stripe would send for an event."""
        payload = json.dumps(event, indent=2)
        return payload.encode(), sign(payload, self.webhook_secret, timestamp)

    def deliver(self, event: dict[str, Any]) -> int:
        """POST an event to ``webhook_url`` as Stripe does; returns the status."""
        assert self.webhook_url
        body, signature = self.signed(event)
        req = urllib.request.Request(
            self.webhook_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        self.deliveries.append((event["id"], status))
        return status

    # --- control endpoints and hosted pages ---------------------------------------

    def _control(self, request: Request) -> Response:
        if request.method != "POST":
            return Response.json(405, {"error": "POST only"})
        parts = request.path.strip("/").split("/")
        try:
            if parts[1:] == ["fail_next"]:
                status = int((request.json() or {}).get("status", 429))
                self.fail_next(status)
                return Response.json(200, {"ok": True})
            if parts[1] == "checkout" and parts[3] == "complete":
                return Response.json(200, self.complete_checkout(parts[2]))
            if parts[1] == "subscriptions":
                action = {
                    "payment_failed": self.payment_failed,
                    "pay": self.pay,
                    "cancel_at_period_end": self.cancel_at_period_end,
                    "end_period": self.end_period,
                }[parts[3]]
                action(parts[2])
                return Response.json(200, self.subscriptions[parts[2]])
        except (KeyError, IndexError):
            return Response.json(404, {"error": "unknown fake resource"})
        return Response.json(404, {"error": "unknown control endpoint"})

    def _pages(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[0] == "c":
            session = self.sessions.get(parts[2])
            if session is None:
                return Response.html(404, "<h1>Checkout session not found</h1>")
            if session["status"] == "expired":
                return Response.html(410, "<h1>This checkout has expired</h1>")
            if request.method == "POST":
                self.complete_checkout(session["id"])
                return Response(303, b"", {"Location": session["success_url"]})
            amount = PRICES[session["_price"]] / 100
            return Response.html(
                200,
                f"<!doctype html><title>Fake Stripe Checkout</title>"
                f"<h1>Fake Stripe Checkout</h1><p>{session['_price']}: "
                f"${amount:.2f}/month</p><form method=post>"
                f"<button>Pay (test mode)</button></form>",
            )
        customer = request.query.get("customer", "")
        subs = [s for s in self.subscriptions.values() if s["customer"] == customer]
        rows = "".join(
            f"<li>{s['id']}: {s['status']}, "
            f"{s['items']['data'][0]['price']['id']}, cancel at period end: "
            f"{s['cancel_at_period_end']}</li>"
            for s in subs
        )
        return Response.html(
            200,
            "<!doctype html><title>Fake Customer Portal</title>"
            f"<h1>Fake Customer Portal</h1><ul>{rows}</ul>"
            "<p>Drive changes with POST /_fake/subscriptions/&lt;id&gt;/...</p>",
        )


def _price(price_id: str) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "currency": "usd",
        "unit_amount": PRICES[price_id],
        "recurring": {"interval": "month", "interval_count": 1},
    }


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None)
    args = parser.parse_args()
    fake = FakeStripe(port=args.port, webhook_url=args.webhook_url)
    serve_forever(
        fake,
        "Stripe",
        {
            "TONEHUB_STRIPE_API_BASE": fake.url,
            "TONEHUB_STRIPE_SECRET_KEY": fake.api_key,
            "TONEHUB_STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
            "TONEHUB_STRIPE_PRICE_PLUS": "price_plus_monthly",
            "TONEHUB_STRIPE_PRICE_PRO": "price_pro_monthly",
        },
    )


if __name__ == "__main__":
    main()
