"""Request and response schemas; the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, Dict, Float, Integer, List, Nested, Raw, String
from marshmallow import post_dump


class _Compact(Schema):
    @post_dump
    def _drop_none(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None}


class ErrorBody(Schema):
    code = String(required=True, metadata={"description": "Stable error code."})
    message = String(required=True)
    field = String(metadata={"description": "The offending field, when one is."})
    checks = Dict(
        keys=String(),
        values=String(),
        metadata={"description": "/readyz only: the state of each dependency."},
    )


class ErrorOut(Schema):
    error = Nested(ErrorBody, required=True)


class Confidence(Schema):
    negative = Float(required=True)
    neutral = Float(required=True)
    positive = Float(required=True)


class SentenceOut(Schema):
    start = Integer(required=True, metadata={"description": "Code-point offset."})
    end = Integer(required=True, metadata={"description": "Code-point offset."})
    text = String(required=True)
    label = String(required=True)
    score = Float(required=True)
    confidence = Nested(Confidence, required=True)


class SentimentOut(_Compact):
    label = String(
        required=True, metadata={"enum": ["negative", "neutral", "positive"]}
    )
    score = Float(
        required=True, metadata={"description": "p_positive - p_negative, in [-1, 1]."}
    )
    confidence = Nested(Confidence, required=True)
    coverage = Float(
        required=True,
        metadata={"description": "Share of the text's characters that were scored."},
    )
    model = String(required=True)
    sentences = List(Nested(SentenceOut), metadata={"description": "If asked for."})


class SentimentIn(Schema):
    text = String(required=True, metadata={"description": "1 to 100,000 characters."})
    sentences = Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "Also score each sentence."},
    )


class BatchIn(Schema):
    texts = List(
        Raw(allow_none=True),
        required=True,
        metadata={"description": "1 to 100 texts; a bad item fails alone."},
    )
    sentences = Boolean(load_default=False, truthy={True}, falsy={False})


class BatchItemOut(SentimentOut):
    class Meta:
        ordered = True

    index = Integer(required=True)
    label = String(metadata={"enum": ["negative", "neutral", "positive"]})
    score = Float()
    confidence = Nested(Confidence)
    coverage = Float()
    model = String()
    error = Nested(ErrorBody, metadata={"description": "Set when this item failed."})


class BatchOut(Schema):
    results = List(Nested(BatchItemOut), required=True)


class ModelOut(Schema):
    id = String(required=True)
    name = String(required=True)
    version = String(required=True)
    labels = List(String(), required=True)
    max_tokens_per_window = Integer(required=True)
    default = Boolean(required=True)


class ModelsOut(Schema):
    models = List(Nested(ModelOut), required=True)


class HealthOut(Schema):
    status = String(required=True)


class ReadyOut(Schema):
    status = String(required=True)
    checks = Dict(keys=String(), values=String(), required=True)
