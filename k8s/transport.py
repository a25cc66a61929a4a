"""One logical Kubernetes request: rate limit, timeout, counting, error mapping, retries.

`Transport.call` runs a typed client call (returning a raw urllib3 response),
parses the JSON body into a dict and retries temporary failures (429 with its
`Retry-After`, 5xx, timeouts, broken connections) on a bounded backoff
schedule before raising `errors.Retryable`. Every HTTP attempt is counted once
by (verb, kind, outcome). `Transport.open_stream` opens a watch: one attempt,
the body left unread for the caller to stream.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pydantic
import structlog
import urllib3
from kubernetes.client.exceptions import ApiException

from k8s import errors
from k8s.ratelimit import TokenBucket
from k8s.retry import BackoffPolicy

__all__ = ["RequestCounter", "Timeout", "Transport"]

log = structlog.get_logger(__name__)

# `_request_timeout` of the client: total seconds, or (connect, read) seconds.
Timeout = float | tuple[float, float]
# A typed client call with everything bound except `_request_timeout`.
Send = Callable[[Timeout], urllib3.BaseHTTPResponse]


class RequestCounter:
    """Counts requests by (verb, kind, outcome) and forwards each to an optional callback.

    A failing callback is logged and never fails the request it reports.
    """

    def __init__(self, on_request: Callable[[str, str, str], None] | None = None) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._on_request = on_request

    def count(self, verb: str, kind: str, outcome: str) -> None:
        """Record one request."""
        with self._lock:
            self._counts[(verb, kind, outcome)] += 1
        if self._on_request is not None:
            try:
                self._on_request(verb, kind, outcome)
            except Exception:
                log.exception("on_request callback failed", verb=verb, kind=kind)

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        """A copy of all counts so far."""
        with self._lock:
            return dict(self._counts)


def _parse(data: bytes, context: str) -> dict[str, Any]:
    """The JSON object of a response body ({} for an empty body)."""
    if not data:
        return {}
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise errors.ApiError(f"{context}: response is not JSON", reason="BadResponse") from exc
    if not isinstance(parsed, dict):
        raise errors.ApiError(f"{context}: response is not a JSON object", reason="BadResponse")
    return parsed


class Transport:
    """Sends requests for the gateway; shared by all its threads.

    Args:
        limiter: the client-side rate limiter every limited request passes.
        policy: retry count and backoff for temporary failures.
        timeout: default per-attempt timeout in seconds.
        counter: where every attempt is counted.
        sleep: how to wait between retries (injected for tests).
        random: source of jitter in [0, 1).
    """

    def __init__(
        self,
        *,
        limiter: TokenBucket,
        policy: BackoffPolicy,
        timeout: float,
        counter: RequestCounter,
        sleep: Callable[[float], None],
        random: Callable[[], float],
    ) -> None:
        self._limiter = limiter
        self._policy = policy
        self._timeout = timeout
        self._counter = counter
        self._sleep = sleep
        self._random = random

    def call(
        self,
        verb: str,
        kind: str,
        name: str,
        send: Send,
        *,
        retry: bool = True,
        limited: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run `send` until it succeeds, fails permanently or runs out of retries.

        Args:
            verb: `get`, `list`, `create`, `update`, `delete` (for counters and messages).
            kind: `Deployment`, `Lease`, ... (for counters and messages).
            name: the object's name, or "" for collection calls.
            send: the typed call, given the timeout.
            retry: False for a single attempt (lease calls).
            limited: False to bypass the rate limiter (lease calls).
            timeout: per-attempt timeout in seconds; default the transport's.

        Returns:
            The response body as a dict.

        Raises:
            errors.ApiError: the mapped failure; `Retryable` after the last retry.
        """
        context = f"{verb} {kind} {name}".rstrip()
        attempt = 0
        while True:
            try:
                return self._attempt(verb, kind, context, send, limited=limited, timeout=timeout)
            except errors.Retryable as exc:
                if not retry or attempt >= self._policy.max_retries:
                    raise
                delay = self._policy.delay(
                    attempt, random_value=self._random(), retry_after=exc.retry_after
                )
                log.info(
                    "k8s request failed, retrying",
                    request=context,
                    error=str(exc),
                    attempt=attempt + 1,
                    delay=round(delay, 3),
                )
                self._sleep(delay)
                attempt += 1

    def _attempt(
        self,
        verb: str,
        kind: str,
        context: str,
        send: Send,
        *,
        limited: bool,
        timeout: float | None,
    ) -> dict[str, Any]:
        """One counted HTTP attempt; the body is read fully and the connection released."""
        if limited:
            self._limiter.acquire()
        response = self._send(verb, kind, context, send, timeout or self._timeout)
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # A half-read connection must not go back to the pool for reuse.
            response.close()
            error = errors.from_transport_error(exc, context=context)
            self._counter.count(verb, kind, errors.outcome_of(error))
            raise error from exc
        finally:
            response.release_conn()
        self._counter.count(verb, kind, "ok")
        return _parse(data, context)

    def open_stream(
        self, verb: str, kind: str, send: Send, *, timeout: Timeout
    ) -> urllib3.BaseHTTPResponse:
        """Open a streaming response (a watch): one rate-limited, counted attempt.

        Raises:
            errors.ApiError: the mapped failure (no retry here: the watcher has its own).
        """
        self._limiter.acquire()
        response = self._send(verb, kind, f"{verb} {kind}", send, timeout)
        self._counter.count(verb, kind, "ok")
        return response

    def _send(
        self, verb: str, kind: str, context: str, send: Send, timeout: Timeout
    ) -> urllib3.BaseHTTPResponse:
        """Start the request; map and count failures that happen before a 2xx response."""
        try:
            return send(timeout)
        except ApiException as exc:
            error = errors.from_api_exception(exc, context=context)
            self._counter.count(verb, kind, errors.outcome_of(error))
            raise error from exc
        except pydantic.ValidationError as exc:
            # The client refused the body before sending anything: not a request.
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(part) for part in first.get("loc", ()))
            raise errors.Invalid(
                f"{context}: client rejected the body at {where}: {first.get('msg', exc)}",
                reason="ClientValidation",
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            error = errors.from_transport_error(exc, context=context)
            self._counter.count(verb, kind, errors.outcome_of(error))
            raise error from exc
