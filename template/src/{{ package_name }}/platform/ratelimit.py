"""Rate limits, counted per caller: the principal, or the client address.

    @router.post("", dependencies=[Depends(rate_limit("10/minute"))])
    @router.post("", dependencies=[Depends(rate_limit())])  # RATE_LIMIT_DEFAULT

A route without `rate_limit(...)` is not limited. A caller who presented a
verified credential is counted by principal; any other caller (no credential,
or the anonymous principal when authentication is off) by client address.
Refused credentials count against the address too (RATE_LIMIT_AUTH_FAILURES),
so guessing tokens or keys is limited on every route.

The client address is the one uvicorn puts on the request: behind a proxy it
is taken from X-Forwarded-For only when the proxy's address is listed in
FORWARDED_ALLOW_IPS, otherwise it is the proxy's own. An IPv6 client is
counted by its /64 network, the smallest block a host is usually given.

Counts are fixed windows, kept in this process by default; with
RATE_LIMIT_REDIS_URL set they live in Redis (one atomic round trip per
request), so every replica shares one limit. If Redis cannot be reached the
request is let through and a warning logged: the limiter must not take the
service down with it.
"""

import ipaddress
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

from fastapi import Request, Response

from .auth import ANONYMOUS, OptionalPrincipalDep, Principal
from .errors import ServiceError
from .logging import get_logger
from .middleware import route_template
from .openapi import answers
from .settings import RATE_PATTERN, PlatformSettings

if TYPE_CHECKING:
    # The client is imported only when RATE_LIMIT_REDIS_URL is set: it is a slow import.
    from redis.asyncio import Redis

logger = get_logger(__name__)

PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
PERIOD_NAMES = {seconds: name for name, seconds in PERIOD_SECONDS.items()}
RATE = re.compile(RATE_PATTERN)
# Expired windows are swept once the in-process table grows past this many.
SWEEP_THRESHOLD = 10_000
# An IPv6 host usually holds a whole /64, so it is counted as one address.
IPV6_CLIENT_PREFIX = 64

# INCR and the window's expiry in one step: the first hit of a window sets its expiry.
HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""
# The count so far and the window's expiry, without counting.
PEEK_SCRIPT = """
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    period_seconds: int

    @classmethod
    def parse(cls, text: str) -> Self:
        """`10/minute` -> Rate(10, 60); also second, hour and day."""
        match = RATE.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a rate such as '10/minute'")
        return cls(int(match["limit"]), PERIOD_SECONDS[match["period"]])

    def __str__(self) -> str:
        return f"{self.limit}/{PERIOD_NAMES[self.period_seconds]}"


@dataclass(frozen=True)
class Usage:
    """A caller's count in the current window, and the seconds until the window ends."""

    count: int
    reset_seconds: float

    def headers(self, rate: Rate) -> dict[str, str]:
        """The RateLimit-* headers (IETF draft) for this usage of `rate`."""
        return {
            "RateLimit-Limit": str(rate.limit),
            "RateLimit-Remaining": str(max(0, rate.limit - self.count)),
            "RateLimit-Reset": str(self.retry_after()),
        }

    def retry_after(self) -> int:
        """Whole seconds until the window ends, at least 1."""
        return max(1, math.ceil(self.reset_seconds))


class Counter(Protocol):
    # The errors that mean the store cannot be reached: the request is let through.
    unavailable: tuple[type[Exception], ...]

    async def hit(self, key: str, period_seconds: int) -> Usage: ...

    async def peek(self, key: str) -> Usage: ...

    async def close(self) -> None: ...


class InProcessCounter:
    """Fixed windows in this process's memory: each replica counts on its own."""

    unavailable: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self.windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, period_seconds: int) -> Usage:
        now = time.monotonic()
        ends_at, count = self.windows.get(key, (0.0, 0))
        if now >= ends_at:
            ends_at, count = now + period_seconds, 0
            if len(self.windows) >= SWEEP_THRESHOLD:
                self.windows = {k: v for k, v in self.windows.items() if v[0] > now}
        self.windows[key] = (ends_at, count + 1)
        return Usage(count + 1, ends_at - now)

    async def peek(self, key: str) -> Usage:
        now = time.monotonic()
        ends_at, count = self.windows.get(key, (0.0, 0))
        return Usage(count, ends_at - now) if now < ends_at else Usage(0, 0.0)

    async def close(self) -> None:
        self.windows.clear()


class RedisCounter:
    """Fixed windows in Redis, shared by every replica."""

    def __init__(self, client: "Redis") -> None:
        from redis.exceptions import RedisError

        self.unavailable: tuple[type[Exception], ...] = (RedisError, OSError)
        self.client = client
        self.hit_script = client.register_script(HIT_SCRIPT)
        self.peek_script = client.register_script(PEEK_SCRIPT)

    async def hit(self, key: str, period_seconds: int) -> Usage:
        count, ttl_ms = await self.hit_script(keys=[key], args=[period_seconds * 1000])
        return Usage(int(count), max(int(ttl_ms), 0) / 1000)

    async def peek(self, key: str) -> Usage:
        count, ttl_ms = await self.peek_script(keys=[key])
        return Usage(int(count), max(int(ttl_ms), 0) / 1000)

    async def close(self) -> None:
        await self.client.aclose()


def client_address(request: Request) -> str:
    """The client's address as uvicorn gives it (see FORWARDED_ALLOW_IPS); IPv6 by its /64."""
    host = request.client.host if request.client else None
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


def caller_identity(request: Request, caller: Principal | None) -> str:
    """Whom a request is counted against: a verified principal, otherwise the client address.

    The anonymous principal stands for every caller when authentication is
    off, so it is counted by address, not as one shared caller.
    """
    if caller is None or caller is ANONYMOUS:
        return f"address:{client_address(request)}"
    return f"principal:{caller.subject}"


def auth_failures_key(request: Request) -> str:
    """The count of credentials refused to this client's address."""
    return f"auth-failures:{client_address(request)}"


def too_many_requests(message: str, rate: Rate, usage: Usage) -> ServiceError:
    """The 429 envelope, with Retry-After and the RateLimit-* headers."""
    retry_after = usage.retry_after()
    details: dict[str, Any] = {"limit": rate.limit, "retry_after_seconds": retry_after}
    return ServiceError(
        429,
        "rate_limited",
        message,
        details,
        headers={**usage.headers(rate), "Retry-After": str(retry_after)},
    )


class RateLimiter:
    """The app's counters and rates; a resource, reachable as `app.state.rate_limiter`.

    `default_rate` is what `rate_limit()` allows when a route names no rate;
    `auth_failure_rate` is how many refused credentials an address may
    present before it is refused outright (None: not counted).
    """

    name = "rate_limiter"

    def __init__(
        self,
        counter: Counter,
        key_prefix: str,
        default_rate: Rate,
        auth_failure_rate: Rate | None = None,
    ) -> None:
        self.counter = counter
        self.key_prefix = key_prefix
        self.default_rate = default_rate
        self.auth_failure_rate = auth_failure_rate

    @classmethod
    def from_settings(cls, settings: PlatformSettings, *, auth_failures: str | None = None) -> Self:
        if settings.rate_limit_redis_url is None:
            counter: Counter = InProcessCounter()
        else:
            from redis.asyncio import Redis

            client = Redis.from_url(
                settings.rate_limit_redis_url.get_secret_value(),
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
            counter = RedisCounter(client)
        return cls(
            counter,
            settings.rate_limit_key_prefix,
            Rate.parse(settings.rate_limit_default),
            Rate.parse(auth_failures) if auth_failures is not None else None,
        )

    async def hit(self, key: str, rate: Rate) -> Usage | None:
        """This hit's usage; None when the count cannot be had (the hit is let through)."""
        try:
            return await self.counter.hit(self.key_prefix + key, rate.period_seconds)
        except self.counter.unavailable as error:
            logger.warning("rate_limit_unavailable", error=f"{type(error).__name__}: {error}")
            return None

    async def peek(self, key: str) -> Usage | None:
        """The usage so far, without counting; None when the count cannot be had."""
        try:
            return await self.counter.peek(self.key_prefix + key)
        except self.counter.unavailable as error:
            logger.warning("rate_limit_unavailable", error=f"{type(error).__name__}: {error}")
            return None

    async def refuse_guessing_address(self, request: Request) -> None:
        """429 for an address that has had too many credentials refused, before checking another."""
        rate = self.auth_failure_rate
        if rate is None:
            return
        usage = await self.peek(auth_failures_key(request))
        if usage is not None and usage.count >= rate.limit:
            raise too_many_requests(
                f"Too many refused credentials from this address: it may present {rate}.",
                rate,
                usage,
            )

    async def count_refused_credential(self, request: Request) -> None:
        """Count a refused credential against the client's address."""
        if self.auth_failure_rate is not None:
            await self.hit(auth_failures_key(request), self.auth_failure_rate)

    async def check(self) -> None:
        """Always ready: without its counter store the limiter lets requests through."""

    async def close(self) -> None:
        await self.counter.close()


def rate_limit(
    rate: str | None = None,
) -> Callable[[Request, Response, OptionalPrincipalDep], Awaitable[None]]:
    """A dependency that allows each caller `rate` requests to the route (else 429).

    Without `rate`, the route gets RATE_LIMIT_DEFAULT. The count is per route
    as mounted (`/api/v1/jobs`, not the router's `/jobs`), so a router
    included under two prefixes has a count under each.
    """
    parsed = Rate.parse(rate) if rate is not None else None

    @answers(429)
    async def limit(request: Request, response: Response, caller: OptionalPrincipalDep) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        chosen = parsed or limiter.default_rate
        route = route_template(request.scope)
        identity = caller_identity(request, caller)
        usage = await limiter.hit(f"route:{request.method}:{route}:{identity}", chosen)
        if usage is None:
            return
        if usage.count > chosen.limit:
            raise too_many_requests(
                f"Too many requests: this route allows {chosen} per caller.", chosen, usage
            )
        response.headers.update(usage.headers(chosen))

    return limit
