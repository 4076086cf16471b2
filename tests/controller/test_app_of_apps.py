"""App of apps with the real controller: a parent Application whose Git path holds child
Applications, which the controller applies server-side through the aggregated API like any other
object; a child removed from Git is pruned with what it deployed; the drift guard guards a child's
Git-owned fields."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable

import pytest
from kubernetes import client

from extension.api.tracking import RESOURCES_FINALIZER
from tests.support.apps import Apps
from tests.support.cluster import TEST_PROJECT
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def child(name: str, namespace: str, repo_url: str) -> str:
    return json.dumps(
        {
            "apiVersion": "gitops.driftguard.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace, "finalizers": [RESOURCES_FINALIZER]},
            "spec": {
                "project": TEST_PROJECT,
                "source": {"repoURL": repo_url, "path": name},
                "destination": {"namespace": namespace},
                "syncPolicy": {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=false"]},
            },
        }
    )


def config_map(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  owner: {name}\n"


def exists(kubectl: Kubectl, namespace: str, *what: str) -> bool:
    return kubectl("get", *what, "-n", namespace, check=False).returncode == 0


def test_a_parent_deploys_its_children_prunes_a_removed_one_and_guards_their_fields(
    apps: Apps, git_server: GitServer, kubectl: Kubectl, namespace: str
) -> None:
    children_repo, parent_repo = f"c{uuid.uuid4().hex[:8]}", f"p{uuid.uuid4().hex[:8]}"
    git_server.create_repo(children_repo)
    git_server.commit(
        children_repo, {"child-a/cm.yaml": config_map("from-a"), "child-b/cm.yaml": config_map("from-b")}
    )
    git_server.create_repo(parent_repo)
    children_url = git_server.git_url(children_repo)
    first = git_server.commit(
        parent_repo,
        {
            "child-a.yaml": child("child-a", namespace, children_url),
            "child-b.yaml": child("child-b", namespace, children_url),
        },
    )
    apps.create(
        "parent", {"repoURL": git_server.git_url(parent_repo)}, syncPolicy={"automated": {"prune": True}}
    )

    parent = apps.wait_synced("parent", first)
    managed = {(r["kind"], r["name"]) for r in parent["status"]["resources"]}
    assert managed == {("Application", "child-a"), ("Application", "child-b")}
    for name, data in (("child-a", "from-a"), ("child-b", "from-b")):
        apps.wait_synced(name)
        wait_for(lambda d=data: exists(kubectl, namespace, "configmap", d), f"ConfigMap {data} of {name}")
    owners = {
        (e["manager"], e["operation"], e.get("subresource", ""))
        for e in apps.get("child-a")["metadata"]["managedFields"]
    }
    assert ("driftguard-controller", "Apply", "") in owners, owners

    # A field Git sets on a child, edited by hand: denied, with where to change it in Git.
    edit = kubectl(
        "patch", "applications.gitops.driftguard.io", "child-a", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"source":{"path":"elsewhere"}}}', check=False,
    )  # fmt: skip
    assert edit.returncode != 0, edit.stdout
    assert "is managed by Application" in edit.stderr and f"{namespace}/parent" in edit.stderr, edit.stderr
    assert apps.get("child-a")["spec"]["source"]["path"] == "child-a"
    # A field Git does not set stays the user's.
    kubectl("annotate", "applications.gitops.driftguard.io", "child-a", "-n", namespace, "note=mine")

    # child-b leaves Git: the parent prunes it, and its finalizer takes its ConfigMap with it.
    second = git_server.commit(parent_repo, {}, delete=["child-b.yaml"])
    apps.wait_synced("parent", second)

    def child_b_gone() -> bool:
        try:
            apps.get("child-b")
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(child_b_gone, "child-b to be pruned by the parent")
    wait_for(
        lambda: not exists(kubectl, namespace, "configmap", "from-b"), "child-b's ConfigMap to go with it"
    )
    assert exists(kubectl, namespace, "configmap", "from-a")
    apps.delete("parent")
