"""An Application deleted: with the resources finalizer its objects are deleted (as the project's
ServiceAccount, and only what the project allows); without it they are released, left in place
without the managed marks so that the drift guard lets them go."""

from __future__ import annotations

import logging
from typing import Any

from controller import plan
from controller import status as st
from controller.kube import Kube, KubeError
from controller.sync.project import Scope
from controller.sync.prune import inventory_live
from extension.api.tracking import (
    MANAGED_LABEL,
    RESOURCES_FINALIZER,
    TRACKING_ANNOTATION,
    AppKey,
    claimed_app,
)

log = logging.getLogger("controller.reconcile")  # the reconcile's log lines keep their logger name


def delete_inventory(kube: Kube, scope: Scope, app: dict[str, Any], key: AppKey) -> list[str]:
    """Delete the inventory's objects that still carry this Application's tracking id; what could
    not be deleted, with why."""
    remaining = []
    deletions = plan.plan_prune(st.inventory(app.get("status") or {}), [], prune=True, confirmed=True).delete
    refused = set(scope.not_permitted(deletions))
    for ref in deletions:
        if ref in refused:
            log.info("[%s] left %s in place: its project no longer allows it", key, ref)
            continue
        found = inventory_live(kube, scope, ref)
        if found is None or claimed_app(found[1]) != key:
            continue
        res, obj = found
        try:
            scope.objects.delete(res, ref.namespace, ref.name, uid=obj["metadata"].get("uid"))
            log.info("[%s] deleted %s (Application deleted)", key, ref)
        except KubeError as exc:
            remaining.append(f"{ref}: {exc.message}")
    return remaining


def release(kube: Kube, scope: Scope, key: AppKey, app: dict[str, Any]) -> None:
    """Take the managed marks off the inventory's objects that still carry this Application's
    tracking id."""
    for ref in st.inventory(app.get("status") or {}):
        found = inventory_live(kube, scope, ref)
        if found is None or claimed_app(found[1]) != key:
            continue
        res = found[0]
        patch = {"metadata": {"labels": {MANAGED_LABEL: None}, "annotations": {TRACKING_ANNOTATION: None}}}
        try:
            scope.objects.patch(res, ref.namespace, ref.name, patch)
            log.info("[%s] released %s (Application deleted without %s)", key, ref, RESOURCES_FINALIZER)
        except KubeError as exc:
            log.warning("[%s] could not release %s: %s", key, ref, exc.message)
