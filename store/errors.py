"""The store's own errors: every DynamoDB failure reaches callers as one of these.

The split that matters to a caller is by class, as in `k8s.errors`: `Retryable`
(throttling, an outage) is raised only after botocore's own bounded retries and
is worth retrying later; every other `StoreError` (bad input, missing
credentials, a missing item, a lost race that needs a fresh read) is permanent
for the call as made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class StoreError(Exception):
    """Base of every error the store raises.

    Attributes:
        code: DynamoDB's error code when the error came from DynamoDB, else "".
    """

    code: str = ""


class Retryable(StoreError):
    """A temporary failure that outlived the bounded retries: the same call may succeed
    later."""


class ItemNotFound(StoreError):
    """The endpoint (or the table) does not exist."""


class TableNotFound(ItemNotFound):
    """The endpoints table does not exist."""


class ItemExists(StoreError):
    """`create` of a name that is already in the table."""


class ConditionFailed(StoreError):
    """A lost race: the item changed since it was read, so nothing was written.

    Attributes:
        current_item: the item as it was when the condition failed (Decimals converted),
            or None when it does not exist or DynamoDB did not return it.
    """

    def __init__(self, message: str, *, current_item: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current_item = current_item


class Superseded(ConditionFailed):
    """A leader's status write was refused: the entry carries a newer leader's epoch (a
    higher one, or the same one of another holder). A fencing outcome, not a failure:
    a deposed leader's late write must not overwrite its successor's.

    Attributes:
        epoch, holder: what the stored entry carries.
    """

    def __init__(
        self,
        message: str,
        *,
        current_item: dict[str, Any] | None = None,
        epoch: int | None = None,
        holder: str | None = None,
    ) -> None:
        super().__init__(message, current_item=current_item)
        self.epoch = epoch
        self.holder = holder


class ItemTooLarge(StoreError):
    """The write would take the item past DynamoDB's 400 KB item size limit."""


class ScanBroken(Retryable):
    """A paginated scan could not end: the table repeated a `LastEvaluatedKey` or gave
    far more pages than items (`store.pagination`). The next scan tries again."""

    code = "ScanBroken"


class Throttled(Retryable):
    """DynamoDB throttled the request and the bounded retries are exhausted."""


class Unavailable(Retryable):
    """DynamoDB could not be reached, timed out or answered 5xx after the bounded retries."""


class OperationRefused(StoreError):
    """The operation does not apply to the endpoint's current state (e.g. promote without a
    canary, start a deleted endpoint). Nothing was written."""


class InvalidEndpoint(StoreError):
    """An item or a requested change breaks the rules of architecture section 8.

    Attributes:
        name: the endpoint name (may be empty when the item has none).
        problems: one message per problem, each naming its field.
    """

    def __init__(self, name: str, problems: Sequence[str]) -> None:
        self.name = name
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))
