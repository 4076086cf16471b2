"""``diff --local``'s comparison, over plain dicts: the objects a working tree renders, prepared as
the controller prepares them, against the live objects as the user may read them. Pure.

The controller's dry run asks kube-apiserver for a server-side apply of Git's object as its field
manager and diffs the answer with the live object (controller/sync/dryrun.py). A local
diff writes nothing, not even a dry run (the drift guard would deny a user's apply of a managed
object), so the apply is computed here with the extension's own server-side apply
(``extension.api.managed_fields``), typed by the kind's OpenAPI schema as the server types it: the
controller's fields merge into the live object, fields it set before and no longer sets go, and
what other managers set stays. What differs from the server: no defaulting or normalization of the
values Git writes (a quantity written ``0.5`` where the server stores ``500m`` shows as a change)
and no admission. The entries have the shape of a dry run's ``syncResult.resources``, so that
``render.diffs`` prints them as it prints the server's.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller import diff, plan
from extension.api import managed_fields
from extension.api.checks import parse_time
from extension.api.fieldsets import Schema
from extension.api.tracking import FIELD_MANAGER, AppKey, ObjectRef, claimed_app

# Any instant: the predicted object's managedFields are not shown.
_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_KEPT = "left in place: pruning is off or Prune=false"  # the server's words for the same case


@dataclass
class Live:
    """The live objects as the user read them: found, or the error kubectl would print for each one
    that could not be read (Forbidden, say). A ref in neither does not exist."""

    objects: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    errors: dict[ObjectRef, str] = field(default_factory=dict)


# --- schemas ---------------------------------------------------------------------------------
def kind_schema(document: Mapping[str, Any] | None, group: str, version: str, kind: str) -> Schema | None:
    """The schema of ``kind`` in an OpenAPI v3 document of its group version, with every ``$ref``
    and ``allOf`` resolved into plain ``properties``, ``items`` and ``additionalProperties`` (a type
    that contains itself is cut there, untyped); None when the document does not describe it."""
    schemas: Mapping[str, Any] = ((document or {}).get("components") or {}).get("schemas") or {}
    wanted = {"group": group, "version": version, "kind": kind}
    for name, node in schemas.items():
        if wanted in (node.get("x-kubernetes-group-version-kind") or []):
            return _resolve(node, schemas, {}, (name,))
    return None


def _resolve(node: Any, schemas: Mapping[str, Any], done: dict[str, Schema], seen: tuple[str, ...]) -> Schema:
    if not isinstance(node, dict):
        return {}
    out: Schema = {}
    for part in [node, *(node.get("allOf") or [])]:
        ref = part.get("$ref") if isinstance(part, dict) else None
        if isinstance(ref, str):
            name = ref.rpartition("/")[2]
            if name in seen:
                continue
            if name not in done:
                done[name] = _resolve(schemas.get(name), schemas, done, (*seen, name))
            out = {**done[name], **out}
        elif part is not node:
            out = {**_resolve(part, schemas, done, seen), **out}
    for key, value in node.items():
        if key in ("$ref", "allOf", "description"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _resolve(v, schemas, done, seen) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _resolve(value, schemas, done, seen)
        else:
            out[key] = value
    return out


def _child(schema: Schema | None, key: str) -> Schema | None:
    declared = (schema or {}).get("properties") or {}
    if key in declared:
        return dict(declared[key])
    values = (schema or {}).get("additionalProperties")
    return dict(values) if isinstance(values, dict) else None


def key_defaults(value: Any, schema: Schema | None) -> Any:
    """``value`` with the keys of keyed list items that it leaves out filled with their schema
    defaults (a container port's ``protocol: TCP``), as kube-apiserver fills them before it
    merges an apply."""
    if isinstance(value, dict):
        return {k: key_defaults(v, _child(schema, k)) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    items = (schema or {}).get("items")
    items = dict(items) if isinstance(items, dict) else None
    keyed = (schema or {}).get("x-kubernetes-list-type") == "map"
    keys = (schema or {}).get("x-kubernetes-list-map-keys") or [] if keyed else []
    out = []
    for item in value:
        item = key_defaults(item, items)
        if isinstance(item, dict):
            for key in keys:
                default = (_child(items, key) or {}).get("default")
                if key not in item and default is not None:
                    item = {**item, key: default}
        out.append(item)
    return out


# --- one object ------------------------------------------------------------------------------
def predict(live: dict[str, Any], desired: dict[str, Any], schema: Schema | None) -> dict[str, Any]:
    """The live object after the controller's forced server-side apply of ``desired``. Without a
    schema, or with one the objects do not fit, maps merge key by key and lists are replaced, and
    nothing the controller set before is removed."""
    typed = managed_fields.typed_schema(schema or {})
    try:
        merged, _ = managed_fields.applied(
            live, key_defaults(desired, typed), FIELD_MANAGER, _EPOCH, schema=typed, force=True
        )
    except ValueError:  # FieldSetError among them: a keyed list item without its keys
        kept = {k: v for k, v in (live.get("metadata") or {}).items() if k != "managedFields"}
        bare = {**live, "metadata": kept}
        untyped = managed_fields.typed_schema({})
        merged, _ = managed_fields.applied(bare, desired, FIELD_MANAGER, _EPOCH, schema=untyped, force=True)
    return merged


def _entry(ref: ObjectRef, status: str, message: str = "", text: str = "") -> dict[str, Any]:
    entry = {
        "group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
        "status": status, "message": message,
    }  # fmt: skip
    if text:
        entry["diff"] = text
    return entry


def _break_glass(status: Mapping[str, Any], now: datetime.datetime) -> set[ObjectRef]:
    """The objects under a break-glass the controller verified (status.drift.breakGlass) and that
    has not expired: the guard's seal that proves it is not the user's to read."""
    active = set()
    for entry in (status.get("drift") or {}).get("breakGlass") or []:
        until = parse_time(str(entry.get("expiresAt", "")))
        if until is not None and until > now:
            active.add(ObjectRef.from_status(entry))
    return active


# --- the Application -------------------------------------------------------------------------
def entries(
    app: dict[str, Any], desired: Iterable[dict[str, Any]], live: Live,
    schema: Callable[[dict[str, Any]], Schema | None], now: datetime.datetime,
) -> list[dict[str, Any]]:  # fmt: skip
    """What a sync of ``desired`` (rendered and prepared) would do, as the server's diff records it
    (``applications/diff``: a dry-run sync with prune): per object in apply order ``created``,
    ``configured`` (with the fields), ``unchanged``, ``skipped`` (break-glass) or ``failed`` (another
    Application's), each change with its unified diff; then what left Git and a sync with prune
    deletes (``pruned``) or leaves (``skipped``). Objects in ``live.errors`` are left out: the caller
    reports them. ``schema`` gives an object's kind schema."""
    meta, spec, status = app["metadata"], app.get("spec") or {}, app.get("status") or {}
    key = AppKey(str(meta["namespace"]), str(meta["name"]))
    rules = list(spec.get("ignoreDifferences") or [])
    desired = list(desired)
    wanted = {ObjectRef.of(o) for o in desired}
    glass = _break_glass(status, now)
    out: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for step in plan.waves(desired):
        for obj in step:
            ref = ObjectRef.of(obj)
            if ref in live.errors:
                continue
            current = live.objects.get(ref)
            owner = claimed_app(current) if current is not None else None
            if current is None:
                out.append(_entry(ref, "created", text=diff.unified(None, obj, rules, str(ref))))
            elif owner is not None and owner != key:
                why = f"{ref} is managed by Application {owner}; refusing to take it over"
                failed.append(_entry(ref, "failed", why))
            else:
                predicted = predict(current, obj, schema(obj))
                fields = diff.drift(current, predicted, rules)
                if not fields:
                    out.append(_entry(ref, "unchanged"))
                elif ref in glass:
                    out.append(_entry(ref, "skipped", "break-glass is active"))
                else:
                    text = diff.unified(current, predicted, rules, str(ref))
                    out.append(_entry(ref, "configured", f"fields: {', '.join(fields[:10])}", text))
    out += failed
    inventory = [ObjectRef.from_status(e) for e in status.get("resources") or []]
    gone = {ref: live.objects.get(ref) for ref in inventory if ref not in wanted and ref not in live.errors}
    no_prune = [r for r, o in gone.items() if o and plan.object_options(o).get("Prune") == "false"]
    pruning = plan.plan_prune(inventory, wanted, prune=True, no_prune=no_prune, app=key)
    for ref in pruning.delete:
        found = gone.get(ref)
        if found is not None and claimed_app(found) == key:
            out.append(_entry(ref, "pruned", text=diff.unified(found, None, rules, str(ref))))
    for ref in pruning.keep:
        if gone.get(ref) is not None:
            out.append(_entry(ref, "skipped", pruning.refused or _KEPT))
    return out


def exit_code(found: Iterable[dict[str, Any]], errors: Mapping[ObjectRef, str]) -> int:
    """As kubectl diff: 2 when something could not be compared, 1 on a difference, else 0."""
    found = list(found)
    if errors or any(e["status"] == "failed" for e in found):
        return 2
    return 1 if any(e["status"] != "unchanged" for e in found) else 0
