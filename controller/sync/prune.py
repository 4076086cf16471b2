"""Pruning: what left Git since the last sync (the inventory in status.resources), planned by
plan.plan_prune (Prune=false, the project's rules and the share that needs confirming) and deleted,
only when it still carries this Application's tracking id."""

from __future__ import annotations

from typing import Any

from controller import plan
from controller import status as st
from controller.kube import Kube, KubeError, Resource
from controller.sync.project import Scope
from extension.api.tracking import AppKey, ObjectRef, claimed_app


def inventory_live(kube: Kube, scope: Scope, ref: ObjectRef) -> tuple[Resource, dict[str, Any]] | None:
    """An inventory entry's live object with its resource, or None when it is gone."""
    res = kube.resource(ref.group, ref.kind)
    obj = None if res is None else scope.objects.get(res, ref.namespace, ref.name)
    return None if res is None or obj is None else (res, obj)


def plan_prune(
    kube: Kube, scope: Scope, key: AppKey, inventory: list[ObjectRef], desired: dict[ObjectRef, Any],
    prune_on: bool, sync_request: dict[str, Any] | None, max_share: float,
) -> tuple[plan.PrunePlan, dict[ObjectRef, tuple[Resource, dict[str, Any]] | None]]:  # fmt: skip
    """The prune plan, and the live objects of the inventory entries that left Git. What the
    project no longer allows (a kind, a namespace) is left in place, as Argo CD does."""
    found = {ref: inventory_live(kube, scope, ref) for ref in inventory if ref not in desired}
    no_prune = [
        r for r, f in found.items() if f is not None and plan.object_options(f[1]).get("Prune") == "false"
    ] + scope.not_permitted([r for r in found if found[r] is not None])
    prune_plan = plan.plan_prune(
        inventory, desired, prune=prune_on, no_prune=no_prune, max_share=max_share,
        confirmed=bool((sync_request or {}).get("confirmPrune")), app=key,
    )  # fmt: skip
    return prune_plan, found


def prune(
    kube: Kube, scope: Scope, app: dict[str, Any], key: AppKey, prune_plan: plan.PrunePlan,
    found: dict[ObjectRef, tuple[Resource, dict[str, Any]] | None], changes: plan.ChangeSet,
    status: dict[str, Any], now: str,
) -> None:  # fmt: skip
    if prune_plan.refused:
        known = st.find_condition(status.get("conditions") or [], st.PRUNE_REFUSED)
        if not known or known.get("message") != prune_plan.refused:
            kube.event(app, "Warning", "PruneRefused", prune_plan.refused)
        status["conditions"] = st.set_condition(
            status.get("conditions") or [],
            st.PRUNE_REFUSED,
            "True",
            "ConfirmationRequired",
            prune_plan.refused,
            now,
        )
    else:
        status["conditions"] = st.remove_condition(status.get("conditions") or [], st.PRUNE_REFUSED)
    for ref in prune_plan.delete:
        try:
            live_found = found.get(ref)
            if live_found is None:
                changes.add(ref, "pruned", "already gone")
                continue
            res, obj = live_found
            if claimed_app(obj) != key:
                # Never prune what this Application does not own by its tracking id.
                changes.add(ref, "pruned", "no longer carries this Application's tracking id; left alone")
                continue
            scope.objects.delete(res, ref.namespace, ref.name, uid=obj["metadata"].get("uid"))
            changes.add(ref, "pruned")
            kube.event(app, "Normal", "Pruned", f"{ref} left Git and was deleted")
        except KubeError as exc:
            changes.add(ref, "failed", f"prune failed ({exc.reason}): {exc.message}")
            kube.event(app, "Warning", st.PRUNE_FAILED, f"{ref}: {exc.message}")


def leftovers(
    inventory: list[ObjectRef], desired: dict[ObjectRef, Any], changes: plan.ChangeSet
) -> list[ObjectRef]:
    """Inventory entries that left Git and still exist: kept, or whose deletion failed."""
    pruned = {c.ref for c in changes.changes if c.action == "pruned"}
    return [r for r in inventory if r not in desired and r not in pruned]
