"""What the informer cache keeps of an object (`k8s.informer.slim`): nothing of the
metadata nobody reads, one shared copy of each key and short string across objects,
the rest unchanged, and the server's object left as it was."""

from __future__ import annotations

import copy
import json
from typing import Any

from k8s.informer import SHARED_STRING_MAX, slim


def _deployment(name: str) -> dict[str, Any]:
    """A Deployment as a server returns it: decoded on its own, sharing no string."""
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "inference-supervisor"},
            "managedFields": [{"manager": "inference-supervisor", "operation": "Update"}],
            "selfLink": f"/apis/apps/v1/namespaces/gco-inference/deployments/{name}",
            "annotations": {"long": "x" * (SHARED_STRING_MAX + 1)},
        },
        "spec": {"template": {"spec": {"containers": [{"imagePullPolicy": "IfNotPresent"}]}}},
    }
    return json.loads(json.dumps(body))


def test_unread_metadata_goes_and_everything_else_stays() -> None:
    obj = _deployment("m1")
    before = copy.deepcopy(obj)
    kept = slim(obj)
    expected = copy.deepcopy(before)
    del expected["metadata"]["managedFields"], expected["metadata"]["selfLink"]
    assert kept == expected
    assert obj == before, "the server's object is not modified"


def test_keys_and_short_values_are_one_object_across_cached_objects() -> None:
    first, second = slim(_deployment("m1")), slim(_deployment("m2"))

    def policy(obj: dict[str, Any]) -> str:
        return obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]

    def manager(obj: dict[str, Any]) -> str:
        return obj["metadata"]["labels"]["app.kubernetes.io/managed-by"]

    assert next(iter(first)) is next(iter(second)), "keys are shared"
    assert policy(first) is policy(second)
    assert manager(first) is manager(second)
    long_first = first["metadata"]["annotations"]["long"]
    long_second = second["metadata"]["annotations"]["long"]
    assert long_first == long_second
    assert long_first is not long_second, "long values stay apart"
