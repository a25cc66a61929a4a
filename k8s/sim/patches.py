"""The three PATCH flavours of the API server, applied to plain JSON values.

- `merge_patch`: RFC 7386 (null deletes a key, lists are replaced whole).
- `strategic_merge_patch`: Kubernetes' strategic merge for the fields the
  daemon touches: lists of containers, initContainers, env, volumes,
  volumeMounts, imagePullSecrets and conditions merge by name/type, container
  ports by `containerPort`, service ports by `port`; `$patch: delete` and
  `$patch: replace` directives; `$setElementOrder` and `$retainKeys` ignored.
- `json_patch`: RFC 6902 (add, remove, replace, move, copy, test).

Malformed patches raise `StatusError` (400 for a body of the wrong shape, 422 when
an operation cannot apply), as the real server answers.
"""

from __future__ import annotations

import copy
from typing import Any

from k8s.sim.errors import StatusError, bad_request

# list field name -> merge key (Kubernetes' patchMergeKey for the fields we use).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """Returns `target` with the RFC 7386 merge patch `patch` applied (inputs untouched)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _list_merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _strategic_list(field: str, target: Any, patch: list[Any]) -> list[Any]:
    base = target if isinstance(target, list) else []
    key = _list_merge_key(field, patch or base)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [copy.deepcopy(i) for i in patch if not _is_directive(i)]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not _is_directive(i)]
    result = [copy.deepcopy(i) for i in base]
    for item in patch:
        directive = item.get("$patch")
        position = next(
            (
                n
                for n, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(key) == item.get(key)
            ),
            None,
        )
        if directive == "delete":
            if position is not None:
                result.pop(position)
            continue
        cleaned = {k: v for k, v in item.items() if k != "$patch"}
        if position is None:
            result.append(_strip_nulls(cleaned))
        else:
            result[position] = strategic_merge_patch(result[position], cleaned)
    return result


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item and len(item) == 1


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Returns `target` with a strategic merge patch applied (inputs untouched)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_nulls({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith(("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/")) or (
            key == "$patch"
        ):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            merged_list = _strategic_list(key, result.get(key), value)
            if merged_list or not any(isinstance(i, dict) and "$patch" in i for i in value):
                result[key] = merged_list
            else:
                # A list emptied by `$patch: delete` disappears, as Go's omitempty drops it.
                result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise StatusError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise StatusError(
                422,
                f"the server rejected our request due to an error in our request:"
                f' doc is missing path: "{path}"',
            )
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise StatusError(
        422,
        f"the server rejected our request due to an error in our request:"
        f' doc is missing path: "{path}"',
    )


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    parent = _parent(doc, tokens, path)
    last = tokens[-1] if tokens else ""
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise StatusError(
        422,
        f"the server rejected our request due to an error in our request:"
        f" Unable to remove nonexistent key: {last}: missing value",
    )


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise StatusError(
                422,
                f"the server rejected our request due to an error in our request:"
                f" add operation does not apply: index out of range {path!r}",
            )
    else:
        raise StatusError(
            422,
            f"the server rejected our request due to an error in our request:"
            f' doc is missing path: "{path}"',
        )
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Returns `target` with the RFC 6902 operations applied (input untouched).

    Raises:
        StatusError: 400 when the body is not a list of operations (a JSON object
            sent as json-patch), 422 when an operation cannot apply.
    """
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request("json: cannot unmarshal into Go value of type jsonpatch.Operation")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            tokens = _pointer(path)
            if not tokens:
                doc = copy.deepcopy(op.get("value"))
            else:
                parent = _parent(doc, tokens, path)
                index: Any = int(tokens[-1]) if isinstance(parent, list) else tokens[-1]
                parent[index] = copy.deepcopy(op.get("value"))
        elif kind in ("move", "copy"):
            source = op.get("from", "")
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise StatusError(
                    422,
                    f"the server rejected our request due to an error in our "
                    f"request: testing value {path} failed: test failed",
                )
        else:
            raise StatusError(
                422,
                f"the server rejected our request due to an error in our request:"
                f" Unexpected kind: {kind}",
            )
    return doc
