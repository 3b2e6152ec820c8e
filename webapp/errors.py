"""One place renders every error as ``{"error": {"code", "message"}}``.

``TonehubError`` carries its own code and status; HTTP-level errors from
werkzeug and APIFlask's validation errors get stable codes here. Anything else
is a bug: it is logged with its traceback and answered with a plain 500
``internal`` that leaks nothing.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from core.errors import LimitExceeded, TonehubError

logger = logging.getLogger(__name__)

HTTP_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
"""Codes for HTTP errors raised by the framework rather than by Tonehub."""

MESSAGES: dict[int, str] = {
    404: "No such endpoint.",
    405: "Method not allowed on this endpoint.",
    413: "The request body is too large.",
}


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Build the JSON error response every surface of the API uses."""
    body: dict[str, Any] = {"code": code, "message": message, **(extra or {})}
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _html_error(status: int, message: str) -> Response | None:
    """Dashboard pages get an HTML error page; everything else JSON."""
    if request.blueprint != "dashboard" and not request.path.startswith("/dashboard"):
        return None
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Error {status}</title><main><h1>{status}</h1>"
        f'<p>{escape(message)}</p><p><a href="/dashboard/">Back to the '
        "dashboard</a></p></main></html>"
    )
    return Response(body, status=status, mimetype="text/html")


def _tonehub_error(error: TonehubError) -> Response:
    page = _html_error(error.http_status, error.message)
    if page is not None:
        return page
    field = getattr(error, "field", None)
    extra = {"field": field} if field else None
    headers: dict[str, str] = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tonehub"'
    if isinstance(error, LimitExceeded):
        headers["Retry-After"] = str(error.retry_after)
    return error_response(
        error.code, error.message, error.http_status, headers=headers, extra=extra
    )


def _http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    page = _html_error(status, error.description or error.name)
    if page is not None:
        return page
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if status == 400 and isinstance(messages, dict) and "json" in messages:
        # webargs' answer to a body that is not JSON (or not UTF-8).
        return error_response("invalid_json", "The body is not valid UTF-8 JSON.", 400)
    headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    code = HTTP_CODES.get(status, "http_error")
    message = MESSAGES.get(status, error.description or error.name)
    return error_response(code, message, status, headers=headers)


def _validation_error(error: HTTPError) -> Response:
    """APIFlask's ``HTTPError``: request-schema validation and ``abort`` calls."""
    if error.status_code == 400 and isinstance(error.detail, dict) and error.detail:
        field, message = _first_problem(error.detail)
        if field == "_schema":
            return error_response(
                "invalid_request", "The body must be a JSON object.", 400
            )
        return error_response(
            "invalid_request",
            f"Field '{field}': {message}",
            400,
            extra={"field": field},
        )
    code = HTTP_CODES.get(error.status_code, "http_error")
    return error_response(code, error.message or "Error.", error.status_code)


def _first_problem(detail: dict[str, Any]) -> tuple[str, str]:
    """The first (field, message) of a marshmallow error tree under its location."""
    tree: Any = next(iter(detail.values()))
    path: list[str] = []
    while isinstance(tree, dict) and tree:
        key = next(iter(tree))
        path.append(str(key))
        tree = tree[key]
    message = tree[0] if isinstance(tree, list) and tree else str(tree)
    return ".".join(path) or "body", str(message)


def _unexpected(error: Exception) -> Response:
    logger.exception("Unhandled error", exc_info=error)
    page = _html_error(500, "Something went wrong on our side; it has been logged.")
    if page is not None:
        return page
    return error_response("internal", "Internal error; it has been logged.", 500)


def init_app(app: APIFlask) -> None:
    """Register the handlers on ``app``."""
    # error_processor also installs APIFlask's handler for werkzeug errors, which
    # drops webargs' details; registering ours afterwards replaces it.
    app.error_processor(_validation_error)
    app.register_error_handler(TonehubError, _tonehub_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)
