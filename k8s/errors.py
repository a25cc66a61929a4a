"""Our own Kubernetes errors: the only exceptions that leave `k8s` for the actors.

The split that matters to a caller is permanent versus temporary. `Retryable`
(429, 5xx, timeouts, broken connections) is raised only after the gateway's own
bounded retries are exhausted; every other `ApiError` is permanent for the
request as sent. Library errors (`kubernetes.client.exceptions.ApiException`,
urllib3 transport errors) are mapped here and chained with `from`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

__all__ = [
    "AlreadyExists",
    "ApiError",
    "Conflict",
    "Fenced",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "NotSynced",
    "OwnedElsewhere",
    "Retryable",
    "from_api_exception",
    "from_status",
    "from_transport_error",
    "outcome_of",
]


class ApiError(Exception):
    """A Kubernetes API call failed.

    `status` is the HTTP status (None when no response was received), `reason`
    the Kubernetes `Status.reason` (`NotFound`, `Conflict`, ...) or a short
    word of ours (`Timeout`, `ConnectionError`, `NoConfig`).
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(ApiError):
    """404: the object (or namespace) does not exist."""


class AlreadyExists(ApiError):
    """409 on create: an object of that name exists."""


class Conflict(ApiError):
    """409 on update: the resourceVersion sent is not the current one."""


class Invalid(ApiError):
    """400/422, or a body the client refused to send: the request itself is wrong."""


class Forbidden(ApiError):
    """401/403: the daemon's identity may not do this (RBAC or credentials)."""


class Gone(ApiError):
    """410: the resourceVersion is older than the server's history; list again."""


class OwnedElsewhere(ApiError):
    """Refused before sending: the object carries our labels but its
    `app.kubernetes.io/instance` names another endpoint (endpoint `x-canary` and endpoint
    `x`'s canary share a name). Permanent: nothing was written."""

    def __init__(self, message: str, *, owner: str) -> None:
        super().__init__(message, reason="OwnedElsewhere")
        self.owner = owner


class Fenced(ApiError):
    """Refused before sending: this process may no longer write (the leader lease's renew
    deadline passed, or it is not leading). Permanent for the request: never retried by
    the transport, and no request was sent for the attempt that raised it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="Fenced")


class Retryable(ApiError):
    """A temporary failure (429, 5xx, timeout, connection error) that outlived the retries.

    `retry_after` is the server's `Retry-After` in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class NotSynced(Retryable):
    """The gateway's cache of a kind cannot answer: its initial list is not done, its
    watch could not resume and it is listing again, or its watch thread is dead.

    Temporary by nature; a caller must never read it as "the object is absent".
    """


# HTTP statuses worth another attempt: the request may succeed unchanged later.
_RETRYABLE_STATUSES = frozenset({408, 429})


def _status_body(exc: ApiException) -> dict[str, Any]:
    """The Kubernetes `Status` object of an error response, or {} when the body is not one."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """`Retry-After` in seconds (the API server sends whole seconds), or None."""
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def from_status(
    status: int | None,
    body: Mapping[str, Any],
    *,
    context: str,
    fallback_reason: str = "",
    headers: Mapping[str, str] | None = None,
) -> ApiError:
    """Map an HTTP status and its Kubernetes `Status` body to our error type.

    Args:
        status: the HTTP status (or the `code` of a watch `ERROR` event); None if unknown.
        body: the `Status` object ({} when the server sent none).
        context: what was attempted, e.g. `create Deployment m1`, for the message.
        fallback_reason: the HTTP reason phrase, used when the body has no reason.
        headers: response headers, for `Retry-After`.

    Returns:
        The matching `ApiError` subclass (not raised: the caller raises it `from` the cause).
    """
    reason = str(body.get("reason") or fallback_reason or "")
    detail = str(body.get("message") or fallback_reason or "no message")
    message = f"{context}: HTTP {status} {reason}: {detail}" if status else f"{context}: {detail}"
    if status == 404:
        return NotFound(message, status=status, reason=reason)
    if status == 409:
        if reason == "AlreadyExists" or (not reason and context.startswith("create ")):
            return AlreadyExists(message, status=status, reason=reason or "AlreadyExists")
        return Conflict(message, status=status, reason=reason or "Conflict")
    if status == 410:
        return Gone(message, status=status, reason=reason or "Expired")
    if status in (400, 422):
        return Invalid(message, status=status, reason=reason)
    if status in (401, 403):
        return Forbidden(message, status=status, reason=reason)
    if status is not None and (status in _RETRYABLE_STATUSES or status >= 500):
        return Retryable(message, status=status, reason=reason, retry_after=_retry_after(headers))
    return ApiError(message, status=status, reason=reason)


def from_api_exception(exc: ApiException, *, context: str) -> ApiError:
    """Map the client's HTTP error to our error type (see `from_status`); the caller
    raises the result `from exc`."""
    return from_status(
        exc.status or None,
        _status_body(exc),
        context=context,
        fallback_reason=str(exc.reason or ""),
        headers=exc.headers,
    )


def from_transport_error(exc: Exception, *, context: str) -> Retryable:
    """Map a urllib3/socket failure (no HTTP response) to `Retryable`.

    The reason is `Timeout` for connect/read timeouts and `ConnectionError`
    otherwise (refused, reset, broken stream).
    """
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    # NewConnectionError subclasses ConnectTimeoutError in urllib3, but a refused
    # connection is not a timeout.
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        reason = "ConnectionError"
    elif isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
        reason = "Timeout"
    else:
        reason = "ConnectionError"
    # The text names the host and port at most; URLs never carry credentials.
    detail = str(cause)[:200]
    return Retryable(f"{context}: {reason}: {type(cause).__name__}: {detail}", reason=reason)


def outcome_of(error: ApiError) -> str:
    """The request-counter outcome for a failed request: the HTTP status, `timeout` or `error`."""
    if error.status is not None:
        return str(error.status)
    if error.reason == "Timeout":
        return "timeout"
    return "error"
