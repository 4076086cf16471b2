"""The diff subresource: a compare with Git for whoever may read, recorded as a dry-run sync."""

from __future__ import annotations

import copy

import pytest

from extension.api import errors
from extension.applications import Applications
from extension.resources import WriteOptions
from tests.extension.test_app import APP, FakeStore


@pytest.fixture
def apps() -> Applications:
    apps = Applications(FakeStore())
    apps.create("team-a", copy.deepcopy(APP), WriteOptions())
    return apps


def test_a_diff_records_a_dry_run_sync_with_prune(apps: Applications) -> None:
    body = {"resources": [{"group": "", "kind": "ConfigMap", "name": "a"}]}
    recorded = apps.operate("team-a", "shop", "diff", body, "viewer", WriteOptions()).body
    assert recorded["operation"]["sync"] == {**body, "dryRun": True, "prune": True}
    assert recorded["operation"]["initiatedBy"] == {"username": "viewer"}


def test_a_diff_cannot_ask_for_more_than_a_compare(apps: Applications) -> None:
    for body in ({"dryRun": False}, {"confirmPrune": True}, {"revision": "v2"}):
        with pytest.raises(errors.APIError) as refused:
            apps.operate("team-a", "shop", "diff", body, "viewer", WriteOptions())
        assert refused.value.code == 422 and "a diff takes resources only" in refused.value.message


def test_a_diff_never_takes_the_place_of_a_pending_operation(apps: Applications) -> None:
    apps.operate("team-a", "shop", "sync", {"prune": True}, "editor", WriteOptions())
    with pytest.raises(errors.APIError) as refused:
        apps.operate("team-a", "shop", "diff", {}, "viewer", WriteOptions())
    assert refused.value.code == 409 and "an operation is pending" in refused.value.message
