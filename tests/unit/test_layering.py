"""The layering contract (STYLE idea 1): `k8s` and `store` never import `actors` and are
independent of each other; `boto3` is imported only in `store`, `kubernetes` only in `k8s`
(and the actors' demo and tests)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        pytest.param("k8s", {"actors", "store", "boto3", "botocore"}, id="k8s"),
        pytest.param("store", {"actors", "k8s", "kubernetes"}, id="store"),
        pytest.param("actors", {"boto3", "botocore"}, id="actors"),
    ],
)
def test_package_does_not_import_across_its_layer(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: sorted(names & forbidden)
        for module, names in _imports(package).items()
        if names & forbidden
    }
    assert offenders == {}
