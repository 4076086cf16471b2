"""A requested dry run: what a sync would do, with each object's diff, in status.operationState;
nothing in the cluster changes (every apply is a server-side dry run) and history stays as it is."""

from __future__ import annotations

import logging
from typing import Any

from controller import diff, plan
from controller import status as st
from controller.kube import Kube, KubeError
from controller.sync.project import Scope
from controller.sync.prune import plan_prune
from controller.sync.report import operation_state
from controller.sync.target import Target
from extension.api.tracking import AppKey, ObjectRef, claimed_app

log = logging.getLogger("controller.reconcile")  # the reconcile's log lines keep their logger name


def dry_run(
    kube: Kube, scope: Scope, app: dict[str, Any], key: AppKey, target: Target,
    desired: dict[ObjectRef, dict[str, Any]], live: dict[ObjectRef, dict[str, Any] | None],
    drifted: dict[ObjectRef, list[str] | None], foreign: dict[ObjectRef, str], break_glass: set[ObjectRef],
    selected: set[ObjectRef] | None, inventory: list[ObjectRef], prune_on: bool, rules: list[dict[str, Any]],
    options: dict[str, str], status: dict[str, Any], now: str, max_share: float,
) -> None:  # fmt: skip
    """What a sync would do, with each object's diff, in status.operationState; nothing in the
    cluster changes (every apply is a server-side dry run) and history stays as it is."""
    changes, diffs, crds = plan.ChangeSet(), {}, plan.crd_kinds(desired.values())
    created_namespaces = {ref.name for ref in desired if (ref.group, ref.kind) == ("", "Namespace")}
    if options.get("CreateNamespace") == "true":
        created_namespaces.add(str((app["spec"].get("destination") or {}).get("namespace") or ""))
    for step in plan.waves(
        desired[r] for r in desired if r not in foreign and (selected is None or r in selected)
    ):
        for obj in step:
            ref = ObjectRef.of(obj)
            current, fields = live.get(ref), drifted.get(ref)
            try:
                if ref in break_glass:
                    changes.add(ref, "skipped", "break-glass is active")
                elif current is None:
                    predicted, note = _dry_create(kube, scope, obj, created_namespaces, crds)
                    changes.add(ref, "created", note)
                    diffs[ref] = diff.unified(None, predicted or obj, rules, str(ref))
                elif fields:
                    predicted = scope.objects.apply(obj, dry_run=True)
                    changes.add(ref, "configured", f"fields: {', '.join(fields[:10])}")
                    diffs[ref] = diff.unified(current, predicted, rules, str(ref))
                else:
                    changes.add(ref, "unchanged")
            except KubeError as exc:
                changes.add(ref, "failed", f"{exc.reason}: {exc.message}")
    for ref, why in foreign.items():
        changes.add(ref, "failed", why)
    prune_plan, found = plan_prune(
        kube, scope, key, inventory, desired, prune_on, (app.get("operation") or {}).get("sync"), max_share
    )
    for ref in prune_plan.delete:
        live_found = found.get(ref)
        if live_found is not None and claimed_app(live_found[1]) == key:
            changes.add(ref, "pruned")
            diffs[ref] = diff.unified(live_found[1], None, rules, str(ref))
    for ref in prune_plan.keep:
        if found.get(ref) is not None:
            changes.add(ref, "skipped", prune_plan.refused or "left in place: pruning is off or Prune=false")
    failed = changes.failed()
    message = f"dry run of revision {st.short(target.sha)}: {changes.summary()}; nothing was changed"
    if failed:
        message += "; " + "; ".join(str(c) for c in failed[:3])
    status["operationState"] = operation_state(
        app, "Failed" if failed else "Succeeded", message, now, target, changes, diffs
    )
    kube.event(app, "Warning" if failed else "Normal", "DryRun", message)
    log.info("[%s] %s", key, message)


def _dry_create(
    kube: Kube, scope: Scope, obj: dict[str, Any], created_namespaces: set[str], crds: set[tuple[str, str]]
) -> tuple[dict[str, Any] | None, str]:
    """A server-side dry run of creating ``obj``, when the server can judge it now: not for a
    kind that a CRD in the same sync brings, nor in a namespace the sync creates."""
    res = kube.resource(*plan.group_kind(obj))
    if res is None and plan.group_kind(obj) in crds:
        return (
            None,
            "its kind is not served yet (a CustomResourceDefinition in this sync brings it): not dry-run",
        )
    if res is None:
        res = kube.resource_for(obj)  # raises: the server has no resource for it
    namespace = obj["metadata"].get("namespace") or ""
    if res.namespaced and namespace in created_namespaces:
        ns = kube.resource("", "Namespace")
        if ns is not None and kube.get(ns, "", namespace) is None:
            return None, f"namespace {namespace} is created by this sync: not dry-run"
    return scope.objects.apply(obj, dry_run=True), ""
