"""Fixtures of the integration tests: a `Harness` on the session's moto server and a
fresh `k8s.sim` per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.harness import Harness, harness


@pytest.fixture
def kit(dynamo_url: str, table_name: str, sim) -> Iterator[Harness]:
    with harness(dynamo_url, table_name, sim.url) as h:
        yield h
