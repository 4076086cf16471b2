"""What create, update, status update and delete do to an object we serve. Pure.

These mirror kube-apiserver's generic registry for a custom resource with a status subresource:
the main resource ignores ``status`` (and our ``operation``, which only the sync and rollback
subresources set, so that RBAC on them means something); the status subresource changes nothing
but ``status``; ``generation`` counts spec changes; finalizers delay deletion.
"""

from __future__ import annotations

import copy
import datetime
import secrets
from typing import Any

from extension.api import errors
from extension.api.kinds import Kind
from extension.api.schema import GROUP

# Fields the server owns: a client may echo them back, never change them.
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_NAME_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # kube's generateName alphabet


def timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(now: datetime.datetime) -> str:
    """As metav1.MicroTime: to the microsecond."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_kind(body: Any, kind: Kind) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    sent, api_version = body.get("kind"), body.get("apiVersion")
    if not sent:
        raise errors.bad_request("Object 'Kind' is missing in the request body")
    if sent != kind.kind or api_version != kind.api_version:
        raise errors.bad_request(
            f"the body is {api_version}, Kind={sent}; "
            f"this endpoint takes {kind.api_version}, Kind={kind.kind}"
        )
    if not isinstance(body.get("metadata", {}), dict):
        raise errors.bad_request("metadata must be an object")
    return body


def for_apply(body: Any, namespace: str, name: str, kind: Kind) -> dict[str, Any]:
    """A server-side apply's configuration, checked: this kind, this object, no managedFields."""
    config = copy.deepcopy(check_kind(body, kind))
    meta = config.setdefault("metadata", {})
    if meta.get("name") not in (None, "", name):
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )
    if meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil in an applied configuration")
    meta["name"] = name
    return config


def drop_unknown(obj: dict[str, Any], kind: Kind, field_validation: str) -> list[str]:
    """Fields the schema does not know: refused (fieldValidation Strict, or a kind that refuses
    them always), else dropped, with a warning each when Warn. Returns the warnings."""
    unknown = kind.unknown_fields(obj)
    if unknown and (field_validation == "Strict" or kind.strict_fields):
        raise errors.bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{path}"' for path in unknown)
        )
    for path in unknown:
        _prune(obj, path)
    return [f'unknown field "{path}"' for path in unknown] if field_validation == "Warn" else []


def _prune(obj: dict[str, Any], path: str) -> None:
    """Drop an unknown field by its dotted path (``spec.source.repoUrl``, ``spec.x[0].y``), as
    kube-apiserver prunes fields a structural schema does not know."""
    parts: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            parts.append(name)
        for index in rest.replace("]", "").split("[") if rest else []:
            if index.isascii() and index.isdigit():
                parts.append(int(index))
    node: Any = obj
    for step in parts[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) and isinstance(parts[-1], str):
        node.pop(parts[-1], None)


_MISSING = object()


def _at(obj: Any, path: str) -> Any:
    """The value at a FieldError path (``spec.source.repoURL``, ``spec.x[0].y``, ``spec.m[key]``), or
    _MISSING."""
    node = obj
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        key: Any = part[1:-1] if part.startswith("[") and part.endswith("]") else part
        if isinstance(node, list):
            if not (isinstance(key, str) and key.isascii() and key.isdigit() and int(key) < len(node)):
                return _MISSING
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return _MISSING
    return node


def parent_path(path: str) -> str:
    """``status.conditions[0]`` for ``status.conditions[0].type``; ``spec`` for ``spec[x]``."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def unchanged(old: dict[str, Any], new: dict[str, Any], path: str) -> bool:
    """The field at a FieldError path is there, and the write leaves it as it was."""
    before = _at(old, path)
    return before is not _MISSING and before == _at(new, path)


def for_create(body: Any, namespace: str, now: datetime.datetime, uid: str, kind: Kind) -> dict[str, Any]:
    app = copy.deepcopy(check_kind(body, kind))
    meta = app.setdefault("metadata", {})
    if meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if not meta.get("name") and meta.get("generateName"):
        suffix = "".join(secrets.choice(_NAME_SUFFIX_CHARS) for _ in range(5))
        meta["name"] = f"{meta['generateName']}{suffix}"
    for key in (*_SERVER_OWNED, "resourceVersion", "selfLink"):
        meta.pop(key, None)
    meta.update(namespace=namespace, uid=uid, creationTimestamp=timestamp(now), generation=1)
    # Status is the controller's and operation comes only through the sync and rollback
    # subresources, which RBAC governs: create can set neither.
    app.pop("status", None)
    app.pop("operation", None)
    return app


def _check_identity(old: dict[str, Any], body: dict[str, Any], kind: Kind) -> None:
    old_meta, meta = old["metadata"], body.get("metadata") or {}
    name = old_meta["name"]
    if meta.get("name") not in (None, name):
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )
    if meta.get("namespace") not in (None, "", old_meta["namespace"]):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if meta.get("uid") not in (None, "", old_meta["uid"]):
        raise errors.conflict(
            kind,
            name,
            f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta['uid']}",
        )


def for_update(old: dict[str, Any], body: Any, kind: Kind) -> dict[str, Any]:
    """The main resource: everything but status, operation and the server-owned metadata."""
    app = copy.deepcopy(check_kind(body, kind))
    _check_identity(old, app, kind)
    meta = app.setdefault("metadata", {})
    for key in _SERVER_OWNED:
        if key in old["metadata"]:
            meta[key] = old["metadata"][key]
        else:
            meta.pop(key, None)
    meta["name"], meta["namespace"] = old["metadata"]["name"], old["metadata"]["namespace"]
    for key in ("status", "operation"):
        if key in old:
            app[key] = copy.deepcopy(old[key])
        else:
            app.pop(key, None)
    if old["metadata"].get("deletionTimestamp"):
        added = set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
        if added:
            raise errors.APIError(
                422, "Invalid",
                f"{kind.kind}.{GROUP} \"{old['metadata']['name']}\" is invalid: metadata.finalizers: "
                f"Forbidden: no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {sorted(added)}",
            )  # fmt: skip
    return app


def bump_generation(old: dict[str, Any], new: dict[str, Any]) -> None:
    """``generation`` counts spec changes; call it after defaults and pruning, so a request that
    only omits a defaulted field, or adds one that is pruned, changes nothing."""
    if new.get("spec") != old.get("spec"):
        new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1


def for_status_update(old: dict[str, Any], body: Any, kind: Kind) -> dict[str, Any]:
    """The status subresource: only ``status`` changes (and the controller clears ``operation``
    there once it has taken the operation up, by sending ``operation: null``)."""
    new = check_kind(body, kind)
    _check_identity(old, new, kind)
    app = copy.deepcopy(old)
    if "status" in new:
        app["status"] = copy.deepcopy(new["status"])
    if "operation" in new and new["operation"] is None:
        app.pop("operation", None)
    return app


def with_operation(old: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    """The sync and rollback subresources record the operation for the controller."""
    app = copy.deepcopy(old)
    app["operation"] = operation
    return app


def for_delete(old: dict[str, Any], now: datetime.datetime) -> dict[str, Any] | None:
    """The object to store after a DELETE, or None when it is to be removed now (no finalizers)."""
    if not old["metadata"].get("finalizers"):
        return None
    app = copy.deepcopy(old)
    if not app["metadata"].get("deletionTimestamp"):
        app["metadata"]["deletionTimestamp"] = timestamp(now)
        app["metadata"]["deletionGracePeriodSeconds"] = 0
    return app


def is_finalized(app: dict[str, Any]) -> bool:
    """A deleted object whose last finalizer is gone is removed from storage."""
    meta = app["metadata"]
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
