"""Strict schema validation of submitted objects, with validators built once per kind.

`kubernetes_validate.validate()` reads and parses the schema files on every
call (~10 ms per object); this module loads the same files once per
(apiVersion, kind) and reuses a jsonschema validator (~0.25 ms per object), so
a 5,000-endpoint benchmark measures the daemon and not the validator. Beyond
the schema it checks what a real API server adds for the kinds we serve: valid
object names and a Deployment selector that matches its template labels.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv_utils
from importlib_resources import files
from referencing import Registry, Resource

# The newest Kubernetes version whose schemas the installed kubernetes-validate ships.
K8S_SCHEMA_VERSION: str = kv_utils.latest_version()

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

_REASONS = {
    "required": "FieldValueRequired",
    "additionalProperties": "FieldValueNotSupported",
    "enum": "FieldValueNotSupported",
}


class SchemaValidators:
    """Strict jsonschema validators per (apiVersion, kind), built on first use and cached."""

    def __init__(self, version: str = K8S_SCHEMA_VERSION) -> None:
        self._dir = files("kubernetes_validate").joinpath(
            "kubernetes-json-schema", f"v{version}-local-strict"
        )
        self._lock = threading.Lock()
        self._registry: Registry | None = None
        self._definitions: dict[str, Any] | None = None
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}

    @staticmethod
    @functools.cache
    def shared(version: str = K8S_SCHEMA_VERSION) -> SchemaValidators:
        """Returns the process-wide validators for `version` (schemas never change, so every
        sim in a process shares the validators built once)."""
        return SchemaValidators(version)

    def _load(self, name: str) -> Any:
        return json.loads(self._dir.joinpath(name).read_text())

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        """Returns the cached validator for one kind (building it on the first call)."""
        key = (api_version, kind)
        found = self._validators.get(key)
        if found is not None:
            return found
        with self._lock:
            if key in self._validators:
                return self._validators[key]
            if self._registry is None:
                definitions = Resource.from_contents(self._load("_definitions.json"))
                self._registry = definitions @ Registry()
            # The file naming of kubernetes-validate: apps/v1 -> apps-v1, networking.k8s.io/v1
            # -> networking-v1, v1 -> v1.
            group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            schema = self._load(f"{kind.lower()}-{group_version}.json")
            if self._definitions is None:
                self._definitions = self._load("_definitions.json")["$defs"]
            # Inlining the $refs once halves the per-object cost (no reference lookups per
            # call); recursive definitions keep their $ref and resolve through the registry.
            schema = _inline(schema, self._definitions, ())
            registry = Resource.from_contents(schema) @ self._registry
            built = jsonschema.Draft202012Validator(schema, registry=registry)
            self._validators[key] = built
            return built

    def causes(self, obj: dict[str, Any]) -> list[dict[str, str]]:
        """Returns the `Status.details.causes` for `obj`: empty when it is valid."""
        validator = self.validator(obj["apiVersion"], obj["kind"])
        found: list[dict[str, str]] = []
        for error in validator.iter_errors(obj):
            field = _field_path(error.absolute_path)
            if error.validator == "required" and isinstance(error.instance, dict):
                missing = _missing_property(error.message)
                field = f"{field}.{missing}" if field and missing else (missing or field)
            elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = set((error.schema or {}).get("properties", {}))
                extra = sorted(k for k in error.instance if k not in known)
                field = ".".join(p for p in (field, extra[0] if extra else "") if p)
            found.append(
                {
                    "reason": _REASONS.get(str(error.validator), "FieldValueInvalid"),
                    "message": _message(error),
                    "field": field,
                }
            )
        found.extend(_semantic_causes(obj))
        return found


_REF_PREFIX = "/api/_definitions.json#/$defs/"
_LOCAL_PREFIX = "#/$defs/"


def _inline(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    """Returns `node` with every non-recursive definition $ref replaced by the definition."""
    if isinstance(node, list):
        return [_inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith((_REF_PREFIX, _LOCAL_PREFIX)):
        name = ref.split("#/$defs/", 1)[1]
        if name in seen or name not in definitions:
            # Left as a reference, made absolute so it resolves from the kind's schema.
            return {**node, "$ref": _REF_PREFIX + name}
        target = _inline(definitions[name], definitions, (*seen, name))
        rest = {k: _inline(v, definitions, seen) for k, v in node.items() if k != "$ref"}
        return {**target, **rest} if rest else target
    return {k: _inline(v, definitions, seen) for k, v in node.items()}


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _missing_property(message: str) -> str:
    match = re.match(r"^'([^']*)' is a required property", message)
    return match.group(1) if match else ""


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return "Required value"
    if error.validator == "additionalProperties":
        return f"Unsupported value: {error.message}"
    return f"Invalid value: {json.dumps(error.instance)[:200]}: {error.message[:200]}"


def _semantic_causes(obj: dict[str, Any]) -> list[dict[str, str]]:
    """The checks a real server makes beyond the OpenAPI schema, for the kinds we serve."""
    causes: list[dict[str, str]] = []
    name = obj.get("metadata", {}).get("name", "")
    pattern = _DNS_LABEL if obj.get("kind") == "Service" else _DNS_SUBDOMAIN
    limit = 63 if obj.get("kind") == "Service" else 253
    if not isinstance(name, str) or not pattern.match(name) or len(name) > limit:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 name must"
                " consist of lower case alphanumeric characters, '-' or '.', and must start"
                " and end with an alphanumeric character",
                "field": "metadata.name",
            }
        )
    if obj.get("kind") == "Deployment":
        spec = obj.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
        if not selector and not (spec.get("selector") or {}).get("matchExpressions"):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: {}: empty selector is invalid for deployment",
                    "field": "spec.selector",
                }
            )
        elif any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {json.dumps(labels)}: `selector` does not match"
                    " template `labels`",
                    "field": "spec.template.metadata.labels",
                }
            )
        containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
        for index, container in enumerate(containers):
            if isinstance(container, dict) and not container.get("image"):
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": f"spec.template.spec.containers[{index}].image",
                    }
                )
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {replicas}: must be greater than or equal to 0",
                    "field": "spec.replicas",
                }
            )
    return causes
