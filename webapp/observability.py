"""Request ids, one JSON log line per request, and Prometheus metrics.

Metrics are process-local counters and histograms; under gunicorn they are
kept in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
set by ``deploy/gunicorn.conf.py`` before anything imports the client), so a
scrape of any worker sees the sum over all of them. State that lives
elsewhere (the result cache counters and the queues in Redis, connector
status in the database) is read at scrape time by ``StateCollector``.

``/metrics`` answers loopback callers, networks listed in
``TONEHUB_METRICS_ALLOW`` and holders of ``TONEHUB_METRICS_TOKEN``; a request
that came through a proxy (``Forwarded``/``X-Forwarded-For``) is refused
without the token, so an ingress never exposes it by accident. Others get
the same 404 as any unknown path.

The request log line carries ids, the route pattern (never the raw path or
query string: OAuth codes travel there), status, latency and units: never a
text, a key or a header value.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Network, IPv6Network

from apiflask import APIBlueprint
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from core.config import Settings
from core.errors import NotFound
from core.persistence.models import SalesforceConnection, SlackInstallation
from webapp.extensions import Tonehub, tonehub
from webapp.metrics import LATENCY, REQUESTS
from workers.queues import queue_stats

logger = logging.getLogger(__name__)
request_log = logging.getLogger("tonehub.request")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,128}")
"""A caller's request id is kept when it looks like one; else a new one."""

QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: their request lines are logged at DEBUG only."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as a metric label; any other is counted as ``other`` (a
caller must not be able to mint label values)."""

PROXY_HEADERS = (
    "X-Forwarded-For",
    "Forwarded",
    "X-Real-IP",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "Via",
)
"""Any of these means a proxy relayed the request: /metrics wants the token."""


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    latency = time.perf_counter() - started if started is not None else 0.0
    route = _route()
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    method = request.method if request.method in METHODS else "other"
    REQUESTS.labels(route, method, str(response.status_code)).inc()
    LATENCY.labels(route, method).observe(latency)
    workspace = g.get("workspace_id")
    if workspace is None and g.get("workspace") is not None:
        workspace = g.workspace.id  # the dashboard's signed-in workspace
    request_log.log(
        logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
        "request",
        extra={
            "fields": {
                "request_id": g.get("request_id"),
                "workspace_id": workspace,
                "method": method,
                "route": route,
                "status": response.status_code,
                "latency_ms": round(latency * 1000, 2),
                "units": g.get("units_used", 0),
            }
        },
    )
    return response


def metrics_allowed(ext: Tonehub) -> bool:
    """Loopback, an allowed network, or the token; never a proxied request
    without the token."""
    token = ext.settings.metrics_token
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return True
    return any(address in network for network in allowed_networks(ext.settings))


@functools.cache
def _parse_networks(spec: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in spec.split(",")
        if part.strip()
    )


def allowed_networks(settings: Settings) -> tuple[IPv4Network | IPv6Network, ...]:
    """``TONEHUB_METRICS_ALLOW`` parsed.

    Raises:
        ValueError: A part is not a network (checked when the app starts).
    """
    try:
        return _parse_networks(settings.metrics_allow)
    except ValueError as exc:
        raise ValueError(
            f"TONEHUB_METRICS_ALLOW must be comma-separated networks (CIDR): {exc}"
        ) from exc


class StateCollector(Collector):
    """Gauges read at scrape time from Redis and the database."""

    def __init__(self, ext: Tonehub) -> None:
        self.ext = ext

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._cache()
            yield from self._queues()
        except RedisError as exc:
            logger.warning("Metrics: Redis unavailable (%s)", type(exc).__name__)
        try:
            yield from self._connectors()
        except SQLAlchemyError as exc:
            logger.warning("Metrics: database unavailable (%s)", type(exc).__name__)

    def _cache(self) -> Iterator[Metric]:
        hits, misses = self.ext.redis.mget("th:cache:hits", "th:cache:misses")
        h, m = int(hits or 0), int(misses or 0)
        yield CounterMetricFamily(
            "tonehub_cache_hits", "Result cache hits (all processes).", value=h
        )
        yield CounterMetricFamily(
            "tonehub_cache_misses", "Result cache misses (all processes).", value=m
        )
        yield GaugeMetricFamily(
            "tonehub_cache_hit_ratio",
            "Hits / (hits + misses) of the result cache since Redis started.",
            value=h / (h + m) if h + m else 0.0,
        )

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "tonehub_queue_depth", "Jobs waiting per RQ queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "tonehub_queue_failed_jobs",
            "Jobs in each RQ queue's failed registry.",
            labels=["queue"],
        )
        for name, (waiting, failures) in queue_stats(self.ext.redis).items():
            depth.add_metric([name], waiting)
            failed.add_metric([name], failures)
        yield depth
        yield failed

    def _connectors(self) -> Iterator[Metric]:
        with self.ext.sessions() as session:
            rows = session.execute(
                select(
                    SalesforceConnection.status,
                    func.count(),
                    func.coalesce(func.sum(SalesforceConnection.cases_scored), 0),
                ).group_by(SalesforceConnection.status)
            ).all()
            slack = session.scalar(
                select(func.count()).where(SlackInstallation.bot_token.is_not(None))
            )
        orgs = GaugeMetricFamily(
            "tonehub_salesforce_connections",
            "Connected Salesforce orgs by the status of their last sync.",
            labels=["status"],
        )
        cases = CounterMetricFamily(
            "tonehub_salesforce_cases_scored",
            "Cases scored by Salesforce syncs, by connection status.",
            labels=["status"],
        )
        for status, count, scored in rows:
            orgs.add_metric([status], count)
            cases.add_metric([status], scored)
        yield orgs
        yield cases
        yield GaugeMetricFamily(
            "tonehub_slack_installations",
            "Slack installations holding a bot token.",
            value=slack or 0,
        )


def metrics_view() -> Response:
    """``GET /metrics``: Prometheus text format, for allowed callers only."""
    ext = tonehub()
    if not metrics_allowed(ext):
        raise NotFound("The requested URL was not found on the server.")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(StateCollector(ext))
    return Response(body + generate_latest(state), content_type=CONTENT_TYPE_LATEST)


bp = APIBlueprint("observability", __name__, enable_openapi=False)
bp.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


def init_app(app: Flask, settings: Settings) -> None:
    """Register the request hooks and ``/metrics``.

    Call first in the factory: ``_start`` then runs before every other
    ``before_request`` hook and ``_finish`` after every ``after_request``
    hook (Flask runs those in reverse order), so the log line sees the units
    metering recorded.
    """
    allowed_networks(settings)  # a bad TONEHUB_METRICS_ALLOW stops the start
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.register_blueprint(bp)
