"""The controller end to end: real Git served on loopback, the real control plane, the controller
on the host as its ServiceAccount. Each test gets its own namespace and repository."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from extension.api.tracking import MANAGED_LABEL, TRACKING_ANNOTATION
from tests.support.apps import Apps, condition, push_webhook
from tests.support.cluster import LOCAL_DIR, REPO_ROOT, TEST_PROJECT, Cluster, running_pid
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


def configmap(name: str, value: str, annotations: str = "") -> str:
    meta = f"\n  annotations: {{{annotations}}}" if annotations else ""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{meta}\ndata:\n  value: {value!r}\n"


def get(kubectl: Kubectl, namespace: str, *what: str) -> dict[str, Any] | None:
    result = kubectl("get", "-n", namespace, *what, "-o", "json", "--show-managed-fields", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_an_application_syncs_its_repository_and_reports_synced_and_healthy(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    sha = git_server.commit(
        repo,
        {"app/deploy.yaml": DEPLOYMENT, "app/svc.yaml": SERVICE, "app/cm.yaml": configmap("settings", "1")},
    )
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo), "path": "app", "targetRevision": "main"},
        syncPolicy={"automated": {"prune": True}},
    )
    app = apps.wait_synced("shop", sha)
    status = app["status"]
    assert status["sync"]["revision"] == sha and len(sha) == 40
    assert {(r["kind"], r["name"]) for r in status["resources"]} == {
        ("Deployment", "web"),
        ("Service", "web"),
        ("ConfigMap", "settings"),
    }
    assert status["history"][-1]["revision"] == sha
    assert condition(app)["status"] == "True"
    deployment = get(kubectl, namespace, "deployment", "web")
    assert deployment is not None
    assert deployment["metadata"]["labels"][MANAGED_LABEL] == "true"
    assert (
        deployment["metadata"]["annotations"][TRACKING_ANNOTATION]
        == f"{namespace}/shop:apps/Deployment:{namespace}/web"
    )
    managers = {(m["manager"], m["operation"]) for m in deployment["metadata"]["managedFields"]}
    assert ("driftguard-controller", "Apply") in managers
    # On the kwok node the Deployment becomes Available for real, and the Application says so.
    assert deployment["status"].get("availableReplicas") == 2
    table = kubectl("get", "applications.gitops.driftguard.io", "-n", namespace, "shop").stdout
    assert "Synced" in table and "Healthy" in table and sha[:7] in table


def test_a_pushed_commit_is_applied_at_once_through_the_webhook_receiver(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings", "v1")})
    url = git_server.git_url(repo)
    apps.create("shop", {"repoURL": url}, syncPolicy={"automated": {}})
    apps.wait_synced("shop")
    second = git_server.commit(repo, {"cm.yaml": configmap("settings", "v2")})
    code, body = push_webhook(url)
    assert code == 200 and f"{namespace}/shop" in body
    apps.wait_synced("shop", second, timeout=30)
    cm = get(kubectl, namespace, "configmap", "settings")
    assert cm is not None and cm["data"]["value"] == "v2"
    history = apps.get("shop")["status"]["history"]
    assert [h["revision"] for h in history][-1] == second and len(history) == 2


def test_the_webhook_receiver_refuses_a_bad_signature(driftguard: Cluster) -> None:
    code, body = push_webhook("git://127.0.0.1/x.git", secret="not-the-secret")
    assert code == 401, body


def test_a_file_deleted_from_git_is_pruned_with_prune_on_and_kept_with_prune_off(
    apps: Apps, git_server: GitServer, kubectl: Kubectl, namespace: str
) -> None:
    for name, prune in (("pruning", True), ("keeping", False)):
        git_server.create_repo(f"{namespace}-{name}")
        git_server.commit(
            f"{namespace}-{name}",
            {
                "a.yaml": configmap(f"{name}-a", "1"),
                "b.yaml": configmap(f"{name}-b", "1"),
                "c.yaml": configmap(f"{name}-c", "1"),
            },
        )
        apps.create(
            name,
            {"repoURL": git_server.git_url(f"{namespace}-{name}")},
            syncPolicy={"automated": {"prune": prune}},
        )
    for name in ("pruning", "keeping"):
        apps.wait_synced(name)
    for name in ("pruning", "keeping"):
        sha = git_server.delete(f"{namespace}-{name}", ["c.yaml"])
        push_webhook(git_server.git_url(f"{namespace}-{name}"))
        if name == "pruning":
            apps.wait_synced(name, sha)
    wait_for(lambda: get(kubectl, namespace, "configmap", "pruning-c") is None, "pruning-c to be pruned")
    app = apps.get("pruning")
    assert "pruning-c" not in {r["name"] for r in app["status"]["resources"]}
    kept = apps.wait(
        "keeping",
        "pruning-c reported as requiring pruning",
        lambda a: any(
            r["name"] == "keeping-c" and r.get("requiresPruning")
            for r in (a.get("status") or {}).get("resources", [])
        ),
    )
    assert kept["status"]["sync"]["status"] == "OutOfSync"
    assert get(kubectl, namespace, "configmap", "keeping-c") is not None
    events = kubectl(
        "get", "events", "-n", namespace, "--field-selector", "reason=Pruned", "-o", "name"
    ).stdout
    assert events.strip(), "a Pruned event on the Application"


def test_a_hand_edit_is_restored_by_self_heal_when_the_guard_is_off(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings", "from-git")})
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {"selfHeal": True}},
        driftGuard={"mode": "off"},
    )
    apps.wait_synced("shop")
    kubectl(
        "patch",
        "-n",
        namespace,
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        '{"data":{"value":"by-hand"}}',
    )
    wait_for(
        lambda: (
            (get(kubectl, namespace, "configmap", "settings") or {}).get("data", {}).get("value")
            == "from-git"
        ),
        "the hand edit to be restored",
        timeout=30,
    )
    events = kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert "DriftDetected" in events or "Synced" in events


def test_a_commit_that_leaves_the_objects_alone_moves_the_revision_without_comparing_again(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    """A synced Application is compared again only when something changed: the objects Git
    renders, the spec, or (through the watches) a live object. A hand edit after a skipped
    compare is still restored."""
    git_server.commit(repo, {"app/cm.yaml": configmap("settings", "from-git")})
    url = git_server.git_url(repo)
    apps.create(
        "shop", {"repoURL": url, "path": "app"},
        syncPolicy={"automated": {"selfHeal": True}}, driftGuard={"mode": "off"},
    )  # fmt: skip
    apps.wait_synced("shop")
    log_file = LOCAL_DIR / "logs" / "driftguard-controller.log"
    offset = log_file.stat().st_size
    other = git_server.commit(repo, {"README.md": "# not rendered: outside the path\n"})
    code, _ = push_webhook(url)
    assert code == 200
    apps.wait_synced("shop", other, timeout=30)
    with log_file.open() as log:
        log.seek(offset)
        lines = [line for line in log if f"[{namespace}/shop]" in line]
    assert any(f"revision {other[:7]} renders the same objects as" in line for line in lines), lines
    assert not any("syncing revision" in line for line in lines), lines

    kubectl("patch", "-n", namespace, "configmap", "settings", "--type=merge", "-p",
            '{"data":{"value":"by-hand"}}')  # fmt: skip
    wait_for(
        lambda: (get(kubectl, namespace, "configmap", "settings") or {})["data"]["value"] == "from-git",
        "the hand edit after a skipped compare to be restored",
        timeout=30,
    )


def test_without_self_heal_drift_is_reported_with_the_fields_that_changed(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings", "from-git")})
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {}},
        driftGuard={"mode": "off"},
    )
    apps.wait_synced("shop")
    kubectl(
        "patch",
        "-n",
        namespace,
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        '{"data":{"value":"by-hand"}}',
    )
    app = apps.wait(
        "shop",
        "OutOfSync with drift",
        lambda a: (a.get("status") or {}).get("sync", {}).get("status") == "OutOfSync",
    )
    drift = app["status"]["drift"]["resources"]
    assert drift == [{**drift[0], "kind": "ConfigMap", "name": "settings", "fields": ["data.value"]}]
    assert (get(kubectl, namespace, "configmap", "settings") or {})["data"]["value"] == "by-hand"


@pytest.mark.parametrize(
    ("files", "path", "reason", "words"),
    [
        (
            {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\ndata: {}\n"},
            "app",
            "RenderFailed",
            "app/cm.yaml",
        ),
        (
            {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {}\n"},
            "app",
            "RenderFailed",
            "metadata.name",
        ),
        ({"app/README.md": "no manifests here"}, "app", "RenderFailed", "rendered no objects"),
    ],
    ids=["bad-yaml", "no-name", "empty-render"],
)
def test_a_bad_render_sets_a_condition_and_leaves_the_cluster_untouched(
    apps: Apps,
    git_server: GitServer,
    repo: str,
    kubectl: Kubectl,
    namespace: str,
    files: dict[str, str],
    path: str,
    reason: str,
    words: str,
) -> None:
    git_server.commit(repo, {"app/cm.yaml": configmap("settings", "1")})
    apps.create(
        "shop", {"repoURL": git_server.git_url(repo), "path": path}, syncPolicy={"automated": {"prune": True}}
    )
    apps.wait_synced("shop")
    git_server.commit(repo, files, delete=[] if "app/cm.yaml" in files else ["app/cm.yaml"])
    push_webhook(git_server.git_url(repo))
    app = apps.wait("shop", f"Ready=False {reason}", lambda a: condition(a).get("reason") == reason)
    assert words in condition(app)["message"]
    assert app["status"]["sync"]["status"] == "Unknown"
    # Nothing pruned, nothing changed: the inventory and the object stay.
    assert (get(kubectl, namespace, "configmap", "settings") or {}).get("data") == {"value": "1"}
    assert [r["name"] for r in app["status"]["resources"]] == ["settings"]


def test_a_symlink_out_of_the_repository_is_refused(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"app/cm.yaml": configmap("settings", "1")})
    # A symlink blob: git stores the target path as the content with mode 120000.
    blob = git_server.git(repo, "hash-object", "-w", "--stdin", input=b"/etc/passwd")
    head = git_server.rev_parse(repo, "main")
    tree = git_server.git(
        repo,
        "mktree",
        input=(git_server.git(repo, "ls-tree", head) + f"\n120000 blob {blob}\tleak.yaml\n").encode(),
    )
    sha = git_server.git(repo, "commit-tree", tree, "-p", head, "-m", "symlink")
    git_server.set_ref(repo, "refs/heads/main", sha)
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo), "path": ".", "directory": {"recurse": True}},
        syncPolicy={"automated": {}},
    )
    app = apps.wait("shop", "RenderFailed", lambda a: condition(a).get("reason") == "RenderFailed")
    assert "leak.yaml" in condition(app)["message"] and "outside" in condition(app)["message"]
    assert get(kubectl, namespace, "configmap", "settings") is None


def test_an_unreachable_repository_and_wrong_credentials_say_fetch_failed_without_echoing_secrets(
    apps: Apps,
    git_server: GitServer,
    repo: str,
    kubectl: Kubectl,
    namespace: str,
    api_client: client.ApiClient,
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings", "1")})
    apps.create("gone", {"repoURL": GitServer.closed_port_url()})
    gone = apps.wait("gone", "FetchFailed", lambda a: condition(a).get("reason") == "FetchFailed")
    assert "127.0.0.1" in condition(gone)["message"]
    wrong = f"wrong-{uuid.uuid4().hex[:6]}"
    secret_name = f"creds-{namespace}"[:63]
    url = git_server.http_url(repo)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=secret_name,
            namespace="driftguard-system",
            labels={"gitops.driftguard.io/secret-type": "repository"},
        ),
        # Granted to the test session's project: a Secret without one serves driftguard-system only.
        string_data={"url": url, "username": git_server.username, "password": wrong, "project": TEST_PROJECT},
    )
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret("driftguard-system", secret)
    try:
        apps.create("locked", {"repoURL": url}, syncPolicy={"automated": {}})
        locked = apps.wait("locked", "FetchFailed", lambda a: condition(a).get("reason") == "FetchFailed")
        assert (
            wrong not in str(locked)
            and wrong not in kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout
        )
        # The right password: the same Application syncs.
        core.patch_namespaced_secret(
            secret_name,
            "driftguard-system",
            {"data": {"password": base64.b64encode(git_server.password.encode()).decode()}},
        )
        push_webhook(url)
        apps.wait_synced("locked", timeout=60)
    finally:
        core.delete_namespaced_secret(secret_name, "driftguard-system")
    log = (LOCAL_DIR / "logs" / "driftguard-controller.log").read_text()
    assert wrong not in log and git_server.password not in log


def test_rollback_deploys_a_history_entry_and_pauses_auto_sync(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    first = git_server.commit(repo, {"cm.yaml": configmap("settings", "v1")})
    url = git_server.git_url(repo)
    apps.create("shop", {"repoURL": url}, syncPolicy={"automated": {}})
    apps.wait_synced("shop", first)
    second = git_server.commit(repo, {"cm.yaml": configmap("settings", "v2")})
    push_webhook(url)
    app = apps.wait_synced("shop", second)
    entry = next(h for h in app["status"]["history"] if h["revision"] == first)
    apps.operate("shop", "rollback", {"id": entry["id"]})
    app = apps.wait("shop", "rolled back", lambda a: condition(a, "AutoSyncPaused").get("status") == "True")
    assert (get(kubectl, namespace, "configmap", "settings") or {})["data"]["value"] == "v1"
    assert app["status"]["operationState"]["phase"] == "Succeeded"
    # Auto-sync stays paused: a push does not undo the rollback...
    push_webhook(url)
    app = apps.wait(
        "shop", "reconciled after the push", lambda a: a["status"]["sync"]["status"] == "OutOfSync"
    )
    assert (get(kubectl, namespace, "configmap", "settings") or {})["data"]["value"] == "v1"
    # ...until the spec changes.
    apps.patch("shop", {"spec": {"revisionHistoryLimit": 5}})
    apps.wait_synced("shop", second)
    assert not condition(apps.get("shop"), "AutoSyncPaused")


def test_a_sync_request_applies_an_application_without_automated_sync(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings", "1")})
    apps.create("manual", {"repoURL": git_server.git_url(repo)})
    app = apps.wait(
        "manual", "compared", lambda a: (a.get("status") or {}).get("sync", {}).get("status") == "OutOfSync"
    )
    assert get(kubectl, namespace, "configmap", "settings") is None
    assert app["status"]["resources"][0]["status"] == "OutOfSync"
    apps.operate("manual", "sync", {})
    app = apps.wait_synced("manual")
    assert app["status"]["operationState"]["phase"] == "Succeeded"
    assert app["status"]["history"][-1]["initiatedBy"].get("username")
    assert "operation" not in app


def test_kustomize_and_helm_sources_render_and_sync(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(
        repo,
        {
            "kust/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: k-\n",
            "kust/cm.yaml": configmap("settings", "kustomized"),
            "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
            "chart/values.yaml": "greeting: hello\n",
            "chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
                "data:\n  greeting: {{ .Values.greeting | quote }}\n"
            ),
        },
    )
    url = git_server.git_url(repo)
    apps.create(
        "kust",
        {"repoURL": url, "path": "kust", "kustomize": {"commonLabels": {"team": "a"}}},
        syncPolicy={"automated": {}},
    )
    apps.create(
        "chart",
        {
            "repoURL": url,
            "path": "chart",
            "helm": {
                "releaseName": "rel",
                "parameters": [{"name": "greeting", "value": "from-params"}],
            },
        },
        syncPolicy={"automated": {}},
    )
    apps.wait_synced("kust")
    apps.wait_synced("chart")
    kust = get(kubectl, namespace, "configmap", "k-settings")
    assert kust is not None and kust["metadata"]["labels"]["team"] == "a"
    chart = get(kubectl, namespace, "configmap", "rel-settings")
    assert chart is not None and chart["data"]["greeting"] == "from-params"


def test_sync_waves_apply_in_order_and_namespaces_come_first(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    extra = f"{namespace}-extra"
    git_server.commit(
        repo,
        {
            "late.yaml": configmap("late", "1", '"gitops.driftguard.io/sync-wave": "2"'),
            "early.yaml": configmap("early", "1", '"argocd.argoproj.io/sync-wave": "-1"'),
            "deploy.yaml": DEPLOYMENT,
            "ns.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra}\n",
        },
    )
    try:
        apps.create("waves", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {"prune": True}})
        app = apps.wait_synced("waves")
        order = [r["name"] for r in app["status"]["operationState"]["syncResult"]["resources"]]
        assert order == [extra, "early", "web", "late"]
    finally:
        # The Application first: while it exists, self-heal would bring the Namespace back.
        apps.delete("waves")
        kubectl("delete", "namespace", extra, "--wait=false", check=False)


def test_deleting_an_application_with_the_finalizer_deletes_its_objects_and_without_it_releases_them(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.create_repo(f"{repo}-b")
    git_server.commit(repo, {"cm.yaml": configmap("owned", "1")})
    git_server.commit(f"{repo}-b", {"cm.yaml": configmap("released", "1")})
    apps.create(
        "cascade",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {}},
        metadata={"finalizers": ["resources-finalizer.gitops.driftguard.io"]},
    )
    apps.create("orphan", {"repoURL": git_server.git_url(f"{repo}-b")}, syncPolicy={"automated": {}})
    apps.wait_synced("cascade")
    apps.wait_synced("orphan")
    kubectl(
        "delete", "applications.gitops.driftguard.io", "-n", namespace, "cascade", "orphan", "--wait=false"
    )
    wait_for(lambda: get(kubectl, namespace, "configmap", "owned") is None, "the finalizer to delete owned")
    wait_for(
        lambda: get(kubectl, namespace, "applications.gitops.driftguard.io", "cascade") is None,
        "cascade gone",
    )

    def released() -> bool:
        cm = get(kubectl, namespace, "configmap", "released") or {}
        meta = cm.get("metadata") or {}
        return (
            bool(cm)
            and MANAGED_LABEL not in (meta.get("labels") or {})
            and TRACKING_ANNOTATION not in (meta.get("annotations") or {})
        )

    wait_for(released, "released to lose the managed marks")


def test_an_application_never_takes_over_or_prunes_another_applications_object(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("shared", "1")})
    apps.create("first", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {"prune": True}})
    apps.wait_synced("first")
    apps.create("second", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {"prune": True}})
    second = apps.wait(
        "second", "refusing the takeover", lambda a: condition(a).get("reason") == "ApplyFailed"
    )
    assert f"Application {namespace}/first" in condition(second)["message"]
    cm = get(kubectl, namespace, "configmap", "shared") or {}
    assert cm["metadata"]["annotations"][TRACKING_ANNOTATION].startswith(f"{namespace}/first:")


def test_a_path_out_of_the_repository_is_refused_before_anything_is_fetched(
    driftguard: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    manifest = f"""
apiVersion: gitops.driftguard.io/v1alpha1
kind: Application
metadata: {{name: escape, namespace: {namespace}}}
spec:
  source: {{repoURL: "git://127.0.0.1:9/shop.git", path: "../../etc"}}
  destination: {{namespace: {namespace}}}
"""
    result = kubectl("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "spec.source.path" in result.stderr and ".." in result.stderr


def test_a_controller_killed_mid_sync_resumes_and_leaves_no_orphans(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    # Wave 0 never becomes healthy (a LoadBalancer gets no address here), so the sync waits in it.
    balancer = SERVICE.replace("spec:\n", "spec:\n  type: LoadBalancer\n")
    git_server.commit(
        repo,
        {
            "svc.yaml": balancer,
            "late.yaml": configmap("late", "1", '"gitops.driftguard.io/sync-wave": "1"'),
        },
    )
    apps.create("shop", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {"prune": True}})
    wait_for(lambda: get(kubectl, namespace, "service", "web"), "wave 0 to be applied")
    pid = running_pid("driftguard-controller")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: running_pid("driftguard-controller") is None, "the controller to die")
    # Everything the dead controller created is in the inventory it recorded first.
    inventory = {(r["kind"], r["name"]) for r in apps.get("shop")["status"]["resources"]}
    tracked = json.loads(kubectl("get", "services,configmaps", "-n", namespace, "-o", "json").stdout)["items"]
    created = {
        (o["kind"], o["metadata"]["name"])
        for o in tracked
        if TRACKING_ANNOTATION in (o["metadata"].get("annotations") or {})
    }
    assert created and created <= inventory, f"orphans: {created - inventory}"
    assert ("ConfigMap", "late") in inventory
    # A new controller picks the sync up; with wave 0 made healthy, it finishes.
    subprocess.run([str(REPO_ROOT / "hack" / "install-local.sh")], check=True, capture_output=True)
    sha = git_server.commit(repo, {"svc.yaml": SERVICE})
    push_webhook(git_server.git_url(repo))
    apps.wait_synced("shop", sha, timeout=120)
    assert get(kubectl, namespace, "configmap", "late") is not None
