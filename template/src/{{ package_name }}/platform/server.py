"""The HTTP server: uvicorn, configured from settings.

uvicorn bounds the idle time between requests (keep-alive) but not the time a
client takes to send a request's headers: every byte it receives resets the
keep-alive timer, so a client sending a byte at a time holds its connection
for as long as it likes. uvicorn has no setting for it, so
`HeaderTimeoutProtocol` adds that bound (the template's ADR 0012); the
request body's bound is `BodyTimeoutMiddleware`.
"""

import asyncio
import json
from asyncio import TimerHandle
from typing import ClassVar

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import error_body
from .logging import get_logger
from .settings import PlatformSettings

logger = get_logger(__name__)

HEADER_TIMEOUT_BODY = json.dumps(
    error_body("request_timeout", "The request headers were not received in time."),
    separators=(",", ":"),
).encode()
# How long a connection stays half-closed after a 408 before it is closed.
# Closing a socket with unread input sends a reset, and a reset can reach the
# client before it has read the 408; the pause lets the client finish writing.
LINGER_SECONDS = 0.5


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers.

    The clock starts when the connection is made, and for each later request
    on a kept-alive connection when its first byte arrives (the idle time
    before that is keep-alive's). It stops when the headers are complete.
    A client that started a request and ran out of time is answered 408 and
    disconnected after `LINGER_SECONDS`; one that sent nothing is disconnected
    without an answer.
    """

    header_timeout_seconds: ClassVar[float]

    _header_timer: TimerHandle | None = None
    # Whether the connection is between requests: the next bytes are headers.
    _awaiting_headers = True
    # Whether bytes of the awaited request's headers have arrived.
    _headers_started = False
    # Whether the 408 has been sent: what the client still sends is dropped.
    _lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        # Covers bytes that start no request (blank lines between requests) too.
        if self._awaiting_headers:
            self._start_header_timer()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_started = True
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._headers_started = False
        self._stop_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True

    def _start_header_timer(self) -> None:
        """Start the clock unless it is already running: dribbled bytes do not reset it."""
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.header_timeout_seconds, self._headers_timed_out
            )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is half-sent while the previous one is being
            # answered: finish that answer, then close.
            self.cycle.keep_alive = False
            return
        if self._headers_started:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else None
            logger.warning("request_header_timeout", client=client)
            self.transport.write(self._header_timeout_response())
            self._close_after_linger()
            return
        self.transport.close()

    def _close_after_linger(self) -> None:
        """Send end-of-stream now, and close once the client has had time to stop writing."""
        self._lingering = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _header_timeout_response(self) -> bytes:
        lines = [
            b"HTTP/1.1 408 Request Timeout",
            *(name + b": " + value for name, value in self.server_state.default_headers),
            b"content-type: application/json",
            b"content-length: " + str(len(HEADER_TIMEOUT_BODY)).encode(),
            b"connection: close",
        ]
        return b"\r\n".join(lines) + b"\r\n\r\n" + HEADER_TIMEOUT_BODY


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """`HeaderTimeoutProtocol` with its deadline: uvicorn makes protocols from a class."""

    class Protocol(HeaderTimeoutProtocol):
        header_timeout_seconds = seconds

    return Protocol


def server_config(app: FastAPI, settings: PlatformSettings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # The protocol is chosen, not left to `auto`: the header deadline is built on it.
        http=header_timeout_protocol(settings.request_header_timeout_seconds),
        # Logging is configured by the app; uvicorn's lines go through it.
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
    )


def serve(app: FastAPI, settings: PlatformSettings, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests and stop."""
    uvicorn.Server(server_config(app, settings, host, port)).run()
