"""Which fields Git owns, and which of them a request changes, removes or takes over. Pure.

The controller applies with server-side apply under the field manager ``driftguard-controller``,
so kube-apiserver records in ``metadata.managedFields`` exactly the fields Git sets: that record
is the only desired state the guard needs. A FieldsV1 set is a tree of keys:

- ``f:<name>``: a map field; ``{}`` under it means the whole value is owned (a scalar, or an
  atomic list or map such as ``args``);
- ``k:{"name":"web"}``: the item of an associative list whose key fields have these values;
- ``v:"example.com/keep"``: the item of a set (``finalizers``) with this value;
- ``i:3``: a list item by index;
- ``.``: the node itself is owned (it exists because Git says so), whatever else is under it.

Paths keep those raw keys (``FieldsPath``); what people read is the index form kube's own
messages use, ``spec.template.spec.containers[0].image``, and the JSON pointer
``/spec/template/spec/containers/0/image`` (what allow rules and drift records use).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from extension.api.tracking import FIELD_MANAGER

FieldsPath = tuple[str, ...]
Token = str | int
How = Literal["changed", "removed", "taken over"]

_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _decode(node: Any, prefix: FieldsPath, out: set[FieldsPath]) -> None:
    if not isinstance(node, dict) or not node:
        if prefix:
            out.add(prefix)
        return
    for key, child in node.items():
        if key == ".":
            out.add((*prefix, "."))
        elif isinstance(key, str):
            _decode(child, (*prefix, key), out)


def owned(obj: dict[str, Any] | None, manager: str = FIELD_MANAGER) -> frozenset[FieldsPath]:
    """The fields ``manager`` owns in ``obj`` through server-side apply (``Apply`` entries of the
    main resource; its ``Update`` entries and subresources' are not what Git set)."""
    meta = (obj or {}).get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, dict) else None
    out: set[FieldsPath] = set()
    for entry in entries if isinstance(entries, list) else ():
        if (
            isinstance(entry, dict)
            and entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            _decode(entry.get("fieldsV1"), (), out)
    return frozenset(out)


def owns(obj: dict[str, Any] | None, pointer: str, manager: str = FIELD_MANAGER) -> bool:
    """Whether ``manager`` applied the map field at ``pointer`` (``/spec/replicas``) or under it."""
    wanted = tuple(f"f:{t}" for t in pointer_tokens(pointer))
    return any(path[: len(wanted)] == wanted for path in owned(obj, manager))


@dataclass(frozen=True)
class Located:
    value: Any
    tokens: tuple[Token, ...]  # map keys and list indexes from the root


def _find(items: list[Any], kind: str, raw: str) -> int | None:
    try:
        wanted = json.loads(raw) if kind in ("k", "v") else int(raw)
    except ValueError:
        return None
    if kind == "i":
        return wanted if isinstance(wanted, int) and 0 <= wanted < len(items) else None
    for index, item in enumerate(items):
        if kind == "v" and item == wanted:
            return index
        if (
            kind == "k"
            and isinstance(wanted, dict)
            and isinstance(item, dict)
            and all(k in item and item[k] == v for k, v in wanted.items())
        ):
            return index
    return None


def locate(obj: Any, path: FieldsPath) -> Located | None:
    """The value a FieldsV1 path names in ``obj``, or None when the object has no such field."""
    node, tokens = obj, list[Token]()
    for element in path:
        if element == ".":
            break
        kind, _, raw = element.partition(":")
        if kind == "f":
            if not isinstance(node, dict) or raw not in node:
                return None
            node = node[raw]
            tokens.append(raw)
        elif kind in ("k", "v", "i"):
            index = _find(node, kind, raw) if isinstance(node, list) else None
            if index is None:
                return None
            node = node[index]
            tokens.append(index)
        else:
            return None
    return Located(node, tuple(tokens))


def human(tokens: Iterable[Token]) -> str:
    """``spec.template.spec.containers[0].image``; keys that are not plain words in brackets:
    ``metadata.annotations["gitops.driftguard.io/tracking-id"]``."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif _SIMPLE_KEY.fullmatch(token):
            out += f".{token}" if out else token
        else:
            out += f"[{json.dumps(token)}]"
    return out


def pointer(tokens: Iterable[Token]) -> str:
    """RFC 6901: ``/metadata/annotations/gitops.driftguard.io~1tracking-id``."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def pointer_tokens(value: str) -> list[str]:
    if not value.startswith("/"):
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in value[1:].split("/")]


def covered(field_pointer: str, allowed: Iterable[str]) -> bool:
    """Whether an allow-listed pointer is the field or one of its parents."""
    return any(field_pointer == p or field_pointer.startswith(p.rstrip("/") + "/") for p in allowed)


@dataclass(frozen=True)
class Drift:
    """A Git-owned field that a request changes, removes or takes over from the controller."""

    tokens: tuple[Token, ...]
    how: How

    @property
    def path(self) -> str:
        return human(self.tokens)

    @property
    def pointer(self) -> str:
        return pointer(self.tokens)

    def __str__(self) -> str:
        return self.path


def _order(tokens: tuple[Token, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, t, "") if isinstance(t, int) else (1, 0, t) for t in tokens)


def drifted(
    old: dict[str, Any] | None, new: dict[str, Any] | None, manager: str = FIELD_MANAGER
) -> list[Drift]:
    """The fields ``manager`` applied in ``old`` that ``new`` changes, removes, or no longer
    records as ``manager``'s (taken over by another manager with ``--force-conflicts``, or
    managedFields reset). Listed in document order; a removed map or list item hides its fields."""
    before = owned(old, manager)
    if not before or not isinstance(new, dict):
        return []
    after = owned(new, manager)
    found: dict[tuple[Token, ...], How] = {}
    for path in before:
        here = locate(old, path)
        if here is None:  # owned, yet absent: nothing Git set is there to protect
            continue
        there = locate(new, path)
        how: How
        if there is None:
            how = "removed"
        elif path[-1] != "." and there.value != here.value:
            how = "changed"
        elif path not in after:
            how = "taken over"
        else:
            continue
        if found.get(here.tokens) in (None, "taken over"):
            found[here.tokens] = how
    gone = [t for t, how in found.items() if how == "removed"]
    return sorted(
        (
            Drift(tokens, how)
            for tokens, how in found.items()
            if not any(len(g) < len(tokens) and tokens[: len(g)] == g for g in gone)
        ),
        key=lambda d: _order(d.tokens),
    )
