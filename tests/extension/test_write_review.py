"""The drift guard's review of writes our own API serves (kube-apiserver sends aggregated APIs no
admission review): what it is asked, and what its answer does to the write."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from extension.api import errors
from extension.applications import Applications
from extension.guard import reviews
from extension.resources import WriteOptions
from tests.extension.test_app import APP, FakeStore

MERGE = "application/merge-patch+json"
USER: reviews.UserInfo = {"username": "jane", "groups": ["team-a"], "extra": {}}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[reviews.AdmissionRequest] = []
        self.deny = ""

    def __call__(self, request: reviews.AdmissionRequest) -> reviews.AdmissionResponse:
        self.requests.append(copy.deepcopy(request))
        if self.deny:
            return {"uid": request["uid"], "allowed": False, "status": {"code": 403, "message": self.deny}}
        return {"uid": request["uid"], "allowed": True, "warnings": ["noted"]}


@pytest.fixture
def guarded() -> tuple[Applications, FakeStore, Recorder]:
    store, recorder = FakeStore(), Recorder()
    apps = Applications(store, admission=recorder)
    apps.create("team-a", copy.deepcopy(APP), WriteOptions(field_manager="creator", user=USER))
    return apps, store, recorder


def test_the_guard_sees_each_write_as_it_would_be_stored(
    guarded: tuple[Applications, FakeStore, Recorder],
) -> None:
    apps, store, recorder = guarded
    created = recorder.requests[-1]
    assert (created["operation"], created["userInfo"]["username"], created["oldObject"]) == (
        "CREATE",
        "jane",
        None,
    )
    result = apps.patch("team-a", "shop", MERGE, {"spec": {"revisionHistoryLimit": 3}},
                        WriteOptions(field_manager="kubectl-patch", user=USER))  # fmt: skip
    update = recorder.requests[-1]
    assert update["operation"] == "UPDATE" and update["oldObject"] is not None
    # The managedFields the server will store, this write's entry included: they tell the guard
    # which fields Git set, so a client that sends none must not look as if it took them all.
    managers = [e["manager"] for e in (update["object"] or {})["metadata"]["managedFields"]]
    assert managers == ["creator", "kubectl-patch"]
    assert result.warnings == ["noted"]
    apps.delete("team-a", "shop", WriteOptions(user=USER))
    assert recorder.requests[-1]["operation"] == "DELETE" and recorder.requests[-1]["object"] is None
    assert ("team-a", "shop") not in store.apps


def test_a_denial_is_403_and_nothing_is_written(guarded: tuple[Applications, FakeStore, Recorder]) -> None:
    apps, store, recorder = guarded
    before = store.get("team-a", "shop")
    recorder.deny = "spec.project is set by Git"
    with pytest.raises(errors.APIError) as denied:
        apps.patch("team-a", "shop", MERGE, {"spec": {"project": "x"}}, WriteOptions(user=USER))
    assert denied.value.code == 403 and "spec.project is set by Git" in denied.value.message
    assert store.get("team-a", "shop") == before


def test_status_writes_and_unchanged_writes_are_not_reviewed(
    guarded: tuple[Applications, FakeStore, Recorder],
) -> None:
    apps, _, recorder = guarded
    asked = len(recorder.requests)
    recorder.deny = "would deny"
    status: dict[str, Any] = {"status": {"sync": {"status": "Unknown"}}}
    apps.patch("team-a", "shop", MERGE, status, WriteOptions(user=USER), status=True)
    apps.patch("team-a", "shop", MERGE, {"spec": {}}, WriteOptions(user=USER))
    assert len(recorder.requests) == asked
