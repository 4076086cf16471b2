"""``metadata.managedFields`` for Update operations, as kube-apiserver keeps them. Pure.

Each write gives its field manager the fields it changed and takes them from every other manager;
a manager left with no fields drops out. Fields are leaf paths; lists are atomic (as for a custom
resource without list-type markers). Server-side apply, and so ``Apply`` entries, is not served.
"""

from __future__ import annotations

import datetime
from typing import Any

Path = tuple[str, ...]

# The server's own metadata never belongs to a manager.
_SERVER_METADATA = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink", "generateName",
}  # fmt: skip
_TOP_LEVEL = {"apiVersion", "kind"}


def _leaves(value: Any, prefix: Path) -> dict[Path, Any]:
    if isinstance(value, dict) and value:
        out: dict[Path, Any] = {}
        for key, child in value.items():
            out.update(_leaves(child, (*prefix, key)))
        return out
    return {prefix: value}


def leaf_fields(obj: dict[str, Any], *, status: bool) -> dict[Path, Any]:
    """The leaf paths and values a manager can own: ``status`` for the status subresource,
    everything else (but the server's metadata) for the main resource."""
    fields: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in _TOP_LEVEL or (key == "status") != status:
            continue
        if key == "metadata":
            for meta_key, meta_value in (value or {}).items():
                if meta_key not in _SERVER_METADATA:
                    fields.update(_leaves(meta_value, ("metadata", meta_key)))
        else:
            fields.update(_leaves(value, (key,)))
    return fields


def encode(paths: set[Path]) -> dict[str, Any]:
    """FieldsV1: ``{"f:spec": {"f:source": {"f:repoURL": {}}}}``."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def decode(fields_v1: Any, prefix: Path = ()) -> set[Path]:
    if not isinstance(fields_v1, dict) or not fields_v1:
        return {prefix} if prefix else set()
    paths: set[Path] = set()
    for key, child in fields_v1.items():
        if key.startswith("f:"):
            paths |= decode(child, (*prefix, key[2:]))
    return paths


def _covers(owned: Path, changed: Path) -> bool:
    """One path is the other or contains it (a map replaced by a scalar, or the reverse)."""
    shorter = min(len(owned), len(changed))
    return owned[:shorter] == changed[:shorter]


def updated(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: datetime.datetime,
    *,
    subresource: str = "",
) -> list[dict[str, Any]]:
    """The managedFields ``new`` should carry after ``manager`` wrote it (``old`` None: created)."""
    status = subresource == "status"
    before = leaf_fields(old, status=status) if old else {}
    after = leaf_fields(new, status=status)
    changed = {p for p in after if before.get(p, object()) != after[p]}
    removed = set(before) - set(after)
    entries = [] if old is None else list((old.get("metadata") or {}).get("managedFields") or [])

    result: list[dict[str, Any]] = []
    mine: set[Path] = set(changed)
    for entry in entries:
        paths = decode(entry.get("fieldsV1"))
        same = (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
            manager, "Update", subresource,
        )  # fmt: skip
        if same:
            mine |= {p for p in paths if not any(_covers(p, r) for r in removed)}
            continue
        if (entry.get("subresource", "") == "status") == status:
            paths = {p for p in paths if not any(_covers(p, c) for c in changed | removed)}
        if paths:
            kept = dict(entry, fieldsV1=encode(paths))
            result.append(kept)
    if mine:
        entry = {
            "manager": manager,
            "operation": "Update",
            "apiVersion": new.get("apiVersion", ""),
            "time": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(mine),
        }
        if subresource:
            entry["subresource"] = subresource
        result.append(entry)
    return result


def manager_from(field_manager: str | None, user_agent: str) -> str:
    """The ``fieldManager`` parameter, else the User-Agent's first word, as kube-apiserver does
    (``kubectl/v1.36.3 (linux/amd64) …`` -> ``kubectl``)."""
    if field_manager:
        return field_manager
    return (user_agent.split("/", 1)[0] or "unknown")[:128]
