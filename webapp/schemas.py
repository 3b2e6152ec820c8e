"""Request and response schemas; the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, Dict, Float, Integer, List, Nested, Raw, String
from marshmallow import ValidationError, post_dump


class StrictBoolean(Boolean):
    """JSON ``true``/``false`` only: ``1``, ``0`` and ``"yes"`` are refused."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean: use true or false.")
        return value


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


LABELS = ["negative", "neutral", "positive", "mixed"]


class WordWeightOut(Schema):
    start = Integer(required=True, metadata={"description": "Code-point offset."})
    end = Integer(required=True, metadata={"description": "Code-point offset."})
    text = String(required=True)
    weight = Float(
        required=True,
        metadata={"description": "Change of score caused by the word (occlusion)."},
    )


class SentimentOut(_Compact):
    label = String(
        required=True,
        metadata={
            "enum": LABELS,
            "description": "mixed: confidently positive and negative sentences.",
        },
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
    explanation = List(
        Nested(WordWeightOut), metadata={"description": "If 'explain' was asked for."}
    )


class _Options(Schema):
    sentences = StrictBoolean(
        load_default=False,
        metadata={"description": "Also score each sentence (up to 1,000 sentences)."},
    )
    explain = StrictBoolean(
        load_default=False,
        metadata={"description": "Word contributions; texts of up to 64 words."},
    )
    model = String(
        load_default=None,
        metadata={"description": "Model id from /v1/models; the default if absent."},
    )


class SentimentIn(_Options):
    text = String(required=True, metadata={"description": "1 to 100,000 characters."})


class BatchIn(_Options):
    texts = List(
        Raw(allow_none=True),
        required=True,
        metadata={"description": "1 to 100 texts; a bad item fails alone."},
    )


class BatchItemOut(SentimentOut):
    class Meta:
        ordered = True

    index = Integer(required=True)
    label = String(metadata={"enum": LABELS})
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
