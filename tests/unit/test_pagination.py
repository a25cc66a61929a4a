"""`store.pagination.PageGuard`: a scan that cannot end stops with `ScanBroken`."""

from __future__ import annotations

import pytest

from store.errors import ScanBroken
from store.pagination import PageGuard


def test_a_healthy_scan_passes_with_empty_pages_now_and_then() -> None:
    guard = PageGuard("t", slack=2)
    guard.page(["a"], {"k": "a"})
    guard.page([], {"k": "b"})
    guard.page(["c"], {"k": "c"})
    guard.page(["d"], None)
    assert guard.pages == 4


def test_a_repeated_key_stops_the_scan() -> None:
    guard = PageGuard("t")
    guard.page(["a"], {"k": "a"})
    guard.page(["b"], {"k": "b"})
    with pytest.raises(ScanBroken, match=r"LastEvaluatedKey \{\"k\": \"a\"\} repeated after 3"):
        guard.page(["a"], {"k": "a"})


def test_pages_far_past_the_items_stop_the_scan() -> None:
    guard = PageGuard("t", slack=3)
    for i in range(4):
        guard.page(["same"], {"k": i})
    with pytest.raises(ScanBroken, match="5 pages for 1 items"):
        guard.page(["same"], {"k": 99})
