"""A sync of one Application, step by step: CreateNamespace, PreSync hooks, the apply wave by wave,
Sync hooks, the prune, PostSync hooks once what was applied is healthy, SyncFail hooks when
anything failed; then the record of it: operationState, history, conditions, Events.
controller/reconcile.py decides that a sync is due and calls it."""

from __future__ import annotations

import logging
from typing import Any

from controller import hookspec, plan
from controller import status as st
from controller.kube import Kube, KubeError
from controller.metrics import Metrics
from controller.sync import compare, prune
from controller.sync.apply import Applier
from controller.sync.decide import Decision, paused
from controller.sync.hooks import HookRunner
from controller.sync.project import Scope
from controller.sync.report import operation_state
from controller.sync.target import Target, Targets
from controller.sync.wait import wait_healthy
from extension.api.tracking import AppKey, ObjectRef

log = logging.getLogger("controller.reconcile")  # the reconcile's log lines keep their logger name


class Syncer:
    def __init__(
        self, kube: Kube, targets: Targets, applier: Applier, hooks: HookRunner, metrics: Metrics,
        max_prune_share: float, wave_timeout: float,
    ) -> None:  # fmt: skip
        self.kube, self.targets, self.applier, self.hooks, self.metrics = (
            kube,
            targets,
            applier,
            hooks,
            metrics,
        )
        self.max_prune_share, self.wave_timeout = max_prune_share, wave_timeout

    def run(
        self, scope: Scope, app: dict[str, Any], key: AppKey, target: Target, status: dict[str, Any],
        now: str, compared: compare.Comparison, decision: Decision, options: dict[str, str],
        rules: list[dict[str, Any]], inventory: list[ObjectRef],
    ) -> list[ObjectRef]:  # fmt: skip
        """Apply (wave by wave), prune, and record the result: operationState, history, Events.
        Returns the inventory entries that left Git and still exist. Raises ApplyFailed or
        PruneFailed when a change failed."""
        spec, operation = app.get("spec") or {}, app.get("operation") or {}
        desired, live, drifted = compared.desired, compared.live, compared.drifted
        selected, expired, restoring = decision.selected, decision.expired, decision.restoring
        changes = plan.ChangeSet()
        source, source_desired = target, desired
        if restoring:
            selected = expired
            deployed = (
                self.targets.deployed(scope, app, key) if not decision.auto_sync or paused(app) else None
            )
            if deployed is not None and deployed.sha != target.sha:
                source, source_desired = deployed, {ObjectRef.of(o): o for o in deployed.objects}
                # An object the deployed revision does not have has no state to restore.
                selected = {ref for ref in expired if ref in source_desired}
        initiator = operation.get("initiatedBy") or {
            "automated": True,
            "username": "driftguard-controller",
        }
        why = " to end an expired break-glass" if restoring else ""
        count = len(source_desired if selected is None else selected)
        log.info("[%s] syncing revision %s (%d objects)%s", key, st.short(source.sha), count, why)
        if operation:
            status["operationState"] = operation_state(app, "Running", "syncing", now, None)
        # Hooks run with a sync of the whole revision; a break-glass restore or a sync of chosen
        # resources runs none (as Argo CD's selective syncs).
        hooks = source.hooks if not restoring and selected is None else []
        sha = source.sha
        self.applier.create_namespace(scope, app, key, options)  # before anything needs it
        hook_failure = self.hooks.run(scope, key, hooks, hookspec.PRE_SYNC, changes, sha) if hooks else ""
        applied: dict[ObjectRef, dict[str, Any]] = {}
        try:
            # Sync hooks run with the wave of their sync-wave, after its objects are applied and
            # before the wave is waited for; those of a wave after the last, after the apply.
            pending = [h for wave in hookspec.of_phase(hooks, hookspec.SYNC) for h in wave]

            def sync_hooks(order: tuple[int, int], inclusive: bool) -> None:
                nonlocal hook_failure
                due = [h for h in pending if (1, h.wave) < order or (inclusive and (1, h.wave) == order)]
                if due:
                    del pending[: len(due)]
                    hook_failure = self.hooks.run(scope, key, due, hookspec.SYNC, changes, sha)

            if not hook_failure:  # a failed PreSync hook: nothing is applied
                applied = self.applier.apply(
                    scope, app, key, source, source_desired, live, drifted, compared.foreign,
                    decision.break_glass, selected, options, inventory, status, changes, sync_hooks,
                )  # fmt: skip
            # What the applies answered is the live state now: in sync with what was applied.
            for ref, obj in applied.items():
                live[ref] = obj
                drifted[ref] = [] if source is target else compare.drift(scope, desired[ref], obj, rules)
            if pending and not changes.failed():
                hook_failure = self.hooks.run(scope, key, pending, hookspec.SYNC, changes, sha)
            if not changes.failed() and not restoring:
                prune_plan, found = prune.plan_prune(
                    self.kube, scope, key, inventory, desired, decision.prune_on, decision.sync_request,
                    self.max_prune_share,
                )  # fmt: skip
                prune.prune(self.kube, scope, app, key, prune_plan, found, changes, status, now)
            if hookspec.of_phase(hooks, hookspec.POST_SYNC) and not changes.failed():
                synced = [source_desired[r] for r in applied]
                hook_failure = self._post_sync(scope, key, hooks, synced, changes, sha)
        except (st.Step, KubeError):
            # A wave that did not become healthy, an API error: the SyncFail hooks run all the same.
            if hooks:
                self.hooks.run(scope, key, hooks, hookspec.SYNC_FAIL, changes, sha)
            raise
        if hooks and changes.failed():
            self.hooks.run(scope, key, hooks, hookspec.SYNC_FAIL, changes, sha)
        kept = prune.leftovers(inventory, desired, changes)
        failed = changes.failed()
        message = f"revision {st.short(source.sha)}: {changes.summary()}"
        if failed:
            message += "; " + "; ".join(str(c) for c in failed[:3])
        phase = "Failed" if failed else "Succeeded"
        if (
            operation
            or changes.count("created") + changes.count("configured") + changes.count("pruned")
            or decision.git_changed
        ):
            status["operationState"] = operation_state(app, phase, message, now, source, changes)
        if not failed and not restoring and (decision.git_changed or operation or decision.spec_changed):
            status["history"] = st.add_history(
                status.get("history") or [], target.sha, target.source, now,
                {k: v for k, v in initiator.items() if k in ("username", "automated")},
                int(spec.get("revisionHistoryLimit", 10)),
            )  # fmt: skip
        for ref in expired - {c.ref for c in failed}:
            self.applier.end_break_glass(scope, app, ref, desired[ref], decision.expired_live[ref])
        if "rollback" in operation and not failed:
            status["conditions"] = st.set_condition(
                status.get("conditions") or [], st.AUTO_SYNC_PAUSED, "True", "RolledBack",
                f"rolled back to history {operation['rollback'].get('id')} "
                f"(revision {st.short(target.sha)}); "
                "auto-sync stays paused until the spec changes", now,
            )  # fmt: skip
        elif decision.sync_request and not failed:
            status["conditions"] = st.remove_condition(status.get("conditions") or [], st.AUTO_SYNC_PAUSED)
        # A failed hook stays said in its own condition until a sync that runs hooks succeeds (the
        # Ready condition tells of the last reconcile, which may be a compare).
        if hook_failure:
            failed_phase = hook_failure.split(" ", 1)[0]  # the messages begin with the phase
            status["conditions"] = st.set_condition(
                status.get("conditions") or [], st.HOOK_FAILED, "True", f"{failed_phase}Failed",
                f"revision {st.short(source.sha)}: {hook_failure}"[:2000], now,
            )  # fmt: skip
        elif hooks and not failed:
            status["conditions"] = st.remove_condition(status.get("conditions") or [], st.HOOK_FAILED)
        self.metrics.syncs.labels(result="failed" if failed else "succeeded").inc()
        self.kube.event(app, "Warning" if failed else "Normal", "SyncFailed" if failed else "Synced", message)
        log.info("[%s] %s", key, message)
        if failed:
            pruning = all(c.message.startswith("prune failed") for c in failed)
            reason = st.HOOK_FAILED if hook_failure else st.PRUNE_FAILED if pruning else st.APPLY_FAILED
            raise st.Step(reason, message)
        return kept

    def _post_sync(
        self, scope: Scope, key: AppKey, hooks: list[hookspec.Hook], synced: list[dict[str, Any]],
        changes: plan.ChangeSet, sha: str,
    ) -> str:  # fmt: skip
        """PostSync hooks run once what the sync applied is healthy: why they failed, or ""."""
        try:
            wait_healthy(self.kube, scope, key, synced, self.wave_timeout)
        except st.Step as exc:
            why = f"PostSync hooks did not run: {exc.message}"
            for wave in hookspec.of_phase(hooks, hookspec.POST_SYNC):
                for hook in wave:
                    changes.add(hook.ref, "failed", why, hook=hookspec.POST_SYNC)
            return why
        return self.hooks.run(scope, key, hooks, hookspec.POST_SYNC, changes, sha)
