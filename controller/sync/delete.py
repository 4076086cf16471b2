"""An Application deleted: with the resources finalizer its objects are deleted (as the project's
ServiceAccount, and only what the project allows), after its PreDelete hooks; without it they are
released, left in place without the managed marks so that the drift guard lets them go."""

from __future__ import annotations

import logging
from typing import Any

from controller import hookspec, plan
from controller import status as st
from controller.kube import Kube, KubeError
from controller.sync.hooks import HookRunner
from controller.sync.project import Scope
from controller.sync.prune import inventory_live
from controller.sync.target import Targets
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


class PreDelete:
    """PreDelete hooks, before a cascading deletion deletes anything."""

    def __init__(self, kube: Kube, targets: Targets, hooks: HookRunner) -> None:
        self.kube, self.targets, self.hooks = kube, targets, hooks
        self.done: set[str] = set()  # Applications (by uid) whose PreDelete hooks succeeded

    def run(self, scope: Scope, app: dict[str, Any], key: AppKey) -> None:
        """PreDelete hooks of the deployed revision run (once) before a cascading deletion deletes
        anything; while one fails, nothing is deleted. Hooks that cannot be read (Git is gone, the
        render fails) or that the project no longer allows cannot run: the deletion goes on without
        them, and a Warning Event says so."""
        uid = str(app["metadata"].get("uid"))
        if uid in self.done:
            return
        try:
            deployed = self.targets.deployed(scope, app, key, judge=False)  # None: nothing deployed
        except st.Step as exc:
            self._skip(app, key, uid, f"they cannot be read: {exc.message}")
            return
        hooks = [
            h
            for wave in hookspec.of_phase(deployed.hooks if deployed else [], hookspec.PRE_DELETE)
            for h in wave
        ]
        refused = self.targets.refusals(scope, app, [h.obj for h in hooks])
        if refused:
            self._skip(app, key, uid, f"the project refuses them: {'; '.join(refused[:3])}")
            return
        if deployed is not None and hooks:
            changes = plan.ChangeSet()
            failure = self.hooks.run(scope, key, hooks, hookspec.PRE_DELETE, changes, deployed.sha)
            if failure:
                raise st.Step(
                    st.HOOK_FAILED, f"{failure}; nothing is deleted until its PreDelete hooks succeed"
                )
            summary = f"revision {st.short(deployed.sha)}: {changes.summary()}"
            self.kube.event(app, "Normal", "PreDeleteHooks", summary)
        self.done.add(uid)

    def _skip(self, app: dict[str, Any], key: AppKey, uid: str, why: str) -> None:
        message = f"PreDelete hooks did not run, {why}; deleting the deployed objects without them"
        log.warning("[%s] %s", key, message)
        self.kube.event(app, "Warning", st.HOOK_FAILED, message)
        self.done.add(uid)
