"""The process's Prometheus metrics (see ``webapp.observability``).

Kept apart so that ``webapp.extensions`` can hand ``observe_inference`` to the
scorer without importing the request hooks.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "tonehub_http_requests_total",
    "HTTP requests by route pattern, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "tonehub_http_request_duration_seconds",
    "HTTP request latency by route pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INFERENCE = Histogram(
    "tonehub_model_inference_seconds",
    "Time of one ONNX model call.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_SIZE = Histogram(
    "tonehub_model_batch_size",
    "Rows (texts or windows) in one ONNX model call.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
ADMISSIONS = Counter(
    "tonehub_admissions_total",
    "Metering decisions on /v1 requests.",
    ["outcome"],
)


def observe_inference(model_id: str, rows: int, seconds: float) -> None:
    """The scorer's hook: one model call."""
    INFERENCE.labels(model_id).observe(seconds)
    BATCH_SIZE.labels(model_id).observe(rows)


def count_admission(outcome: str) -> None:
    """One admission outcome: admitted, rate_limited, quota_exceeded, unavailable."""
    ADMISSIONS.labels(outcome).inc()
