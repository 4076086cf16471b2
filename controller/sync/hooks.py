"""Running a phase's sync hooks (controller/hookspec.py says which objects are hooks and when one
has finished): wave by wave, each wave's hooks created, then waited for, then deleted as their
policy says. A hook is created as the project's ServiceAccount, like any object of the sync, and
reported in the operation's result with its phase; it is never tracked in the inventory, so it is
never pruned and the drift guard does not guard it.

BeforeHookCreation (the default) deletes a hook of the same name left by an earlier run and waits
for it to be gone before creating the new one; without it, an existing hook is applied over (a
finished Job then counts as done, as in Argo CD). A hook of this revision that is still running
(a controller restarted while waiting for it) is waited for again, not replaced. A hook with
``generateName`` is a new object each time. A hook never takes the place of an object another
Application deploys.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable

from controller import hookspec, plan
from controller.hookspec import Hook
from controller.kube import KubeError
from controller.sync.project import Scope
from extension.api.tracking import AppKey, ObjectRef, claimed_app

log = logging.getLogger("controller.reconcile")

POLL_SECONDS = 1.0
REVISION_ANNOTATION = "gitops.driftguard.io/hook-revision"  # the revision whose sync created it


class HookRunner:
    def __init__(self, timeout: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout, self.sleep = timeout, sleep

    def run(
        self, scope: Scope, key: AppKey, hooks: list[Hook], phase: str, changes: plan.ChangeSet, revision: str
    ) -> str:  # fmt: skip
        """Runs the ``phase`` hooks of ``hooks`` (of ``revision``); each result goes into
        ``changes``. Returns why the phase failed ("" when every hook succeeded); the waves after a
        failed one do not run."""
        for wave in hookspec.of_phase(hooks, phase):
            started: list[tuple[Hook, ObjectRef]] = []
            for hook in wave:
                try:
                    started.append((hook, self._create(scope, key, hook, phase, revision)))
                except KubeError as exc:
                    why = f"{phase} hook {hook.describe()} could not be created: {exc.reason}: {exc.message}"
                    changes.add(hook.ref, "failed", why, hook=phase)
                    return why
            failures = self._wait(scope, key, started, phase, changes)
            if failures:
                return "; ".join(failures)
        return ""

    def _create(self, scope: Scope, key: AppKey, hook: Hook, phase: str, revision: str) -> ObjectRef:
        """Creates the hook (after deleting an earlier one, as its policy says): what was created,
        or the same hook of this revision still running."""
        objects = scope.objects
        res = objects.resource_for(hook.obj)
        meta = hook.obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        body = copy.deepcopy(hook.obj)
        body["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision
        if hook.generated:
            created = objects.request("POST", res.path(namespace), body=body)
        else:
            name = str(meta["name"])
            live = objects.get(res, namespace, name)
            owner = claimed_app(live) if live is not None else None
            if owner is not None and owner != key:
                raise KubeError(409, "Conflict", f"{hook.describe()} is managed by Application {owner}")
            notes = ((live or {}).get("metadata") or {}).get("annotations") or {}
            if (
                live is not None and notes.get(REVISION_ANNOTATION) == revision
                and hookspec.outcome(live)[0] == hookspec.RUNNING
            ):  # fmt: skip
                log.info(
                    "[%s] %s hook %s of this revision is still running: waiting for it", key, phase, name
                )
                return ObjectRef.of(live)
            if hookspec.BEFORE_CREATION in hook.policies and live is not None:
                objects.delete(res, namespace, name)
                self._gone(hook, lambda: objects.get(res, namespace, name) is None)
            created = objects.apply(body)
        ref = ObjectRef.of(created)
        log.info("[%s] %s hook %s created", key, phase, ref)
        return ref

    def _gone(self, hook: Hook, gone: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not gone():
            if time.monotonic() > deadline:
                raise KubeError(
                    409, "Conflict",
                    f"the earlier {hook.describe()} was not gone {self.timeout:.0f}s after its deletion "
                    "(BeforeHookCreation)",
                )  # fmt: skip
            self.sleep(POLL_SECONDS)

    def _wait(
        self, scope: Scope, key: AppKey, started: list[tuple[Hook, ObjectRef]], phase: str,
        changes: plan.ChangeSet,
    ) -> list[str]:  # fmt: skip
        """Waits for a wave's hooks to finish, within the deadline: why those that failed failed."""
        deadline = time.monotonic() + self.timeout
        pending, failures = list(started), []
        while pending:
            for hook, ref in list(pending):
                res = scope.objects.resource_for(hook.obj)
                live = scope.objects.get(res, ref.namespace, ref.name)
                result, why = hookspec.outcome(live)
                if result == hookspec.RUNNING and time.monotonic() <= deadline:
                    continue
                if result == hookspec.RUNNING:
                    result, why = hookspec.BROKEN, f"did not finish within {self.timeout:.0f}s: {why}"
                pending.remove((hook, ref))
                message = f"{phase} hook {ref.kind} {ref.name}: {why}"
                changes.add(ref, "succeeded" if result == hookspec.DONE else "failed", message, hook=phase)
                log.info("[%s] %s", key, message)
                if result == hookspec.BROKEN:
                    failures.append(message)
                if live is not None and hookspec.delete_after(hook, result):
                    try:
                        scope.objects.delete(res, ref.namespace, ref.name, uid=live["metadata"].get("uid"))
                    except KubeError as exc:
                        log.warning("[%s] could not delete the %s hook %s: %s", key, phase, ref, exc.message)
            if pending:
                log.info("[%s] waiting for %d %s hook(s) to finish", key, len(pending), phase)
                self.sleep(POLL_SECONDS)
        return failures
