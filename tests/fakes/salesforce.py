"""A loopback fake of a Salesforce org, served over TLS, for simple-salesforce.

simple-salesforce always speaks ``https://``, so the fake serves TLS with a
certificate from a throwaway CA (trustme); clients trust ``ca_path``.

    POST /services/oauth2/token      authorization_code, refresh_token and
                                     jwt-bearer grants
    GET  /services/oauth2/authorize  redirects back with a code (the user's
                                     "Allow")
    GET  /services/data/vXX.X/query?q=   the sync's SOQL, paged with
                                     nextRecordsUrl (``page_size`` rows)
    GET  /services/data/vXX.X/query/<locator>
    GET|PATCH /services/data/vXX.X/sobjects/Case/<id>
    PATCH /services/data/vXX.X/composite/sobjects   per-record results
    GET  /services/data/vXX.X/limits
    GET  /_fake/requests             every call received (JSON)

Every API answer carries ``Sforce-Limit-Info: api-usage=N/MAX``. Errors use
Salesforce's bodies: ``[{"message", "errorCode"}]`` with INVALID_SESSION_ID
(401), REQUEST_LIMIT_EXCEEDED (403), INVALID_FIELD and MALFORMED_QUERY (400);
composite results carry per-record ``UNABLE_TO_LOCK_ROW`` and others.

Run alone: ``python -m tests.fakes.salesforce --port 12140 --cases 300``.
"""

from __future__ import annotations

import argparse
import re
import secrets
import ssl
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import trustme

from tests.fakes._server import FakeService, Request, Response, serve_forever

CLIENT_ID = "3MVG9fake.consumer.key"
CLIENT_SECRET = "fake-consumer-secret"
ORG_ID = "00D000000000FAKE"
CASE_FIELDS = {"Id", "Subject", "Description", "SystemModstamp", "Status", "CaseNumber"}
SENTIMENT_FIELDS = {
    "Sentiment__c",
    "Sentiment_Score__c",
    "Sentiment_Confidence__c",
    "Sentiment_Scored_At__c",
    "Sentiment_Model__c",
}

_QUERY = re.compile(
    r"^SELECT (?P<fields>[\w, ]+) FROM Case"
    r"(?: WHERE SystemModstamp >= (?P<since>[0-9T:.+\-Z]+))?"
    r" ORDER BY SystemModstamp, Id$"
)


def sf_time(moment: datetime) -> str:
    """A datetime as Salesforce writes it: ``2026-12-03T10:00:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def parse_time(text: str) -> datetime:
    """Salesforce's or SOQL's datetime literal."""
    return datetime.fromisoformat(
        text.replace("Z", "+00:00").replace("+0000", "+00:00")
    )


def _errors(status: int, code: str, message: str) -> Response:
    return Response.json(status, [{"message": message, "errorCode": code}])


class FakeSalesforce(FakeService):
    """The fake org. ``cases`` maps Case id -> fields."""

    def __init__(
        self,
        *,
        page_size: int = 100,
        api_max: int = 15000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._ca = trustme.CA()
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        super().__init__(host, port, ssl_context=context)
        self._tmp = Path(tempfile.mkdtemp(prefix="fake-sf-"))
        self.ca_path = str(self._tmp / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self.page_size = page_size
        self.api_max = api_max
        self.api_used = 0
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.jwt_public_key: bytes | None = None
        self.fields = set(CASE_FIELDS | SENTIMENT_FIELDS)
        self.cases: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.codes: set[str] = set()
        self.locked: dict[str, int] = {}
        self.calls: list[dict[str, Any]] = []
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.RLock()
        # Cases look modified in the last day (a new connection reads 30 days).
        self._clock = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

    # --- control -----------------------------------------------------------------

    def _tick(self) -> str:
        self._clock += timedelta(milliseconds=1)
        return sf_time(self._clock)

    def seed(self, n: int, *, same_stamp: bool = False) -> list[str]:
        """Add ``n`` Cases; ``same_stamp`` gives them one SystemModstamp (ties)."""
        texts = [
            ("Login broken again", "I am furious, nothing works and nobody answers."),
            ("Thanks!", "The agent solved it in minutes, great service."),
            ("Invoice question", "Please send the invoice for November."),
        ]
        ids = []
        with self._lock:
            stamp = self._tick()
            for i in range(n):
                case_id = f"500{len(self.cases) + 1:015d}"
                subject, body = texts[i % 3]
                self.cases[case_id] = {
                    "Id": case_id,
                    "CaseNumber": f"{len(self.cases) + 1:08d}",
                    "Subject": subject,
                    "Description": body,
                    "Status": "New",
                    "SystemModstamp": stamp if same_stamp else self._tick(),
                }
                ids.append(case_id)
        return ids

    def edit(self, case_id: str, **fields: Any) -> None:
        """A user edits a Case (its SystemModstamp moves)."""
        with self._lock:
            self.cases[case_id].update(fields, SystemModstamp=self._tick())

    def issue_token(self) -> str:
        token = "00D!" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        """Every access token stops working (sessions time out)."""
        with self._lock:
            self.tokens.clear()

    def calls_to(self, method: str, prefix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c["method"] == method and c["path"].startswith(prefix)
            ]

    # --- dispatch ------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/_fake/requests":
            with self._lock:
                return Response.json(200, self.calls)
        with self._lock:
            self.calls.append(
                {"method": request.method, "path": request.path, "query": request.query}
            )
        if request.path == "/services/oauth2/token":
            return self._token(request)
        if request.path == "/services/oauth2/authorize":
            code = secrets.token_hex(8)
            self.codes.add(code)
            target = (
                request.query.get("redirect_uri", "")
                + "?"
                + urlencode({"code": code, "state": request.query.get("state", "")})
            )
            return Response(302, b"", {"Location": target})
        match = re.match(r"^/services/data/v[\d.]+/(.*)$", request.path)
        if match is None:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        auth = (request.header("Authorization") or "").removeprefix("Bearer ")
        with self._lock:
            if auth not in self.tokens:
                return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if self.api_used >= self.api_max:
                return _errors(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
            self.api_used += 1
            response = self._api(request, match.group(1))
        response.headers["Sforce-Limit-Info"] = (
            f"api-usage={self.api_used}/{self.api_max}"
        )
        return response

    def _api(self, request: Request, path: str) -> Response:
        if path in ("query", "query/") and request.method == "GET":
            return self._query(request.query.get("q", ""))
        if path.startswith("query/"):
            return self._page(path.split("/", 1)[1])
        if path == "limits":
            return Response.json(
                200,
                {
                    "DailyApiRequests": {
                        "Max": self.api_max,
                        "Remaining": self.api_max - self.api_used,
                    }
                },
            )
        if path == "composite/sobjects" and request.method == "PATCH":
            return self._composite(request.json())
        case = re.fullmatch(r"sobjects/Case/(\w+)", path)
        if case:
            row = self.cases.get(case.group(1))
            if row is None:
                return _errors(
                    404, "NOT_FOUND", "The requested resource does not exist"
                )
            if request.method == "GET":
                return Response.json(200, {"attributes": {"type": "Case"}, **row})
            if request.method == "PATCH":
                result = self._update(case.group(1), request.json() or {})
                if result is not None:
                    return Response.json(400, [result])
                return Response(204)
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    # --- query ----------------------------------------------------------------------

    def _query(self, soql: str) -> Response:
        match = _QUERY.match(soql.strip())
        if match is None:
            return _errors(400, "MALFORMED_QUERY", f"unexpected query: {soql[:200]}")
        fields = [f.strip() for f in match.group("fields").split(",")]
        for field in fields:
            if field not in self.fields:
                return _errors(
                    400, "INVALID_FIELD", f"No such column '{field}' on entity 'Case'."
                )
        since = parse_time(match.group("since")) if match.group("since") else None
        rows = sorted(self.cases.values(), key=lambda r: (r["SystemModstamp"], r["Id"]))
        rows = [
            r for r in rows if since is None or parse_time(r["SystemModstamp"]) >= since
        ]
        records = [
            {
                "attributes": {
                    "type": "Case",
                    "url": f"/services/data/v59.0/sobjects/Case/{r['Id']}",
                },
                **{f: r.get(f) for f in fields},
            }
            for r in rows
        ]
        return self._answer(records)

    def _answer(
        self, records: list[dict[str, Any]], total: int | None = None
    ) -> Response:
        first, rest = records[: self.page_size], records[self.page_size :]
        body: dict[str, Any] = {
            "totalSize": total if total is not None else len(records),
            "done": not rest,
            "records": first,
        }
        if rest:
            locator = f"01g{secrets.token_hex(6)}-{self.page_size}"
            self._cursors[locator] = rest
            body["nextRecordsUrl"] = f"/services/data/v59.0/query/{locator}"
        return Response.json(200, body)

    def _page(self, locator: str) -> Response:
        rest = self._cursors.pop(locator, None)
        if rest is None:
            return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._answer(rest, total=len(rest))

    # --- writes -----------------------------------------------------------------------

    def _update(self, case_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        for name in fields:
            if name != "attributes" and name != "id" and name not in self.fields:
                return {
                    "statusCode": "INVALID_FIELD",
                    "errorCode": "INVALID_FIELD",
                    "message": f"No such column '{name}' on sobject of type Case",
                    "fields": [name],
                }
        if self.locked.get(case_id, 0) > 0:
            self.locked[case_id] -= 1
            return {
                "statusCode": "UNABLE_TO_LOCK_ROW",
                "errorCode": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain exclusive access to this record",
                "fields": [],
            }
        row = self.cases[case_id]
        row.update({k: v for k, v in fields.items() if k not in ("attributes", "id")})
        row["SystemModstamp"] = self._tick()  # our write-back bumps it too
        return None

    def _composite(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return _errors(400, "JSON_PARSER_ERROR", "records expected")
        records = body["records"]
        if len(records) > 200:
            return _errors(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records "
                "into this call",
            )
        results = []
        for record in records:
            case_id = record.get("id")
            if case_id not in self.cases:
                results.append(
                    {
                        "id": case_id,
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "ENTITY_IS_DELETED",
                                "message": "entity is deleted",
                                "fields": [],
                            }
                        ],
                    }
                )
                continue
            error = self._update(case_id, record)
            results.append(
                {
                    "id": case_id,
                    "success": error is None,
                    "errors": []
                    if error is None
                    else [{k: v for k, v in error.items() if k != "errorCode"}],
                }
            )
        return Response.json(200, results)

    # --- OAuth ----------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        params = dict(parse_qsl(request.body.decode(errors="replace")))
        grant = params.get("grant_type")
        bad = Response.json(
            400,
            {"error": "invalid_grant", "error_description": "authentication failure"},
        )
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if not self._jwt_ok(params.get("assertion", "")):
                return bad
            return self._tokens(refresh=False)
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self.client_secret
        ):
            return Response.json(
                400,
                {
                    "error": "invalid_client_id",
                    "error_description": "client identifier invalid",
                },
            )
        if grant == "authorization_code":
            if params.get("code") not in self.codes:
                return Response.json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "invalid authorization code",
                    },
                )
            self.codes.discard(params["code"])
            return self._tokens(refresh=True)
        if grant == "refresh_token":
            if params.get("refresh_token") not in self.refresh_tokens:
                return Response.json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "expired access/refresh token",
                    },
                )
            return self._tokens(refresh=False)
        return Response.json(
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "grant type not supported",
            },
        )

    def _tokens(self, *, refresh: bool) -> Response:
        body = {
            "access_token": self.issue_token(),
            "instance_url": self.url,
            "id": f"{self.url}/id/{ORG_ID}/005000000000001",
            "token_type": "Bearer",
            "issued_at": "1764750000000",
            "signature": "fake",
        }
        if refresh:
            token = "5Aep" + secrets.token_urlsafe(24)
            self.refresh_tokens.add(token)
            body["refresh_token"] = token
        return Response.json(200, body)

    def _jwt_ok(self, assertion: str) -> bool:
        if self.jwt_public_key is None:
            return False
        import jwt

        try:
            claims = jwt.decode(
                assertion, self.jwt_public_key, algorithms=["RS256"], audience=self.url
            )
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.client_id and bool(claims.get("sub"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=12140)
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    fake = FakeSalesforce(port=args.port)
    fake.seed(args.cases)
    serve_forever(
        fake,
        "Salesforce",
        {
            "TONEHUB_SALESFORCE_LOGIN_URL": fake.url,
            "TONEHUB_SALESFORCE_CLIENT_ID": fake.client_id,
            "TONEHUB_SALESFORCE_CLIENT_SECRET": fake.client_secret,
            "TONEHUB_SALESFORCE_CA_BUNDLE": fake.ca_path,
        },
    )


if __name__ == "__main__":
    main()
