"""Request and response schemas; the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from typing import Any

from apiflask import Schema
from apiflask.fields import (
    Boolean,
    Date,
    DateTime,
    Dict,
    Float,
    Integer,
    List,
    Nested,
    Raw,
    String,
)
from marshmallow import ValidationError, post_dump
from marshmallow.validate import Length, Range


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


class IsoDay(Date):
    """A calendar day written exactly ``YYYY-MM-DD``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValidationError("Not a date: use YYYY-MM-DD.")
        return super()._deserialize(value, attr, data, **kwargs)


class UsageQuery(Schema):
    from_ = IsoDay(
        data_key="from",
        load_default=None,
        metadata={"description": "First day (UTC), default: this period's first."},
    )
    to = IsoDay(
        load_default=None, metadata={"description": "Last day, default: today."}
    )


class PeriodOut(Schema):
    id = String(required=True, metadata={"description": "Calendar month, '2026-12'."})
    start = DateTime(required=True)
    resets_at = DateTime(required=True)
    used = Integer(required=True, metadata={"description": "Scored texts counted."})
    limit = Integer(
        required=True, allow_none=True, metadata={"description": "null: unlimited."}
    )
    remaining = Integer(required=True, allow_none=True)


class UsageDayOut(Schema):
    date = String(required=True)
    total = Integer(required=True)
    by_source = Dict(
        keys=String(),
        values=Integer(),
        required=True,
        metadata={"description": "api, slack, salesforce."},
    )
    by_label = Dict(keys=String(), values=Integer(), required=True)


class UsageOut(Schema):
    workspace_id = String(required=True)
    plan = String(required=True, metadata={"enum": ["basic", "plus", "pro"]})
    period = Nested(PeriodOut, required=True)
    from_ = String(attribute="from", data_key="from", required=True)
    to = String(required=True)
    total = Integer(required=True, metadata={"description": "Texts in the range."})
    by_api_key = Dict(keys=String(), values=Integer(), required=True)
    daily = List(Nested(UsageDayOut), required=True)


class CheckoutIn(Schema):
    plan = String(
        required=True, metadata={"enum": ["plus", "pro"], "description": "Paid plan."}
    )


class CheckoutOut(Schema):
    id = String(required=True, metadata={"description": "Stripe Checkout Session id."})
    url = String(required=True, metadata={"description": "Send the buyer here."})
    plan = String(required=True)


class PortalOut(Schema):
    url = String(required=True, metadata={"description": "Stripe Customer Portal."})


class StripeWebhookOut(Schema):
    received = Boolean(required=True)
    outcome = String(
        required=True,
        metadata={
            "enum": [
                "processed",
                "duplicate",
                "ignored",
                "unknown_workspace",
                "customer_mismatch",
            ],
            "description": "ignored: not a billing event; unknown_workspace: "
            "no Tonehub workspace has this customer.",
        },
    )


class SubscriptionOut(Schema):
    id = String(required=True)
    status = String(required=True, metadata={"description": "Stripe's status."})
    current_period_end = DateTime(required=True, allow_none=True)
    cancel_at_period_end = Boolean(required=True)


class BillingOut(Schema):
    plan = String(required=True, metadata={"description": "The plan in force."})
    subscribed_plan = String(required=True)
    monthly_quota = Integer(required=True, allow_none=True)
    payment_failed = Boolean(required=True)
    payment_failed_at = DateTime(required=True, allow_none=True)
    downgrade_at = DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When basic applies, if nothing changes."},
    )
    subscription = Nested(SubscriptionOut, required=True, allow_none=True)
    has_billing_account = Boolean(required=True)


class InstallLinkOut(Schema):
    url = String(required=True, metadata={"description": "Open it in a browser."})
    expires_in = Integer(required=True, metadata={"description": "Seconds."})


class JwtConnectIn(Schema):
    username = String(
        required=True,
        validate=Length(min=3, max=255),
        metadata={"description": "The integration user the connected app acts as."},
    )


class BackfillIn(Schema):
    days = Integer(required=True, validate=Range(min=1, max=365))


class SyncQueuedOut(Schema):
    queued = Boolean(
        required=True, metadata={"description": "false: a sync is already pending."}
    )


class SalesforceOut(Schema):
    id = String(required=True)
    org_id = String(required=True)
    instance_url = String(required=True)
    auth = String(required=True, metadata={"enum": ["oauth", "jwt"]})
    status = String(
        required=True,
        metadata={
            "enum": [
                "connected",
                "paused_budget",
                "paused_quota",
                "auth_revoked",
                "error",
            ]
        },
    )
    last_error = String(required=True, allow_none=True)
    last_sync_at = DateTime(required=True, allow_none=True)
    cases_scored = Integer(required=True)
    api_calls_last_sync = Integer(required=True)
    api_calls_total = Integer(required=True)
    org_api_usage = String(
        required=True, allow_none=True, metadata={"description": "used/max today"}
    )
    watermark = String(required=True, allow_none=True)
    sync_minutes = Integer(required=True, allow_none=True)
    field_names = Dict(
        data_key="fields",
        attribute="fields",
        keys=String(),
        values=String(),
        required=True,
        metadata={"description": "Overrides of the Case field names written."},
    )
    text_fields = List(String(), required=True)


class SalesforceSettingsIn(Schema):
    field_names = Dict(
        data_key="fields",
        keys=String(),
        values=String(),
        metadata={
            "description": "label, score, confidence, scored_at, model -> API name"
        },
    )
    text_fields = List(String(), validate=Length(min=1, max=10))
    sync_minutes = Integer(validate=Range(min=1, max=1440))
