"""Break-glass and warn-mode drift records, as the controller trusts them: only what the drift guard
granted and sealed. The annotations alone, which anyone who may annotate can write, neither stop
self-heal nor say who drifted what."""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from extension.api.tracking import BREAK_GLASS_GRANT, BREAK_GLASS_REASON, BREAK_GLASS_UNTIL, DRIFTED_BY
from tests.support.apps import Apps, condition, push_webhook
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
MALLORY = "mallory@example.com"


def configmap(value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: {value!r}\n"


def live(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(
        kubectl("get", "configmap", "settings", "-n", namespace, "-o", "json").stdout
    )
    return obj


def editor(kubectl: Kubectl, namespace: str, user: str = MALLORY) -> None:
    """``user`` may edit everything in the namespace (the built-in edit role), and nothing more."""
    kubectl("create", "rolebinding", "editors", "--clusterrole=edit", f"--user={user}", "-n", namespace)


def in_an_hour() -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_break_glass_forged_by_someone_outside_its_groups_does_not_stop_self_heal(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("from-git")})
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {"selfHeal": True}},
        driftGuard={"mode": "warn", "breakGlass": {"groups": ["sre"], "maxDuration": "2h"}},
    )
    apps.wait_synced("shop")
    editor(kubectl, namespace)
    # Annotations Git does not set: anyone who may annotate may write them, and a grant too.
    forged_grant = json.dumps({"grantedTo": MALLORY, "seal": "0" * 64})
    result = kubectl(
        "annotate", "configmap", "settings", "-n", namespace, f"--as={MALLORY}",
        f"{BREAK_GLASS_REASON}=nothing to see", f"{BREAK_GLASS_UNTIL}={in_an_hour()}",
        f"{BREAK_GLASS_GRANT}={forged_grant}",
    )  # fmt: skip
    assert (
        "break-glass not granted" in result.stderr and "is in none of the break-glass groups" in result.stderr
    )
    kubectl(
        "patch", "configmap", "settings", "-n", namespace, f"--as={MALLORY}", "--type=merge",
        "-p", '{"data":{"value":"mine-for-good"}}',
    )  # fmt: skip
    wait_for(
        lambda: live(kubectl, namespace)["data"]["value"] == "from-git",
        "self-heal to restore Git's value despite the forged break-glass",
        timeout=60,
    )
    app = apps.wait(
        "shop",
        "the BreakGlassIgnored condition",
        lambda a: condition(a, "BreakGlassIgnored").get("status") == "True",
    )
    message = condition(app, "BreakGlassIgnored")["message"]
    assert f"ConfigMap {namespace}/settings" in message and "did not grant" in message
    assert not app["status"]["drift"]["breakGlass"], "a forged break-glass is never reported as active"


def test_a_break_glass_that_expires_while_auto_sync_is_paused_restores_the_rolled_back_revision(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    url = git_server.git_url(repo)
    first = git_server.commit(repo, {"cm.yaml": configmap("v1")})
    apps.create(
        "shop",
        {"repoURL": url},
        syncPolicy={"automated": {"selfHeal": True}},
        driftGuard={"mode": "enforce", "breakGlass": {"groups": ["system:masters"], "maxDuration": "10m"}},
    )
    apps.wait_synced("shop", first)
    second = git_server.commit(repo, {"cm.yaml": configmap("v2")})
    push_webhook(url)
    app = apps.wait_synced("shop", second)
    entry = next(h for h in app["status"]["history"] if h["revision"] == first)
    apps.operate("shop", "rollback", {"id": entry["id"]})
    app = apps.wait("shop", "rolled back", lambda a: condition(a, "AutoSyncPaused").get("status") == "True")
    wait_for(lambda: live(kubectl, namespace)["data"]["value"] == "v1", "the rolled-back value")
    history = apps.get("shop")["status"]["history"]
    # The admin (system:masters) breaks the glass for 15 seconds.
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=15)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    kubectl(
        "annotate", "configmap", "settings", "-n", namespace,
        f"{BREAK_GLASS_REASON}=incident 7", f"{BREAK_GLASS_UNTIL}={until}",
    )  # fmt: skip
    kubectl(
        "patch", "configmap", "settings", "-n", namespace, "--type=merge", "-p", '{"data":{"value":"hotfix"}}'
    )
    wait_for(
        lambda: BREAK_GLASS_UNTIL not in (live(kubectl, namespace)["metadata"].get("annotations") or {}),
        "the break-glass to expire and be ended",
        timeout=90,
    )
    assert live(kubectl, namespace)["data"]["value"] == "v1", (
        "the deployed (rolled-back) revision, not Git's HEAD"
    )
    app = apps.get("shop")
    assert app["status"]["history"] == history, "restoring is no new deployment"
    assert condition(app, "AutoSyncPaused").get("status") == "True"


def test_who_drifted_what_is_reported_only_from_the_guards_own_sealed_stamp(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("from-git")})
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {}},
        driftGuard={"mode": "warn"},
    )
    apps.wait_synced("shop")
    editor(kubectl, namespace)
    kubectl(
        "patch", "configmap", "settings", "-n", namespace, f"--as={MALLORY}", "--type=merge",
        "-p", '{"data":{"value":"by-hand"}}',
    )  # fmt: skip

    def drift(a: dict[str, Any]) -> list[dict[str, Any]]:
        return list(((a.get("status") or {}).get("drift") or {}).get("resources") or [])

    app = apps.wait("shop", "the drift with its author", lambda a: any(d.get("by") for d in drift(a)))
    assert drift(app)[0]["by"] == MALLORY and drift(app)[0]["fields"] == ["data.value"]
    # Someone else rewrites the stamp to blame another: the seal no longer matches, so the status
    # no longer names anyone rather than the forged name.
    kubectl(
        "annotate",
        "--overwrite",
        "configmap",
        "settings",
        "-n",
        namespace,
        f"--as={MALLORY}",
        f"{DRIFTED_BY}=alice",
    )
    app = apps.wait(
        "shop", "the drift without an author", lambda a: bool(drift(a)) and "by" not in drift(a)[0]
    )
    assert "alice" not in json.dumps(app["status"])
