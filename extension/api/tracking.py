"""The marks the controller puts on what it manages, and the one place that reads them. Pure.

Every object the controller applies carries the managed label (what the drift guard's
``objectSelector`` matches) and the tracking-id annotation, which names the owning Application
and the object itself. The tracking id is authoritative: the label alone makes nothing managed,
and an id copied onto another object does not match that object's own kind, namespace and name.

Format (Argo CD's annotation tracking, with the Application's namespace in front)::

    <app-namespace>/<app-name>:<group>/<Kind>:<namespace>/<name>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extension.api.schema import GROUP

PREFIX = f"{GROUP}/"
MANAGED_LABEL = f"{PREFIX}managed"
MANAGED_VALUE = "true"
TRACKING_ANNOTATION = f"{PREFIX}tracking-id"
# Sync ordering: ours first, Argo CD's honoured so that migrated repositories keep their order.
SYNC_WAVE_ANNOTATIONS = (f"{PREFIX}sync-wave", "argocd.argoproj.io/sync-wave")
# A sync hook's phases (controller/hookspec.py), ours and Argo CD's; and Helm's, as Argo CD reads it.
HOOK_ANNOTATIONS = (f"{PREFIX}hook", "argocd.argoproj.io/hook")
HELM_HOOK = "helm.sh/hook"
# Per-object sync options, e.g. "Prune=false" (Argo CD reads the same key).
SYNC_OPTIONS_ANNOTATIONS = (f"{PREFIX}sync-options", "argocd.argoproj.io/sync-options")
# "true": the controller leaves the Application alone (no sync, no status) until it is removed;
# deletion still runs the finalizer. Argo CD's key is honoured too.
SKIP_RECONCILE_ANNOTATIONS = (f"{PREFIX}skip-reconcile", "argocd.argoproj.io/skip-reconcile")
# Break-glass: set by a member of an allowed group; the reason is free text, the expiry RFC 3339.
BREAK_GLASS_REASON = f"{PREFIX}break-glass-reason"
BREAK_GLASS_UNTIL = f"{PREFIX}break-glass-until"
# Written by the drift guard's mutating webhook when it admits a break-glass: who was granted it,
# sealed with the guard's key over the object's uid, the expiry and the reason. Anyone who may
# annotate can write the two annotations above; only a sealed grant makes the controller hold off.
BREAK_GLASS_GRANT = f"{PREFIX}break-glass-grant"
# Stamped by the mutating webhook in warn mode: who changed which Git-owned fields, and when, with
# a seal over the three, so that a stamp anyone could write is never reported as the guard's.
DRIFTED_BY = f"{PREFIX}drifted-by"
DRIFTED_FIELDS = f"{PREFIX}drifted-fields"
DRIFTED_AT = f"{PREFIX}drifted-at"
DRIFTED_SEAL = f"{PREFIX}drifted-seal"
FIELD_MANAGER = "driftguard-controller"
# When a project makes the controller act as a ServiceAccount, its requests carry this user extra
# (Impersonate-Extra-...) with the value FIELD_MANAGER, so the drift guard tells them from the
# ServiceAccount's own. Only the controller may impersonate this extra (RBAC on userextras, by value).
IMPERSONATED_BY = "gitops.driftguard.io-impersonated-by"
# Finalizer that makes deleting an Application delete what it deployed (Argo CD's name is
# resources-finalizer.argocd.argoproj.io).
RESOURCES_FINALIZER = f"resources-finalizer.{GROUP}"


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object: what inventories, tracking ids and messages name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        api_version = str(obj.get("apiVersion") or "")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(
            group, str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")
        )

    @classmethod
    def from_status(cls, entry: dict[str, Any]) -> ObjectRef:
        return cls(
            str(entry.get("group") or ""), str(entry.get("kind") or ""),
            str(entry.get("namespace") or ""), str(entry.get("name") or ""),
        )  # fmt: skip

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind}{'.' + self.group if self.group else ''} {where}"


@dataclass(frozen=True)
class AppKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def tracking_id(app: AppKey, ref: ObjectRef) -> str:
    return f"{app.namespace}/{app.name}:{ref.group}/{ref.kind}:{ref.namespace}/{ref.name}"


def parse_tracking_id(value: str) -> tuple[AppKey, ObjectRef] | None:
    """The Application and object a tracking id names, or None when it is malformed."""
    try:
        app_part, kind_part, obj_part = value.split(":")
        app_ns, app_name = app_part.split("/")
        group, kind = kind_part.split("/")
        namespace, name = obj_part.split("/")
    except ValueError:
        return None
    if not (app_ns and app_name and kind and name):
        return None
    return AppKey(app_ns, app_name), ObjectRef(group, kind, namespace, name)


def claimed_app(obj: dict[str, Any]) -> AppKey | None:
    """The Application an object's tracking id names, only when the id describes this very object
    (an id copied from another object claims nothing)."""
    meta = obj.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(TRACKING_ANNOTATION)
    if not isinstance(value, str):
        return None
    parsed = parse_tracking_id(value)
    if parsed is None:
        return None
    app, ref = parsed
    return app if ref == ObjectRef.of(obj) else None
