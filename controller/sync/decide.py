"""Whether to sync now, and what: a requested operation always; auto-sync when something is out of
sync (break-glass aside) or left Git, and Git, the spec or a missing object says so (or selfHeal);
an expired break-glass restores its objects whatever the policy says. Pure."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from controller import breakglass
from controller import status as st
from controller.sync.compare import Comparison
from extension.api.tracking import ObjectRef


@dataclass
class Decision:
    auto_sync: bool  # `automated: {}` turns auto-sync on, as in Argo CD: presence counts, not content
    sync_request: dict[str, Any]  # the operation's sync request, {} for none
    prune_on: bool
    git_changed: bool  # Git moved past what was deployed
    spec_changed: bool
    break_glass: set[ObjectRef]  # out of sync under an active break-glass: left alone
    wants_sync: bool
    selected: set[ObjectRef] | None  # the objects a sync request names; None: all of them
    expired: set[ObjectRef]  # under a break-glass that has expired
    expired_live: dict[ObjectRef, dict[str, Any] | None]  # as the grant was checked on
    restoring: bool  # expired break-glass to end, with no sync wanted otherwise


def paused(app: dict[str, Any]) -> bool:
    """Auto-sync is paused (after a rollback) and the spec has not changed since."""
    status = app.get("status") or {}
    condition = st.find_condition(status.get("conditions") or [], st.AUTO_SYNC_PAUSED)
    return bool(condition) and app["metadata"].get("generation") == status.get("observedGeneration")


def decide(
    app: dict[str, Any], status: dict[str, Any], sha: str, compared: Comparison, inventory: list[ObjectRef],
    clock_now: datetime.datetime, seal_key: bytes | None,
) -> Decision:  # fmt: skip
    """What to do with the Application whose target revision ``sha`` was compared."""
    spec, operation = app.get("spec") or {}, app.get("operation") or {}
    policy = spec.get("syncPolicy") or {}
    # `automated: {}` turns auto-sync on, as in Argo CD: presence counts, not content.
    auto_sync = isinstance(policy.get("automated"), dict)
    automated = policy.get("automated") or {}
    desired, live, drifted, foreign = compared.desired, compared.live, compared.drifted, compared.foreign
    out_of_sync = {ref for ref, fields in drifted.items() if fields != []}
    break_glass = {ref for ref in out_of_sync if breakglass.active(live.get(ref), clock_now, seal_key)}
    # Decide whether to sync now.
    is_paused = paused(app) and "rollback" not in operation and "sync" not in operation
    # Git moved past what was deployed (the newest history entry), not merely past what was
    # last compared: a compare, a dry run or a pause reports Git's revision without deploying it.
    history = status.get("history") or []
    git_changed = not history or sha != history[-1].get("revision")
    spec_changed = app["metadata"].get("generation") != status.get("observedGeneration")
    self_heal = bool(automated.get("selfHeal"))
    sync_request = operation.get("sync") or {}
    prune_on = bool(automated.get("prune")) or bool(sync_request.get("prune"))
    to_prune = prune_on and any(ref not in desired for ref in inventory)
    # A hook that failed at this very revision is not run again by auto-sync (as Argo CD does not
    # auto-sync a revision whose sync failed): a new commit, a spec change or a sync request does.
    hooks_failed_here = _hooks_failed_at(status, sha) and not spec_changed
    wants_sync = bool(operation) or (
        auto_sync and not is_paused and not hooks_failed_here
        and (bool(out_of_sync - break_glass) or to_prune)
        and (self_heal or git_changed or spec_changed or any(drifted[r] is None for r in out_of_sync))
    )  # fmt: skip
    # The objects a sync request names; None: all of them.
    selected: set[ObjectRef] | None = {
        ObjectRef.from_status(r) for r in sync_request.get("resources") or []
    } or None
    # A break-glass that has expired: the state comes back whatever the sync policy says; Git's
    # newest when auto-sync deploys it, otherwise (manual sync, or paused after a rollback) the
    # state that was deployed.
    expired = {
        ref
        for ref in desired
        if ref not in foreign and breakglass.expired(live.get(ref), clock_now, seal_key)
    }
    expired_live = {ref: live.get(ref) for ref in expired}  # as the grant was checked on
    restoring = bool(expired) and not wants_sync
    return Decision(
        auto_sync=auto_sync, sync_request=sync_request, prune_on=prune_on, git_changed=git_changed,
        spec_changed=spec_changed, break_glass=break_glass, wants_sync=wants_sync, selected=selected,
        expired=expired, expired_live=expired_live, restoring=restoring,
    )  # fmt: skip


def _hooks_failed_at(status: dict[str, Any], sha: str) -> bool:
    """The HookFailed condition (controller/reconcile.py) names the revision whose hooks failed."""
    found = st.find_condition(status.get("conditions") or [], st.HOOK_FAILED) or {}
    message = str(found.get("message", ""))
    return found.get("status") == "True" and message.startswith(f"revision {st.short(sha)}:")
