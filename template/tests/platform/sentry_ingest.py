"""A local stand-in for Sentry's ingest: it keeps the envelopes the SDK posts to it."""

import functools
import gzip
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

ENVELOPE_PATH = re.compile(r"^/api/(?P<project>[0-9]+)/envelope/$")


def envelope_items(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The (header, payload) of each item of a Sentry envelope, after its own header line."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


class SentryIngest:
    """Sentry's envelope endpoint on 127.0.0.1; `dsn` points the SDK at project 1 here.

    Any other POST (a trace exporter pointed here too) is answered 200 and dropped.
    """

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                match = ENVELOPE_PATH.match(self.path)
                if match and match["project"] == "1":
                    ingest.envelopes.append(body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.dsn = f"http://public@127.0.0.1:{port}/1"

    def events(self) -> list[dict[str, Any]]:
        """Every error event received, in order."""
        return [
            json.loads(payload)
            for envelope in self.envelopes
            for header, payload in envelope_items(envelope)
            if header.get("type") == "event"
        ]

    def __enter__(self) -> Self:
        # A short poll interval, so that shutting down takes no longer than that.
        serve = functools.partial(self.server.serve_forever, poll_interval=0.01)
        threading.Thread(target=serve, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
