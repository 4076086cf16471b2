"""Field sets over our schema, as kube-apiserver's structured-merge-diff computes them: what an
object sets, how an applied configuration merges into a live object, which fields two objects
differ in, and how owned fields are removed. Pure: plain dicts and lists in, plain data out.

A path is a tuple of FieldsV1 path elements: ``f:name`` (a field or a map key), ``k:{"type":"Ready"}``
(an item of a list of type map, by its keys), ``v:"CreateNamespace=true"`` (an item of a list of
type set) and ``i:0`` (an index, never produced here: other lists are atomic). A set of paths is a
``frozenset``. The schema is the kind's structural OpenAPI schema: ``x-kubernetes-list-type``
(``atomic``, the default, ``set`` or ``map`` with ``x-kubernetes-list-map-keys``) and
``x-kubernetes-map-type`` decide what is owned as a whole and what item by item. A node without a
type (a field the schema does not declare) is deduced from its value: maps are granular, lists
atomic, as structured-merge-diff's "untyped" does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]
Path = tuple[str, ...]
FieldSet = frozenset[Path]


class _Absent:
    """No value at all, as opposed to a JSON null."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class FieldSetError(ValueError):
    """An object the schema cannot index (an item of a keyed list without its keys) or an applied
    configuration kube refuses (an item repeated in a set); ``field`` is the list's path."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message, self.field = message, field


# --- the schema ------------------------------------------------------------------------------
def _child_schema(schema: Schema | None, key: str) -> Schema | None:
    if not schema:
        return None
    declared = schema.get("properties") or {}
    if key in declared:
        return dict(declared[key])
    values = schema.get("additionalProperties")
    return dict(values) if isinstance(values, dict) else None


def _named(schema: Schema | None, key: str) -> bool:
    return bool(schema) and key in ((schema or {}).get("properties") or {})


def _items_schema(schema: Schema | None) -> Schema | None:
    items = (schema or {}).get("items")
    return dict(items) if isinstance(items, dict) else None


def _shape(schema: Schema | None, value: Any) -> str:
    """``map``, ``list`` or ``scalar``: the schema's type, or the value's when it has none."""
    kind = (schema or {}).get("type")
    if kind == "object":
        return "map"
    if kind == "array":
        return "list"
    if kind:
        return "scalar"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _list_type(schema: Schema | None) -> str:
    if (schema or {}).get("type") != "array":
        return "atomic"  # an undeclared list: deduced, atomic
    return str((schema or {}).get("x-kubernetes-list-type") or "atomic")


def _atomic(schema: Schema | None, value: Any) -> bool:
    shape = _shape(schema, value)
    if shape == "scalar":
        return True
    if shape == "list":
        return _list_type(schema) == "atomic"
    return (schema or {}).get("x-kubernetes-map-type") == "atomic"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def item_element(schema: Schema | None, item: Any) -> str:
    """The path element of an item of a list of type set or map."""
    if _list_type(schema) == "set":
        return "v:" + _canonical(item)
    keys = (schema or {}).get("x-kubernetes-list-map-keys") or []
    if not isinstance(item, dict) or any(k not in item for k in keys):
        missing = [k for k in keys if not isinstance(item, dict) or k not in item]
        raise FieldSetError(f"an item of a list keyed by {', '.join(keys)} has no {', '.join(missing)}")
    return "k:" + _canonical({k: item[k] for k in sorted(keys)})


def schema_at(schema: Schema | None, path: Path) -> Schema | None:
    node = schema
    for element in path:
        node = _child_schema(node, element[2:]) if element.startswith("f:") else _items_schema(node)
    return node


# --- the fields an object sets ----------------------------------------------------------------
def to_set(value: Any, schema: Schema | None) -> FieldSet:
    """Every field ``value`` sets: leaves, atomic lists and maps, items of sets and keyed lists
    (with their fields), map keys the schema does not name, and empty maps."""
    out: set[Path] = set()
    _to_set(value, schema, (), out)
    out.discard(())
    return frozenset(out)


def _to_set(value: Any, schema: Schema | None, path: Path, out: set[Path]) -> None:
    if _atomic(schema, value):
        out.add(path)
        return
    if _shape(schema, value) == "map":
        if not isinstance(value, dict):
            return
        for key, child in value.items():
            child_path = (*path, f"f:{key}")
            _to_set(child, _child_schema(schema, key), child_path, out)
            if child is None or child == {} or not _named(schema, key):
                out.add(child_path)
        return
    if not isinstance(value, list):
        return
    items = _items_schema(schema)
    for item in value:
        item_path = (*path, _element_at(schema, item, path))
        _to_set(item, items, item_path, out)
        out.add(item_path)


def _element_at(schema: Schema | None, item: Any, path: Path) -> str:
    """``item_element``, with the list's path in its error."""
    try:
        return item_element(schema, item)
    except FieldSetError as exc:
        raise FieldSetError(exc.message, path_string(path)) from None


def check_unique(value: Any, schema: Schema | None, path: Path = ()) -> None:
    """Raises FieldSetError for an item repeated in a set or a keyed list, as kube refuses it in an
    applied configuration."""
    if _atomic(schema, value):
        return
    if isinstance(value, dict) and _shape(schema, value) == "map":
        for key, child in value.items():
            check_unique(child, _child_schema(schema, key), (*path, f"f:{key}"))
    elif isinstance(value, list):
        seen: set[str] = set()
        for item in value:
            element = _element_at(schema, item, path)
            if element in seen:
                raise FieldSetError(f"duplicate entries for key {path_string((element,))}", path_string(path))
            seen.add(element)
            check_unique(item, _items_schema(schema), (*path, element))


def ensure_named_fields_are_members(paths: Iterable[Path], schema: Schema | None) -> FieldSet:
    """``paths`` and every declared field on their way: a set owning ``spec.source.repoURL`` owns
    ``spec`` and ``spec.source`` too, so that removing it can remove them. Map keys are not added."""
    out = set(paths)
    for path in list(out):
        node = schema
        for depth, element in enumerate(path[:-1]):
            if element.startswith("f:"):
                if _named(node, element[2:]):
                    out.add(path[: depth + 1])
                node = _child_schema(node, element[2:])
            else:
                node = _items_schema(node)
    return frozenset(out)


# --- merge ------------------------------------------------------------------------------------
def merge(live: Any, config: Any, schema: Schema | None) -> Any:
    """``config`` merged into ``live``: the config's values win, maps merge key by key, lists of
    type set or map item by item (live's order kept, the config's items placed in its own order),
    atomic lists and scalars are replaced."""
    if config is ABSENT:
        return live
    if live is ABSENT or _atomic(schema, config):
        return config
    if _shape(schema, config) == "map":
        if not isinstance(live, dict) or not isinstance(config, dict) or (not live and not config):
            return config
        out: dict[str, Any] = {}
        for key in [*live, *(k for k in config if k not in live)]:
            merged = merge(live.get(key, ABSENT), config.get(key, ABSENT), _child_schema(schema, key))
            if merged is not ABSENT:
                out[key] = merged
        return out if out else ABSENT
    if not isinstance(live, list) or not isinstance(config, list) or (not live and not config):
        return config
    return _merge_list(live, config, schema)


def _index(items: list[Any], schema: Schema | None) -> tuple[list[str], dict[str, Any]]:
    order: list[str] = []
    found: dict[str, Any] = {}
    for item in items:
        element = item_element(schema, item)
        if element not in found:
            found[element] = item
            order.append(element)
    return order, found


def _merge_list(live: list[Any], config: list[Any], schema: Schema | None) -> Any:
    """structured-merge-diff's list merge: shared items come in the config's order, items only
    live has stay where they were, items only the config has come where it puts them."""
    items = _items_schema(schema)
    rhs, rhs_found = _index(config, schema)
    lhs, lhs_found = _index(live, schema)
    shared = [e for e in rhs if e in lhs_found]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []

    def add(left: Any, right: Any) -> None:
        value = merge(left, right, items)
        if value is not ABSENT:
            out.append(value)

    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            element = lhs[li]
            if element == rhs[ri]:
                merged_rhs.add(element)
                add(lhs_found[element], rhs_found[element])
                li, ri = li + 1, ri + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if element in rhs_found and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(lhs):
            element = lhs[li]
            if element not in rhs_found:
                add(lhs_found[element], ABSENT)
                li += 1
                continue
            if element in merged_rhs:
                li += 1
                continue
        if ri < len(rhs):
            element = rhs[ri]
            merged_rhs.add(element)
            add(lhs_found.get(element, ABSENT), rhs_found[element])
            ri += 1
            if next_shared is not None and next_shared == element:
                next_shared = shared.pop(0) if shared else None
    return out if out else ABSENT


# --- removal ----------------------------------------------------------------------------------
def _under(paths: Iterable[Path], element: str) -> set[Path]:
    return {p[1:] for p in paths if len(p) > 1 and p[0] == element}


def remove(value: Any, paths: Iterable[Path], schema: Schema | None) -> Any:
    """``value`` without the fields ``paths`` name (and what is inside them). A map or list left
    empty by the removal becomes null, as structured-merge-diff leaves it; ``drop_nulls`` then
    prunes it as kube-apiserver prunes nulls a structural schema does not allow."""
    return _remove(value, set(paths), schema)


def _remove(value: Any, paths: set[Path], schema: Schema | None) -> Any:
    if _shape(schema, value) == "scalar":
        return value
    if _atomic(schema, value):
        return None
    if _shape(schema, value) == "map":
        if not isinstance(value, dict) or not value:
            return None
        out: dict[str, Any] = {}
        for key, child in value.items():
            element = f"f:{key}"
            if (element,) in paths:
                continue
            inner = _under(paths, element)
            out[key] = _remove(child, inner, _child_schema(schema, key)) if inner else child
        return out if out else None
    if not isinstance(value, list) or not value:
        return None
    items = _items_schema(schema)
    kept: list[Any] = []
    for item in value:
        element = item_element(schema, item)
        if (element,) in paths:
            continue
        inner = _under(paths, element)
        kept.append(_remove(item, inner, items) if inner else item)
    return kept if kept else None


def drop_nulls(value: Any) -> Any:
    """Map entries that are null, removed at every depth (our schema has no nullable field)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# --- comparison -------------------------------------------------------------------------------
@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def changed(self) -> FieldSet:
        return frozenset(self.added | self.modified)


def compare(old: Any, new: Any, schema: Schema | None) -> Comparison:
    """Which fields ``new`` added, modified and removed against ``old``. A field that appears or
    goes with its map is listed with everything inside it, the map included."""
    result = Comparison()
    _compare(old, new, schema, (), result)
    for found in (result.added, result.modified, result.removed):
        found.discard(())
    return result


def _leaf(old: Any, new: Any, path: Path, result: Comparison) -> None:
    if old is ABSENT:
        result.added.add(path)
    elif new is ABSENT:
        result.removed.add(path)
    elif old != new:
        result.modified.add(path)


def _compare(old: Any, new: Any, schema: Schema | None, path: Path, result: Comparison) -> None:
    present = new if new is not ABSENT else old
    if _atomic(schema, present):
        _leaf(old, new, path, result)
        return
    shape = _shape(schema, present)
    if shape == "map":
        left = old if isinstance(old, dict) else None
        right = new if isinstance(new, dict) else None
        if not left and not right:
            _leaf(old, new, path, result)
            return
        for key in [*(left or {}), *(k for k in (right or {}) if k not in (left or {}))]:
            _compare(
                (left or {}).get(key, ABSENT), (right or {}).get(key, ABSENT),
                _child_schema(schema, key), (*path, f"f:{key}"), result,
            )  # fmt: skip
    else:
        left_list = old if isinstance(old, list) else None
        right_list = new if isinstance(new, list) else None
        if not left_list and not right_list:
            _leaf(old, new, path, result)
            return
        items = _items_schema(schema)
        try:
            lhs, lhs_found = _index(left_list or [], schema)
            rhs, rhs_found = _index(right_list or [], schema)
        except FieldSetError:
            # An item without its keys (stored before the list was keyed): the list is compared
            # as a whole, so that writes to the rest of the object still go through.
            _leaf(old, new, path, result)
            return
        for element in [*lhs, *(e for e in rhs if e not in lhs_found)]:
            _compare(
                lhs_found.get(element, ABSENT), rhs_found.get(element, ABSENT), items,
                (*path, element), result,
            )  # fmt: skip
    if old is ABSENT:
        result.added.add(path)
    elif new is ABSENT:
        result.removed.add(path)


# --- FieldsV1 ---------------------------------------------------------------------------------
def encode(paths: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1: ``{"f:spec": {".": {}, "f:project": {}}}``; ``.`` marks a member with children."""
    root: dict[str, Any] = {}
    members = sorted(set(paths))
    for path in members:
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(node[k]) for k in sorted(node, key=lambda k: (k != ".", k))}


def decode(fields_v1: Any) -> FieldSet:
    """The paths of a FieldsV1 value; raises ValueError when it is not one."""
    if not isinstance(fields_v1, dict):
        raise ValueError("fieldsV1 must be an object")
    out: set[Path] = set()
    _decode(fields_v1, (), out)
    return frozenset(out)


def _decode(node: dict[str, Any], path: Path, out: set[Path]) -> None:
    for key, child in node.items():
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1 entry {key!r} must be an object")
        if key == ".":
            if path:
                out.add(path)
            continue
        element = _canonical_element(key)
        if not child:
            out.add((*path, element))
        else:
            _decode(child, (*path, element), out)


def _canonical_element(key: str) -> str:
    prefix, _, rest = key.partition(":")
    if prefix == "f" or prefix == "i":
        return key
    if prefix in ("k", "v"):
        try:
            return f"{prefix}:{_canonical(json.loads(rest))}"
        except ValueError as exc:
            raise ValueError(f"fieldsV1 key {key!r} is not valid JSON") from exc
    raise ValueError(f"fieldsV1 key {key!r} has an unknown prefix")


def path_string(path: Path) -> str:
    """As kube-apiserver prints a path in a conflict: ``.spec.project``, ``[type="Ready"]``."""

    def show(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _canonical(value)

    parts: list[str] = []
    for element in path:
        prefix, _, rest = element.partition(":")
        if prefix == "f":
            parts.append("." + rest)
        elif prefix == "k":
            keys = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={show(v)}" for k, v in keys.items()) + "]")
        elif prefix == "v":
            parts.append(f"[={show(json.loads(rest))}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)
