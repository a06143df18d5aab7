"""Prometheus metrics for HTTP traffic.

Labels are bounded: the route template (`/items/{item_id}`, never the raw
path), a known HTTP method or OTHER, and the status code.
"""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A label set's request-count increment and duration observation.
Observers = tuple[Callable[[], None], Callable[[float], None]]


class HttpMetrics:
    """Request counter and latency histogram in a registry of their own.

    A registry per app keeps tests (which build many apps) independent.
    Label children are cached, as their bound `inc` and `observe`, because
    `labels()` is the costly part of an observation and the label space is small.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
