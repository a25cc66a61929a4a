"""The spec schema (`store.spec_schema`): each field declared once reaches the objects."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from actors.desired import workload_for
from k8s.manifests import build_objects
from store.model import EndpointSpec, parse_endpoint
from store.rollout import revision
from store.spec_schema import FIELDS, SPEC_FIELDS, image_for_region, region_image_uris
from store.validation import validate_item
from tests.items import item

REGION = "us-east-1"
BASE_IMAGE = "vllm/vllm-openai:v0.8.0"


def _item(**spec: Any) -> dict[str, Any]:
    return item("llama3", spec={"image": BASE_IMAGE, **spec}, regions=(REGION,))


def test_endpoint_spec_has_exactly_the_declared_fields() -> None:
    """A field added to the schema but not to `EndpointSpec` (or the reverse) fails here."""
    assert sorted(f.name for f in dataclasses.fields(EndpointSpec)) == sorted(FIELDS)


@pytest.mark.parametrize("spec_field", [f for f in SPEC_FIELDS if f.builds], ids=lambda f: f.key)
def test_every_declared_field_reaches_the_built_objects(spec_field: Any) -> None:
    """The field's example is valid, survives the item round trip, and changes both the
    Workload and the objects built from it: no declared field stops on the way."""
    item = _item(**{spec_field.key: spec_field.example})
    assert validate_item(item) == []
    endpoint = parse_endpoint(item)
    assert endpoint.spec.to_item()[spec_field.key] == spec_field.example
    default = workload_for(parse_endpoint(_item()), REGION)
    changed = workload_for(endpoint, REGION)
    assert changed != default
    assert build_objects(changed) != build_objects(default)


def test_only_the_rollout_policy_is_exempt_and_it_changes_no_object() -> None:
    """`spec.rollout` says how a change reaches the regions (architecture section 12), not what
    runs:
    it survives the round trip and changes the `EndpointSpec`, but neither the objects
    nor the revision (changing only the policy starts no rollout)."""
    assert [f.key for f in SPEC_FIELDS if not f.builds] == ["rollout"]
    example = FIELDS["rollout"].example
    item = _item(rollout=example)
    assert validate_item(item) == []
    endpoint = parse_endpoint(item)
    assert endpoint.spec.to_item()["rollout"] == example
    assert endpoint.spec != parse_endpoint(_item()).spec
    default = workload_for(parse_endpoint(_item()), REGION)
    assert build_objects(workload_for(endpoint, REGION)) == build_objects(default)
    assert revision(item["spec"]) == revision(_item()["spec"])


@pytest.mark.parametrize("spec_field", SPEC_FIELDS, ids=lambda f: f.key)
def test_a_default_is_omitted_unless_the_predecessor_always_writes_it(spec_field: Any) -> None:
    written = parse_endpoint(_item()).spec.to_item()
    assert (spec_field.key in written) == spec_field.written


def test_the_written_defaults_are_the_predecessors() -> None:
    assert parse_endpoint(_item()).spec.to_item() == {
        "image": BASE_IMAGE,
        "port": 8000,
        "replicas": 1,
        "gpu_count": 1,
        "health_check_path": "/health",
    }
    assert FIELDS["port"].default == EndpointSpec(image=BASE_IMAGE).port == 8000


@pytest.mark.parametrize(
    ("expected", "image", "region"),
    [
        pytest.param(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/llm:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:1",
            "eu-west-1",
            id="ecr",
        ),
        pytest.param("vllm/vllm-openai:v1", "vllm/vllm-openai:v1", "eu-west-1", id="docker-hub"),
        pytest.param("ghcr.io/a/b:1", "ghcr.io/a/b:1", "eu-west-1", id="ghcr"),
    ],
)
def test_an_ecr_image_moves_to_the_regions_registry(expected: str, image: str, region: str) -> None:
    assert image_for_region(image, region) == expected


def test_region_image_uris_only_when_one_differs() -> None:
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:1"
    assert region_image_uris(ecr, ["us-east-1", "eu-west-1"]) == {
        "us-east-1": ecr,
        "eu-west-1": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/llm:1",
    }
    assert region_image_uris(ecr, ["us-east-1"]) == {}
    assert region_image_uris(BASE_IMAGE, ["us-east-1", "eu-west-1"]) == {}
