"""Tonehub core: the scoring engine and the domain every surface shares.

core imports no web framework, no job queue and no third-party SaaS SDK; the
layers above it (connectors, workers, webapp) depend on it, never the reverse.
"""

from core.accounts import (
    IssuedKey,
    authenticate,
    create_api_key,
    create_workspace,
    get_workspace,
    list_api_keys,
    revoke_api_key,
)
from core.config import Settings
from core.errors import (
    BatchTooLarge,
    ExplainTooLong,
    InvalidJson,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    TextEmpty,
    TextTooLong,
    TonehubError,
    TooManySentences,
    Unauthorized,
    UnknownModel,
)
from core.scoring.engine import Scorer, SentimentResult
from core.scoring.labels import Sentiment
from core.scoring.registry import ModelRegistry
from core.scoring.service import ScoringService, build_scoring_service

__all__ = [
    "BatchTooLarge",
    "ExplainTooLong",
    "InvalidJson",
    "InvalidRequest",
    "IssuedKey",
    "ModelRegistry",
    "NotFound",
    "Scorer",
    "ScoringService",
    "Sentiment",
    "SentimentResult",
    "ServiceUnavailable",
    "Settings",
    "TextEmpty",
    "TextTooLong",
    "TonehubError",
    "TooManySentences",
    "Unauthorized",
    "UnknownModel",
    "authenticate",
    "build_scoring_service",
    "create_api_key",
    "create_workspace",
    "get_workspace",
    "list_api_keys",
    "revoke_api_key",
]
