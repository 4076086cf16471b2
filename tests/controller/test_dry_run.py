"""A sync request with ``dryRun`` changes nothing in the cluster and reports what a sync would do:
objects created, configured and pruned, each with its diff, in status.operationState."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.apps import Apps
from tests.support.gitserver import GitServer

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value!r}\n"


def value(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    result = kubectl("get", "configmap", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout)["data"]["value"] if result.returncode == 0 else None


def dry_run_finished(app: dict[str, Any]) -> bool:
    state = (app.get("status") or {}).get("operationState") or {}
    return state.get("phase") in ("Succeeded", "Failed") and bool(state["operation"]["sync"].get("dryRun"))


def test_a_dry_run_sync_changes_nothing_and_reports_each_objects_action_and_diff(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    url = git_server.git_url(repo)
    git_server.commit(repo, {"kept.yaml": configmap("kept", "1"), "gone.yaml": configmap("gone", "1")})
    apps.create("shop", {"repoURL": url})  # no auto-sync: only requests sync
    apps.operate("shop", "sync", {})
    before = apps.wait_synced("shop")
    history = before["status"]["history"]
    # Git moves on: one object changes, one is new, one leaves Git.
    git_server.commit(repo, {"kept.yaml": configmap("kept", "2"), "new.yaml": configmap("new", "1")})
    head = git_server.delete(repo, ["gone.yaml"])

    apps.operate("shop", "sync", {"dryRun": True, "prune": True})
    app = apps.wait("shop", "the dry run to finish", dry_run_finished)

    state = app["status"]["operationState"]
    assert state["phase"] == "Succeeded", state["message"]
    assert state["message"].startswith(f"dry run of revision {head[:7]}: 1 created, 1 configured, 1 pruned")
    assert state["message"].endswith("nothing was changed")
    result = state["syncResult"]
    assert result["dryRun"] is True and result["revision"] == head
    actions = {r["name"]: r for r in result["resources"]}
    assert {name: r["status"] for name, r in actions.items()} == {
        "kept": "configured",
        "new": "created",
        "gone": "pruned",
    }
    assert "-  value: '1'" in actions["kept"]["diff"] and "+  value: '2'" in actions["kept"]["diff"]
    assert "+  name: new" in actions["new"]["diff"]
    assert "-  name: gone" in actions["gone"]["diff"]
    # Nothing in the cluster changed, and the history did not move.
    assert value(kubectl, namespace, "kept") == "1"
    assert value(kubectl, namespace, "new") is None
    assert value(kubectl, namespace, "gone") == "1"
    assert app["status"]["history"] == history
    reasons = kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert "DryRun" in reasons
    # A real sync afterwards does what the dry run said.
    apps.operate("shop", "sync", {"prune": True})
    apps.wait_synced("shop", head)
    assert (value(kubectl, namespace, "kept"), value(kubectl, namespace, "new")) == ("2", "1")
    assert value(kubectl, namespace, "gone") is None


def test_a_dry_run_on_an_auto_synced_application_does_not_stop_it_deploying_the_new_commit(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    url = git_server.git_url(repo)
    git_server.commit(repo, {"cm.yaml": configmap("settings", "1")})
    apps.create("shop", {"repoURL": url}, syncPolicy={"automated": {}})  # auto-sync, no self-heal
    apps.wait_synced("shop")
    head = git_server.commit(repo, {"cm.yaml": configmap("settings", "2")})
    # The dry run fetches Git anew and reports the new commit; auto-sync then deploys it, as it
    # would have without the dry run (the commit is news to it, whatever the dry run compared).
    apps.operate("shop", "sync", {"dryRun": True})
    apps.wait_synced("shop", head)
    assert value(kubectl, namespace, "settings") == "2"
    assert apps.get("shop")["status"]["history"][-1]["revision"] == head
    messages = kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "reason=DryRun",
        "-o",
        "jsonpath={.items[*].message}",
    ).stdout
    assert f"dry run of revision {head[:7]}: 1 configured; nothing was changed" in messages
