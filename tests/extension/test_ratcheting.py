"""Validation ratcheting, as kube-apiserver does it for custom resources: an update is judged on the
fields it changes, so an Application stored before a rule existed keeps getting its status written
(and can be fixed one field at a time), while a write that brings a refused value is refused."""

from __future__ import annotations

import copy

import pytest

from extension.api import errors
from extension.applications import Applications
from extension.resources import WriteOptions
from tests.extension.test_app import APP, FakeStore

MERGE = "application/merge-patch+json"
ELSEWHERE = "https://10.99.99.99:6443"


@pytest.fixture
def stored() -> tuple[Applications, FakeStore]:
    """An Application whose stored spec names another cluster, as one written before the rule."""
    store = FakeStore()
    apps = Applications(store)
    apps.create("team-a", copy.deepcopy(APP), WriteOptions())
    app = store.get("team-a", "shop")
    app["spec"]["destination"]["server"] = ELSEWHERE
    store.apps[("team-a", "shop")] = app
    return apps, store


def test_a_status_write_to_an_application_stored_before_a_rule_is_not_refused(
    stored: tuple[Applications, FakeStore],
) -> None:
    apps, store = stored
    status = {"status": {"sync": {"status": "Unknown"}}}
    written = apps.patch("team-a", "shop", MERGE, status, WriteOptions(), status=True).body
    assert written["status"]["sync"]["status"] == "Unknown"
    assert store.get("team-a", "shop")["spec"]["destination"]["server"] == ELSEWHERE


def test_an_update_that_leaves_the_refused_field_alone_passes_and_one_that_fixes_it_too(
    stored: tuple[Applications, FakeStore],
) -> None:
    apps, _ = stored
    apps.patch("team-a", "shop", MERGE, {"spec": {"revisionHistoryLimit": 3}}, WriteOptions())
    fixed = {"spec": {"destination": {"server": "https://kubernetes.default.svc"}}}
    assert apps.patch("team-a", "shop", MERGE, fixed, WriteOptions()).body["spec"]["destination"][
        "server"
    ] == ("https://kubernetes.default.svc")


def test_a_write_that_brings_a_refused_value_is_refused(stored: tuple[Applications, FakeStore]) -> None:
    apps, _ = stored
    with pytest.raises(errors.APIError) as refused:
        apps.patch(
            "team-a", "shop", MERGE, {"spec": {"destination": {"server": "https://10.1.1.1"}}}, WriteOptions()
        )
    assert refused.value.code == 422
    assert "spec.destination.server" in refused.value.status()["message"]


def test_a_condition_stored_without_its_type_does_not_block_other_writes() -> None:
    """``status.conditions`` became a list keyed by ``type`` (required since): a condition stored
    before that is kept while writes leave it alone, by users and by the controller's status."""
    store = FakeStore()
    apps = Applications(store)
    apps.create("team-a", copy.deepcopy(APP), WriteOptions())
    app = store.get("team-a", "shop")
    app["status"] = {"conditions": [{"status": "True", "reason": "Old"}]}
    store.apps[("team-a", "shop")] = app
    labelled = apps.patch("team-a", "shop", MERGE, {"metadata": {"labels": {"tier": "web"}}}, WriteOptions())
    assert labelled.body["metadata"]["labels"]["tier"] == "web"
    status = {"status": {"conditions": [{"status": "True", "reason": "Old"}], "sync": {"status": "Unknown"}}}
    written = apps.patch("team-a", "shop", MERGE, status, WriteOptions(), status=True).body
    assert written["status"]["sync"]["status"] == "Unknown"
    with pytest.raises(errors.APIError) as refused:
        apps.patch("team-a", "shop", MERGE, {"status": {"conditions": [{"status": "False"}]}}, WriteOptions(),
                   status=True)  # fmt: skip
    assert refused.value.code == 422 and "status.conditions[0].type: Required value" in refused.value.message
