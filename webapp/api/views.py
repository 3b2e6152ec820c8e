"""``/v1`` views: parse, call one core service, serialise."""

from __future__ import annotations

import json
from typing import Any

from apiflask import APIBlueprint
from flask import request

from core.errors import (
    BatchTooLarge,
    InvalidJson,
    InvalidRequest,
    UnsupportedMediaType,
)
from webapp.auth import require_api_key
from webapp.body import read_body
from webapp.extensions import tonehub
from webapp.metering import admit_request, admit_units, finish_request, record_scored
from webapp.schemas import BatchIn, BatchOut, ModelsOut, SentimentIn, SentimentOut

bp = APIBlueprint("api", __name__, url_prefix="/v1", tag="Sentiment")


# Who is calling, then admission of calls that score nothing (scoring calls
# are admitted with their validated cost, see webapp.metering), then the body.
bp.before_request(require_api_key)
bp.before_request(admit_request)
bp.after_request(finish_request)

AUTH: list[str | dict[str, list[Any]]] = [{"bearer": []}, {"apiKey": []}]
BATCH_MAX_CHARS = 500_000
"""Characters in all texts of one batch request (keeps a request under ~10 s)."""

AUTH_ERRORS = {401: "unauthorized", 429: "rate_limited, quota_exceeded"}
JSON_BODY_ENDPOINTS = frozenset(
    {
        "api.score_text",
        "api.score_batch",
        "api.billing_checkout",
        "api.salesforce_connect_jwt",
        "api.salesforce_backfill",
        "api.salesforce_configure",
        "api.create_webhook",
        "api.update_webhook",
        "api.replay_webhook",
        "api.update_workspace_settings",
    }
)
BODY_ERRORS = {
    **AUTH_ERRORS,
    413: "payload_too_large",
    415: "unsupported_media_type",
}
SINGLE_ERRORS = {
    **BODY_ERRORS,
    400: "invalid_json, invalid_request, text_empty, text_too_long, "
    "explain_too_long, too_many_sentences, unknown_model",
}
BATCH_ERRORS = {
    **BODY_ERRORS,
    400: "invalid_json, invalid_request, batch_too_large, unknown_model "
    "(a bad item fails alone)",
}


@bp.before_request
def _require_json() -> None:
    """Check the body before the schema sees it: declared JSON, readable, parseable.

    A form post would look like an empty object; a chunked body longer than the
    limit arrives cut at the limit; JSON nested thousands deep or with
    4,300-digit numbers makes the parser raise something other than a decode
    error. Each gets its own 4xx here instead of a wrong answer or a 500.
    """
    if request.endpoint not in JSON_BODY_ENDPOINTS:
        return
    if not request.is_json:
        raise UnsupportedMediaType(
            "Send the body as JSON with 'Content-Type: application/json'."
        )
    data = read_body()
    if not data:
        raise InvalidJson("The body is empty; send a JSON object.")
    try:
        json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson("The body is not valid UTF-8 JSON.") from exc


@bp.post("/sentiment")
@bp.input(SentimentIn, arg_name="body")
@bp.output(SentimentOut)
@bp.doc(summary="Score one text", security=AUTH, responses=SINGLE_ERRORS)
def score_text(body: dict[str, Any]) -> dict[str, Any]:
    """Score one text; optionally its sentences and word contributions."""
    result = tonehub().scoring.score(
        [body["text"]],
        model=body["model"],
        sentences=body["sentences"],
        explain=body["explain"],
        admit=admit_units,
    )[0]
    record_scored([result["label"]])
    return result


@bp.post("/sentiment/batch")
@bp.input(BatchIn, arg_name="body")
@bp.output(BatchOut)
@bp.doc(summary="Score up to 100 texts", security=AUTH, responses=BATCH_ERRORS)
def score_batch(body: dict[str, Any]) -> dict[str, Any]:
    """Score texts in order; a bad item gets an error entry, the rest are scored."""
    texts = body["texts"]
    limit = tonehub().settings.max_batch
    if not texts:
        raise InvalidRequest("'texts' must hold at least one text.", field="texts")
    if len(texts) > limit:
        raise BatchTooLarge(
            f"A batch holds at most {limit} texts; got {len(texts)}.", field="texts"
        )
    total = sum(len(t) for t in texts if isinstance(t, str))
    if total > BATCH_MAX_CHARS:
        raise BatchTooLarge(
            f"A batch holds at most {BATCH_MAX_CHARS:,} characters in all; "
            f"got {total:,}. Split it, or use fewer, shorter texts.",
            field="texts",
        )
    results = tonehub().scoring.score_each(
        texts,
        model=body["model"],
        sentences=body["sentences"],
        explain=body["explain"],
        admit=admit_units,
    )
    record_scored(r["label"] for r in results if "label" in r)
    return {"results": [{"index": i, **r} for i, r in enumerate(results)]}


@bp.get("/models")
@bp.output(ModelsOut)
@bp.doc(summary="Models this service scores with", security=AUTH, responses=AUTH_ERRORS)
def list_models() -> dict[str, Any]:
    """The model versions served; ``default`` marks the one used by default."""
    return {"models": tonehub().scoring.registry.describe()}
