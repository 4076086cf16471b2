"""``metadata.managedFields`` and server-side apply, as kube-apiserver keeps them. Pure.

Each manager (a name, an operation ``Apply`` or ``Update``, a subresource) owns a set of fields
(``fieldsets``). An update gives its manager the fields it added or changed and takes them from
everyone else; an apply merges the manager's configuration into the object, owns exactly what the
configuration sets, removes what the manager applied before and no one owns now, and refuses to
change a field another manager owns unless forced (409 naming each field and its owner).
"""

from __future__ import annotations

import copy
import datetime
import json
from dataclasses import dataclass, replace
from typing import Any

from extension.api import fieldsets
from extension.api.fieldsets import ABSENT, FieldSet, Path, Schema

APPLY, UPDATE = "Apply", "Update"
# The server's own fields, never owned by a manager (kube-apiserver's stripMetaManager).
_STRIPPED: FieldSet = frozenset(
    [("f:apiVersion",), ("f:kind",), ("f:metadata",)]
    + [
        ("f:metadata", f"f:{name}")
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    ]
)
# ObjectMeta as structured-merge-diff types it: the fields a client may set, and their list types.
OBJECT_META: Schema = {
    "type": "object",
    "properties": {
        **{
            name: {"type": "string"}
            for name in (
                "name",
                "generateName",
                "namespace",
                "selfLink",
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
            )
        },
        "generation": {"type": "integer"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
            "items": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "uid": {"type": "string"},
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}


def typed_schema(kind_schema: Schema) -> Schema:
    """The kind's schema with ObjectMeta typed in."""
    return {**kind_schema, "properties": {**kind_schema.get("properties", {}), "metadata": OBJECT_META}}


@dataclass(frozen=True)
class Manager:
    manager: str
    operation: str
    subresource: str
    api_version: str
    time: str | None
    fields: FieldSet

    @property
    def key(self) -> tuple[str, str, str, str]:
        # Appliers are one manager whatever version they apply (kube's BuildManagerIdentifier).
        return (
            self.manager,
            self.operation,
            self.subresource,
            "" if self.operation == APPLY else self.api_version,
        )

    def describe(self) -> str:
        """As kube-apiserver names a manager in a conflict."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[Manager, Path]]) -> None:
        super().__init__()
        self.conflicts = conflicts

    def message(self) -> str:
        if len(self.conflicts) == 1:
            owner, path = self.conflicts[0]
            where = fieldsets.path_string(path)
            return f"Apply failed with 1 conflict: conflict with {owner.describe()}: {where}"
        lines: list[str] = []
        for name in sorted({m.describe() for m, _ in self.conflicts}):
            lines.append(f"conflicts with {name}:")
            lines += [f"- {fieldsets.path_string(p)}" for m, p in self.conflicts if m.describe() == name]
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "type": "FieldManagerConflict",
                "message": f"conflict with {m.describe()}",
                "field": fieldsets.path_string(p),
            }
            for m, p in self.conflicts
        ]


def _strip(paths: FieldSet) -> FieldSet:
    return frozenset(p for p in paths if p not in _STRIPPED)


def decode(entries: Any) -> list[Manager]:
    """The managers a managedFields list names; raises ValueError when it is not one."""
    if not isinstance(entries, list):
        raise ValueError("metadata.managedFields must be a list")
    managers: dict[tuple[str, str, str, str], Manager] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("a managedFields entry must be an object")
        operation = entry.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ValueError(f'managedFields operation must be "Apply" or "Update", not {operation!r}')
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ValueError(f"managedFields fieldsType {entry.get('fieldsType')!r} is not FieldsV1")
        found = Manager(
            manager=str(entry.get("manager") or ""),
            operation=operation,
            subresource=str(entry.get("subresource") or ""),
            api_version=str(entry.get("apiVersion") or ""),
            time=entry.get("time"),
            fields=_strip(fieldsets.decode(entry.get("fieldsV1") or {})),
        )
        if found.key in managers:
            raise ValueError(f"managedFields names the manager {found.describe()} twice")
        managers[found.key] = found
    return list(managers.values())


MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"


def _cap(managers: list[Manager]) -> list[Manager]:
    """No more than MAX_UPDATE_MANAGERS Update entries: from the oldest on, entries are merged into
    one named ``ancient-changes`` (it takes the newest merged time), as kube-apiserver's
    capManagersManager does: the oldest is held back until a second one joins it."""
    updaters = sorted((m for m in managers if m.operation == UPDATE), key=lambda m: (m.time or "", m.manager))
    left = len(updaters)
    if left <= MAX_UPDATE_MANAGERS:
        return managers
    bucket = next((m for m in updaters if (m.manager, m.subresource) == (ANCIENT, "")), None)
    gone: list[Manager] = []
    first: Manager | None = None
    for m in updaters:
        if left <= MAX_UPDATE_MANAGERS:
            break
        if first is None:
            first = m
            continue
        if m is bucket:
            continue
        if bucket is None:
            bucket = replace(first, manager=ANCIENT, subresource="")
            gone.append(first)
        bucket = replace(bucket, fields=bucket.fields | m.fields, time=m.time)
        gone.append(m)
        left -= 1
    rest = [
        m
        for m in managers
        if m not in gone and (m.manager, m.operation, m.subresource) != (ANCIENT, UPDATE, "")
    ]
    return rest + ([bucket] if bucket is not None else [])


def encode(managers: list[Manager]) -> list[dict[str, Any]]:
    """Entries in kube-apiserver's order: appliers first, then by time, manager and version."""
    entries = []
    managers = _cap(managers)
    for m in sorted(
        managers, key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource)
    ):
        entry: dict[str, Any] = {"manager": m.manager, "operation": m.operation, "apiVersion": m.api_version}
        if m.time:
            entry["time"] = m.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = fieldsets.encode(m.fields)
        if m.subresource:
            entry["subresource"] = m.subresource
        entries.append(entry)
    return entries


def _timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scope(obj: Any, subresource: str) -> Any:
    """What a write to the main resource or its status may change: status is the status
    subresource's alone, as kube-apiserver resets it for custom resources."""
    if not isinstance(obj, dict):
        return {}
    if subresource == "status":
        return {k: v for k, v in obj.items() if k == "status"}
    body = {k: v for k, v in obj.items() if k not in ("status", "operation")}
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    return body


def _take(
    managers: list[Manager], me: tuple[str, str, str, str], changed: FieldSet, removed: FieldSet
) -> list[Manager]:
    """Everyone else loses what was changed and removed; managers left with nothing go."""
    out = []
    for m in managers:
        fields = m.fields if m.key == me else m.fields - changed - removed
        if fields:
            out.append(replace(m, fields=fields))
    return out


def updated(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: datetime.datetime,
    *,
    schema: Schema,
    subresource: str = "",
    managers: list[Manager] | None = None,
) -> list[dict[str, Any]]:
    """The managedFields ``new`` carries after ``manager`` wrote it with an update (``old`` None:
    created). ``managers`` are the ones to start from: the stored ones, or those the client sent."""
    if managers is None:
        managers = decode((old or {}).get("metadata", {}).get("managedFields") or [])
    current = list(managers)
    diff = fieldsets.compare(
        _scope(old, subresource) if old is not None else ABSENT, _scope(new, subresource), schema
    )
    changed = _strip(diff.changed())
    removed = _strip(frozenset(diff.removed))
    me = Manager(manager, UPDATE, subresource, str(new.get("apiVersion") or ""), None, frozenset())
    previous = next((m for m in current if m.key == me.key), None)
    others = [m for m in current if m.key != me.key]
    result = _take(others, me.key, changed, removed)
    mine = ((previous.fields if previous else frozenset()) - removed) | changed
    if changed:
        result.append(replace(me, time=_timestamp(now), fields=mine))
    elif previous and mine:
        result.append(replace(previous, fields=mine))
    return encode(result)


def applied(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    now: datetime.datetime,
    *,
    schema: Schema,
    force: bool,
    subresource: str = "",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The object and its managedFields after ``manager`` applied ``config`` to ``live`` (None:
    the apply creates it). Raises ApplyConflict when it would change another manager's fields
    and ``force`` is off, FieldSetError when a keyed list item lacks its keys."""
    current = decode(((live or {}).get("metadata") or {}).get("managedFields") or [])
    base = copy.deepcopy(live) if live is not None else {}
    base.get("metadata", {}).pop("managedFields", None)
    applied_part = _scope(config, subresource)
    if subresource:
        # A status apply names its object; only its status is written.
        applied_part = {**applied_part, "apiVersion": config.get("apiVersion"), "kind": config.get("kind")}
    fieldsets.check_unique(applied_part, schema)
    merged = fieldsets.merge(base, applied_part, schema)
    merged = {} if merged is ABSENT else merged
    new_set = _strip(fieldsets.to_set(_scope(applied_part, subresource), schema))
    me = Manager(manager, APPLY, subresource, str(config.get("apiVersion") or ""), None, new_set)
    previous = next((m for m in current if m.key == me.key), None)
    managers = [m for m in current if m.key != me.key] + [me]
    if previous is not None and previous.fields:
        merged = _prune(merged, managers, previous.fields, schema)
    before = _scope(live, subresource) if live is not None else ABSENT
    diff = fieldsets.compare(before, _scope(merged, subresource), schema)
    changed = _strip(diff.changed())
    removed = _strip(frozenset(diff.removed))
    conflicts = [(m, path) for m in managers if m.key != me.key for path in sorted(m.fields & changed)]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    result = _take(managers, me.key, changed, removed)
    merged = fieldsets.drop_nulls(merged)
    _sync_last_applied(merged, config, manager, subresource)
    unchanged = live is not None and _without_managed_fields(live) == merged
    stamped = []
    for m in result:
        if m.key == me.key:
            # A write stamps the time; an apply that changes nothing keeps the one it had (none,
            # for a new manager), as kube-apiserver does.
            m = replace(m, time=(previous.time if previous else None) if unchanged else _timestamp(now))
        stamped.append(m)
    return merged, encode(stamped)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _sync_last_applied(
    merged: dict[str, Any], config: dict[str, Any], manager: str, subresource: str
) -> None:
    """kubectl's server-side apply keeps client-side apply's annotation, where the object has one,
    equal to what it applied, so that a later client-side apply diffs against the truth
    (kube-apiserver's lastAppliedUpdater). Other managers opt out by their name."""
    annotations = (merged.get("metadata") or {}).get("annotations") or {}
    if manager != "kubectl" or subresource or LAST_APPLIED not in annotations:
        return
    applied = copy.deepcopy(config)
    meta = applied.get("metadata") or {}
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = _go_json(applied) + "\n"


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, keys sorted, <, > and & escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.get("metadata", {}).pop("managedFields", None)
    return out


def _prune(merged: dict[str, Any], managers: list[Manager], last: FieldSet, schema: Schema) -> Any:
    """Removes what the applier set last time and no manager owns now (its new configuration
    included); what others own, or was never the applier's, stays (structured-merge-diff's prune,
    addBackOwnedItems and addBackDanglingItems)."""

    def named(paths: FieldSet) -> FieldSet:
        return fieldsets.ensure_named_fields_are_members(paths, schema)

    def fields_of(value: Any) -> FieldSet:
        return named(fieldsets.to_set(value, schema)) if value is not None else frozenset()

    last_named = named(last)
    owned = named(frozenset().union(*(m.fields for m in managers)))
    pruned = fieldsets.remove(merged, last_named, schema)
    merged_fields = fields_of(merged)
    pruned = fieldsets.remove(merged, merged_fields - (fields_of(pruned) | owned), schema)
    return fieldsets.remove(merged, (merged_fields - fields_of(pruned)) & last_named, schema)


def manager_from(field_manager: str | None, user_agent: str) -> str:
    """The ``fieldManager`` parameter, else the User-Agent's first word, as kube-apiserver does
    (``kubectl/v1.36.3 (linux/amd64) …`` -> ``kubectl``)."""
    if field_manager:
        return field_manager
    return (user_agent.split("/", 1)[0] or "unknown")[:128]
