"""Bolt's OAuth flow, linking the installing Slack team to a Tonehub workspace.

``/slack/install?link=<state>`` continues an install a Tonehub workspace
started (``start_linked_install`` issues that state, bound to the workspace);
``/slack/install`` alone issues an unbound state, and the team then gets a new
basic workspace of its own (or keeps the one it is already linked to).
"""

from __future__ import annotations

from slack_bolt.oauth.oauth_flow import OAuthFlow
from slack_bolt.request import BoltRequest
from slack_sdk.oauth.installation_store import Installation

from connectors.slack.installation_store import (
    TonehubInstallationStore,
    TonehubOAuthStateStore,
)


class TonehubOAuthFlow(OAuthFlow):
    """``OAuthFlow`` whose state carries the Tonehub workspace."""

    @property
    def _states(self) -> TonehubOAuthStateStore:
        store = self.settings.state_store
        assert isinstance(store, TonehubOAuthStateStore)
        return store

    def issue_new_state(self, request: BoltRequest) -> str:
        links = request.query.get("link")
        link = links[0] if links else None
        workspace_id = self._states.workspace_of(link) if link else None
        if workspace_id is not None and self._states.consume(link or ""):
            return self._states.issue(workspace_id=workspace_id)
        return self._states.issue()

    def store_installation(
        self, request: BoltRequest, installation: Installation
    ) -> None:
        states = request.query.get("state")
        state = states[0] if states else None
        workspace_id = self._states.workspace_of(state) if state else None
        store = self.settings.installation_store
        assert isinstance(store, TonehubInstallationStore)
        store.save_for(installation, workspace_id=workspace_id)


def start_linked_install(
    states: TonehubOAuthStateStore, workspace_id: str, *, public_url: str
) -> str:
    """The URL that installs the Slack app for a Tonehub workspace."""
    link = states.issue(workspace_id=workspace_id)
    return f"{public_url.rstrip('/')}/slack/install?link={link}"
