"""HTTP for the external APIs: one pooled session per client, timeouts on every request, bounded retries.

Retries follow external-apis.md §1.3/§2.4: 429 waits `Retry-After` (with a floor and backoff when the
header is 0 or missing); 500/502/503 and network errors back off exponentially with jitter; all
waiting a client does is capped, so a run never hangs on a struggling service. Errors name the
service and the endpoint (a path template such as `GET /v1/tracks/{id}`), never a credential: request
bodies and headers are not echoed, and response bodies are not quoted.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # requests is imported by the client, not with the definitions (which only need the errors)
    import requests

RETRIED_STATUSES = (500, 502, 503)


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries, and how long it may wait in total over its lifetime (one run)."""

    max_attempts: int = 5  # per request, the first try included
    backoff_s: float = 1.0  # first wait after a 5xx or network error; doubles on each retry
    backoff_max_s: float = 30.0
    retry_after_floor_s: float = 1.0  # 429 with `Retry-After: 0` or none: wait this, doubling
    max_total_wait_s: float = 120.0  # all waits of one client together

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if min(self.backoff_s, self.backoff_max_s, self.retry_after_floor_s, self.max_total_wait_s) < 0:
            raise ValueError("retry waits cannot be negative")


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 20.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect_s, self.read_s)


class HttpError(RuntimeError):
    """A request to an external API failed; `endpoint` names it, `status` is the HTTP status (0: none)."""

    def __init__(self, message: str, service: str, endpoint: str, status: int = 0, payload: Any = None):
        super().__init__(message)
        self.service, self.endpoint, self.status, self.payload = service, endpoint, status, payload


class ClientError(HttpError):
    """A 4xx answer that retrying cannot fix (bad request, forbidden, not found, unauthorized)."""


class RateLimited(HttpError):
    """429 beyond what the retry policy allows waiting for."""


class QuotaExceeded(RateLimited):
    """429 with reason QUOTA_EXCEEDED: the app's quota is spent; a long stop, not a short retry."""


class ServiceFailing(HttpError):
    """5xx answers or network errors (timeouts included) on every attempt."""


class MalformedResponse(HttpError):
    """A success answer whose body is not the JSON the endpoint documents."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: a number (fractions tolerated) or an HTTP date; None if absent/unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def error_message(payload: Any) -> tuple[str, str | None]:
    """(message, reason) from any of the error shapes: Spotify API, Spotify Accounts, ReccoBeats."""
    if not isinstance(payload, dict):
        return "", None
    error = payload.get("error")
    if isinstance(error, dict):  # Web API: {"error": {"status", "message", "reason"?}}
        return str(error.get("message") or ""), error.get("reason")
    if isinstance(error, str):  # Accounts: {"error": code, "error_description"?}; ReccoBeats: {"error", "message"}
        detail = payload.get("error_description") or payload.get("message")
        return f"{error}: {detail}" if detail else error, None
    return str(payload.get("message") or ""), None


class HttpClient:
    """A JSON client for one service with a pooled session; `stats` counts requests, retries and waits."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.timeouts, self.retry = timeouts, retry
        self.log = logger or logging.getLogger(__name__)
        self._sleep = sleep
        self._rng = rng or random.Random()
        import requests
        from requests.adapters import HTTPAdapter

        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "spotify-brain/0.1"})
        self.stats = {"requests": 0, "retries": 0, "waited_s": 0.0}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        params: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The parsed JSON answer of `method base_url+path`, retried per the policy."""
        import requests

        name = f"{method} {endpoint or path}"
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            attempt += 1
            self.stats["requests"] += 1
            try:
                response = self.session.request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeouts.as_tuple()
                )
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                reason = "timed out" if isinstance(exc, requests.Timeout) else "could not be reached"
                self._wait_or_raise(
                    ServiceFailing(f"{self.service} {name} {reason} ({type(exc).__name__})", self.service, name),
                    attempt,
                    self._backoff(attempt),
                )
                continue
            if response.status_code == 429:
                payload = _json_or_none(response)
                message, reason = error_message(payload)
                if reason == "QUOTA_EXCEEDED":
                    raise QuotaExceeded(
                        f"{self.service} {name}: the app's request quota is exceeded (429 QUOTA_EXCEEDED); "
                        "try again later",
                        self.service, name, 429, payload,
                    )
                header = retry_after_seconds(response.headers.get("Retry-After"))
                wait = header if header else self._floor_backoff(attempt)
                self._wait_or_raise(
                    RateLimited(f"{self.service} {name} is rate limited (429, Retry-After {header if header is not None else 'missing'})", self.service, name, 429, payload),
                    attempt,
                    wait,
                )
                continue
            if response.status_code in RETRIED_STATUSES:
                self._wait_or_raise(
                    ServiceFailing(f"{self.service} {name} answered {response.status_code}", self.service, name, response.status_code),
                    attempt,
                    self._backoff(attempt),
                )
                continue
            if response.status_code >= 400:
                payload = _json_or_none(response)
                message, _ = error_message(payload)
                raise ClientError(
                    f"{self.service} {name} answered {response.status_code}" + (f": {message}" if message else ""),
                    self.service, name, response.status_code, payload,
                )
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                kind = response.headers.get("Content-Type") or "no content type"
                raise MalformedResponse(
                    f"{self.service} {name} answered {response.status_code} with a body that is not valid JSON "
                    f"({kind}, {len(response.content)} bytes)",
                    self.service, name, response.status_code,
                ) from None

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half of the step fixed, half random."""
        step = min(self.retry.backoff_max_s, self.retry.backoff_s * 2 ** (attempt - 1))
        return step * (0.5 + 0.5 * self._rng.random())

    def _floor_backoff(self, attempt: int) -> float:
        return min(self.retry.backoff_max_s, self.retry.retry_after_floor_s * 2 ** (attempt - 1))

    def _wait_or_raise(self, error: HttpError, attempt: int, wait: float) -> None:
        spent = self.stats["waited_s"]
        if attempt >= self.retry.max_attempts:
            raise type(error)(f"{error} on all {attempt} attempts", error.service, error.endpoint, error.status, error.payload)
        if spent + wait > self.retry.max_total_wait_s:
            raise type(error)(
                f"{error}; giving up: waiting {wait:.1f} s more would exceed the {self.retry.max_total_wait_s:g} s "
                "this run may spend waiting",
                error.service, error.endpoint, error.status, error.payload,
            )
        self.log.warning(f"{error}; retrying in {wait:.2f} s (attempt {attempt + 1} of {self.retry.max_attempts})")
        self.stats["retries"] += 1
        self.stats["waited_s"] = spent + wait
        if wait > 0:
            self._sleep(wait)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
