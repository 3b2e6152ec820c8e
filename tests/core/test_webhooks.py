"""Outbound webhooks: signing, the SSRF guard, the transport and delivery rules.

Deliveries go to a real loopback receiver (tests/fakes/webhook_receiver.py)
that verifies signatures from the Standard Webhooks spec, not from our code.
"""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core import accounts
from core.errors import InvalidRequest, UnknownEventType, WebhookUrlForbidden
from core.persistence.db import make_session_factory
from core.persistence.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.secrets import SecretBox
from core.webhooks import delivery, endpoints, guard, transport
from core.webhooks.events import emit
from core.webhooks.signing import new_secret, sign
from tests.fakes.webhook_receiver import Answer
from tests.fakes.webhook_receiver import verify as spec_verify

BOX = SecretBox("test-secret-key")
LOCAL = ("127.0.0.1",)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


def _endpoint(sessions, url: str, types=()) -> tuple[str, str, str]:
    with sessions() as s:
        ws = accounts.create_workspace(s, "Acme").id
        ep, secret = endpoints.create_endpoint(
            s,
            BOX,
            ws,
            endpoints.EndpointChange(url=url, event_types=list(types)),
            allow_hosts=LOCAL,
            now=T0,
        )
        return ws, ep.id, secret


def _emit(sessions, ws: str, kind: str = "job.succeeded", now=T0) -> str:
    with sessions() as s:
        event = emit(s, ws, kind, {"job_id": "job_1"}, now=now)
        s.commit()
        return event.id


def _send(url, body, headers, timeout=5.0):
    return transport.post(url, body, headers, allow_hosts=LOCAL, timeout=timeout)


def _delivery(sessions, event_id: str) -> WebhookDelivery:
    with sessions() as s:
        d = s.scalar(
            select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
        )
        assert d is not None
        s.expunge(d)
        return d


# --- signing -----------------------------------------------------------------


def test_signature_matches_the_spec_example() -> None:
    # The example of the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_new_secrets_are_random_and_well_formed() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_")
    assert len(base64.b64decode(a[6:])) == 24


# --- the SSRF guard ----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not guard.is_public(address)
    with pytest.raises(WebhookUrlForbidden):
        guard.resolve_public(
            "x.example", 443, allow_hosts=(), resolver=lambda h, p: [address]
        )


def test_a_name_resolving_to_loopback_is_refused_after_resolution() -> None:
    # "localhost" really resolves to loopback on this machine.
    with pytest.raises(WebhookUrlForbidden, match="127.0.0.1|::1"):
        guard.resolve_public("localhost", 443, allow_hosts=())
    # One private answer among public ones is enough to refuse.
    with pytest.raises(WebhookUrlForbidden):
        guard.resolve_public(
            "mixed.example",
            443,
            allow_hosts=(),
            resolver=lambda h, p: ["8.8.8.8", "10.0.0.1"],
        )
    assert guard.resolve_public(
        "ok.example", 443, allow_hosts=(), resolver=lambda h, p: ["8.8.8.8"]
    ) == ["8.8.8.8"]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
    ],
)
def test_saving_a_private_literal_is_refused(url: str) -> None:
    with pytest.raises(WebhookUrlForbidden):
        endpoints.check_url(url, allow_hosts=())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://example.com/x",
        "https://u:p@example.com/x",
        "nope",
        "",
    ],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        endpoints.check_url(url, allow_hosts=())


def test_transport_refuses_loopback_on_every_attempt_unless_allowed(receiver) -> None:
    result = transport.post(receiver.url + "/h", b"{}", {}, allow_hosts=())
    assert result.status is None and result.error.startswith("forbidden")
    assert receiver.requests == []
    assert (
        transport.post(receiver.url + "/h", b"{}", {}, allow_hosts=LOCAL).status == 200
    )


def test_a_rebinding_name_is_checked_each_attempt(receiver) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    port = int(receiver.url.rsplit(":", 1)[1])

    def resolver(host, p):
        return next(answers)

    # The first answer is public (and unreachable here: a connect error, not a
    # forbidden); the second points at loopback and is refused before connecting.
    first = transport.post(
        f"http://rebind.example:{port}/h",
        b"{}",
        {},
        allow_hosts=(),
        resolver=resolver,
        timeout=0.5,
    )
    assert not (first.error or "").startswith("forbidden")
    second = transport.post(
        f"http://rebind.example:{port}/h", b"{}", {}, allow_hosts=(), resolver=resolver
    )
    assert second.error.startswith("forbidden") and receiver.requests == []


def test_redirects_are_not_followed(receiver) -> None:
    receiver.plan.append(Answer(302, headers={"Location": receiver.url + "/elsewhere"}))
    result = _send(receiver.url + "/h", b"{}", {})
    assert result.status == 302
    assert [r.path for r in receiver.requests] == ["/h"]


def test_timeout_is_reported(receiver) -> None:
    receiver.plan.append(Answer(200, delay=1.5))
    result = _send(receiver.url + "/slow", b"{}", {}, timeout=0.5)
    assert result.status is None and result.error == "timeout"
    assert 400 <= result.latency_ms < 1400


# --- events and delivery -------------------------------------------------------


def test_delivery_is_signed_and_verified_by_the_receiver(sessions, receiver) -> None:
    ws, ep, secret = _endpoint(sessions, receiver.url + "/hook")
    receiver.secrets = [secret]
    event_id = _emit(sessions, ws)
    d = _delivery(sessions, event_id)
    now = datetime.now(UTC)
    outcome = delivery.attempt(sessions, BOX, d.id, send=_send, now=now)
    assert outcome.status == "succeeded" and outcome.http_status == 200
    got = receiver.deliveries[0]
    assert got.verified and got.msg_id == event_id
    assert got.event == {
        "type": "job.succeeded",
        "timestamp": "2026-12-01T12:00:00Z",
        "data": {"job_id": "job_1"},
    }
    req = receiver.requests[0]
    assert req.header("webhook-timestamp") == str(int(now.timestamp()))
    assert req.header("content-type") == "application/json"
    # Delivered once: a second attempt of the same delivery does nothing.
    assert delivery.attempt(sessions, BOX, d.id, send=_send, now=now) is None
    assert len(receiver.requests) == 1


def test_event_type_filter_and_disabled_endpoints(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/only-jobs", types=["job.failed"])
    _emit(sessions, ws, "job.succeeded")
    with sessions() as s:
        assert s.scalars(select(WebhookDelivery)).all() == []
    _emit(sessions, ws, "job.failed")
    with sessions() as s:
        assert len(s.scalars(select(WebhookDelivery)).all()) == 1
    with pytest.raises(UnknownEventType):
        endpoints.check_event_types(["job.exploded"])


def test_failures_are_retried_on_the_spec_schedule(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/hook")
    d = _delivery(sessions, _emit(sessions, ws))
    rng = random.Random(7)
    now = T0
    expected = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    for step, delay in enumerate(expected):
        receiver.plan.append(Answer(500))
        outcome = delivery.attempt(sessions, BOX, d.id, send=_send, now=now, rng=rng)
        assert outcome.status == "pending", step
        waited = (outcome.next_attempt_at - now).total_seconds()
        assert delay * 0.9 - 1 <= waited <= delay * 1.1 + 1, (step, waited)
        # Not due yet: nothing is sent a second before the retry.
        early = outcome.next_attempt_at - timedelta(seconds=1)
        assert delivery.attempt(sessions, BOX, d.id, send=_send, now=early) is None
        now = outcome.next_attempt_at
    receiver.plan.append(Answer(500))
    last = delivery.attempt(sessions, BOX, d.id, send=_send, now=now, rng=rng)
    assert last.status == "failed" and last.next_attempt_at is None
    assert len(receiver.requests) == 10
    with sessions() as s:
        attempts = s.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert [a.status_code for a in attempts] == [500] * 10
        assert attempts[0].response_excerpt == "ok"


def test_retry_after_is_honoured(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/hook")
    d = _delivery(sessions, _emit(sessions, ws))
    receiver.plan.append(Answer(429, headers={"Retry-After": "120"}))
    outcome = delivery.attempt(sessions, BOX, d.id, send=_send, now=T0)
    assert outcome.next_attempt_at == T0 + timedelta(seconds=120)


def test_410_disables_the_endpoint(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/gone")
    d = _delivery(sessions, _emit(sessions, ws))
    receiver.plan.append(Answer(410))
    outcome = delivery.attempt(sessions, BOX, d.id, send=_send, now=T0)
    assert outcome.status == "failed"
    with sessions() as s:
        endpoint = s.get(WebhookEndpoint, ep)
        assert not endpoint.enabled and "410" in endpoint.disabled_reason
        # Later events wait without being sent.
    second = _delivery(sessions, _emit(sessions, ws, "job.failed"))
    assert second is not None
    assert delivery.attempt(sessions, BOX, second.id, send=_send, now=T0) is None
    assert len(receiver.requests) == 1


def test_endpoint_failing_for_five_days_is_disabled(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/down")
    now = T0
    for day in range(6):
        d = _delivery(sessions, _emit(sessions, ws, now=now))
        receiver.plan.append(Answer(503))
        delivery.attempt(sessions, BOX, d.id, send=_send, now=now)
        with sessions() as s:
            endpoint = s.get(WebhookEndpoint, ep)
            assert endpoint.enabled == (day < 5), day
        now += timedelta(days=1)
    assert "5 days" in endpoint.disabled_reason


def test_success_ends_a_failing_streak(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/flaky")
    d = _delivery(sessions, _emit(sessions, ws))
    receiver.plan.extend([Answer(500), Answer(200)])
    first = delivery.attempt(sessions, BOX, d.id, send=_send, now=T0)
    delivery.attempt(sessions, BOX, d.id, send=_send, now=first.next_attempt_at)
    with sessions() as s:
        assert s.get(WebhookEndpoint, ep).failing_since is None
        assert s.get(WebhookDelivery, d.id).status == "succeeded"


def test_secret_rotation_signs_with_both_during_the_window(sessions, receiver) -> None:
    ws, ep, old = _endpoint(sessions, receiver.url + "/hook")
    with sessions() as s:
        new = endpoints.rotate_secret(s, BOX, s.get(WebhookEndpoint, ep), now=T0)
    assert new != old
    for secrets_, when, count in (
        ([old], T0, 2),
        ([new], T0, 2),
        ([new], T0 + timedelta(hours=25), 1),
    ):
        d = _delivery(sessions, _emit(sessions, ws, now=when))
        with sessions() as s:
            body_ok = s.get(WebhookEndpoint, ep)
            signing = endpoints.signing_secrets(BOX, body_ok, now=when)
        assert len(signing) == count
        receiver.secrets = secrets_
        receiver.deliveries.clear()
        # The receiver checks the timestamp against its own clock: send "now".
        delivery.attempt(
            sessions,
            BOX,
            d.id,
            send=_send,
            now=datetime.now(UTC) if when == T0 else when,
        )
    # After the window only the new secret signs: a receiver with the old
    # secret alone would reject the message.
    sig = receiver.requests[-1].header("webhook-signature")
    assert len(sig.split(" ")) == 1


def test_rotation_signatures_verify_with_either_secret(sessions, receiver) -> None:
    ws, ep, old = _endpoint(sessions, receiver.url + "/hook")
    with sessions() as s:
        new = endpoints.rotate_secret(s, BOX, s.get(WebhookEndpoint, ep))
    d = _delivery(sessions, _emit(sessions, ws))
    delivery.attempt(sessions, BOX, d.id, send=_send)
    req = receiver.requests[0]
    now = datetime.now(UTC).timestamp()
    assert len(req.header("webhook-signature").split(" ")) == 2
    assert spec_verify([old], req.headers, req.body, now=now)
    assert spec_verify([new], req.headers, req.body, now=now)
    assert not spec_verify([new_secret()], req.headers, req.body, now=now)
    tampered = req.body.replace(b"job_1", b"job_2")
    assert not spec_verify([new], req.headers, tampered, now=now)


def test_redeliver_and_replay(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/hook")
    ids = [_emit(sessions, ws, now=T0 + timedelta(minutes=m)) for m in range(5)]
    for event_id in ids:
        d = _delivery(sessions, event_id)
        delivery.attempt(sessions, BOX, d.id, send=_send, now=T0 + timedelta(hours=1))
    assert len(receiver.requests) == 5
    with sessions() as s:
        endpoint = s.get(WebhookEndpoint, ep)
        again = delivery.redeliver(s, endpoint, ids[2], now=T0 + timedelta(hours=2))
    out = delivery.attempt(
        sessions, BOX, again.id, send=_send, now=T0 + timedelta(hours=2), manual=True
    )
    assert out.status == "succeeded"
    assert receiver.requests[-1].header("webhook-id") == ids[2]
    with sessions() as s:
        endpoint = s.get(WebhookEndpoint, ep)
        queued = delivery.replay(
            s,
            endpoint,
            since=T0 + timedelta(minutes=1),
            until=T0 + timedelta(minutes=4),
            now=T0 + timedelta(hours=3),
        )
        assert len(queued) == 3
        assert delivery.due(s, now=T0 + timedelta(hours=3)) == queued or sorted(
            delivery.due(s, now=T0 + timedelta(hours=3))
        ) == sorted(queued)
        log = delivery.attempt_log(s, ep)
        assert len(log) == 6 and log[0]["manual"] and log[0]["event_id"] == ids[2]
        with pytest.raises(InvalidRequest):
            delivery.replay(s, endpoint, since=T0, until=T0, now=T0)


def test_endpoints_are_per_workspace(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/hook")
    with sessions() as s:
        other = accounts.create_workspace(s, "Other").id
        from core.errors import NotFound

        with pytest.raises(NotFound):
            endpoints.get_endpoint(s, other, ep)
        assert endpoints.list_endpoints(s, other) == []
    # An event of another workspace never reaches this endpoint.
    _emit(sessions, other)
    with sessions() as s:
        assert s.scalars(select(WebhookDelivery)).all() == []


def test_payload_is_the_same_bytes_on_every_attempt(sessions, receiver) -> None:
    ws, ep, _ = _endpoint(sessions, receiver.url + "/hook")
    d = _delivery(sessions, _emit(sessions, ws))
    receiver.plan.append(Answer(500))
    first = delivery.attempt(sessions, BOX, d.id, send=_send, now=T0)
    delivery.attempt(sessions, BOX, d.id, send=_send, now=first.next_attempt_at)
    a, b = receiver.requests
    assert a.body == b.body and a.header("webhook-id") == b.header("webhook-id")
    assert a.header("webhook-timestamp") != b.header("webhook-timestamp")
    assert json.loads(a.body)["type"] == "job.succeeded"
