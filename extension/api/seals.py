"""Seals: what the drift guard writes on an object so that the controller can tell the guard's own
records from annotations anyone could write. Pure.

Break-glass and warn-mode drift are recorded in annotations, and whoever may annotate an object may
write any annotation. So the guard's mutating webhook seals what it records with an HMAC-SHA256 under
a key that only the guard and the controller read (the Secret ``driftguard-guard-seal`` in
driftguard-system). A seal covers the object's uid, so it cannot be copied to another object, and
every value it vouches for, so changing one breaks it. An unsealed or broken record is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from extension.api.tracking import (
    BREAK_GLASS_GRANT,
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    DRIFTED_AT,
    DRIFTED_BY,
    DRIFTED_FIELDS,
    DRIFTED_SEAL,
)

SECRET_NAME = "driftguard-guard-seal"  # noqa: S105 (a name, not a secret)
SECRET_KEY = "key"  # noqa: S105 (the data key)
KEY_BYTES = 32
# A grant the guard writes is about 100 characters plus the user name; longer ones are not its.
MAX_GRANT_CHARS = 1024


def _mac(key: bytes, purpose: str, *values: str) -> str:
    # Length-prefixed, so that no two different lists of values encode alike.
    message = purpose.encode() + b"".join(len(v.encode()).to_bytes(4, "big") + v.encode() for v in values)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _uid(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("uid") or "") if isinstance(meta, dict) else ""


def grant(key: bytes, obj: dict[str, Any], granted_to: str) -> str:
    """The value of the break-glass grant annotation for ``obj`` as it carries its break-glass
    annotations now (uid, expiry, reason), granted to ``granted_to``."""
    annotations = _annotations(obj)
    until, reason = str(annotations.get(BREAK_GLASS_UNTIL, "")), str(annotations.get(BREAK_GLASS_REASON, ""))
    seal = _mac(key, "break-glass", _uid(obj), until, reason, granted_to)
    return json.dumps({"grantedTo": granted_to, "seal": seal}, separators=(",", ":"))


def granted_to(key: bytes | None, obj: dict[str, Any]) -> str | None:
    """Who the guard granted the object's current break-glass to; None when no grant the guard
    sealed backs the break-glass annotations as they are now (forged, copied, edited since, or no
    key to check with)."""
    annotations = _annotations(obj)
    raw = annotations.get(BREAK_GLASS_GRANT)
    if key is None or not isinstance(raw, str) or not _uid(obj) or len(raw) > MAX_GRANT_CHARS:
        return None
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # anyone may write the annotation: never trust its shape
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("grantedTo"), str):
        return None
    expected = json.loads(grant(key, obj, parsed["grantedTo"]))["seal"]
    return parsed["grantedTo"] if hmac.compare_digest(expected, str(parsed.get("seal", ""))) else None


def drift_seal(key: bytes, uid: str, by: str, fields: str, at: str) -> str:
    """The seal of a warn-mode drift stamp."""
    return _mac(key, "drift", uid, by, fields, at)


def drift_verified(key: bytes | None, obj: dict[str, Any]) -> bool:
    """Whether the object's drift stamp (who, which fields, when) is the guard's, as it wrote it."""
    annotations = _annotations(obj)
    seal = annotations.get(DRIFTED_SEAL)
    if key is None or not isinstance(seal, str) or not _uid(obj):
        return False
    values = [str(annotations.get(k, "")) for k in (DRIFTED_BY, DRIFTED_FIELDS, DRIFTED_AT)]
    return hmac.compare_digest(drift_seal(key, _uid(obj), *values), seal)
