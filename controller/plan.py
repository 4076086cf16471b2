"""What a sync will do, decided over plain dicts: marks, order, waves, pruning. Pure.

Nothing here talks to a cluster or to Git. The reconcile feeds rendered manifests, the recorded
inventory and a namespaced-ness lookup in, and gets back objects ready to apply, in order, and
the list of objects to prune, with the reasons a prune must not happen.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from extension.api.tracking import (
    MANAGED_LABEL,
    MANAGED_VALUE,
    SYNC_OPTIONS_ANNOTATIONS,
    SYNC_WAVE_ANNOTATIONS,
    TRACKING_ANNOTATION,
    AppKey,
    ObjectRef,
    tracking_id,
)

# Apply order inside a wave (Argo CD's): what others depend on comes first.
KIND_ORDER = (
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
    "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet",
    "Job", "CronJob", "IngressClass", "Ingress", "APIService",
)  # fmt: skip
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
# Namespaces and CRDs go before every wave (what is in the namespaces, and the custom resources,
# need them); admission webhooks after every wave, so that a half-applied sync is never judged by
# a webhook whose backend is not deployed yet.
FIRST_KINDS = frozenset({("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")})
LAST_KINDS = frozenset({
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
})  # fmt: skip

Namespaced = Callable[[str, str], "bool | None"]


class PlanError(Exception):
    """A rendered set the controller will not apply, e.g. a wave annotation that is no number."""


def parse_options(options: Iterable[str]) -> dict[str, str]:
    """``["CreateNamespace=true", "PruneLast=true"]`` -> ``{"CreateNamespace": "true", ...}``."""
    parsed: dict[str, str] = {}
    for option in options:
        key, _, value = str(option).partition("=")
        parsed[key.strip()] = value.strip()
    return parsed


def object_options(obj: dict[str, Any]) -> dict[str, str]:
    """Per-object sync options from the annotation, comma separated (``Prune=false``)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in SYNC_OPTIONS_ANNOTATIONS:
        if key in annotations:
            return parse_options(str(annotations[key]).split(","))
    return {}


def wave(obj: dict[str, Any]) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in SYNC_WAVE_ANNOTATIONS:
        if key in annotations:
            try:
                return int(str(annotations[key]).strip())
            except ValueError:
                raise PlanError(
                    f"{ObjectRef.of(obj)}: annotation {key} must be an integer, not {annotations[key]!r}"
                ) from None
    return 0


def phase(ref: ObjectRef) -> int:
    if (ref.group, ref.kind) in FIRST_KINDS:
        return 0
    return 2 if (ref.group, ref.kind) in LAST_KINDS else 1


def order_key(obj: dict[str, Any]) -> tuple[int, int, int, str, str, str]:
    ref = ObjectRef.of(obj)
    return (
        phase(ref),
        wave(obj),
        _KIND_RANK.get(ref.kind, len(KIND_ORDER)),
        ref.kind,
        ref.namespace,
        ref.name,
    )


def waves(objs: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The objects in apply order, grouped into steps that each wait for the one before to be
    healthy: Namespaces and CRDs, then each sync wave, then admission webhooks."""
    ordered = sorted(objs, key=order_key)
    return [list(group) for _, group in itertools.groupby(ordered, key=lambda o: order_key(o)[:2])]


def group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    ref = ObjectRef.of(obj)
    return ref.group, ref.kind


def crd_kinds(manifests: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """The (group, kind) pairs the CustomResourceDefinitions among ``manifests`` define."""
    return set(_crd_scopes(manifests))


def _crd_scopes(manifests: Iterable[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    scopes = {}
    for obj in manifests:
        ref = ObjectRef.of(obj)
        if (ref.group, ref.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            scopes[(str(spec.get("group", "")), str(names.get("kind", "")))] = spec.get("scope") != "Cluster"
    return scopes


def prepare(
    manifests: Sequence[dict[str, Any]], app: AppKey, destination_namespace: str, namespaced: Namespaced
) -> list[dict[str, Any]]:
    """Copies of the rendered objects as they will be applied: the destination namespace filled
    in where a namespaced object has none (a cluster-scoped one loses any it has), plus the managed
    label and the tracking id. Kinds the cluster does not know yet are looked up among CRDs in the
    same render; failing that, they are taken to be namespaced."""
    crds = _crd_scopes(manifests)
    prepared = []
    for original in manifests:
        obj = copy.deepcopy(original)
        meta = obj.setdefault("metadata", {})
        ref = ObjectRef.of(obj)
        scoped = namespaced(ref.group, ref.kind)
        if scoped is None:
            scoped = crds.get((ref.group, ref.kind), True)
        if scoped:
            meta["namespace"] = meta.get("namespace") or destination_namespace
            if not meta["namespace"]:
                raise PlanError(f"{ref}: namespaced, but neither it nor spec.destination names a namespace")
        else:
            meta.pop("namespace", None)
        meta.setdefault("labels", {})[MANAGED_LABEL] = MANAGED_VALUE
        meta.setdefault("annotations", {})[TRACKING_ANNOTATION] = tracking_id(app, ObjectRef.of(obj))
        prepared.append(obj)
    return prepared


@dataclass
class PrunePlan:
    delete: list[ObjectRef] = field(default_factory=list)
    # Objects that left Git but stay: Prune=false on them, or pruning is off.
    keep: list[ObjectRef] = field(default_factory=list)
    refused: str = ""  # why nothing may be pruned at all, when something stops it


def plan_prune(
    inventory: Sequence[ObjectRef],
    desired: Iterable[ObjectRef],
    *,
    prune: bool,
    no_prune: Iterable[ObjectRef] = (),
    max_share: float = 0.5,
    confirmed: bool = False,
    app: AppKey | None = None,
) -> PrunePlan:
    """Only what the recorded inventory lists and Git no longer has is a candidate; a label scan
    never is. A prune of more than ``max_share`` of the inventory (and of more than one object)
    waits for a sync request that confirms it."""
    wanted, protected = set(desired), set(no_prune)
    gone = [ref for ref in inventory if ref not in wanted]
    plan = PrunePlan()
    for ref in gone:
        (plan.delete if prune and ref not in protected else plan.keep).append(ref)
    if (
        plan.delete
        and not confirmed
        and len(plan.delete) > 1
        and len(plan.delete) > max_share * len(inventory)
    ):
        plan.refused = (
            f"the prune would delete {len(plan.delete)} of the {len(inventory)} resources this Application "
            f"deployed (more than {max_share:.0%}); confirm it with a sync request: kubectl create --raw "
            f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{app.namespace if app else '<namespace>'}"
            f"/applications/{app.name if app else '<name>'}/sync -f - <<< "
            f"'{{\"prune\": true, \"confirmPrune\": true}}' (docs/controller.md, 'Prune')"
        )
        plan.keep, plan.delete = plan.keep + plan.delete, []
    # Reverse apply order: webhooks go first, Namespaces and CRDs last.
    plan.delete.sort(key=lambda r: (-phase(r), -_KIND_RANK.get(r.kind, len(KIND_ORDER)), r.namespace, r.name))
    return plan


@dataclass(frozen=True)
class Change:
    ref: ObjectRef
    action: str  # created, configured, unchanged, pruned, failed, skipped; a hook's succeeded or failed
    message: str = ""
    hook: str = ""  # the phase a hook ran in: PreSync, Sync, PostSync, SyncFail, PreDelete

    def __str__(self) -> str:
        return f"{self.ref} {self.action}" + (f": {self.message}" if self.message else "")


@dataclass
class ChangeSet:
    """What a sync did; the same lines feed the log, the Events and the status."""

    changes: list[Change] = field(default_factory=list)

    def add(self, ref: ObjectRef, action: str, message: str = "", hook: str = "") -> None:
        self.changes.append(Change(ref, action, message, hook))

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def summary(self) -> str:
        counts = [
            f"{self.count(a)} {a}" for a in ("created", "configured", "pruned", "failed") if self.count(a)
        ]
        hooks = sum(1 for change in self.changes if change.hook and change.action == "succeeded")
        if hooks:
            counts.append(f"{hooks} hook{'s' if hooks > 1 else ''} succeeded")
        return ", ".join(counts) or "nothing to change"

    def failed(self) -> list[Change]:
        return [change for change in self.changes if change.action == "failed"]
