"""Structured JSON logs on stdout, one object per line.

structlog renders the service's own logs; records from the standard library
(uvicorn, libraries) go through the same processors, so every line has the
same shape. Values bound with `structlog.contextvars` (the request id) appear
in every line logged while they are bound, and the current trace and span ids
are added when tracing is on. The access log's line, one per request, is built
directly rather than through the processor chain, to the same result.
"""

import io
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from contextvars import copy_context
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO, cast

import structlog
from opentelemetry import trace
from structlog.contextvars import STRUCTLOG_KEY_PREFIX
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
# Keys whose values never reach a log line, whatever a caller passes.
SENSITIVE_KEY = re.compile(
    r"authorization|cookie|password|passwd|secret|token|api[_-]?key|credential|private[_-]?key",
    re.IGNORECASE,
)


class LogSink(io.TextIOBase):
    """The stream log lines go to, so it can be switched after loggers are cached."""

    def __init__(self) -> None:
        super().__init__()
        self.target: TextIO = sys.stdout

    def write(self, line: str) -> int:
        return self.target.write(line)

    def flush(self) -> None:
        self.target.flush()


sink = LogSink()


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    # Cached: a service logs a small, fixed set of keys, and the pattern is costly per line.
    return SENSITIVE_KEY.search(key) is not None


def redact_sensitive_values(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in event_dict:
        if is_sensitive_key(key):
            event_dict[key] = REDACTED
    return event_dict


class UtcClock:
    """ISO 8601 timestamps in UTC, as structlog's `TimeStamper(fmt="iso", utc=True)` writes them.

    The date and time up to the second are formatted once a second, not once a line.
    """

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.now_ns = now_ns
        self._second_and_prefix = (-1, "")

    def timestamp(self) -> str:
        seconds, nanoseconds = divmod(self.now_ns(), 1_000_000_000)
        second, prefix = self._second_and_prefix
        if seconds != second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._second_and_prefix = (seconds, prefix)
        microseconds = nanoseconds // 1000
        # Like datetime.isoformat(): no fraction when it is zero.
        return f"{prefix}.{microseconds:06d}Z" if microseconds else f"{prefix}Z"


utc_clock = UtcClock()


def add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["timestamp"] = utc_clock.timestamp()
    return event_dict


def json_fallback(value: Any) -> Any:
    """What structlog's JSON renderer does with a value JSON cannot hold."""
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if callable(structlog_form) else repr(value)


# One encoder for every line: json.dumps with `default=` would build a new one each time.
json_encoder = json.JSONEncoder(default=json_fallback)


def render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    return json_encoder.encode(event_dict)


def current_trace_ids() -> tuple[str, str] | None:
    """The current trace and span ids in hex, or None outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    ids = current_trace_ids()
    if ids is not None:
        event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """Route structlog and standard-library logging to one JSON stream."""
    sink.target = stream or sys.stdout
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_timestamp,
        add_trace_context,
        redact_sensitive_values,
    ]
    renderer: list[Processor] = [
        # Tracebacks without frame locals: locals hold request headers and secrets.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
        render_json,
    ]
    numeric_level = logging.getLevelNamesMapping()[level]
    access_log.enabled = numeric_level <= logging.INFO
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=cast(TextIO, sink)),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    # The access log middleware writes one richer line per request instead.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(
    name: str | None = None, **initial_values: Any
) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name, **initial_values)
    return logger


# The access line's own keys: a context value under one of them is left out, as the chain does.
ACCESS_LINE_KEYS = frozenset({"method", "route", "path", "status", "duration_ms", "event"})
# Keys the chain sets or reads after merging the context: a context value under one of them
# sends the line through the chain, which alone knows what to make of it.
CHAIN_KEYS = frozenset({"level", "timestamp", "trace_id", "span_id", "exc_info", "exception"})
REDACTED_JSON = json_encoder.encode(REDACTED)
# A string as the encoder above writes it: quoted, escaped, ASCII only.
json_string = encode_basestring_ascii


def context_json() -> str | None:
    """The values bound with `structlog.contextvars`, as `, "key": value` pairs, redacted.

    In the order `merge_contextvars` adds them; None when one needs the chain.
    """
    pairs = []
    for variable, value in copy_context().items():
        name = variable.name
        if not name.startswith(STRUCTLOG_KEY_PREFIX) or value is Ellipsis:
            continue
        key = name[len(STRUCTLOG_KEY_PREFIX) :]
        if key in ACCESS_LINE_KEYS:
            continue
        if key in CHAIN_KEYS:
            return None
        if is_sensitive_key(key):
            encoded = REDACTED_JSON
        elif type(value) is str:
            encoded = json_string(value)
        else:
            encoded = json_encoder.encode(value)
        pairs.append(f", {json_string(key)}: {encoded}")
    return "".join(pairs)


class AccessLog:
    """The one line per request, written without structlog's processor chain.

    The line is exactly what `get_logger("access").info("request", ...)` would
    write through the chain `configure_logging` sets up (the service's tests
    compare the two): the request's fields, the bound context, the level, the
    timestamp and the trace ids, sensitive context values redacted (the line's
    own keys are not sensitive). It is built as one string because the chain
    costs about as much as the rest of the platform's work on a request.
    """

    def __init__(self) -> None:
        self.enabled = True
        self._writer = structlog.WriteLogger(cast(TextIO, sink))
        self._chain = get_logger("access")

    def request(self, method: str, route: str, path: str, status: int, duration_ms: float) -> None:
        if not self.enabled:
            return
        context = context_json()
        if context is None:
            self._chain.info(
                "request",
                method=method,
                route=route,
                path=path,
                status=status,
                duration_ms=duration_ms,
            )
            return
        ids = current_trace_ids()
        trace_pairs = "" if ids is None else f', "trace_id": "{ids[0]}", "span_id": "{ids[1]}"'
        fields = (
            f'"method": {json_string(method)}, "route": {json_string(route)}, '
            f'"path": {json_string(path)}, "status": {status}, "duration_ms": {duration_ms!r}, '
            f'"event": "request"{context}, "level": "info", '
            f'"timestamp": "{utc_clock.timestamp()}"{trace_pairs}'
        )
        self._writer.msg("{" + fields + "}")


access_log = AccessLog()
