"""Label and field selectors as the API server parses them.

`parse_label_selector("app=m1,tier!=canary,env in (a,b),!legacy,present")`
returns a predicate over a labels dict; `parse_field_selector` supports
`metadata.name` and `metadata.namespace` (`=`, `==`, `!=`) like every kind in a
real server, plus the fields a real server adds for Events (`involvedObject.name`,
`reason`, `type`, ...: what `kubectl describe` selects on). Malformed selectors raise
`StatusError(400)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from k8s.sim.errors import bad_request

LabelPredicate = Callable[[Mapping[str, str]], bool]
ObjectPredicate = Callable[[Mapping[str, Any]], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


def _split_requirements(selector: str) -> list[str]:
    """Splits on commas that are not inside `in (...)` value lists."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> LabelPredicate:
    if match := _SET_RE.match(text):
        key, op, raw = match.group(1), match.group(3), match.group(4)
        values = frozenset(v.strip() for v in raw.split(","))
        if not all(_VALUE_RE.match(v) for v in values):
            raise bad_request(f"unable to parse requirement: invalid label value in {text!r}")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_RE.match(text):
        key, op, value = match.group(1), match.group(3), match.group(4)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.match(text):
        negate, key = match.group(1) == "!", match.group(2)
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(
        f"unable to parse requirement: found '{text.strip()}', expected: "
        "'=', '!=', '==', 'in', notin'"
    )


def parse_label_selector(selector: str | None) -> LabelPredicate | None:
    """Returns a predicate matching labels against `selector`, or None when it selects all."""
    if not selector or not selector.strip():
        return None
    requirements = [_requirement(part) for part in _split_requirements(selector)]
    if len(requirements) == 1:
        return requirements[0]
    return lambda labels: all(req(labels) for req in requirements)


_FIELDS = ("metadata.name", "metadata.namespace")
#: Fields selectable per kind beyond `_FIELDS` (the API server's field label conversions).
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
}


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at dotted `path` as a selector compares it ("" when absent); `source` is
    the Event's `source.component`, as the API server maps it."""
    if path == "source":
        path = "source.component"
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def parse_field_selector(selector: str | None, plural: str = "") -> ObjectPredicate | None:
    """Returns a predicate over whole objects of `plural` for `selector`, or None when it
    selects all."""
    if not selector or not selector.strip():
        return None
    known = (*_FIELDS, *_KIND_FIELDS.get(plural, ()))
    checks: list[tuple[str, bool, str]] = []
    for part in selector.split(","):
        if not part.strip():
            continue
        if "!=" in part:
            field, value = part.split("!=", 1)
            equal = False
        elif "==" in part:
            field, value = part.split("==", 1)
            equal = True
        elif "=" in part:
            field, value = part.split("=", 1)
            equal = True
        else:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        field = field.strip()
        if field not in known:
            raise bad_request(
                f'"{field}" is not a known field selector: only '
                + ", ".join(f'"{k}"' for k in known)
            )
        checks.append((field, equal, value.strip()))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in checks)

    return matches


def selector_string(match_labels: Mapping[str, str]) -> str:
    """Returns `a=1,b=2` for a `matchLabels` map (used in `Scale.status.selector`)."""
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
