"""Kubernetes `Status` errors: the one exception the sim raises inside a request.

`StatusError` carries everything a real API server puts in its error body
(reason, code, message, details); the HTTP layer turns it into a `Status`
object and the right status line.
"""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    504: "Timeout",
}


class StatusError(Exception):
    """A request the API server answers with a `Status` failure.

    Args:
        code: HTTP status code.
        message: human-readable message, worded like the real API server.
        reason: `Status.reason`; defaults to the usual reason for `code`.
        details: `Status.details` (name, group, kind, causes), if any.
        retry_after: seconds for a `Retry-After` header (429 and some 5xx).
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """Returns the `Status` object a real API server sends for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    """`Status.details`; the core group "" is left out, as Go's `omitempty` does."""
    if group:
        return {"name": name, "group": group, "kind": kind}
    return {"name": name, "kind": kind}


def not_found(qualified: str, name: str, *, group: str, plural: str) -> StatusError:
    """Returns the 404 for a missing object, e.g. `deployments.apps "m1" not found`."""
    return StatusError(
        404,
        f'{qualified} "{name}" not found',
        details=_details(name, group, plural),
    )


def conflict(qualified: str, name: str, *, group: str, plural: str) -> StatusError:
    """Returns the 409 `Conflict` for a write carrying a stale resourceVersion."""
    return StatusError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified;'
        " please apply your changes to the latest version and try again",
        details=_details(name, group, plural),
    )


def already_exists(qualified: str, name: str, *, group: str, plural: str) -> StatusError:
    """Returns the 409 `AlreadyExists` for a create of a name already taken."""
    return StatusError(
        409,
        f'{qualified} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(name, group, plural),
    )


def invalid(kind: str, name: str, causes: list[dict[str, str]], *, group: str) -> StatusError:
    """Returns the 422 `Invalid` with `details.causes`, worded like the real server."""
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes[:5])
    return StatusError(
        422,
        f'{kind} "{name}" is invalid: [{summary}]'
        if len(causes) > 1
        else f'{kind} "{name}" is invalid: {summary}',
        details={**_details(name, group, kind), "causes": causes},
    )


def bad_request(message: str) -> StatusError:
    """Returns a 400 `BadRequest` with `message`."""
    return StatusError(400, message)
