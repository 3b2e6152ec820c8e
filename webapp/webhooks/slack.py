"""Slack: ``/slack/events``, ``/slack/install``, ``/slack/oauth_redirect``.

A translation shim: bolt's Flask adapter hands each request to the bolt app,
which verifies the v0 signature on the raw body (5-minute window), answers
``url_verification`` and runs the OAuth flow.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from slack_bolt.adapter.flask import SlackRequestHandler

from core.errors import SlackNotConfigured
from webapp.body import read_body
from webapp.extensions import tonehub

bp = Blueprint("slack", __name__, url_prefix="/slack")


def _handle() -> Response:
    bolt = tonehub().slack_app
    if bolt is None:
        raise SlackNotConfigured(
            "The Slack app is not configured on this deployment "
            "(TONEHUB_SLACK_SIGNING_SECRET, _CLIENT_ID, _CLIENT_SECRET)."
        )
    read_body()  # a body that cannot be read whole is a 4xx here, not in bolt
    response: Response = SlackRequestHandler(bolt).handle(request)
    return response


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
