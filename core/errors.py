"""Every error Tonehub reports, each with a stable machine-readable code.

The tree::

    TonehubError                 internal              500
    ├── InvalidRequest           invalid_request       400
    │   ├── InvalidJson          invalid_json          400
    │   ├── TextEmpty            text_empty            400
    │   ├── TextTooLong          text_too_long         400
    │   ├── BatchTooLarge        batch_too_large       400
    │   ├── ExplainTooLong       explain_too_long      400
    │   ├── TooManySentences     too_many_sentences    400
    │   └── UnknownModel         unknown_model         400
    │   ├── InvalidSignature     invalid_signature     400
    │   ├── InvalidFile          invalid_file          400
    │   ├── UnknownEventType     unknown_event_type    400
    │   └── WebhookUrlForbidden  webhook_url_forbidden 400
    ├── Unauthorized             unauthorized          401
    ├── NotFound                 not_found             404
    ├── Conflict                 conflict              409
    │   ├── SubscriptionExists   subscription_exists   409
    │   ├── NoBillingAccount     no_billing_account    409
    │   └── JobFinished          job_finished          409
    ├── UnsupportedMediaType     unsupported_media_type 415
    ├── LimitExceeded            (abstract)            429
    │   ├── RateLimited          rate_limited          429
    │   └── QuotaExceeded        quota_exceeded        429
    ├── BillingError             billing_error         502
    └── ServiceUnavailable       unavailable           503
        ├── BillingUnavailable   billing_unavailable   503
        ├── BillingNotConfigured billing_not_configured 503
        ├── SlackNotConfigured   slack_not_configured  503
        └── SalesforceNotConfigured salesforce_not_configured 503

Codes are part of the public API: they never change once released. The web
layer renders any of these as ``{"error": {"code", "message"}}`` with
``http_status``; HTTP-level errors (404 route, 405, 413, 415) get their codes
in ``webapp.errors``.
"""

from __future__ import annotations


class TonehubError(Exception):
    """Base of all Tonehub errors.

    Attributes:
        code: Stable error code, part of the public API.
        http_status: The HTTP status the web layer answers with.
        message: Human-readable explanation.
    """

    code = "internal"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(TonehubError):
    """A request field is missing, of the wrong type or out of range."""

    code = "invalid_request"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidJson(InvalidRequest):
    """The body is not valid UTF-8 JSON."""

    code = "invalid_json"


class TextEmpty(InvalidRequest):
    """A text is empty or only whitespace."""

    code = "text_empty"


class TextTooLong(InvalidRequest):
    """A text is longer than the per-text character limit."""

    code = "text_too_long"


class BatchTooLarge(InvalidRequest):
    """A batch holds more texts than allowed."""

    code = "batch_too_large"


class ExplainTooLong(InvalidRequest):
    """``explain`` was asked for a text with too many words."""

    code = "explain_too_long"


class TooManySentences(InvalidRequest):
    """``sentences`` was asked for a text with too many sentences."""

    code = "too_many_sentences"


class UnknownModel(InvalidRequest):
    """The requested model version is not served here."""

    code = "unknown_model"


class InvalidSignature(InvalidRequest):
    """An inbound webhook's signature is missing, wrong or too old."""

    code = "invalid_signature"


class InvalidFile(InvalidRequest):
    """An uploaded job file cannot be read (format, encoding, a bad line)."""

    code = "invalid_file"


class UnknownEventType(InvalidRequest):
    """A webhook endpoint names an event type Tonehub does not send."""

    code = "unknown_event_type"


class WebhookUrlForbidden(InvalidRequest):
    """A webhook URL points at a non-public address (the SSRF guard)."""

    code = "webhook_url_forbidden"


class Unauthorized(TonehubError):
    """No valid API key. The message never says which check failed."""

    code = "unauthorized"
    http_status = 401


class NotFound(TonehubError):
    """The resource does not exist (or belongs to another workspace)."""

    code = "not_found"
    http_status = 404


class Conflict(TonehubError):
    """The request conflicts with the resource's current state."""

    code = "conflict"
    http_status = 409


class SubscriptionExists(Conflict):
    """A checkout was asked for while a paid subscription is running."""

    code = "subscription_exists"


class NoBillingAccount(Conflict):
    """The workspace has no Stripe customer yet (nothing to manage)."""

    code = "no_billing_account"


class JobFinished(Conflict):
    """A job can no longer be cancelled: it has finished."""

    code = "job_finished"


class UnsupportedMediaType(TonehubError):
    """The body is not declared as JSON."""

    code = "unsupported_media_type"
    http_status = 415


class LimitExceeded(TonehubError):
    """A request was refused by admission; nothing of it was counted.

    Attributes:
        retry_after: Whole seconds after which the same request can succeed.
    """

    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(LimitExceeded):
    """The workspace sent requests faster than its plan's rate limit."""

    code = "rate_limited"


class QuotaExceeded(LimitExceeded):
    """The request's texts do not fit in the rest of this month's quota."""

    code = "quota_exceeded"


class BillingError(TonehubError):
    """Stripe refused a billing call (e.g. a misconfigured price id)."""

    code = "billing_error"
    http_status = 502


class ServiceUnavailable(TonehubError):
    """A dependency (database, Redis, model) is not ready."""

    code = "unavailable"
    http_status = 503


class BillingUnavailable(ServiceUnavailable):
    """Stripe could not be reached or answered with an error; try again."""

    code = "billing_unavailable"


class BillingNotConfigured(ServiceUnavailable):
    """This deployment has no Stripe keys or prices configured."""

    code = "billing_not_configured"


class SlackNotConfigured(ServiceUnavailable):
    """This deployment has no Slack app credentials configured."""

    code = "slack_not_configured"


class SalesforceNotConfigured(ServiceUnavailable):
    """No Salesforce connected app (or no secret key for its tokens)."""

    code = "salesforce_not_configured"
