"""When a Deployment's pod template is written (k8s.drift.template_plan, for_live,
record_template): only for a spec change, a hand edit or a restart request; never for
adoption or a new builder output (issue 13 item 3, defect 29)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from actors.desired import workload_for
from k8s import drift
from k8s.manifests import build_deployment, build_service
from k8s.workload import (
    RESTARTED_AT_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    TEMPLATE_SPEC_HASH_ANNOTATION,
    Workload,
)
from store import commands, errors
from tests.items import loaded

W = Workload(name="m1", namespace="ns", image="vllm/vllm-openai:v1", env=(("A", "1"),))
Obj = dict[str, Any]


def _stored(obj: Obj) -> Obj:
    """The object as a server stores it: defaults added, version set."""
    live = copy.deepcopy(obj)
    live["metadata"]["resourceVersion"] = "7"
    pod = live["spec"]["template"]["spec"]
    pod.setdefault("dnsPolicy", "ClusterFirst")
    for container in pod["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
    return live


def _applied(w: Workload = W) -> Obj:
    """A Deployment we created, as the server stores it (its defaults filled in)."""
    return _stored(drift.for_live(None, build_deployment(w)))


def _predecessor(image: str = "vllm/vllm-openai:v1") -> Obj:
    """A Deployment the predecessor built: its own labels, probes and root path."""
    labels = {"app": "m1", "project": "gco", "gco.io/type": "inference"}
    container = {
        "name": "inference",
        "image": image,
        "args": ["--root-path", "/inference/m1"],
        "readinessProbe": {"httpGet": {"path": "/inference/m1/health", "port": 8000}},
    }
    return _stored(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "m1", "namespace": "ns", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "m1"}},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        }
    )


def _edit(change: Callable[[Obj], None]) -> Callable[[Obj], Obj]:
    def apply(obj: Obj) -> Obj:
        edited = copy.deepcopy(obj)
        change(edited)
        return edited

    return apply


def _privileged(obj: Obj) -> None:
    obj["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}


def _template_label(obj: Obj) -> None:
    obj["spec"]["template"]["metadata"]["labels"]["team"] = "x"


def _image(obj: Obj) -> None:
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "attacker/x:1"


def _unrecorded(obj: Obj) -> None:
    obj["metadata"]["annotations"].pop(TEMPLATE_HASH_ANNOTATION)


def _new_builder(obj: Obj) -> Obj:
    """What a later version of the builders makes of the same workload."""
    desired = copy.deepcopy(obj)
    desired["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["timeoutSeconds"] = 3
    desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = "another-build"
    return desired


CASES = [
    # (id, live, desired, write the template?, reason)
    ("adopted as built", _predecessor(), build_deployment(W), False, "adopted"),
    (
        "adopted, image not the spec's yet",
        _predecessor("vllm/vllm-openai:v0"),
        build_deployment(W),
        True,
        "image",
    ),
    ("steady state", _applied(), build_deployment(W), False, "recorded"),
    ("new builder output", _applied(), _new_builder(build_deployment(W)), False, "recorded"),
    (
        "spec changed",
        _applied(),
        build_deployment(Workload(name="m1", namespace="ns", image="vllm/vllm-openai:v1")),
        True,
        "spec",
    ),
    (
        "restart requested",
        _applied(),
        build_deployment(
            Workload(
                name="m1",
                namespace="ns",
                image="vllm/vllm-openai:v1",
                env=(("A", "1"),),
                restarted_at="2026-01-01T00:00:00+00:00",
            )
        ),
        True,
        "spec",
    ),
    (
        "replicas changed (no template input)",
        _applied(),
        build_deployment(Workload(**{**W.__dict__, "replicas": 5})),
        False,
        "recorded",
    ),
    ("hand edit: privileged", _edit(_privileged)(_applied()), build_deployment(W), True, "edited"),
    ("hand edit: image", _edit(_image)(_applied()), build_deployment(W), True, "edited"),
    (
        "hand edit that is no drift (a template label)",
        _edit(_template_label)(_applied()),
        build_deployment(W),
        False,
        "matches",
    ),
    (
        "our write not recorded yet",
        _edit(_unrecorded)(_applied()),
        build_deployment(W),
        False,
        "matches",
    ),
    (
        "hand edit after a builder change",
        _edit(_privileged)(_applied()),
        _new_builder(build_deployment(W)),
        True,
        "edited",
    ),
]


@pytest.mark.parametrize(
    ("live", "desired", "write", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_template_plan(live: Obj, desired: Obj, write: bool, reason: str) -> None:
    assert drift.template_plan(live, desired) == drift.TemplatePlan(write, reason)
    target = drift.for_live(live, desired)
    if write:
        assert target["spec"]["template"] == desired["spec"]["template"]
    else:
        assert target["spec"]["template"] == live["spec"]["template"]
        recorded = target["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
        assert recorded == drift.template_hash(live["spec"]["template"])
    body = drift.replacement(live, target)
    assert body["spec"]["template"] == target["spec"]["template"]
    assert (
        body["metadata"]["annotations"][TEMPLATE_SPEC_HASH_ANNOTATION]
        == (desired["metadata"]["annotations"][TEMPLATE_SPEC_HASH_ANNOTATION])
    )


def test_adoption_writes_metadata_only() -> None:
    live = _predecessor()
    target = drift.for_live(live, build_deployment(W))
    assert drift.needs_update(live, target)
    body = drift.replacement(live, target)
    assert body["spec"]["template"] == live["spec"]["template"]
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "inference-supervisor"
    # Once adopted, the same desired object is no reason for another write.
    adopted = _stored(body)
    assert drift.template_plan(adopted, build_deployment(W)).reason == "recorded"
    assert not drift.needs_update(adopted, drift.for_live(adopted, build_deployment(W)))


def test_a_new_builder_output_writes_no_template() -> None:
    live = _applied()
    desired = _new_builder(build_deployment(W))
    body = drift.replacement(live, drift.for_live(live, desired))
    assert body["spec"]["template"] == live["spec"]["template"]
    assert body["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == "another-build"


def test_the_template_hash_ignores_what_the_server_fills_in() -> None:
    sent = drift.for_live(None, build_deployment(W))
    stored = _stored(sent)
    probe = stored["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe.update(timeoutSeconds=1, successThreshold=1)
    probe["httpGet"]["scheme"] = "HTTP"
    stored["spec"]["template"]["metadata"]["creationTimestamp"] = None
    recorded = sent["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
    assert drift.template_hash(stored["spec"]["template"]) == recorded
    assert drift.template_plan(stored, build_deployment(W)).reason == "recorded"
    assert not drift.needs_update(stored, drift.for_live(stored, build_deployment(W)))
    probe["timeoutSeconds"] = 5
    assert drift.template_hash(stored["spec"]["template"]) != recorded


def test_template_inputs_ignore_builder_and_sizing_but_not_the_spec() -> None:
    def inputs(w: Workload) -> str:
        return build_deployment(w)["metadata"]["annotations"][TEMPLATE_SPEC_HASH_ANNOTATION]

    base = inputs(W)
    assert inputs(Workload(**{**W.__dict__, "replicas": 7})) == base
    assert inputs(Workload(**{**W.__dict__, "stopped": True, "replicas": 0})) == base
    assert inputs(Workload(**{**W.__dict__, "serve_traffic": False})) == base
    assert inputs(Workload(**{**W.__dict__, "image": "vllm/vllm-openai:v2"})) != base
    assert inputs(Workload(**{**W.__dict__, "env": (("A", "2"),)})) != base
    restarted = Workload(**{**W.__dict__, "restarted_at": "t1"})
    assert inputs(restarted) != base
    template = build_deployment(restarted)["spec"]["template"]
    assert template["metadata"]["annotations"] == {RESTARTED_AT_ANNOTATION: "t1"}


def test_other_kinds_are_compared_as_before() -> None:
    desired = build_service(W)
    assert drift.for_live(_stored_service(desired), desired) is desired


def _stored_service(obj: Obj) -> Obj:
    live = copy.deepcopy(obj)
    live["metadata"]["resourceVersion"] = "3"
    return live


# -- the restart request in the table item ------------------------------------------


def _loaded(**raw: Any) -> Any:
    return loaded(image="vllm/vllm-openai:v1", **raw)


def test_request_restart_sets_a_new_top_level_value_each_time() -> None:
    first = commands.request_restart(_loaded()).set_["restart_requested_at"]
    again = commands.request_restart(_loaded(restart_requested_at=first))
    assert again.set_["restart_requested_at"] != first
    assert set(again.set_) == {"restart_requested_at"}, "the spec is untouched"
    assert not again.remove


def test_request_restart_is_refused_while_deleting() -> None:
    with pytest.raises(errors.OperationRefused):
        commands.request_restart(_loaded(desired_state="deleted"))


def test_the_restart_request_reaches_the_pod_template() -> None:
    loaded = _loaded(restart_requested_at="2026-02-02T00:00:00+00:00")
    assert loaded.endpoint is not None
    assert loaded.endpoint.to_item()["restart_requested_at"] == "2026-02-02T00:00:00+00:00"
    template = build_deployment(workload_for(loaded.endpoint, "us-east-1"))["spec"]["template"]
    assert template["metadata"]["annotations"][RESTARTED_AT_ANNOTATION] == (
        "2026-02-02T00:00:00+00:00"
    )
    # The predecessor's items have none, and a value that is not ours restarts nothing.
    for raw in ({}, {"restart_requested_at": 5}):
        plain = _loaded(**raw)
        assert plain.endpoint is not None
        assert plain.endpoint.restart_requested_at is None
