"""``kubectl driftguard`` as users run it: the installed console script, found by kubectl on PATH,
against the real control plane and the real controller, its output read from a pipe (not a
terminal)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable

import pytest

from extension.api.tracking import BREAK_GLASS_REASON, BREAK_GLASS_UNTIL, RESOURCES_FINALIZER
from tests.support.apps import Apps
from tests.support.cluster import LOCAL_DIR, TEST_PROJECT, Cluster
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Run = Callable[..., subprocess.CompletedProcess[str]]


def config_map(greeting: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  GREETING: {greeting}\n"


@pytest.fixture
def driftguard_cli(driftguard: Cluster) -> Run:
    """``kubectl driftguard ARGS``: kubectl finds the plugin on PATH, as krew plugins are found."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(driftguard.bin_dir), str(LOCAL_DIR / "venv" / "bin"), os.environ["PATH"]]
        ),
        "KUBECONFIG": str(driftguard.kubeconfig),
    }

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "driftguard", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    return run


def test_list_get_diff_sync_and_history_follow_git(
    driftguard_cli: Run, apps: Apps, git_server: GitServer, repo: str, namespace: str
) -> None:
    first = git_server.commit(repo, {"cm.yaml": config_map("hello")})
    apps.create("shop", {"repoURL": git_server.git_url(repo)})  # auto-sync off
    synced = driftguard_cli("sync", "shop", "-n", namespace)
    assert synced.returncode == 0, synced.stderr
    # Not a terminal: plain lines, then the result per object and the outcome.
    assert "ConfigMap" in synced.stdout and "greeting" in synced.stdout and "created" in synced.stdout
    assert synced.stdout.rstrip().splitlines()[-1].startswith("Succeeded: revision " + first[:7])
    apps.wait_synced("shop", first)

    listed = driftguard_cli("list", "-n", namespace)
    assert listed.returncode == 0 and listed.stdout.split()[:2] == ["NAME", "SYNC"], listed.stdout
    assert "shop" in listed.stdout and "Synced" in listed.stdout
    assert (
        driftguard_cli("list", "-A", "-o", "name").stdout.count("application.gitops.driftguard.io/shop") >= 1
    )
    shown = json.loads(driftguard_cli("get", "shop", "-n", namespace, "-o", "json").stdout)
    assert shown["status"]["sync"]["revision"] == first
    summary = driftguard_cli("get", "shop", "-n", namespace).stdout
    assert f"Sync Status:   Synced to {first[:7]}" in summary and "ConfigMap" in summary

    # A push, auto-sync off: diff shows exactly the changed field and exits 1; nothing changes.
    second = git_server.commit(repo, {"cm.yaml": config_map("bonjour")})
    diff = driftguard_cli("diff", "shop", "-n", namespace)
    assert diff.returncode == 1, diff.stderr
    changed = [
        line for line in diff.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == ["-  GREETING: hello", "+  GREETING: bonjour"], diff.stdout
    assert "\033[" not in diff.stdout  # no colour into a pipe
    assert len(apps.get("shop")["status"]["history"]) == 1  # compared, not deployed

    assert driftguard_cli("sync", "shop", "-n", namespace).returncode == 0
    assert driftguard_cli("diff", "shop", "-n", namespace).returncode == 0
    history = driftguard_cli("history", "shop", "-n", namespace).stdout.splitlines()
    assert history[0].split() == ["ID", "DATE", "REVISION", "INITIATED", "BY"]
    assert [line.split()[2] for line in history[1:]] == [first[:12], second[:12]]

    drift = driftguard_cli("drift", "shop", "-n", namespace)
    assert (drift.returncode, drift.stdout.strip()) == (0, "No drift recorded.")

    # Back to the first deployment: auto-sync pauses, and the plugin says how to lift it.
    rolled = driftguard_cli("rollback", "shop", "0", "-n", namespace)
    assert rolled.returncode == 0, rolled.stderr
    assert (
        "Auto-sync of" in rolled.stdout
        and "is paused" in rolled.stdout
        and "kubectl driftguard sync" in rolled.stdout
    )


def test_sync_shows_each_step_as_it_ends_in_plain_lines(
    driftguard_cli: Run, apps: Apps, git_server: GitServer, repo: str, namespace: str
) -> None:
    def in_wave(name: str, wave: int) -> str:
        return (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n"
            f'    argocd.argoproj.io/sync-wave: "{wave}"\ndata:\n  WAVE: "{wave}"\n'
        )

    git_server.commit(
        repo, {"a.yaml": in_wave("first", 0), "b.yaml": in_wave("second", 1), "c.yaml": in_wave("third", 2)}
    )
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    synced = driftguard_cli("sync", "shop", "-n", namespace)
    assert synced.returncode == 0, synced.stderr
    lines = synced.stdout.splitlines()

    def where(text: str) -> int:
        found = [i for i, line in enumerate(lines) if text in line]
        assert found, f"{text!r} not in the output:\n{synced.stdout}"
        return found[0]

    # Into a pipe: each object's result when its step ends, then the step, then the next step's.
    assert (
        where(f"configmap/first -n {namespace} created")
        < where("Running: step 1 of 3 (wave 0) applied; waiting for it to become healthy")
        < where(f"configmap/second -n {namespace} created")
        < where("Running: step 2 of 3 (wave 1) applied")
        < where("Succeeded: revision")
    ), synced.stdout
    assert "\033[" not in synced.stdout and "\r" not in synced.stdout  # plain lines, no live line


def test_sync_needs_the_sync_subresource_and_errors_look_like_kubectl(
    driftguard_cli: Run, kubectl: Callable[..., subprocess.CompletedProcess[str]], apps: Apps,
    git_server: GitServer, repo: str, namespace: str,
) -> None:  # fmt: skip
    git_server.commit(repo, {"cm.yaml": config_map("hello")})
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    # The built-in view role: reads, and compares with Git (applications/diff), never syncs.
    kubectl("create", "rolebinding", "viewer", "-n", namespace, "--clusterrole=view", "--user=viewer")
    assert driftguard_cli("get", "shop", "-n", namespace, "--as=viewer").returncode == 0
    compared = driftguard_cli("diff", "shop", "-n", namespace, "--as=viewer")
    assert compared.returncode == 1 and "+  GREETING: hello" in compared.stdout, compared.stderr
    assert "history" not in apps.get("shop")["status"]  # compared, nothing deployed
    refused = driftguard_cli("sync", "shop", "-n", namespace, "--as=viewer")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error from server (Forbidden): "), refused.stderr
    assert "applications/sync" in refused.stderr
    missing = driftguard_cli("get", "nothere", "-n", namespace)
    assert missing.returncode == 1
    assert f'"nothere" not found in namespace "{namespace}"' in missing.stderr, missing.stderr


def test_wait_times_out_with_exit_code_1(driftguard_cli: Run, apps: Apps, namespace: str) -> None:
    apps.create("shop", {"repoURL": GitServer.closed_port_url()})
    waited = driftguard_cli("wait", "shop", "-n", namespace, "--sync", "--timeout", "3s")
    assert waited.returncode == 1
    assert "timed out after 3s waiting for" in waited.stderr and "sync is" in waited.stderr, waited.stderr


def test_create_then_delete_without_cascade_keeps_what_it_deployed(
    driftguard_cli: Run, kubectl: Callable[..., subprocess.CompletedProcess[str]], apps: Apps,
    git_server: GitServer, repo: str, namespace: str,
) -> None:  # fmt: skip
    sha = git_server.commit(repo, {"cm.yaml": config_map("hello")})
    created = driftguard_cli(
        "create", "shop", "-n", namespace, "--repo", git_server.git_url(repo), "--project", TEST_PROJECT,
        "--sync-policy", "automated", "--self-heal", "--sync-option", "CreateNamespace=false",
    )  # fmt: skip
    assert (
        created.returncode == 0 and created.stdout.strip() == "application.gitops.driftguard.io/shop created"
    )
    app = apps.wait_synced("shop", sha)
    assert app["metadata"]["finalizers"] == [RESOURCES_FINALIZER]
    assert app["spec"]["syncPolicy"] == {
        "automated": {"prune": False, "selfHeal": True},
        "syncOptions": ["CreateNamespace=false"],
    }
    assert driftguard_cli("wait", "shop", "-n", namespace, "--timeout", "60s").returncode == 0

    # break-glass sets the two annotations the guard reads, and says what happens at expiry.
    glass = driftguard_cli(
        "break-glass", "configmap/greeting", "-n", namespace, "--reason", "INC-1", "--for", "10m"
    )
    assert glass.returncode == 0 and "restores Git's state" in glass.stdout, glass.stderr
    annotations = json.loads(kubectl("get", "configmap", "greeting", "-n", namespace, "-o", "json").stdout)[
        "metadata"
    ]["annotations"]
    assert annotations[BREAK_GLASS_REASON] == "INC-1" and annotations[BREAK_GLASS_UNTIL].endswith("Z")

    deleted = driftguard_cli("delete", "shop", "-n", namespace, "--cascade=false")
    assert deleted.returncode == 0 and "what it deployed stays" in deleted.stdout

    def gone() -> bool:
        return driftguard_cli("get", "shop", "-n", namespace).returncode == 1

    wait_for(gone, "the Application to be deleted")
    assert kubectl("get", "configmap", "greeting", "-n", namespace, check=False).returncode == 0
