"""What status says after a compare or a sync: each resource's sync and health, the Application's
sync and health, drift and active break-glass (with their Events), break-glass annotations no grant
backs, and the operationState of a requested operation or a sync."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from controller import breakglass, health, plan
from controller import status as st
from controller.kube import Kube
from controller.metrics import Metrics
from controller.sync.target import Target
from extension.api import seals
from extension.api.tracking import AppKey, ObjectRef

# A dry run's diffs, all objects together, are kept in status up to this size (status is stored in
# a ConfigMap, at most 1 MiB).
MAX_DIFFS_BYTES = 200 * 1024


def now_text(clock: Callable[[], datetime.datetime]) -> str:
    return clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def operation_state(
    app: dict[str, Any], phase: str, message: str, now: str, target: Target | None,
    changes: plan.ChangeSet | None = None, diffs: dict[ObjectRef, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``diffs`` (a dry run's) are kept per resource up to MAX_DIFFS_BYTES in all."""
    previous = (app.get("status") or {}).get("operationState") or {}
    operation = app.get("operation") or {"sync": {}, "initiatedBy": {"automated": True}}
    state: dict[str, Any] = {
        "phase": phase, "message": message[:2000], "operation": operation,
        "startedAt": previous.get("startedAt") if previous.get("phase") == "Running" else now,
    }  # fmt: skip
    if phase != "Running":
        state["finishedAt"] = now
    if target is not None:
        result = [{
            "group": c.ref.group, "kind": c.ref.kind, "namespace": c.ref.namespace, "name": c.ref.name,
            "status": c.action, "message": c.message, **({"hookPhase": c.hook} if c.hook else {}),
        } for c in (changes.changes if changes else [])]  # fmt: skip
        state["syncResult"] = {"revision": target.sha, "source": target.source, "resources": result}
        if diffs is not None:
            state["syncResult"]["dryRun"] = True
            budget = MAX_DIFFS_BYTES
            for entry, change in zip(result, changes.changes if changes else [], strict=True):
                text = diffs.get(change.ref)
                if text:
                    entry["diff"] = (
                        text if len(text) <= budget else "(left out: the dry run's diffs passed 200 KiB)"
                    )
                    budget -= len(entry["diff"])
    return state


def report_unbacked(
    status: dict[str, Any], desired: dict[ObjectRef, dict[str, Any]],
    live: dict[ObjectRef, dict[str, Any] | None], seal_key: bytes | None, now: str,
    namespace: str,
) -> None:  # fmt: skip
    """Break-glass annotations no grant of the guard backs are ignored, and said so."""
    unbacked = sorted(ref for ref in desired if breakglass.unbacked(live.get(ref), seal_key))
    if not unbacked:
        status["conditions"] = st.remove_condition(status.get("conditions") or [], st.BREAK_GLASS_IGNORED)
        return
    listed = ", ".join(str(ref) for ref in unbacked[:5]) + (" and more" if len(unbacked) > 5 else "")
    if seal_key is None:
        status["conditions"] = st.set_condition(
            status.get("conditions") or [], st.BREAK_GLASS_IGNORED, "True", "SealKeyUnavailable",
            f"{listed} carry break-glass annotations, but the drift guard's seal key (Secret "
            f"{namespace}/{seals.SECRET_NAME}) cannot be read, so no grant can be checked: "
            "they are ignored and Git's state is kept as usual",
            now,
        )  # fmt: skip
        return
    status["conditions"] = st.set_condition(
        status.get("conditions") or [], st.BREAK_GLASS_IGNORED, "True", "NotGranted",
        f"{listed} carry break-glass annotations that the drift guard did not grant (set by someone "
        "outside spec.driftGuard.breakGlass.groups, with an expiry past maxDuration, or edited since): "
        "they are ignored and Git's state is kept as usual",
        now,
    )  # fmt: skip


class Reporter:
    def __init__(self, kube: Kube, metrics: Metrics, clock: Callable[[], datetime.datetime]) -> None:
        self.kube, self.metrics, self.clock = kube, metrics, clock

    def report(
        self, app: dict[str, Any], key: AppKey, target: Target, status: dict[str, Any],
        desired: dict[ObjectRef, dict[str, Any]], live: dict[ObjectRef, dict[str, Any] | None],
        drifted: dict[ObjectRef, list[str] | None], foreign: dict[ObjectRef, str], kept: list[ObjectRef],
        seal_key: bytes | None,
    ) -> None:  # fmt: skip
        entries, healths, drift_entries = [], [], []
        for ref, obj in desired.items():
            if ref in foreign:
                continue
            obj_live = live.get(ref)
            fields = drifted.get(ref)
            assessed = health.assess(obj_live)
            if assessed is not None:
                healths.append((ref, assessed))
            entry = st.resource_entry(
                ref, str(obj.get("apiVersion", "")).rpartition("/")[2],
                "Synced" if fields == [] else "OutOfSync",
                {"status": str(assessed.status), "message": assessed.message} if assessed else None,
            )  # fmt: skip
            entries.append(entry)
            if fields:
                # Who and when, as the drift guard stamped and sealed them in warn mode.
                drift_entries.append({
                    "group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
                    "fields": fields[:20], **breakglass.drift_author(obj_live, seal_key),
                })  # fmt: skip
        for ref in kept:
            entry = st.resource_entry(ref, "", "OutOfSync", None)
            entry["requiresPruning"] = True
            entries.append(entry)
        status["resources"] = entries
        synced = all(e["status"] == "Synced" for e in entries) and not foreign
        status["sync"] = {"status": "Synced" if synced else "OutOfSync", "revision": target.sha}
        worst = health.worst(h for _, h in healths)
        bad = next(
            (f"{ref}: {h.message}" for ref, h in healths if h.status == worst.status and h.message), ""
        )
        status["health"] = {
            "status": str(worst.status),
            "message": bad if worst.status != health.Status.Healthy else "",
        }
        before = {
            (d["kind"], d["namespace"], d["name"]) for d in (status.get("drift") or {}).get("resources") or []
        }
        after = {(d["kind"], d["namespace"], d["name"]) for d in drift_entries}
        for d in drift_entries:
            if (d["kind"], d["namespace"], d["name"]) not in before:
                who = f" by {d['by']}" if d.get("by") else ""
                self.kube.event(
                    app,
                    "Warning",
                    "DriftDetected",
                    f"{d['kind']} {d['namespace']}/{d['name']} drifted{who}: {', '.join(d['fields'][:5])}",
                )
                self.metrics.drift.inc()
        for kind, namespace, name in sorted(before - after):
            self.kube.event(app, "Normal", "DriftRestored", f"{kind} {namespace}/{name} matches Git again")
        break_glass = self._break_glass(app, desired, live, status.get("drift") or {}, seal_key)
        status["drift"] = {"resources": drift_entries, "breakGlass": break_glass}

    def _break_glass(
        self, app: dict[str, Any], desired: dict[ObjectRef, dict[str, Any]],
        live: dict[ObjectRef, dict[str, Any] | None], old_drift: dict[str, Any], seal_key: bytes | None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Active break-glass the guard granted on managed objects: recorded in status and as
        Events once each."""
        known = {
            (b.get("kind"), b.get("namespace"), b.get("name"), b.get("expiresAt"))
            for b in old_drift.get("breakGlass") or []
        }
        active = []
        for ref in desired:
            obj = live.get(ref)
            if obj is None or not breakglass.active(obj, self.clock(), seal_key):
                continue
            entry = breakglass.entry(ref, obj, seal_key)
            active.append(entry)
            if (ref.kind, ref.namespace, ref.name, entry["expiresAt"]) not in known:
                message = (
                    f"break-glass on {ref} until {entry['expiresAt']}, granted to {entry.get('by', '?')}: "
                    f"{entry['reason']}"
                )
                self.kube.event(app, "Warning", "BreakGlass", message)
                self.kube.event(obj, "Warning", "BreakGlass", message)
        return active
