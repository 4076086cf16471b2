"""Which fields Git sets that the live object no longer matches. Pure.

The reconcile asks kube-apiserver for a server-side apply dry-run of the desired object on top of
the live one; the result is what the object would be after a sync. Comparing it with the live
object finds exactly the fields Git sets that drifted (defaulting and admission included, which
no client-side diff can see). ``ignoreDifferences`` removes fields from both sides first.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from extension.api.tracking import ObjectRef

# Metadata the server changes on every write; never drift.
_NOISE = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")

Path = tuple[str | int, ...]


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _NOISE:
        meta.pop(key, None)
    return out


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def changed(a: Any, b: Any, path: Path = ()) -> Iterator[Path]:
    """The paths where ``a`` and ``b`` differ, as deep as both are containers."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                yield from changed(a.get(key), b.get(key), (*path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from changed(x, y, (*path, index))
    elif a != b:
        yield path


def _pointer(pointer: str) -> Path:
    if not pointer.startswith("/"):
        return ()
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _remove(obj: Any, path: Path) -> None:
    for part in path[:-1]:
        if isinstance(obj, dict) and isinstance(part, str):
            obj = obj.get(part)
        elif isinstance(obj, list) and isinstance(part, int) and part < len(obj):
            obj = obj[part]
        else:
            return
    last = path[-1] if path else None
    if isinstance(obj, dict) and isinstance(last, str):
        obj.pop(last, None)
    elif isinstance(obj, list) and isinstance(last, int) and last < len(obj):
        obj[last] = None  # keep indexes stable for the other pointers


def owned_paths(fields: dict[str, Any], obj: Any, path: Path = ()) -> Iterator[Path]:
    """Concrete paths in ``obj`` named by a managedFields ``fieldsV1`` tree (``f:`` keys, ``k:``
    list items by key, ``v:`` set items by value)."""
    for key, sub in fields.items():
        if key == ".":
            yield path
            continue
        kind, _, raw = key.partition(":")
        if kind == "f" and isinstance(obj, dict) and raw in obj:
            here: Path = (*path, raw)
            if not sub:
                yield here
            else:
                yield from owned_paths(sub, obj[raw], here)
        elif kind in ("k", "v") and isinstance(obj, list):
            try:
                wanted = json.loads(raw)
            except ValueError:
                continue
            for index, item in enumerate(obj):
                match = (
                    isinstance(item, dict) and isinstance(wanted, dict)
                    and all(item.get(k) == v for k, v in wanted.items())
                ) if kind == "k" else item == wanted  # fmt: skip
                if match:
                    yield from (owned_paths(sub, item, (*path, index)) if sub else iter([(*path, index)]))


def _rule_matches(rule: dict[str, Any], ref: ObjectRef) -> bool:
    return (
        str(rule.get("kind") or "") in ("", ref.kind)
        and str(rule.get("group") or "") in ("", "*", ref.group)
        and str(rule.get("name") or "") in ("", ref.name)
        and str(rule.get("namespace") or "") in ("", ref.namespace)
    )


def ignored_paths(live: dict[str, Any], rules: Iterable[dict[str, Any]]) -> list[Path]:
    ref = ObjectRef.of(live)
    paths: list[Path] = []
    for rule in rules:
        if not _rule_matches(rule, ref):
            continue
        paths.extend(p for p in map(_pointer, rule.get("jsonPointers") or []) if p)
        managers = set(rule.get("managedFieldsManagers") or [])
        for entry in (live.get("metadata") or {}).get("managedFields") or []:
            if entry.get("manager") in managers:
                paths.extend(p for p in owned_paths(entry.get("fieldsV1") or {}, live) if p)
    return paths


def drift(live: dict[str, Any], predicted: dict[str, Any], rules: Iterable[dict[str, Any]] = ()) -> list[str]:
    """The fields Git sets that differ between the live object and the dry-run result, as
    ``spec.template.spec.containers[0].image`` paths; empty when in sync."""
    ignored = ignored_paths(live, rules)
    a, b = comparable(live), comparable(predicted)
    for path in ignored:
        _remove(a, path)
        _remove(b, path)
    return [format_path(p) for p in changed(a, b)]


# One object's diff in status is cut after this many characters.
MAX_DIFF_CHARS = 16 * 1024


def unified(
    live: dict[str, Any] | None, predicted: dict[str, Any] | None, rules: Iterable[dict[str, Any]] = (),
    name: str = "",
) -> str:  # fmt: skip
    """A unified diff of the live object against what a sync would make of it, as YAML, without
    the fields the server changes on every write or ``ignoreDifferences`` leaves out; ``live`` None
    is a creation, ``predicted`` None a deletion. ``predicted`` comes from a server-side apply dry
    run of Git's object, so only fields Git sets (and what the server defaults from them) differ."""
    rules = list(rules)
    shown: list[dict[str, Any] | None] = []
    for obj in (live, predicted):
        if obj is None:
            shown.append(None)
            continue
        copied = comparable(obj)
        for path in ignored_paths(live or obj, rules):
            _remove(copied, path)
        shown.append(copied)
    _mask_secret(shown[0], shown[1])
    sides = [
        []
        if obj is None
        else yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)
        for obj in shown
    ]
    text = "".join(difflib.unified_diff(sides[0], sides[1], f"live/{name}", f"desired/{name}"))
    return text if len(text) <= MAX_DIFF_CHARS else text[:MAX_DIFF_CHARS] + "\n... (diff cut at 16 KiB)\n"


_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _mask_secret(live: dict[str, Any] | None, predicted: dict[str, Any] | None) -> None:
    """A Secret's values never reach a diff (status is readable where Secrets are not): each value
    becomes ``++++++++``, one that differs from the live side ``+++++++++``, as Argo CD masks them;
    kubectl's last-applied copy of the Secret is left out."""
    sample = live or predicted
    if not sample or sample.get("kind") != "Secret" or sample.get("apiVersion") != "v1":
        return
    before = {**((live or {}).get("data") or {}), **((live or {}).get("stringData") or {})}
    for obj in (live, predicted):
        if obj is None:
            continue
        annotations = (obj.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(_LAST_APPLIED, None)
        for field in ("data", "stringData"):
            values = obj.get(field)
            if isinstance(values, dict):
                obj[field] = {
                    k: "+" * (8 if obj is live or before.get(k) == v else 9) for k, v in values.items()
                }
