"""simple-salesforce, wrapped: stored tokens, one refresh per expiry, API counts.

simple-salesforce does not refresh an expired session itself. ``OrgClient``
runs each call; on ``INVALID_SESSION_ID`` (401) it refreshes the token once
(single-flight across every job of the org, through a Redis lock: a job that
finds another one refreshing waits and uses the new token) and retries the
call once. A refused refresh marks the connection ``auth_revoked``.

Every HTTP response is counted, and ``Sforce-Limit-Info`` read, through a
``requests`` response hook: that is the org's API budget.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
import requests
from redis import Redis
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.errors import SalesforceNotConfigured, ServiceUnavailable, TonehubError
from core.persistence.models import SalesforceConnection
from core.secrets import SecretBox
from core.webhooks.events import emit

logger = logging.getLogger(__name__)

T = TypeVar("T")

REFRESH_LOCK_SECONDS = 30
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceUnavailable(ServiceUnavailable):
    """Salesforce's login service did not answer."""

    code = "salesforce_unavailable"


class SalesforceAuthError(TonehubError):
    """Salesforce refused our credentials (the org must be connected again)."""

    code = "salesforce_auth_revoked"
    http_status = 409


def http_session(settings: Settings) -> requests.Session:
    """A ``requests`` session trusting ``salesforce_ca_bundle`` when set."""
    session = requests.Session()
    if settings.salesforce_ca_bundle:
        session.verify = settings.salesforce_ca_bundle
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's
        # verify; a configured CA bundle must win.
        session.trust_env = False
    return session


def token_request(
    settings: Settings,
    session: requests.Session,
    data: dict[str, str],
    *,
    login_url: str,
) -> dict[str, Any]:
    """POST to ``/services/oauth2/token``; raises ``SalesforceAuthError``."""
    try:
        response = session.post(
            f"{login_url.rstrip('/')}/services/oauth2/token", data=data, timeout=20
        )
        body = response.json() if response.content else {}
    except (requests.RequestException, ValueError) as exc:
        raise SalesforceUnavailable(
            "Salesforce could not be reached; try again in a minute."
        ) from exc
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        raise SalesforceAuthError(
            f"Salesforce refused the sign-in: {body.get('error', response.status_code)}"
        )
    result: dict[str, Any] = body
    return result


def jwt_assertion(settings: Settings, username: str, *, audience: str) -> str:
    """A JWT bearer assertion signed with the configured private key."""
    key = settings.salesforce_jwt_key
    try:
        if key and not key.lstrip().startswith("-----BEGIN"):
            with open(key, encoding="utf-8") as handle:
                key = handle.read()
        if not key:
            raise SalesforceNotConfigured("No JWT private key is configured.")
        claims = {
            "iss": settings.salesforce_client_id,
            "sub": username,
            "aud": audience,
            "exp": int(time.time()) + 180,
        }
        return jwt.encode(claims, key, algorithm="RS256")
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise SalesforceNotConfigured(
            "The JWT private key (TONEHUB_SALESFORCE_JWT_KEY) cannot be read."
        ) from exc


@dataclass
class CallStats:
    """API calls made and the org's daily usage as last reported."""

    calls: int = 0
    used: int | None = None
    allowed: int | None = None
    _hook: Callable[..., Any] | None = field(default=None, repr=False)

    def observe(self, response: requests.Response, *_args: Any, **_kw: Any) -> None:
        self.calls += 1
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.used, self.allowed = int(match.group(1)), int(match.group(2))


def auth_revoked_event(
    session: Session, conn: SalesforceConnection, message: str
) -> None:
    """Tell the workspace's webhooks that the org's credentials stopped working."""
    emit(
        session,
        conn.workspace_id,
        "connector.error",
        {
            "connector": "salesforce",
            "reason": "auth_revoked",
            "org_id": conn.org_id,
            "connection_id": conn.id,
            "message": message,
        },
    )


class OrgClient:
    """Calls to one connected org, refreshing its session when it expires.

    Args:
        settings: Client id/secret, login URL, API version, CA bundle.
        sessions: Database sessions (tokens are read and written there).
        redis: For the refresh lock.
        box: Decrypts and encrypts the tokens.
        connection_id: The org connection.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        redis: Redis,
        box: SecretBox,
        connection_id: str,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.redis = redis
        self.box = box
        self.connection_id = connection_id
        self.stats = CallStats()
        self.http = http_session(settings)
        self.http.hooks["response"].append(self.stats.observe)
        self._token, self._instance = self._load()

    def _load(self) -> tuple[str, str]:
        with self.sessions() as session:
            conn = session.get(SalesforceConnection, self.connection_id)
            if conn is None:
                raise SalesforceAuthError("The Salesforce connection is gone.")
            return self.box.open(conn.access_token), conn.instance_url

    def _client(self) -> Salesforce:
        return Salesforce(
            instance_url=self._instance,
            session_id=self._token,
            session=self.http,
            version=self.settings.salesforce_api_version,
        )

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn`` with a client; one refresh and one retry on an expired session."""
        try:
            return fn(self._client())
        except SalesforceExpiredSession:
            self._refresh(self._token)
            return fn(self._client())

    def _refresh(self, seen: str) -> None:
        key = f"th:sf:refresh:{self.connection_id}"
        me = uuid.uuid4().hex
        deadline = time.monotonic() + REFRESH_LOCK_SECONDS
        while not self.redis.set(key, me, nx=True, ex=REFRESH_LOCK_SECONDS):
            if time.monotonic() > deadline:
                raise SalesforceAuthError("Another job's token refresh did not finish.")
            time.sleep(0.05)
        try:
            token, instance = self._load()
            if token != seen:  # another job refreshed while we waited
                self._token, self._instance = token, instance
                return
            self._token = self._fetch_new_token()
            logger.info("Salesforce session of %s refreshed", self.connection_id)
        finally:
            if self.redis.get(key) == me.encode():
                self.redis.delete(key)

    def _fetch_new_token(self) -> str:
        with self.sessions() as session:
            conn = session.get(SalesforceConnection, self.connection_id)
            assert conn is not None
            try:
                if conn.auth_kind == "jwt":
                    login = self.settings.salesforce_login_url
                    data = {
                        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                        "assertion": jwt_assertion(
                            self.settings, conn.username or "", audience=login
                        ),
                    }
                else:
                    data = {
                        "grant_type": "refresh_token",
                        "refresh_token": self.box.open(conn.refresh_token or ""),
                        "client_id": self.settings.salesforce_client_id,
                        "client_secret": self.settings.salesforce_client_secret,
                    }
                body = token_request(
                    self.settings,
                    self.http,
                    data,
                    login_url=self.settings.salesforce_login_url,
                )
            except SalesforceAuthError as exc:
                if conn.status != "auth_revoked":
                    auth_revoked_event(session, conn, exc.message)
                conn.status, conn.last_error = "auth_revoked", exc.message
                session.commit()
                raise
            conn.access_token = self.box.seal(body["access_token"])
            conn.instance_url = body.get("instance_url", conn.instance_url)
            session.commit()
            self._instance = conn.instance_url
            return str(body["access_token"])
