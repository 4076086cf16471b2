"""Building an Application's status: conditions, history, per-resource entries. Pure."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from extension.api.tracking import ObjectRef

# Condition types. Ready says whether the last reconcile did what it had to, with a reason naming
# the step that failed; the others stand on their own.
READY = "Ready"
AUTO_SYNC_PAUSED = "AutoSyncPaused"
PRUNE_REFUSED = "PruneRefused"
# Break-glass annotations on managed objects that no grant of the drift guard backs.
BREAK_GLASS_IGNORED = "BreakGlassIgnored"

# Step-specific reasons for Ready=False.
FETCH_FAILED = "FetchFailed"
RENDER_FAILED = "RenderFailed"
APPLY_FAILED = "ApplyFailed"
PRUNE_FAILED = "PruneFailed"
HOOK_FAILED = "HookFailed"
HEALTH_DEGRADED = "HealthDegraded"
INVALID_SPEC = "InvalidSpec"
PROJECT_DENIED = "ProjectDenied"


def set_condition(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: str
) -> list[dict[str, Any]]:
    """A new list with the condition set; lastTransitionTime moves only when status does."""
    out = [copy.deepcopy(c) for c in conditions if c.get("type") != type_]
    old = next((c for c in conditions if c.get("type") == type_), None)
    since = (
        old["lastTransitionTime"]
        if old and old.get("status") == status and old.get("lastTransitionTime")
        else now
    )
    out.append(
        {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}
    )
    return sorted(out, key=lambda c: str(c["type"]))


def remove_condition(conditions: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(c) for c in conditions if c.get("type") != type_]


def find_condition(conditions: Iterable[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def add_history(
    history: list[dict[str, Any]], revision: str, source: dict[str, Any], now: str,
    initiated_by: dict[str, Any], limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Append a sync to the history, keeping the last ``limit`` entries; ids keep counting."""
    next_id = max((int(h.get("id", 0)) for h in history), default=-1) + 1
    entry = {
        "id": next_id, "revision": revision, "deployedAt": now,
        "initiatedBy": initiated_by, "source": copy.deepcopy(source),
    }  # fmt: skip
    kept = [*copy.deepcopy(history), entry]
    return kept[-max(limit, 1) :]


def resource_entry(ref: ObjectRef, version: str, sync: str, health: dict[str, Any] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
        "version": version, "status": sync,
    }  # fmt: skip
    if health is not None:
        entry["health"] = health
    return entry


def inventory(status: dict[str, Any]) -> list[ObjectRef]:
    return [ObjectRef.from_status(entry) for entry in status.get("resources") or []]


def short(revision: str) -> str:
    return revision[:7]


class Step(Exception):
    """A failed step: its condition reason (one of the above) and a message for humans.
    ``temporary`` failures retry with back-off for ever; permanent ones stop after the retry limit
    until Git or the spec changes."""

    def __init__(self, reason: str, message: str, temporary: bool = True) -> None:
        super().__init__(message)
        self.reason, self.message, self.temporary = reason, message, temporary
