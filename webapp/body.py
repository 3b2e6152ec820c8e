"""Reading a request body safely, for every surface that takes one."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.errors import InvalidRequest, NotFound
from webapp.extensions import tonehub


def read_body() -> bytes:
    """The raw body, whole, or a 4xx.

    A chunked body longer than the limit arrives cut at the limit rather than
    refused, and a malformed chunked encoding makes the server's stream raise
    (gunicorn's ``InvalidChunkSize`` and kin are not ``OSError``s): both are
    answered here (413, 400) instead of being parsed or signature-checked cut.

    Raises:
        RequestEntityTooLarge: The body reaches ``max_body_bytes``.
        InvalidRequest: The body could not be read.
    """
    try:
        data = request.get_data(cache=True)
    except HTTPException:
        raise  # Content-Length over the limit: werkzeug's 413
    except Exception as exc:  # whatever the WSGI server's stream raises
        raise InvalidRequest("The request body could not be read.") from exc
    if len(data) >= tonehub().settings.max_body_bytes:
        raise RequestEntityTooLarge()
    return data


def refuse_control_characters_in_path() -> None:
    """``before_request`` for every surface: no route or id holds a control
    character, so such a path is a 404 before any lookup (PostgreSQL refuses
    NUL in a query parameter, which would otherwise be a 500)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in request.path):
        raise NotFound("The requested URL was not found on the server.")
