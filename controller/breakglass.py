"""Break-glass and drift records on live objects, as the controller reads them. Pure.

The controller holds off self-heal only for a break-glass the drift guard granted: the guard seals
a grant (``extension.api.seals``) when the requester was in ``spec.driftGuard.breakGlass.groups``
and the expiry within ``maxDuration``. The annotations alone, which anyone who may annotate can
write, grant nothing: they are reported and ignored. Likewise, who drifted what and when is
reported only from a stamp the guard sealed.
"""

from __future__ import annotations

import datetime
from typing import Any

from extension.api import seals
from extension.api.checks import parse_time
from extension.api.tracking import (
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    DRIFTED_AT,
    DRIFTED_BY,
    ObjectRef,
)

Object = dict[str, Any]


def _annotations(obj: Object | None) -> dict[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _until(obj: Object | None) -> datetime.datetime | None:
    return parse_time(str(_annotations(obj).get(BREAK_GLASS_UNTIL, "")))


def granted(obj: Object | None, key: bytes | None) -> bool:
    """The break-glass annotations on ``obj`` are backed by a grant the guard sealed."""
    return obj is not None and seals.granted_to(key, obj) is not None and _until(obj) is not None


def active(obj: Object | None, now: datetime.datetime, key: bytes | None) -> bool:
    """A granted break-glass that has not expired: self-heal holds off."""
    until = _until(obj)
    return granted(obj, key) and until is not None and until > now


def expired(obj: Object | None, now: datetime.datetime, key: bytes | None) -> bool:
    """A granted break-glass whose time is up: Git's state comes back, the annotations go."""
    until = _until(obj)
    return granted(obj, key) and until is not None and until <= now


def unbacked(obj: Object | None, key: bytes | None) -> bool:
    """Break-glass annotations that no grant of the guard backs: forged, copied, edited since the
    grant, or set by someone outside the break-glass groups. Ignored, and reported."""
    annotations = _annotations(obj)
    present = BREAK_GLASS_UNTIL in annotations or BREAK_GLASS_REASON in annotations
    return present and not granted(obj, key)


def entry(ref: ObjectRef, obj: Object, key: bytes | None) -> dict[str, Any]:
    """A granted break-glass as ``status.drift.breakGlass`` lists it."""
    annotations = _annotations(obj)
    recorded: dict[str, Any] = {
        "group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
        "reason": str(annotations.get(BREAK_GLASS_REASON, "")),
        "expiresAt": str(annotations.get(BREAK_GLASS_UNTIL, "")),
    }  # fmt: skip
    by = seals.granted_to(key, obj)
    if by:
        recorded["by"] = by
    return recorded


def drift_author(obj: Object | None, key: bytes | None) -> dict[str, str]:
    """Who drifted the object and when (``by``, ``at``), from the guard's sealed warn-mode stamp;
    empty when there is none or it is not the guard's."""
    if obj is None or not seals.drift_verified(key, obj):
        return {}
    annotations = _annotations(obj)
    found = {"by": str(annotations.get(DRIFTED_BY, ""))}
    if parse_time(str(annotations.get(DRIFTED_AT, ""))):
        found["at"] = str(annotations[DRIFTED_AT])
    return {k: v for k, v in found.items() if v}


def next_expiry(status: dict[str, Any], now: datetime.datetime) -> float | None:
    """Seconds until the first active break-glass expires, if any."""
    times = [
        parse_time(str(b.get("expiresAt", ""))) for b in (status.get("drift") or {}).get("breakGlass") or []
    ]
    left = [(t - now).total_seconds() for t in times if t is not None]
    return max(0.0, min(left)) if left else None
