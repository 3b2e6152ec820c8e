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
    alert_confidence = Float(allow_none=True)
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
    alert_confidence = Float(
        allow_none=True,
        validate=Range(min=0.34, max=1.0),
        metadata={
            "description": "A Case scored negative with at least this confidence "
            "raises a sentiment.alert webhook event; null turns alerts off "
            "(default 0.9)."
        },
    )


class JobIn(Schema):
    """The JSON form of ``POST /v1/jobs`` (files go as multipart/form-data)."""

    texts = List(
        Raw(allow_none=True),
        required=True,
        metadata={"description": "Up to 100,000 texts (a bad one fails alone)."},
    )
    ids = List(
        Raw(),
        metadata={"description": "Your ids, one per text, carried to the results."},
    )
    model = String(allow_none=True, load_default=None)
    sentences = StrictBoolean(load_default=False)


class JobUploadIn(Schema):
    """The multipart form of ``POST /v1/jobs``."""

    file = Raw(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": "JSONL (an object per line with 'text' and "
            "optional 'id') or CSV with a header row; at most 50 MB.",
        },
    )
    format = String(metadata={"description": "jsonl or csv (else from the name)"})
    text_column = String(metadata={"description": "Text field or column (text)"})
    id_column = String(metadata={"description": "Id field or column (id)"})
    model = String()
    sentences = String(metadata={"description": "true or false"})


class JobProgress(Schema):
    total = Integer(required=True)
    scored = Integer(required=True)
    invalid = Integer(required=True)
    done = Integer(required=True)
    percent = Float(required=True)


class JobUnits(Schema):
    reserved = Integer(required=True)
    used = Integer(required=True)
    released = Integer(required=True)


class JobOut(Schema):
    id = String(required=True)
    status = String(
        required=True,
        metadata={"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
    )
    model = String(required=True, allow_none=True)
    sentences = Boolean(required=True)
    progress = Nested(JobProgress, required=True)
    units = Nested(JobUnits, required=True)
    error = String(required=True, allow_none=True)
    created_at = DateTime(required=True)
    started_at = DateTime(required=True, allow_none=True)
    finished_at = DateTime(required=True, allow_none=True)
    expires_at = DateTime(required=True, allow_none=True)
    status_url = String(required=True)
    results_url = String(required=True)


class JobListOut(Schema):
    jobs = List(Nested(JobOut), required=True)


class ResultsQuery(Schema):
    offset = Integer(load_default=0, validate=Range(min=0, max=100_000))
    limit = Integer(load_default=100, validate=Range(min=1, max=1000))
    format = String(
        load_default="json",
        metadata={"enum": ["json", "jsonl"], "description": "jsonl streams all"},
    )


class JobResultsOut(Schema):
    job_id = String(required=True)
    status = String(required=True)
    total = Integer(required=True)
    offset = Integer(required=True)
    results = List(
        Dict(),
        required=True,
        metadata={
            "description": "In input order: index, your id, and the result "
            "(as /v1/sentiment answers) or an error."
        },
    )
    next_offset = Integer(required=True, allow_none=True)


class WebhookIn(Schema):
    url = String(required=True, validate=Length(min=1, max=2048))
    event_types = List(String(), validate=Length(max=10))
    description = String(validate=Length(max=500))
    enabled = StrictBoolean()


class WebhookPatchIn(Schema):
    url = String(validate=Length(min=1, max=2048))
    event_types = List(String(), validate=Length(max=10))
    description = String(validate=Length(max=500))
    enabled = StrictBoolean()


class WebhookOut(Schema):
    id = String(required=True)
    url = String(required=True)
    description = String(required=True)
    event_types = List(String(), required=True)
    enabled = Boolean(required=True)
    disabled_reason = String(required=True, allow_none=True)
    disabled_at = DateTime(required=True, allow_none=True)
    failing_since = DateTime(required=True, allow_none=True)
    previous_secret_expires_at = DateTime(required=True, allow_none=True)
    created_at = DateTime(required=True)
    secret = String(
        metadata={"description": "whsec_...: only when created or rotated."}
    )


class WebhookListOut(Schema):
    webhooks = List(Nested(WebhookOut), required=True)
    event_types = List(String(), required=True)


class AttemptOut(Schema):
    id = Integer(required=True)
    event_id = String(required=True)
    event_type = String(required=True)
    attempted_at = DateTime(required=True)
    status_code = Integer(required=True, allow_none=True)
    latency_ms = Integer(required=True)
    response_excerpt = String(required=True, allow_none=True)
    error = String(required=True, allow_none=True)
    manual = Boolean(required=True)


class AttemptsQuery(Schema):
    limit = Integer(load_default=50, validate=Range(min=1, max=200))
    before = Integer(
        load_default=None, allow_none=True, validate=Range(min=1, max=2**31 - 1)
    )


class AttemptListOut(Schema):
    attempts = List(Nested(AttemptOut), required=True)
    next_before = Integer(required=True, allow_none=True)


class ReplayIn(Schema):
    since = DateTime(required=True)
    until = DateTime(required=True)


class RedeliverOut(Schema):
    queued = Integer(required=True)
    delivery_ids = List(String(), required=True)


class WorkspaceSettingsIn(Schema):
    keep_job_inputs = StrictBoolean(required=True)


class WorkspaceSettingsOut(Schema):
    keep_job_inputs = Boolean(required=True)


class EventOut(Schema):
    id = String(required=True)
    type = String(required=True)
    created_at = DateTime(required=True)
    data = Dict(required=True)


class EventListOut(Schema):
    events = List(Nested(EventOut), required=True)
