"""Sync hooks, as Argo CD defines them, so that existing repositories work unchanged: which
rendered objects are hooks, of which phases, in which wave, deleted when, and whether one has
finished. Pure: plain dicts in, decisions out; the sync engine runs them.

A hook is an object annotated ``argocd.argoproj.io/hook`` (or ``gitops.driftguard.io/hook``) with
one or more of PreSync, Sync, PostSync, SyncFail, PreDelete, comma separated; ``Skip`` means the
object is never applied. As in Argo CD, a value it does not know is ignored, and a hook with no
phase this controller runs (PostDelete, say) is never applied. Without those, Helm's
``helm.sh/hook`` is read as Argo CD reads it: pre-install and pre-upgrade run as PreSync,
post-install and post-upgrade as PostSync, pre-delete as PreDelete; Helm 2's crd-install is an
ordinary resource; test hooks and the kinds Argo CD has no phase for (post-delete, pre- and
post-rollback) are not applied. ``helm.sh/hook-weight`` is the wave unless a sync-wave annotation
says otherwise.

Delete policies: ``…/hook-delete-policy`` (HookSucceeded, HookFailed, BeforeHookCreation; Helm's
hook-succeeded, hook-failed, before-hook-creation), BeforeHookCreation when none is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller import health, plan
from extension.api.tracking import HELM_HOOK, HOOK_ANNOTATIONS, SYNC_WAVE_ANNOTATIONS, ObjectRef

POLICY_ANNOTATIONS = ("gitops.driftguard.io/hook-delete-policy", "argocd.argoproj.io/hook-delete-policy")
HELM_WEIGHT, HELM_POLICY = "helm.sh/hook-weight", "helm.sh/hook-delete-policy"

PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL, PRE_DELETE = "PreSync", "Sync", "PostSync", "SyncFail", "PreDelete"
PHASES = (PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL, PRE_DELETE)
SKIP = "Skip"
SUCCEEDED, FAILED, BEFORE_CREATION = "HookSucceeded", "HookFailed", "BeforeHookCreation"
POLICIES = (SUCCEEDED, FAILED, BEFORE_CREATION)

_HELM_PHASES = {
    "pre-install": PRE_SYNC, "pre-upgrade": PRE_SYNC,
    "post-install": POST_SYNC, "post-upgrade": POST_SYNC, "pre-delete": PRE_DELETE,
}  # fmt: skip
HELM_CRD_INSTALL = "crd-install"  # Helm 2's: Argo CD applies the object as an ordinary resource
_HELM_POLICIES = {"hook-succeeded": SUCCEEDED, "hook-failed": FAILED, "before-hook-creation": BEFORE_CREATION}

# A hook's outcome.
RUNNING, DONE, BROKEN = "Running", "Succeeded", "Failed"


@dataclass(frozen=True)
class Hook:
    obj: dict[str, Any]
    phases: tuple[str, ...]
    wave: int
    policies: frozenset[str]

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.obj)

    @property
    def generated(self) -> bool:
        """Named by the server (``generateName``): a new object each time it runs."""
        meta = self.obj.get("metadata") or {}
        return not meta.get("name") and bool(meta.get("generateName"))

    def describe(self) -> str:
        return _where(self.obj)


@dataclass(frozen=True)
class Partition:
    resources: list[dict[str, Any]]  # what a sync applies, compares, tracks and prunes
    hooks: list[Hook]  # (``Skip`` objects and Helm test hooks are in neither: never applied)


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _values(text: Any) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def _where(obj: dict[str, Any]) -> str:
    """``Job shop/migrate``; ``Job shop/migrate-*`` for one the API server names."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or f"{meta.get('generateName', '')}*"
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '')} {where}{name}"


def classify(obj: dict[str, Any]) -> Hook | str | None:
    """The object's Hook, ``SKIP`` when it is never applied, or None for an ordinary resource."""
    notes = _annotations(obj)
    own = next((k for k in HOOK_ANNOTATIONS if k in notes), None)
    helm_hook = HELM_HOOK in notes and own is None
    if own is None and not helm_hook:
        return None
    if own is not None:
        values = _values(notes[own])
        if SKIP in values:
            return SKIP
        phases = tuple(dict.fromkeys(v for v in values if v in PHASES))
    else:
        values = _values(notes[HELM_HOOK])
        if values == [HELM_CRD_INSTALL]:
            return None
        phases = tuple(dict.fromkeys(_HELM_PHASES[v] for v in values if v in _HELM_PHASES))
    if not phases:
        return SKIP  # a Helm test, or a hook of a phase this controller does not run
    meta = obj.get("metadata") or {}
    if not meta.get("name") and not meta.get("generateName"):
        raise plan.PlanError(f"{_where(obj)}: a hook needs metadata.name or metadata.generateName")
    return Hook(obj, phases, _wave(obj, helm_hook), _policies(obj, helm_hook))


def _wave(obj: dict[str, Any], helm_hook: bool) -> int:
    notes = _annotations(obj)
    if helm_hook and HELM_WEIGHT in notes and not any(k in notes for k in SYNC_WAVE_ANNOTATIONS):
        try:
            return int(str(notes[HELM_WEIGHT]).strip())
        except ValueError:
            raise plan.PlanError(
                f"{_where(obj)}: annotation {HELM_WEIGHT} must be an integer, not {notes[HELM_WEIGHT]!r}"
            ) from None
    return plan.wave(obj)


def _policies(obj: dict[str, Any], helm_hook: bool) -> frozenset[str]:
    notes = _annotations(obj)
    own = next((k for k in POLICY_ANNOTATIONS if k in notes), None)
    found: list[str] = []
    if own is not None:
        found = [v for v in _values(notes[own]) if v in POLICIES]  # others ignored, as Argo CD does
    elif helm_hook and HELM_POLICY in notes:
        found = [_HELM_POLICIES[v] for v in _values(notes[HELM_POLICY]) if v in _HELM_POLICIES]
    return frozenset(found or [BEFORE_CREATION])


def partition(objs: list[dict[str, Any]]) -> Partition:
    resources, hooks = [], []
    for obj in objs:
        found = classify(obj)
        if found is None:
            resources.append(obj)
        elif isinstance(found, Hook):
            hooks.append(found)
    return Partition(resources, hooks)


def of_phase(hooks: list[Hook], phase: str) -> list[list[Hook]]:
    """The hooks of ``phase``, grouped by wave in the order they run."""
    chosen = sorted(
        (h for h in hooks if phase in h.phases), key=lambda h: (h.wave, plan.order_key(h.obj)[2:])
    )
    waves: list[list[Hook]] = []
    for hook in chosen:
        if waves and waves[-1][0].wave == hook.wave:
            waves[-1].append(hook)
        else:
            waves.append([hook])
    return waves


def outcome(live: dict[str, Any] | None) -> tuple[str, str]:
    """Whether a hook that was created has finished: a Job until it completes, a Pod until it
    succeeds, anything else until it is healthy. (RUNNING, DONE or BROKEN, and why.)"""
    if live is None:
        return BROKEN, "it is gone"
    ref = ObjectRef.of(live)
    status = health.assess(live)
    message = status.message if status is not None else ""
    if (ref.group, ref.kind) == ("", "Pod"):
        phase = (live.get("status") or {}).get("phase")
        if phase == "Succeeded":
            return DONE, "the pod succeeded"
        if phase == "Failed":
            return BROKEN, message or "the pod failed"
        return RUNNING, message or f"the pod is {phase or 'pending'}"
    if (
        status is None or status.status == health.Status.Healthy
    ):  # a kind without a health check: done once created
        return DONE, message or ("the job completed" if ref.kind == "Job" else "created")
    if status.status == health.Status.Degraded:
        return BROKEN, message or "degraded"
    return RUNNING, message or str(status.status.value)


def delete_after(hook: Hook, result: str) -> bool:
    """Whether the delete policy removes the hook once it has ``result`` (DONE or BROKEN)."""
    return (result == DONE and SUCCEEDED in hook.policies) or (result == BROKEN and FAILED in hook.policies)
