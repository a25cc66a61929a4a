"""Bounds on one paginated scan (issue 22, case 6): a table that answers with a
`LastEvaluatedKey` it already gave, or with more pages than it has items, would make a
scan spin forever; `PageGuard` stops it with `errors.ScanBroken` instead.

A real scan never repeats a key, and every page but the last carries at least one item
(a Scan without a filter), so a scan of N items takes at most N + 1 pages. The guard
allows `slack` pages more than the distinct items returned so far (DynamoDB may return
an empty page now and then), which is far past what a healthy table needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from store import errors

__all__ = ["PAGE_SLACK", "PageGuard"]

#: Pages allowed beyond the distinct items a scan returned.
PAGE_SLACK = 100


class PageGuard:
    """Checks each page of one scan; raises `errors.ScanBroken` when the scan cannot end."""

    def __init__(self, table_name: str, *, slack: int = PAGE_SLACK) -> None:
        self.table_name = table_name
        self.slack = slack
        self.pages = 0
        self._keys: set[str] = set()
        self._names: set[Any] = set()

    def page(self, names: Iterable[Any], last_key: Mapping[str, Any] | None) -> None:
        """Record one page: the keys of its items and its `LastEvaluatedKey` (None on the
        last page).

        Raises:
            errors.ScanBroken: the key was given before in this scan, or the pages exceed
                the distinct items seen plus `slack`.
        """
        self.pages += 1
        self._names.update(names)
        if last_key is None:
            return
        key = json.dumps(last_key, sort_keys=True, default=str)
        if key in self._keys:
            raise errors.ScanBroken(
                f"scan of table {self.table_name} stopped: LastEvaluatedKey {key} repeated "
                f"after {self.pages} pages"
            )
        self._keys.add(key)
        if self.pages > len(self._names) + self.slack:
            raise errors.ScanBroken(
                f"scan of table {self.table_name} stopped: {self.pages} pages for "
                f"{len(self._names)} items"
            )
