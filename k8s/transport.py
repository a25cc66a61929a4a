"""One logical Kubernetes request: rate limit, timeout, counting, error mapping, retries.

`Transport.call` runs a typed client call (returning a raw urllib3 response),
parses the JSON body into a dict and retries temporary failures (429 with its
`Retry-After`, 5xx, timeouts, broken connections) on a bounded backoff
schedule before raising `errors.Retryable`. Every HTTP attempt is counted once
by (verb, kind, outcome). `Transport.open_stream` opens a watch: one attempt,
the body left unread for the caller to stream.

Fencing (architecture section 4): a transport given a `fence` source sends nothing
once the leader's renew deadline has passed. The fence is checked before every
attempt, before each retry's backoff sleep (a retry that would go out after the
deadline is not waited for) and inside the rate limiter (never a wait past the
deadline); a refusal raises `errors.Fenced`. Each attempt's timeout is cut to
end by the lease's expiry, so nothing this process sent is still awaited when a
standby may lead. Opening a watch is fenced too, but an open watch stream is a
read and is not cut: it ends when the gateway stops its watches. `quiesce`
waits for the attempts in flight, for a graceful handover of the lease.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pydantic
import structlog
import urllib3
from kubernetes.client.exceptions import ApiException

from k8s import errors
from k8s.fence import Fence, FenceSource
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
        fence: the leader's write fence; None for an unfenced transport (the lease's own,
            the CLI's). Returns None when not leading: every request is then refused.
        monotonic: the limiter's clock, to turn the fence's window into its deadline.
        waiting: entered around every wait on the network, the rate limiter or a retry
            backoff, so a caller can give back what it holds while it only waits (the
            endpoint actors' handler permit).
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
        fence: FenceSource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        waiting: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self._waiting = waiting
        self._limiter = limiter
        self._policy = policy
        self._timeout = timeout
        self._counter = counter
        self._sleep = sleep
        self._random = random
        self._fence = fence
        self._monotonic = monotonic
        self._in_flight = 0
        self._idle = threading.Condition()

    @property
    def fenced(self) -> bool:
        """True when this transport checks a fence before sending."""
        return self._fence is not None

    def quiesce(self, timeout: float) -> bool:
        """Wait until no attempt of `call` is in flight, up to `timeout` seconds.

        Returns:
            True when none is in flight. Meant for after the fence closed: no new
            attempt starts, and each one in flight ends by its (capped) timeout.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _open_fence(self, context: str) -> Fence | None:
        """The current fence (None when unfenced); raises `Fenced` when it is closed."""
        if self._fence is None:
            return None
        fence = self._fence()
        if fence is None:
            raise errors.Fenced(f"{context}: not sent: this process is not leading")
        if not fence.open:
            raise errors.Fenced(f"{context}: not sent: the lease's renew deadline has passed")
        return fence

    def _pass_limiter(self, context: str, fence: Fence | None) -> Fence | None:
        """Wait for a rate-limit token, never past the fence's send deadline; returns the
        fence as it stands after the wait."""
        if fence is None:
            self._limiter.acquire()
            return None
        deadline = self._monotonic() + fence.send_window
        if self._limiter.acquire_before(deadline) is None:
            raise errors.Fenced(
                f"{context}: not sent: the rate limiter would hold it past the lease's "
                "renew deadline"
            )
        return self._open_fence(context)

    def _start(
        self, verb: str, kind: str, context: str, send: Send, timeout: float
    ) -> urllib3.BaseHTTPResponse:
        """`_send`, counted in flight until `_finish` (at once when it fails)."""
        with self._idle:
            self._in_flight += 1
        try:
            return self._send(verb, kind, context, send, timeout)
        except BaseException:
            self._finish()
            raise

    def _finish(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.notify_all()

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
            errors.ApiError: the mapped failure; `Retryable` after the last retry;
                `Fenced` when the fence refused an attempt (or a retry's wait).
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
                fence = self._open_fence(context)
                if fence is not None and not fence.may_wait(delay):
                    raise errors.Fenced(
                        f"{context}: not retried: a retry in {delay:.2f}s would be sent after "
                        f"the lease's renew deadline ({fence.send_window:.2f}s left); "
                        f"last error: {exc}"
                    ) from exc
                log.info(
                    "k8s request failed, retrying",
                    request=context,
                    error=str(exc),
                    attempt=attempt + 1,
                    delay=round(delay, 3),
                )
                with self._waiting():
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
        with self._waiting():
            fence = self._open_fence(context)
            if limited:
                fence = self._pass_limiter(context, fence)
            attempt_timeout = timeout or self._timeout
            if fence is not None:
                attempt_timeout = fence.attempt_timeout(attempt_timeout)
            response = self._start(verb, kind, context, send, attempt_timeout)
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
                self._finish()
        self._counter.count(verb, kind, "ok")
        return _parse(data, context)

    def open_stream(
        self, verb: str, kind: str, send: Send, *, timeout: Timeout
    ) -> urllib3.BaseHTTPResponse:
        """Open a streaming response (a watch): one rate-limited, counted attempt.

        Fenced like `call` up to the moment it is sent; the open stream is a read and its
        timeout is not cut to the lease (it ends when the gateway stops its watches).

        Raises:
            errors.ApiError: the mapped failure (no retry here: the watcher has its own).
        """
        context = f"{verb} {kind}"
        self._pass_limiter(context, self._open_fence(context))
        response = self._send(verb, kind, context, send, timeout)
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
