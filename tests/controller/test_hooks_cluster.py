"""Sync hooks against the real control plane and the real controller, with real Git: Jobs run by
kube-controller-manager's job controller on the kwok node, whose stages complete a Job's pods
(and a Job whose pods can schedule nowhere fails at its activeDeadlineSeconds)."""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client

from extension.api.tracking import RESOURCES_FINALIZER
from tests.controller.conftest import Tenant
from tests.support.apps import Apps
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
HOOK = "argocd.argoproj.io/hook"
POLICY = "argocd.argoproj.io/hook-delete-policy"


def job(
    name: str, annotations: dict[str, str], *, fail: bool = False, generate: bool = False
) -> dict[str, Any]:
    """A Job: kwok completes its pod; ``fail``: its pod can schedule nowhere, so the job controller
    fails it after 2 seconds (DeadlineExceeded)."""
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "run", "image": "registry.example/tool:1"}],
    }
    spec: dict[str, Any] = {"backoffLimit": 0, "template": {"spec": pod}}
    if fail:
        spec["activeDeadlineSeconds"] = 2
        pod["nodeSelector"] = {"driftguard.test/no-such-node": "true"}
    meta: dict[str, Any] = {"generateName": f"{name}-"} if generate else {"name": name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**meta, "annotations": annotations},
        "spec": spec,
    }


def deployment(image: str = "registry.example/web:1") -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}}},
    }  # fmt: skip


def note(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": annotations}}


def files(*objs: dict[str, Any]) -> dict[str, str]:
    return {f"{i:02d}-{o['kind'].lower()}.yaml": yaml.safe_dump(o) for i, o in enumerate(objs)}


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    found = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sync(apps: Apps, name: str = "shop", **request: Any) -> dict[str, Any]:
    """Asks for a sync and waits for its operation to end: the operation's state."""
    recorded = apps.operate(name, "sync", request)["operation"]
    app = apps.wait(
        name, "the requested sync to end",
        lambda a: (a.get("status") or {}).get("operationState", {}).get("operation") == recorded
        and a["status"]["operationState"].get("phase") in ("Succeeded", "Failed"),
        timeout=180,
    )  # fmt: skip
    return dict(app["status"]["operationState"])


def results(state: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (r["kind"], r["name"], r.get("hookPhase", ""), r["status"]) for r in state["syncResult"]["resources"]
    ]


def test_presync_runs_before_the_apply_and_postsync_once_it_is_healthy_and_hooks_stay_out_of_the_inventory(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    git_server.commit(repo, files(
        deployment(), job("migrate", {HOOK: "PreSync"}), job("smoke", {HOOK: "PostSync"}),
    ))  # fmt: skip
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    state = sync(apps)
    assert state["phase"] == "Succeeded", state["message"]
    assert results(state) == [
        ("Job", "migrate", "PreSync", "succeeded"),
        ("Deployment", "web", "", "created"),
        ("Job", "smoke", "PostSync", "succeeded"),
    ]
    migrate, smoke = get(kubectl, "job", "migrate", namespace), get(kubectl, "job", "smoke", namespace)
    web = get(kubectl, "deployment", "web", namespace)
    assert migrate and smoke and web
    # The PreSync Job had completed when the Deployment was created ...
    assert when(migrate["status"]["completionTime"]) <= when(web["metadata"]["creationTimestamp"])
    # ... and the PostSync Job was created once the Deployment was available.
    available = next(c for c in web["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"
    assert when(smoke["metadata"]["creationTimestamp"]) >= when(available["lastTransitionTime"])
    # Hooks are not in the inventory, not guarded, not pruned.
    app = apps.get("shop")
    assert [r["name"] for r in app["status"]["resources"]] == ["web"]
    assert app["status"]["sync"]["status"] == "Synced"
    # An annotation Git sets, changed by hand: the guard would deny it on a guarded object.
    edited = kubectl(
        "annotate", "job", "migrate", "-n", namespace, f"{HOOK}=Sync", "--overwrite", check=False
    )
    assert edited.returncode == 0, edited.stderr
    git_server.delete(repo, ["01-job.yaml", "02-job.yaml"])
    assert sync(apps, prune=True)["phase"] == "Succeeded"
    assert get(kubectl, "job", "migrate", namespace) and get(kubectl, "job", "smoke", namespace)


def test_a_failing_presync_hook_leaves_the_deployment_untouched_and_runs_the_syncfail_hooks(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    git_server.commit(repo, files(deployment("registry.example/web:1")))
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    assert sync(apps)["phase"] == "Succeeded"
    git_server.commit(repo, files(
        deployment("registry.example/web:2"),
        job("migrate", {HOOK: "PreSync", POLICY: "HookFailed"}, fail=True),
        note("sync-failed", {HOOK: "SyncFail"}),
    ))  # fmt: skip
    state = sync(apps)
    assert state["phase"] == "Failed"
    assert results(state) == [
        ("Job", "migrate", "PreSync", "failed"),
        ("ConfigMap", "sync-failed", "SyncFail", "succeeded"),
    ]
    assert "deadline" in state["syncResult"]["resources"][0]["message"].lower()
    web = get(kubectl, "deployment", "web", namespace)
    assert web and web["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/web:1"
    assert get(kubectl, "configmap", "sync-failed", namespace) is not None  # the SyncFail hook ran
    # HookFailed: the failed Job is deleted.
    wait_for(lambda: get(kubectl, "job", "migrate", namespace) is None, "the failed hook Job to be deleted")
    hook_failed = next(c for c in apps.get("shop")["status"]["conditions"] if c["type"] == "HookFailed")
    assert (hook_failed["status"], hook_failed["reason"]) == ("True", "PreSyncFailed"), hook_failed
    assert "PreSync hook Job migrate" in hook_failed["message"]
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "reason=HookFailed", "-o", "json")
    assert any("PreSync hook Job migrate" in e["message"] for e in json.loads(events.stdout)["items"])


def test_delete_policies_and_generate_name(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    git_server.commit(repo, files(
        note("app", {}),
        job("kept", {HOOK: "PreSync"}),  # BeforeHookCreation, the default
        job("cleaned", {HOOK: "PostSync", POLICY: "HookSucceeded"}),
        job("numbered", {HOOK: "Sync"}, generate=True),
    ))  # fmt: skip
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    first = sync(apps)
    assert first["phase"] == "Succeeded", first["message"]
    kept = get(kubectl, "job", "kept", namespace)
    assert kept is not None
    assert ("Job", "cleaned", "PostSync", "succeeded") in results(first)
    assert get(kubectl, "job", "cleaned", namespace) is None  # HookSucceeded: deleted once it succeeded
    generated = [r["name"] for r in first["syncResult"]["resources"] if r.get("hookPhase") == "Sync"]
    assert len(generated) == 1 and generated[0].startswith("numbered-") and generated[0] != "numbered-"
    second = sync(apps)
    assert second["phase"] == "Succeeded", second["message"]
    again = get(kubectl, "job", "kept", namespace)
    assert again is not None and again["metadata"]["uid"] != kept["metadata"]["uid"]  # deleted, created anew
    names = kubectl("get", "jobs", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert len([n for n in names if n.startswith("numbered-")]) == 2  # a new one each run


def test_a_helm_chart_with_pre_install_and_post_upgrade_hooks(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    pre = job("db-init", {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-1"})
    post = job(
        "notify",
        {"helm.sh/hook": "post-install,post-upgrade", "helm.sh/hook-delete-policy": "hook-succeeded"},
    )
    test = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "chart-test", "annotations": {"helm.sh/hook": "test"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "registry.example/test:1"}]},
    }  # fmt: skip
    git_server.commit(repo, {
        "chart/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
        "chart/templates/config.yaml": yaml.safe_dump(note("{{ .Release.Name }}-config", {})),
        "chart/templates/pre.yaml": yaml.safe_dump(pre),
        "chart/templates/post.yaml": yaml.safe_dump(post),
        "chart/templates/test.yaml": yaml.safe_dump(test),
    })  # fmt: skip
    apps.create("shop", {"repoURL": git_server.git_url(repo), "path": "chart"})
    state = sync(apps)
    assert state["phase"] == "Succeeded", state["message"]
    assert results(state) == [
        ("Job", "db-init", "PreSync", "succeeded"),
        ("ConfigMap", "shop-config", "", "created"),
        ("Job", "notify", "PostSync", "succeeded"),
    ]
    assert get(kubectl, "job", "db-init", namespace) is not None
    assert get(kubectl, "job", "notify", namespace) is None  # hook-succeeded
    assert get(kubectl, "pod", "chart-test", namespace) is None  # test hooks are not applied


def test_predelete_hooks_run_before_a_cascading_deletion(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    git_server.commit(repo, files(note("app", {}), job("backup", {HOOK: "PreDelete"})))
    apps.create("shop", {"repoURL": git_server.git_url(repo)}, metadata={"finalizers": [RESOURCES_FINALIZER]})
    assert sync(apps)["phase"] == "Succeeded"
    assert get(kubectl, "job", "backup", namespace) is None  # not run by a sync
    assert get(kubectl, "configmap", "app", namespace) is not None
    apps.delete("shop")
    backup = get(kubectl, "job", "backup", namespace)
    assert backup is not None and backup["status"].get("completionTime"), backup
    wait_for(
        lambda: get(kubectl, "configmap", "app", namespace) is None, "the deployed ConfigMap to be deleted"
    )


def test_a_hook_the_project_refuses_is_never_created_and_nothing_is_applied(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    """Hooks are the Application's objects like any other: a tenant whose project takes Jobs away
    cannot run one as a hook (an edit user may create Jobs in the namespace with their own rights,
    but not through the Application)."""
    tenant.set_project(
        sourceNamespaces=[tenant.namespace], sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": tenant.namespace}],
        namespaceResourceBlacklist=[{"group": "batch", "kind": "Job"}],
    )  # fmt: skip
    git_server.commit(repo, files(note("app", {}), job("migrate", {HOOK: "PreSync"})))
    tenant.as_user(
        "apply", "-f", "-", input=tenant.application("shop", git_server.git_url(repo), tenant.project)
    )
    apps = Apps(api_client, tenant.namespace)
    path = f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{tenant.namespace}/applications/shop/sync"
    recorded = tenant.as_user("create", "--raw", path, "-f", "-", input="{}")
    assert recorded.returncode == 0, recorded.stderr

    def refused(app: dict[str, Any]) -> bool:
        conditions = (app.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["reason"] == "ProjectDenied" for c in conditions)

    app = apps.wait("shop", "the project's refusal", refused)
    ready = next(c for c in app["status"]["conditions"] if c["type"] == "Ready")
    assert "Job" in ready["message"] and "migrate" in ready["message"]
    assert get(kubectl, "job", "migrate", tenant.namespace) is None
    assert get(kubectl, "configmap", "app", tenant.namespace) is None  # nothing applied


def test_an_object_that_becomes_a_hook_leaves_the_inventory(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    git_server.commit(repo, files(note("app", {}), note("settings", {})))
    apps.create("shop", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {"prune": True}})
    apps.wait_synced("shop")
    # settings becomes a PreSync hook: run as one, never pruned, and the Application is Synced.
    second = git_server.commit(repo, files(note("app", {}), note("settings", {HOOK: "PreSync"})))
    state = sync(apps, prune=True)
    assert state["phase"] == "Succeeded", state["message"]
    assert ("ConfigMap", "settings", "PreSync", "succeeded") in results(state)
    assert not [r for r in results(state) if r[3] == "pruned"]
    app = apps.wait_synced("shop", second)
    assert [r["name"] for r in app["status"]["resources"]] == ["app"]
    assert get(kubectl, "configmap", "settings", namespace) is not None


def test_create_namespace_comes_before_the_presync_hooks(
    apps: Apps, kubectl: Kubectl, git_server: GitServer, repo: str, namespace: str
) -> None:
    made = f"{namespace}-made"
    git_server.commit(repo, files(note("app", {}), job("migrate", {HOOK: "PreSync"})))
    apps.create(
        "shop", {"repoURL": git_server.git_url(repo)}, destination={"namespace": made},
        syncPolicy={"syncOptions": ["CreateNamespace=true"]},
    )  # fmt: skip
    try:
        state = sync(apps)
        assert state["phase"] == "Succeeded", state["message"]
        assert results(state)[0] == ("Job", "migrate", "PreSync", "succeeded")
        assert get(kubectl, "job", "migrate", made) is not None
    finally:
        kubectl("delete", "namespace", made, "--wait=false", check=False)


def test_sync_hooks_run_with_their_wave(apps: Apps, git_server: GitServer, repo: str, namespace: str) -> None:
    wave = "argocd.argoproj.io/sync-wave"
    git_server.commit(repo, files(
        note("first", {wave: "0"}), job("between", {HOOK: "Sync", wave: "1"}), note("last", {wave: "2"}),
        job("after", {HOOK: "Sync", wave: "5"}),
    ))  # fmt: skip
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    state = sync(apps)
    assert state["phase"] == "Succeeded", state["message"]
    assert results(state) == [
        ("ConfigMap", "first", "", "created"),
        ("Job", "between", "Sync", "succeeded"),
        ("ConfigMap", "last", "", "created"),
        ("Job", "after", "Sync", "succeeded"),
    ]
