"""``/v1`` views: parse, call one core service, serialise."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import request

from core.errors import (
    BatchTooLarge,
    InvalidJson,
    InvalidRequest,
    TonehubError,
    UnsupportedMediaType,
)
from core.scoring.engine import clean_text
from webapp.auth import require_api_key
from webapp.extensions import tonehub
from webapp.schemas import BatchIn, BatchOut, ModelsOut, SentimentIn, SentimentOut

bp = APIBlueprint("api", __name__, url_prefix="/v1", tag="Sentiment")
bp.before_request(require_api_key)

AUTH: list[str | dict[str, list[Any]]] = [{"bearer": []}, {"apiKey": []}]
AUTH_ERRORS = {401: "unauthorized"}
BODY_ERRORS = {
    **AUTH_ERRORS,
    413: "payload_too_large",
    415: "unsupported_media_type",
}
SINGLE_ERRORS = {
    **BODY_ERRORS,
    400: "invalid_json, invalid_request, text_empty, text_too_long",
}
BATCH_ERRORS = {
    **BODY_ERRORS,
    400: "invalid_json, invalid_request, batch_too_large (bad items fail alone)",
}


@bp.before_request
def _require_json() -> None:
    """Bodies must be declared JSON (a form post would look empty) and present."""
    if request.method != "POST":
        return
    if not request.is_json:
        raise UnsupportedMediaType(
            "Send the body as JSON with 'Content-Type: application/json'."
        )
    if not request.get_data(cache=True):
        raise InvalidJson("The body is empty; send a JSON object.")


@bp.post("/sentiment")
@bp.input(SentimentIn, arg_name="body")
@bp.output(SentimentOut)
@bp.doc(summary="Score one text", security=AUTH, responses=SINGLE_ERRORS)
def score_text(body: dict[str, Any]) -> dict[str, Any]:
    """Score one text; with ``sentences`` also each of its sentences."""
    result = tonehub().scorer.score(body["text"], sentences=body["sentences"])
    return result.as_dict()


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
    return {"results": _score_items(texts, sentences=body["sentences"])}


def _score_items(texts: list[Any], *, sentences: bool) -> list[dict[str, Any]]:
    scorer = tonehub().scorer
    results: list[dict[str, Any]] = [{"index": i} for i in range(len(texts))]
    good: list[int] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            err = InvalidRequest(
                "Each item of 'texts' must be a string.", field=f"texts.{i}"
            )
            results[i]["error"] = {"code": err.code, "message": err.message}
            continue
        try:
            clean_text(text)
        except TonehubError as err:
            results[i]["error"] = {"code": err.code, "message": err.message}
            continue
        good.append(i)
    scored = scorer.score_batch([texts[i] for i in good], sentences=sentences)
    for i, result in zip(good, scored, strict=True):
        results[i].update(result.as_dict())
    return results


@bp.get("/models")
@bp.output(ModelsOut)
@bp.doc(summary="Models this service scores with", security=AUTH, responses=AUTH_ERRORS)
def list_models() -> dict[str, Any]:
    """The model in service."""
    scorer = tonehub().scorer
    return {
        "models": [
            {
                "id": scorer.model_id,
                "name": scorer.name,
                "version": scorer.version,
                "labels": ["negative", "neutral", "positive"],
                "max_tokens_per_window": scorer.max_tokens,
                "default": True,
            }
        ]
    }
