"""Structured JSON logs on stdout, one object per line.

structlog renders the service's own logs; records from the standard library
(uvicorn, libraries) go through the same processors, so every line has the
same shape. Values bound with `structlog.contextvars` (the request id) appear
in every line logged while they are bound, and the current trace and span ids
are added when tracing is on.
"""

import io
import json
import logging
import re
import sys
import time
from functools import lru_cache
from typing import Any, TextIO, cast

import structlog
from opentelemetry import trace
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


class UtcTimestamper:
    """Adds `timestamp`, ISO 8601 in UTC, as structlog's `TimeStamper(fmt="iso", utc=True)`.

    The date and time up to the second are formatted once a second, not once a line.
    """

    def __init__(self) -> None:
        self._second_and_prefix = (-1, "")

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        second, prefix = self._second_and_prefix
        if seconds != second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._second_and_prefix = (seconds, prefix)
        microseconds = nanoseconds // 1000
        # Like datetime.isoformat(): no fraction when it is zero.
        event_dict["timestamp"] = f"{prefix}.{microseconds:06d}Z" if microseconds else f"{prefix}Z"
        return event_dict


def json_fallback(value: Any) -> Any:
    """What structlog's JSON renderer does with a value JSON cannot hold."""
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if callable(structlog_form) else repr(value)


# One encoder for every line: json.dumps with `default=` would build a new one each time.
json_encoder = json.JSONEncoder(default=json_fallback)


def render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    return json_encoder.encode(event_dict)


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """Route structlog and standard-library logging to one JSON stream."""
    sink.target = stream or sys.stdout
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UtcTimestamper(),
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
