"""A CustomResourceDefinition and custom resources of it in one Application, on a cluster that has
never seen the kind: the CRD is applied and established first, its resources after it. Before it
exists, such a resource is simply OutOfSync (no dry run of a kind the server does not serve)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.apps import Apps, condition
from tests.support.gitserver import GitServer

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def crd(group: str) -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {{type: object, properties: {{size: {{type: integer}}}}}}
"""


def widget(group: str, name: str, size: int) -> str:
    return f"apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n"


@pytest.fixture
def group(kubectl: Kubectl) -> Iterator[str]:
    """An API group no cluster has seen; its CRD is deleted afterwards (it is cluster-scoped)."""
    name = f"w{uuid.uuid4().hex[:8]}.example.com"
    yield name
    kubectl("delete", "crd", f"widgets.{name}", "--ignore-not-found", "--wait=false", check=False)


def test_a_crd_and_its_custom_resources_sync_together_on_a_cluster_without_the_kind(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str, group: str
) -> None:
    sha = git_server.commit(
        repo,
        {
            "crd.yaml": crd(group),
            "small.yaml": widget(group, "small", 1),
            "large.yaml": widget(group, "large", 9),
        },
    )
    apps.create("widgets", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {}})
    app = apps.wait_synced("widgets", sha)
    kinds = sorted((r["kind"], r["name"]) for r in app["status"]["resources"])
    assert kinds == [
        ("CustomResourceDefinition", f"widgets.{group}"),
        ("Widget", "large"),
        ("Widget", "small"),
    ]
    listed = json.loads(kubectl("get", f"widgets.{group}", "-n", namespace, "-o", "json").stdout)["items"]
    assert {(w["metadata"]["name"], w["spec"]["size"]) for w in listed} == {("small", 1), ("large", 9)}


def test_before_its_crd_exists_a_custom_resource_is_out_of_sync_and_a_dry_run_says_why(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, group: str
) -> None:
    git_server.commit(repo, {"crd.yaml": crd(group), "small.yaml": widget(group, "small", 1)})
    apps.create("widgets", {"repoURL": git_server.git_url(repo)})  # no auto-sync
    app = apps.wait(
        "widgets",
        "compared",
        lambda a: (a.get("status") or {}).get("sync", {}).get("status") == "OutOfSync",
    )
    assert {r["kind"]: r["status"] for r in app["status"]["resources"]} == {
        "CustomResourceDefinition": "OutOfSync",
        "Widget": "OutOfSync",
    }
    assert condition(app)["status"] == "True", condition(app)
    apps.operate("widgets", "sync", {"dryRun": True})
    app = apps.wait(
        "widgets",
        "the dry run",
        lambda a: (a["status"].get("operationState") or {}).get("phase") in ("Succeeded", "Failed"),
    )
    state = app["status"]["operationState"]
    assert state["phase"] == "Succeeded", state["message"]
    widget_result = next(r for r in state["syncResult"]["resources"] if r["kind"] == "Widget")
    assert widget_result["status"] == "created"
    assert "its kind is not served yet" in widget_result["message"]
    assert kubectl("get", "crd", f"widgets.{group}", check=False).returncode != 0, (
        "the dry run created nothing"
    )
