"""The controller's reading of break-glass and drift records on live objects (plain dicts): only
what the drift guard sealed counts."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from controller import breakglass
from extension.api import seals
from extension.api.tracking import (
    BREAK_GLASS_GRANT,
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    DRIFTED_AT,
    DRIFTED_BY,
    DRIFTED_FIELDS,
    DRIFTED_SEAL,
    ObjectRef,
)

KEY = b"k" * 32
NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
REF = ObjectRef("apps", "Deployment", "web", "frontend")


def deployment(
    until: str = "2030-01-01T12:30:00Z", reason: str = "INC-1", granted_to: str | None = "alice"
) -> Any:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "frontend", "namespace": "web", "uid": "u-1",
                     "annotations": {BREAK_GLASS_UNTIL: until, BREAK_GLASS_REASON: reason}},
    }  # fmt: skip
    if granted_to is not None:
        obj["metadata"]["annotations"][BREAK_GLASS_GRANT] = seals.grant(KEY, obj, granted_to)
    return obj


def test_a_sealed_grant_is_active_until_its_expiry_then_expired() -> None:
    obj = deployment()
    assert breakglass.granted(obj, KEY) and breakglass.active(obj, NOW, KEY)
    assert not breakglass.expired(obj, NOW, KEY) and not breakglass.unbacked(obj, KEY)
    later = NOW + datetime.timedelta(hours=1)
    assert breakglass.expired(obj, later, KEY) and not breakglass.active(obj, later, KEY)
    assert breakglass.entry(REF, obj, KEY) == {
        "group": "apps", "kind": "Deployment", "namespace": "web", "name": "frontend",
        "reason": "INC-1", "expiresAt": "2030-01-01T12:30:00Z", "by": "alice",
    }  # fmt: skip


@pytest.mark.parametrize(
    "tamper",
    [
        lambda o: o["metadata"]["annotations"].pop(BREAK_GLASS_GRANT),
        lambda o: o["metadata"]["annotations"].update({BREAK_GLASS_UNTIL: "2099-01-01T00:00:00Z"}),
        lambda o: o["metadata"]["annotations"].update({BREAK_GLASS_REASON: "something else"}),
        lambda o: o["metadata"].update({"uid": "u-2"}),  # copied onto another object
        lambda o: o["metadata"]["annotations"].update(
            {BREAK_GLASS_GRANT: '{"grantedTo": "alice", "seal": "00"}'}
        ),
        lambda o: o["metadata"]["annotations"].update({BREAK_GLASS_GRANT: "[" * 100_000}),  # no crash either
    ],
)
def test_annotations_no_valid_grant_backs_are_unbacked_and_never_hold_off_self_heal(tamper: Any) -> None:
    obj = deployment()
    tamper(obj)
    assert breakglass.unbacked(obj, KEY)
    assert not breakglass.active(obj, NOW, KEY)
    assert not breakglass.expired(obj, NOW + datetime.timedelta(days=1), KEY), (
        "nothing to end: it never began"
    )


def test_without_the_key_nothing_is_granted() -> None:
    obj = deployment()
    assert breakglass.unbacked(obj, None) and not breakglass.active(obj, NOW, None)


def test_an_expiry_in_any_case_the_guard_accepts_is_read_the_same_way() -> None:
    obj = deployment(until=" 2030-01-01t12:30:00z ")
    assert breakglass.active(obj, NOW, KEY)


def test_who_drifted_counts_only_from_the_guards_sealed_stamp() -> None:
    obj = copy.deepcopy(deployment(granted_to=None))
    stamp = {DRIFTED_BY: "bob", DRIFTED_FIELDS: "/spec/replicas", DRIFTED_AT: "2030-01-01T11:00:00Z"}
    obj["metadata"]["annotations"] = {**stamp, DRIFTED_SEAL: seals.drift_seal(KEY, "u-1", *stamp.values())}
    assert breakglass.drift_author(obj, KEY) == {"by": "bob", "at": "2030-01-01T11:00:00Z"}
    obj["metadata"]["annotations"][DRIFTED_BY] = "mallory"
    assert breakglass.drift_author(obj, KEY) == {}
    assert breakglass.drift_author(None, KEY) == {}
