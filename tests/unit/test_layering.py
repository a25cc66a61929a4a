"""The layering contract (STYLE idea 1): `k8s` and `store` never import `actors` and are
independent of each other; no product code imports the test aids (`tests`); `boto3` is
imported only in `store`, `kubernetes` only in `k8s` (and, in `actors.app`, the two
modules listed below). The actor system (`actors` minus `actors.app`) never imports the
application `actors.app`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: `python -m actors` is the application's entry point by Python's convention, so it is
#: the one module of the actor system allowed to import `actors.app`.
ENTRY_POINTS = frozenset({"actors/__main__.py"})
#: The only modules of `actors.app` that import `kubernetes`: the daemon wiring builds its
#: `ApiClient`, the demo reads the local cluster's objects to show them. The verbs call
#: `k8s` and `store` for everything else; none imports `boto3`.
APP_KUBERNETES_IMPORTS = frozenset({"actors/app/daemon.py", "actors/app/demo.py"})


def _imports(package: str, *, depth: int = 1) -> dict[str, set[str]]:
    """{module path: the names it imports, cut to their first `depth` dotted parts}."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(".".join(alias.name.split(".")[:depth]) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(".".join(node.module.split(".")[:depth]))
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        pytest.param("k8s", {"actors", "store", "boto3", "botocore", "tests"}, id="k8s"),
        pytest.param("store", {"actors", "k8s", "kubernetes", "tests"}, id="store"),
        pytest.param("actors", {"boto3", "botocore", "tests"}, id="actors"),
        pytest.param("bench", {"tests"}, id="bench"),
    ],
)
def test_package_does_not_import_across_its_layer(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: sorted(names & forbidden)
        for module, names in _imports(package).items()
        if names & forbidden
    }
    assert offenders == {}


def test_actor_system_never_imports_the_application() -> None:
    """`actors` minus `actors.app` works without the application around it."""
    offenders = {
        module: sorted(name for name in names if name == "actors.app")
        for module, names in _imports("actors", depth=2).items()
        if not module.startswith("actors/app/") and module not in ENTRY_POINTS
        if "actors.app" in names
    }
    assert offenders == {}


def test_the_actor_system_holds_items_without_the_dynamodb_adapter() -> None:
    """The actor system reaches the table through `actors.ports.EndpointStore` and holds
    `store.item.LoadedItem`; only the application wires `store.dynamo` in. And `store`
    has no import cycle through the adapter (it had one: `store.commands` <->
    `store.dynamo`)."""
    offenders = {
        module
        for module, names in _imports("actors", depth=2).items()
        if not module.startswith("actors/app/") and "store.dynamo" in names
    }
    assert offenders == set()
    store_imports = _imports("store", depth=2)
    adapter_imports = store_imports["store/dynamo.py"]
    cycles = {
        module
        for module, names in store_imports.items()
        if "store.dynamo" in names and "store." + Path(module).stem in adapter_imports
    }
    assert cycles == set()


def test_verbs_are_thin() -> None:
    """The application talks to DynamoDB and Kubernetes through `store` and `k8s`: no
    `boto3` anywhere in `actors.app`, `kubernetes` only where listed."""
    offenders = {
        module: sorted(names & {"boto3", "botocore", "kubernetes"})
        for module, names in _imports("actors/app").items()
        if names & {"boto3", "botocore", "kubernetes"}
    }
    assert set(offenders) == APP_KUBERNETES_IMPORTS
    assert all(names == ["kubernetes"] for names in offenders.values())
