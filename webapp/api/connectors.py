"""``/v1/connectors``: starting connector installs for the caller's workspace."""

from __future__ import annotations

from typing import Any

from flask import g

from connectors.slack.oauth import start_linked_install
from core.errors import SlackNotConfigured
from webapp.api.views import AUTH, AUTH_ERRORS, bp
from webapp.extensions import tonehub
from webapp.schemas import InstallLinkOut


@bp.post("/connectors/slack/install")
@bp.output(InstallLinkOut)
@bp.doc(
    summary="A link that installs the Slack app for this workspace",
    security=AUTH,
    responses={**AUTH_ERRORS, 503: "slack_not_configured"},
)
def slack_install_link() -> dict[str, Any]:
    """Open the URL in a browser within 10 minutes to add Tonehub to Slack."""
    ext = tonehub()
    if ext.slack_app is None:
        raise SlackNotConfigured("The Slack app is not configured on this deployment.")
    url = start_linked_install(
        ext.slack_states, g.workspace_id, public_url=ext.settings.public_url
    )
    return {"url": url, "expires_in": 600}
