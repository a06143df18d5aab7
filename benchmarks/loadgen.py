"""A small HTTP/1.1 load generator, for machines without wrk.

Keep-alive connections each send one GET at a time (a closed loop, as wrk
does) for a fixed time or number of requests, whichever comes first, and the
result is printed as one JSON object: requests, errors, seconds, p50/p99 in
microseconds. It is slower than wrk, so on a small machine it measures less
of the server's ceiling; the ratios between servers still hold.

    python loadgen.py --url http://127.0.0.1:8000/livez --connections 16 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

MAX_REQUESTS = 2_000_000


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response with a Content-Length body; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def connection_loop(
    host: str, port: int, request: bytes, deadline: float, budget: list[int], latencies: list[int]
) -> int:
    """Send requests until the deadline or the shared request budget runs out; the errors."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            started = time.perf_counter_ns()
            writer.write(request)
            status = await read_response(reader)
            latencies.append((time.perf_counter_ns() - started) // 1000)
            if status >= 400:
                errors += 1
    finally:
        writer.close()
    return errors


async def load(url: str, connections: int, seconds: float, headers: list[str]) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", *headers, "", ""]
    request = "\r\n".join(lines).encode()
    latencies: list[int] = []
    budget = [MAX_REQUESTS]
    started = time.perf_counter()
    deadline = started + seconds
    errors = await asyncio.gather(
        *(
            connection_loop(host, port, request, deadline, budget, latencies)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "errors": sum(errors),
        "seconds": elapsed,
        "p50_us": latencies[count // 2] if count else 0,
        "p99_us": latencies[min(count - 1, count * 99 // 100)] if count else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    result = asyncio.run(load(args.url, args.connections, args.seconds, args.header))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
