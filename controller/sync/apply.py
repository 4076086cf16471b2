"""Applying: the destination namespace when CreateNamespace=true, the inventory grown before new
objects exist, then server-side apply wave by wave (plan.waves), each wave waiting for the one
before to be healthy (wait.py), with a Running operationState written as each step ends for a
requested operation. And, after a sync, ending an expired break-glass."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from controller import plan
from controller import status as st
from controller.kube import Kube, KubeError
from controller.sync.project import Scope
from controller.sync.report import now_text, operation_state
from controller.sync.statuswrite import StatusWriter
from controller.sync.target import Target
from controller.sync.wait import wait_healthy
from extension.api.tracking import (
    BREAK_GLASS_GRANT,
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    AppKey,
    ObjectRef,
)

log = logging.getLogger("controller.reconcile")  # the reconcile's log lines keep their logger name


def wkey(ref: ObjectRef) -> tuple[str, str, str, str]:
    """The key of Reconciler.written: the resourceVersions this controller wrote."""
    return (ref.group, ref.kind, ref.namespace, ref.name)


class Applier:
    def __init__(
        self, kube: Kube, status_writer: StatusWriter, written: dict[tuple[str, str, str, str], str],
        wave_timeout: float, clock: Callable[[], datetime.datetime],
    ) -> None:  # fmt: skip
        self.kube, self.status_writer, self.wave_timeout, self.clock = (
            kube,
            status_writer,
            wave_timeout,
            clock,
        )
        # resourceVersions this controller wrote, so that the watch can skip its own echoes
        # (Reconciler.written).
        self.written = written

    def create_namespace(
        self, scope: Scope, app: dict[str, Any], key: AppKey, options: dict[str, str]
    ) -> None:
        """CreateNamespace=true: the destination namespace, before anything of the sync (its
        PreSync hooks included) needs it."""
        spec = app.get("spec") or {}
        destination_ns = str((spec.get("destination") or {}).get("namespace") or "")
        if options.get("CreateNamespace") == "true" and destination_ns:
            ns = self.kube.resource("", "Namespace")
            # Whether it exists is the controller's to read; creating it is the project's to allow
            # (judged with the Application) and its ServiceAccount's, when it names one.
            if ns is not None and self.kube.get(ns, "", destination_ns) is None:
                scope.objects.request("POST", "/api/v1/namespaces", body={
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": destination_ns},
                })  # fmt: skip
                log.info("[%s] created namespace %s (CreateNamespace=true)", key, destination_ns)

    def apply(
        self, scope: Scope, app: dict[str, Any], key: AppKey, target: Target,
        desired: dict[ObjectRef, dict[str, Any]], live: dict[ObjectRef, dict[str, Any] | None],
        drifted: dict[ObjectRef, list[str] | None], foreign: dict[ObjectRef, str],
        break_glass: set[ObjectRef], selected: set[ObjectRef] | None, options: dict[str, str],
        inventory: list[ObjectRef], status: dict[str, Any], changes: plan.ChangeSet,
        hooks_until: Callable[[tuple[int, int], bool], None] = lambda order, inclusive: None,
    ) -> dict[ObjectRef, dict[str, Any]]:  # fmt: skip
        """Apply in waves; returns the objects applied, as kube-apiserver answered.
        ``hooks_until(order, inclusive)`` runs the Sync hooks due before a step (``order``, the
        step's phase and wave as in plan.order_key, not inclusive) and, after its applies and
        before it is waited for, those of its wave (inclusive)."""
        # Record what is about to exist before it exists: a crash mid-sync leaves nothing untracked.
        known = set(inventory)
        new = [
            r for r in desired if r not in known and r not in foreign and (selected is None or r in selected)
        ]
        if new:
            grown = [
                *status.get("resources", []),
                *(st.resource_entry(r, "", "OutOfSync", None) for r in new),
            ]
            status["resources"] = grown
            self.status_writer.write(app, status, None, keep_operation=True)
        only_out_of_sync = options.get("ApplyOutOfSyncOnly") == "true"
        crds = plan.crd_kinds(desired.values())
        applied: dict[ObjectRef, dict[str, Any]] = {}
        steps = plan.waves(
            desired[r] for r in desired if r not in foreign and (selected is None or r in selected)
        )
        if app.get("operation") or len(steps) > 1:
            # Worth an Event of its own when someone asked, or when the sync waits for each step
            # to be healthy; otherwise Synced or SyncFailed follows at once.
            count = sum(len(step) for step in steps)
            message = f"syncing revision {st.short(target.sha)}: {count} objects in {len(steps)} steps"
            self.kube.event(app, "Normal", "SyncStarted", message)
        for index, step in enumerate(steps):
            hooks_until(plan.order_key(step[0])[:2], False)
            if changes.failed():
                return applied
            for obj in step:
                ref = ObjectRef.of(obj)
                if ref in break_glass:
                    changes.add(ref, "skipped", "break-glass is active")
                    continue
                if only_out_of_sync and drifted.get(ref) == []:
                    changes.add(ref, "unchanged")
                    continue
                try:
                    # A kind a CRD of this sync defines appears in discovery a moment after the
                    # CRD is established (the step before waited for that).
                    res = self.kube.resource_for(
                        obj, wait=self.wave_timeout if (ref.group, ref.kind) in crds else 0.0
                    )
                    if res.namespaced != bool(ref.namespace):
                        # Judged by the project as one scope, served as the other (a CRD changed
                        # since): never apply what the project did not judge.
                        served = "namespaced" if res.namespaced else "cluster-scoped"
                        changes.add(
                            ref, "failed", f"the server now serves {ref.kind} as {served}; sync again"
                        )
                        continue
                    result = scope.objects.apply(obj)
                except KubeError as exc:
                    changes.add(ref, "failed", f"{exc.reason}: {exc.message}")
                    continue
                applied[ref] = result
                self.written[wkey(ref)] = result["metadata"].get("resourceVersion", "")
                action = (
                    "created"
                    if live.get(ref) is None
                    else ("configured" if drifted.get(ref) else "unchanged")
                )
                changes.add(ref, action)
            if not changes.failed():
                hooks_until(plan.order_key(step[0])[:2], True)
            if changes.failed():
                return applied
            if index < len(steps) - 1:
                if app.get("operation"):
                    self._progress(app, status, target, changes, step, index + 1, len(steps))
                wait_healthy(self.kube, scope, key, step, self.wave_timeout)
        for ref in foreign:
            changes.add(ref, "failed", foreign[ref])
        return applied

    def _progress(
        self, app: dict[str, Any], status: dict[str, Any], target: Target, changes: plan.ChangeSet,
        step: list[dict[str, Any]], done: int, total: int,
    ) -> None:  # fmt: skip
        """A requested operation shows each step's results as the step ends, while the next one
        waits for it to be healthy: who follows it (``kubectl driftguard sync``, the dashboard)
        sees the sync go by wave and object."""
        wave = plan.wave(step[0])
        message = f"step {done} of {total} (wave {wave}) applied; waiting for it to become healthy"
        state = operation_state(app, "Running", message, now_text(self.clock), target, changes)
        state["startedAt"] = (status.get("operationState") or {}).get("startedAt") or state["startedAt"]
        status["operationState"] = state
        self.status_writer.write(app, status, None, keep_operation=True)

    def end_break_glass(
        self,
        scope: Scope,
        app: dict[str, Any],
        ref: ObjectRef,
        obj: dict[str, Any],
        live: dict[str, Any] | None,
    ) -> None:
        """Remove the expired break-glass's annotations: only those the grant was checked on (a new
        break-glass set meanwhile stays, and the patch fails its test)."""
        res = self.kube.resource_for(obj)
        annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
        path = "/metadata/annotations/"
        until = {
            "op": "test",
            "path": path + BREAK_GLASS_UNTIL.replace("/", "~1"),
            "value": annotations.get(BREAK_GLASS_UNTIL),
        }
        patch: list[dict[str, Any]] = [until] + [
            {"op": "remove", "path": path + name.replace("/", "~1")}
            for name in (BREAK_GLASS_REASON, BREAK_GLASS_UNTIL, BREAK_GLASS_GRANT)
            if name in annotations
        ]
        try:
            ended = scope.objects.patch(res, ref.namespace, ref.name, patch, json_patch=True)
        except KubeError as exc:
            log.warning("[%s/%s] could not remove the expired break-glass from %s: %s",
                        app["metadata"]["namespace"], app["metadata"]["name"], ref, exc.message)  # fmt: skip
            return
        self.written[wkey(ref)] = ended["metadata"].get("resourceVersion", "")
        message = f"break-glass on {ref} expired; Git's state is restored"
        self.kube.event(app, "Normal", "BreakGlassExpired", message)
        self.kube.event(ended, "Normal", "BreakGlassExpired", message)
