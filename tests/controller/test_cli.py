"""``kubectl driftguard`` as users run it: the installed console script, found by kubectl on PATH,
against the real control plane and the real controller, its output read from a pipe (not a
terminal)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

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


WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
          ports: [{containerPort: 8080}]
"""


def changed_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_diff_local_compares_a_working_tree_as_the_user_and_writes_nothing(
    driftguard_cli: Run, kubectl: Callable[..., subprocess.CompletedProcess[str]], apps: Apps,
    git_server: GitServer, repo: str, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    extra = config_map("x").replace("name: greeting", "name: extra")
    git_server.commit(
        repo, {"app/cm.yaml": config_map("hello"), "app/web.yaml": WEB, "app/extra.yaml": extra}
    )
    apps.create("shop", {"repoURL": git_server.git_url(repo), "path": "app"})
    assert driftguard_cli("sync", "shop", "-n", namespace).returncode == 0
    synced = apps.get("shop")
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", git_server.git_url(repo), str(work)], check=True, timeout=60)
    app_dir = str(work / "app")

    def diff(*extra: str) -> subprocess.CompletedProcess[str]:
        return driftguard_cli("diff", "shop", "-n", namespace, "--local", app_dir, *extra)

    # The tree Git has: no difference, the server's defaults (a Deployment's) included.
    same = diff()
    assert (same.returncode, same.stdout, same.stderr) == (0, "", ""), same.stdout + same.stderr
    # One field edited: exactly it, in the server diff's format, no colour into a pipe.
    (work / "app" / "cm.yaml").write_text(config_map("bonjour"))
    edited = diff()
    assert edited.returncode == 1, edited.stderr
    assert edited.stdout.splitlines()[0] == f"===== ConfigMap {namespace}/greeting (configured)"
    assert changed_lines(edited.stdout) == ["-  GREETING: hello", "+  GREETING: bonjour"], edited.stdout
    assert "\033[" not in edited.stdout
    # A new file's object is created; a file gone is pruned, as the server's diff (a dry-run sync
    # with prune) reports it.
    (work / "app" / "new.yaml").write_text(config_map("fresh").replace("name: greeting", "name: fresh"))
    (work / "app" / "extra.yaml").unlink()
    # A sync hook is run by a sync, never compared: not in the diff.
    hook = config_map("hook").replace(
        "name: greeting", "name: migrate\n  annotations: {argocd.argoproj.io/hook: PreSync}"
    )
    (work / "app" / "hook.yaml").write_text(hook)
    grown = diff()
    assert "migrate" not in grown.stdout, grown.stdout
    assert grown.returncode == 1, grown.stderr
    assert f"===== ConfigMap {namespace}/fresh (created)" in grown.stdout
    assert "+  GREETING: fresh" in changed_lines(grown.stdout)
    assert f"===== ConfigMap {namespace}/extra (pruned)" in grown.stdout
    assert "-  GREETING: x" in changed_lines(grown.stdout)
    # A directory outside Git is its own root; a kustomization there is built with the kubectl on
    # PATH, as the controller builds it.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "cm.yaml").write_text(config_map("hello"))
    (fresh / "web.yaml").write_text(WEB)
    (fresh / "extra.yaml").write_text(extra)
    (fresh / "kustomization.yaml").write_text("resources: [cm.yaml, web.yaml, extra.yaml]\n")
    outside = driftguard_cli("diff", "shop", "-n", namespace, "--local", str(fresh))
    assert outside.returncode == 0, outside.stdout + outside.stderr
    assert "note: comparing path . of" in outside.stderr and "the Application's path is app" in outside.stderr
    (fresh / "kustomization.yaml").write_text("resources: [cm.yaml, missing.yaml]\n")
    unbuilt = driftguard_cli("diff", "shop", "-n", namespace, "--local", str(fresh))
    assert unbuilt.returncode == 2, unbuilt.stdout
    assert "kustomization.yaml: resources entry 'missing.yaml'" in unbuilt.stderr, unbuilt.stderr
    # A render error: the renderer's message, naming the file; exit 2.
    (work / "app" / "broken.yaml").write_text("kind: [\n")
    broken = diff()
    assert broken.returncode == 2 and broken.stdout == "", broken.stdout
    assert broken.stderr.startswith(f"error: cannot render {app_dir}: app/broken.yaml"), broken.stderr
    (work / "app" / "broken.yaml").unlink()
    assert diff("--revision", "main").returncode == 2  # a usage error

    # Nothing was written: the live object, the Application's history and operation are as they were.
    live = json.loads(kubectl("get", "configmap", "greeting", "-n", namespace, "-o", "json").stdout)
    assert live["data"] == {"GREETING": "hello"}
    assert kubectl("get", "configmap", "fresh", "-n", namespace, check=False).returncode != 0
    after = apps.get("shop")
    # (The controller may have written status since, e.g. the Deployment's health: what a diff
    # through the server or a sync would change is compared, not the resourceVersion.)
    assert not after.get("operation")
    assert after["metadata"]["generation"] == synced["metadata"]["generation"]
    assert after["status"]["history"] == synced["status"]["history"]
    assert after["status"]["operationState"] == synced["status"]["operationState"]  # no diff recorded

    # As a user who may read the Application but not its ConfigMaps: a Forbidden error per
    # ConfigMap, exit 2, never a silent skip.
    kubectl("create", "role", "app-reader", "-n", namespace, "--verb=get",
            "--resource=applications.gitops.driftguard.io,deployments.apps")  # fmt: skip
    kubectl("create", "rolebinding", "app-reader", "-n", namespace, "--role=app-reader", "--user=reader")
    refused = diff("--as=reader")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    errors = refused.stderr.splitlines()
    denied = 'Error from server (Forbidden): configmaps "greeting" is forbidden: User "reader" cannot get'
    assert denied in refused.stderr, refused.stderr
    assert all(line.startswith("Error from server (Forbidden): configmaps ") for line in errors), errors
    # Whether fresh exists is not the reader's to know either.
    assert {line.split('"')[1] for line in errors} == {"greeting", "extra", "fresh"}
    assert "greeting" not in refused.stdout
    # As nobody: not even the Application.
    nobody = diff("--as=nobody")
    assert nobody.returncode == 2, nobody.stdout
    assert nobody.stderr.startswith("Error from server (Forbidden): "), nobody.stderr
