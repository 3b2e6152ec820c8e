"""Slack: ``/slack/events``, ``/slack/install``, ``/slack/oauth_redirect``.

A translation shim: bolt's Flask adapter hands each request to the bolt app,
which verifies the v0 signature on the raw body (5-minute window), answers
``url_verification`` and runs the OAuth flow.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from flask import Blueprint, Response, request
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from core.errors import SlackNotConfigured
from webapp.body import read_body
from webapp.errors import error_response
from webapp.extensions import tonehub

bp = Blueprint("slack", __name__, url_prefix="/slack")


def _handle() -> Response:
    bolt = tonehub().slack_app
    if bolt is None:
        raise SlackNotConfigured(
            "The Slack app is not configured on this deployment "
            "(TONEHUB_SLACK_SIGNING_SECRET, _CLIENT_ID, _CLIENT_SECRET)."
        )
    body = read_body()  # a body that cannot be read whole is a 4xx here
    if request.method == "POST":
        refused = _refuse(body)
        if refused is not None:
            return refused
    response: Response = SlackRequestHandler(bolt).handle(request)
    return response


_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")
_EVENT_STRINGS = ("type", "channel", "user", "ts", "text", "team", "thread_ts")


def _refuse(body: bytes) -> Response | None:
    """Check what bolt would choke on, before bolt sees it.

    The signature first (a request Slack did not sign gets 401 and is not
    logged with its body), then the shape of what Slack signed: a 400 for a
    payload that is not what Slack sends, instead of a 500 deep in bolt.
    """
    ts = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    verifier = SignatureVerifier(tonehub().settings.slack_signing_secret)
    if not (
        _TIMESTAMP.match(ts)
        and _SIGNATURE.match(signature)
        and verifier.is_valid(body, ts, signature)
    ):
        return error_response(
            "invalid_signature",
            "The X-Slack-Signature does not verify for this body and timestamp.",
            401,
        )
    if not _well_formed(body, request.content_type or ""):
        return error_response(
            "invalid_request", "This is not a payload Slack sends.", 400
        )
    return None


def _well_formed(body: bytes, content_type: str) -> bool:
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            if "payload" not in form:
                return all(isinstance(v, str) for v in form.values())
            data = json.loads(form["payload"])
        else:
            return False
    except (ValueError, RecursionError):
        return False
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return False
    event = data.get("event")
    if data["type"] == "event_callback":
        if not isinstance(event, dict):
            return False
        return all(
            isinstance(event[name], str) for name in _EVENT_STRINGS if name in event
        )
    return True


@bp.post("/events")
def events() -> Response:
    """Events API and slash commands (``/sentiment``)."""
    return _handle()


@bp.get("/install")
def install() -> Response:
    """Start the OAuth v2 install (``?link=`` continues one from Tonehub)."""
    return _handle()


@bp.get("/oauth_redirect")
def oauth_redirect() -> Response:
    """Slack's OAuth callback."""
    return _handle()
