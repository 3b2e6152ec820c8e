"""A loopback fake of the Slack Web API and OAuth pages, for slack_sdk/bolt.

Web API methods at ``/api/<method>`` (form or JSON bodies, ``Authorization:
Bearer <token>``), answering ``{"ok": true, ...}`` or Slack's error bodies
(``{"ok": false, "error": "invalid_auth"}``, ``not_authed``,
``channel_not_found``, ``already_reacted``, ``invalid_code``, ...), and 429
with ``Retry-After`` when told to (``fail_next``):

    auth.test  oauth.v2.access (code and refresh_token grants)  reactions.add
    chat.postMessage  chat.postEphemeral  views.publish  conversations.info

``GET /oauth/v2/authorize`` plays the user clicking "Allow": it redirects to
the app's redirect URI with a code for the team set in ``install_as``.
``GET /_fake/requests`` lists every Web API call received (JSON), for tests
and demos. ``send_event`` posts an Events API payload to an app, signed with
the v0 scheme as Slack signs it.

Run alone: ``python -m tests.fakes.slack --port 12120``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.fakes._server import FakeService, Request, Response, serve_forever

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-client-secret"
SIGNING_SECRET = "fake-signing-secret"


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Slack-Signature`` for a body: v0=HMAC-SHA256 of "v0:ts:body"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes,
    *,
    secret: str = SIGNING_SECRET,
    retry_num: int | None = None,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers Slack sends with a request body (v0 signature, retries)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def send_event(
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SIGNING_SECRET,
    retry_num: int | None = None,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    """POST a signed request to an app as Slack does; returns status and body."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(
        body,
        secret=secret,
        retry_num=retry_num,
        timestamp=timestamp,
        content_type=content_type,
    )
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class FakeSlack(FakeService):
    """The fake; ``install_as`` decides which team an OAuth install is for."""

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        token_rotation: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_rotation = token_rotation
        self.install_as: dict[str, Any] = {
            "team": {"id": "T0001", "name": "Acme Support"},
            "enterprise": None,
            "is_enterprise_install": False,
            "user": "U0INSTALL",
        }
        self.tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.reactions: set[tuple[str, str, str]] = set()
        self._fail: dict[str, list[Response]] = {}
        self._lock = threading.RLock()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # --- control ---------------------------------------------------------------

    def fail_next(
        self, method: str, *, status: int = 429, retry_after: int = 1
    ) -> None:
        """The next call of ``method`` gets a 429 (or another status)."""
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        body = {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
        with self._lock:
            self._fail.setdefault(method, []).append(
                Response.json(status, body, headers)
            )

    def issue_bot_token(self, team_id: str, *, expires_in: int | None = None) -> str:
        """Register a bot token directly (tests that skip the OAuth dance)."""
        token = "xoxb-" + secrets.token_hex(12)
        self.tokens[token] = {
            "team_id": team_id,
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
            "expires_at": time.time() + expires_in if expires_in else None,
        }
        return token

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.calls if c["method"] == method]

    # --- dispatch ----------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/_fake/requests":
            with self._lock:
                return Response.json(200, self.calls)
        if request.path == "/oauth/v2/authorize":
            return self._authorize(request)
        if not request.path.startswith("/api/"):
            return Response.json(404, {"ok": False, "error": "unknown_method"})
        method = request.path[len("/api/") :]
        params = self._params(request)
        with self._lock:
            self.calls.append(
                {
                    "method": method,
                    "params": params,
                    "at": time.time(),
                    "auth": request.header("Authorization"),
                }
            )
            if self._fail.get(method):
                return self._fail[method].pop(0)
        handler = {
            "auth.test": self._auth_test,
            "oauth.v2.access": self._oauth_access,
            "reactions.add": self._reactions_add,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_message,
            "views.publish": self._views_publish,
            "conversations.info": self._conversations_info,
        }.get(method)
        if handler is None:
            return self._err("unknown_method")
        if method != "oauth.v2.access":
            auth = self._token(request, params)
            if isinstance(auth, Response):
                return auth
            params["_token"] = auth
        return handler(request, params)

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        ctype = request.header("Content-Type") or ""
        if "json" in ctype:
            data = request.json()
            return dict(data) if isinstance(data, dict) else {}
        params = dict(parse_qsl(request.body.decode(errors="replace")))
        params.update(request.query)
        return params

    @staticmethod
    def _err(error: str, status: int = 200) -> Response:
        return Response.json(status, {"ok": False, "error": error})

    def _token(
        self, request: Request, params: dict[str, Any]
    ) -> dict[str, Any] | Response:
        header = request.header("Authorization") or ""
        token = header.removeprefix("Bearer ").strip() or params.get("token")
        if not token:
            return self._err("not_authed")
        info = self.tokens.get(token)
        if info is None:
            return self._err("invalid_auth")
        if info.get("expires_at") and info["expires_at"] < time.time():
            return self._err("token_expired")
        return info

    # --- OAuth ---------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        q = request.query
        if q.get("client_id") != self.client_id:
            return Response.html(400, "<h1>Invalid client_id parameter</h1>")
        code = secrets.token_hex(10)
        self.codes[code] = {**self.install_as, "redirect_uri": q.get("redirect_uri")}
        target = (
            q.get("redirect_uri", "")
            + "?"
            + urlencode({"code": code, "state": q.get("state", "")})
        )
        return Response(302, b"", {"Location": target})

    def _client_ok(self, request: Request, params: dict[str, Any]) -> bool:
        import base64

        header = request.header("Authorization") or ""
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            cid, _, secret = raw.partition(":")
        else:
            cid, secret = params.get("client_id", ""), params.get("client_secret", "")
        return cid == self.client_id and secret == self.client_secret

    def _new_token(self, team_id: str, enterprise_id: str | None) -> dict[str, Any]:
        token = "xoxb-" + secrets.token_hex(12)
        info: dict[str, Any] = {
            "team_id": team_id,
            "enterprise_id": enterprise_id,
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
            "expires_at": None,
        }
        out: dict[str, Any] = {"access_token": token}
        if self.token_rotation:
            info["expires_at"] = time.time() + 43_200
            refresh = "xoxe-1-" + secrets.token_hex(12)
            self.refresh_tokens[refresh] = {
                "team_id": team_id,
                "enterprise_id": enterprise_id,
            }
            out.update(refresh_token=refresh, expires_in=43_200)
        self.tokens[token] = info
        return out

    def _oauth_access(self, request: Request, params: dict[str, Any]) -> Response:
        if not self._client_ok(request, params):
            return self._err("invalid_client_id")
        if params.get("grant_type") == "refresh_token":
            owner = self.refresh_tokens.pop(params.get("refresh_token", ""), None)
            if owner is None:
                return self._err("invalid_refresh_token")
            fresh = self._new_token(owner["team_id"], owner["enterprise_id"])
            return Response.json(
                200,
                {
                    "ok": True,
                    "token_type": "bot",
                    **fresh,
                    "team": {"id": owner["team_id"]},
                },
            )
        grant = self.codes.pop(params.get("code", ""), None)
        if grant is None:
            return self._err("invalid_code")
        team = grant["team"] or {}
        enterprise = grant["enterprise"]
        fresh = self._new_token(
            team.get("id", ""), enterprise["id"] if enterprise else None
        )
        return Response.json(
            200,
            {
                "ok": True,
                "app_id": "A0TONEHUB",
                "token_type": "bot",
                "scope": "channels:history,reactions:write,chat:write,commands",
                "bot_user_id": "U0BOT",
                **fresh,
                "team": grant["team"],
                "enterprise": enterprise,
                "is_enterprise_install": grant["is_enterprise_install"],
                "authed_user": {"id": grant["user"]},
            },
        )

    # --- Web API ---------------------------------------------------------------------

    def _auth_test(self, _request: Request, params: dict[str, Any]) -> Response:
        info = params["_token"]
        return Response.json(
            200,
            {
                "ok": True,
                "url": "https://acme.slack.com/",
                "team": "Acme Support",
                "user": "tonehub",
                "team_id": info["team_id"],
                "user_id": info["user_id"],
                "bot_id": info["bot_id"],
                "enterprise_id": info.get("enterprise_id"),
                "is_enterprise_install": False,
            },
        )

    def _reactions_add(self, _request: Request, params: dict[str, Any]) -> Response:
        for name in ("channel", "timestamp", "name"):
            if not params.get(name):
                return self._err("invalid_arguments")
        key = (params["channel"], params["timestamp"], params["name"])
        with self._lock:
            if key in self.reactions:
                return self._err("already_reacted")
            self.reactions.add(key)
        return Response.json(200, {"ok": True})

    def _post_message(self, request: Request, params: dict[str, Any]) -> Response:
        if not params.get("channel"):
            return self._err("channel_not_found")
        if not params.get("text") and not params.get("blocks"):
            return self._err("no_text")
        ts = f"{time.time():.6f}"
        return Response.json(
            200,
            {
                "ok": True,
                "channel": params["channel"],
                "ts": ts,
                "message": {"text": params.get("text"), "ts": ts},
            },
        )

    def _views_publish(self, _request: Request, params: dict[str, Any]) -> Response:
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return self._err("invalid_arguments")
        if not params.get("user_id") or not isinstance(view, dict):
            return self._err("invalid_arguments")
        return Response.json(200, {"ok": True, "view": {"id": "V0HOME", **view}})

    def _conversations_info(
        self, _request: Request, params: dict[str, Any]
    ) -> Response:
        channel = params.get("channel", "")
        if not channel.startswith(("C", "G")):
            return self._err("channel_not_found")
        return Response.json(
            200,
            {
                "ok": True,
                "channel": {
                    "id": channel,
                    "name": "support",
                    "is_channel": True,
                    "is_member": True,
                },
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=12120)
    parser.add_argument("--token-rotation", action="store_true")
    args = parser.parse_args()
    fake = FakeSlack(port=args.port, token_rotation=args.token_rotation)
    serve_forever(
        fake,
        "Slack",
        {
            "TONEHUB_SLACK_API_URL": fake.api_url,
            "TONEHUB_SLACK_CLIENT_ID": fake.client_id,
            "TONEHUB_SLACK_CLIENT_SECRET": fake.client_secret,
            "TONEHUB_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        },
    )


if __name__ == "__main__":
    main()
