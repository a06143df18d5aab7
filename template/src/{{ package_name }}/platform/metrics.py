"""Prometheus metrics: registries, HTTP traffic, and gauges sampled at scrape time.

Labels are bounded: the route template (`/items/{item_id}`, never the raw
path), a known HTTP method or OTHER, and the status code.

Every registry comes from `new_registry`: it carries the process, platform
and garbage-collector collectors, and the counters features declare with
`process_wide` (a job's outcome is counted wherever it runs: API, worker).
Gauges that describe shared state (a backlog in the database) are read when
Prometheus scrapes, by `ScrapeSamples`, so every replica reports the same
truth however many workers run.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .logging import get_logger

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Prometheus' default buckets; the latency objective is added as a bound of its own.
DEFAULT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A scrape must answer even when the database does not: a slow sample is left out.
SCRAPE_SAMPLE_TIMEOUT_SECONDS = 2.0
# A label set's request-count increment and duration observation.
Observers = tuple[Callable[[], None], Callable[[float], None]]

logger = get_logger(__name__)
CollectorT = TypeVar("CollectorT", bound=Collector)
_process_wide: list[Collector] = []


def process_wide(collector: CollectorT) -> CollectorT:
    """Declare `collector` (created with `registry=None`) for every registry of this process."""
    _process_wide.append(collector)
    return collector


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors and the process-wide metrics."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR, *_process_wide):
        registry.register(collector)
    return registry


def latency_buckets(objective_seconds: float) -> tuple[float, ...]:
    """The default buckets plus the objective, so `le="<objective>"` counts requests within it."""
    return tuple(sorted({*DEFAULT_LATENCY_BUCKETS, objective_seconds}))


def serve_metrics(port: int | None, host: str, registry: CollectorRegistry) -> None:
    """Serve `registry` at http://host:port/metrics; nothing when `port` (METRICS_PORT) is unset."""
    if port is not None:
        start_http_server(port, addr=host, registry=registry)
        logger.info("metrics_serving", port=port)


@dataclass(frozen=True)
class GaugeSample:
    """One gauge's value, as a sample returns it."""

    name: str
    documentation: str
    value: float


Sample = Callable[[], Awaitable[Iterable[GaugeSample]]]


class ScrapeSamples(Collector):
    """Gauges computed by async samples, taken when /metrics is asked for.

    `refresh` runs before each exposition; a sample that fails or outlasts
    the timeout is left out of that scrape (the series goes absent, which an
    alert on `absent()` or on the scrape itself notices) rather than
    reporting a stale value.
    """

    def __init__(self, timeout_seconds: float = SCRAPE_SAMPLE_TIMEOUT_SECONDS) -> None:
        self.timeout_seconds = timeout_seconds
        self._samples: list[Sample] = []
        self._latest: list[GaugeSample] = []

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)

    async def refresh(self) -> None:
        results = await asyncio.gather(
            *(asyncio.wait_for(sample(), self.timeout_seconds) for sample in self._samples),
            return_exceptions=True,
        )
        latest: list[GaugeSample] = []
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("metrics_sample_failed", error=type(result).__name__)
                continue
            latest.extend(result)
        self._latest = latest

    def collect(self) -> Iterable[Metric]:
        for gauge in self._latest:
            yield GaugeMetricFamily(gauge.name, gauge.documentation, value=gauge.value)


class HttpMetrics:
    """Request counter and latency histogram in a registry of their own.

    A registry per app keeps tests (which build many apps) independent.
    Label children are cached, as their bound `inc` and `observe`, because
    `labels()` is the costly part of an observation and the label space is small.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        buckets: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS,
    ) -> None:
        self.registry = registry or new_registry()
        self._requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "http_request_duration_seconds",
            "Time from the request arriving to the response ending, by method and route.",
            ["method", "route"],
            registry=self.registry,
            buckets=buckets,
        )
        self._observers: dict[tuple[str, str, int], Observers] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        observers = self._observers.get(key)
        if observers is None:
            label = method if method in KNOWN_METHODS else "OTHER"
            observers = (
                self._requests.labels(label, route, str(status)).inc,
                self._duration.labels(label, route).observe,
            )
            self._observers[key] = observers
        count_request, observe_duration = observers
        count_request()
        observe_duration(seconds)
