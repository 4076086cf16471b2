"""managedFields for Update operations: who changed which field."""

from __future__ import annotations

import datetime
from typing import Any

from extension.api import managed_fields

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)


def app(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "shop", "namespace": "a", "uid": "u", "labels": {"team": "a"}},
            "spec": spec}  # fmt: skip


def owners(entries: list[dict[str, Any]]) -> dict[str, set[tuple[str, ...]]]:
    return {e["manager"]: managed_fields.decode(e["fieldsV1"]) for e in entries}


def test_the_creator_owns_every_field_it_set_but_the_servers_metadata() -> None:
    created = app(project="default", source={"repoURL": "r", "path": "p"})
    [entry] = managed_fields.updated(None, created, "kubectl-client-side-apply", NOW)
    assert entry["operation"] == "Update" and entry["time"] == "2026-11-24T12:00:00Z"
    assert managed_fields.decode(entry["fieldsV1"]) == {
        ("metadata", "labels", "team"),
        ("spec", "project"),
        ("spec", "source", "repoURL"),
        ("spec", "source", "path"),
    }  # fmt: skip
    assert entry["fieldsV1"]["f:spec"]["f:source"] == {"f:path": {}, "f:repoURL": {}}


def test_a_change_moves_the_field_to_its_writer_and_an_emptied_manager_drops_out() -> None:
    old = app(project="default")
    old["metadata"]["managedFields"] = managed_fields.updated(None, old, "creator", NOW)
    new = app(project="team-a")
    new["metadata"]["labels"] = {}
    entries = managed_fields.updated(old, new, "kubectl-edit", NOW)
    assert owners(entries) == {"kubectl-edit": {("spec", "project"), ("metadata", "labels")}}


def test_status_writes_are_kept_apart_from_the_main_resource() -> None:
    old = app(project="default")
    old["metadata"]["managedFields"] = managed_fields.updated(None, old, "creator", NOW)
    new = dict(old, status={"sync": {"status": "Synced"}})
    entries = managed_fields.updated(old, new, "driftguard-controller", NOW, subresource="status")
    by_manager = {e["manager"]: e for e in entries}
    assert by_manager["driftguard-controller"]["subresource"] == "status"
    assert managed_fields.decode(by_manager["driftguard-controller"]["fieldsV1"]) == {
        ("status", "sync", "status")
    }
    assert ("spec", "project") in managed_fields.decode(by_manager["creator"]["fieldsV1"])


def test_the_manager_is_the_parameter_or_the_user_agents_first_word() -> None:
    assert managed_fields.manager_from("kubectl-edit", "kubectl/v1.36.3 (linux/amd64)") == "kubectl-edit"
    assert managed_fields.manager_from(None, "kubectl/v1.36.3 (linux/amd64) kubernetes/abc") == "kubectl"
    assert managed_fields.manager_from(None, "") == "unknown"
