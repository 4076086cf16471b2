"""The controller and the drift guard together, as users meet them: an Application synced from real
Git, then kubectl edits of what it deployed."""

from __future__ import annotations

import datetime
import json
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, condition
from tests.support.cluster import Cluster
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
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
"""


def image(kubectl: Kubectl, namespace: str) -> str:
    out = kubectl(
        "get",
        "deployment",
        "web",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    return out.stdout


def annotations(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    out = kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout
    return json.loads(out)["metadata"].get("annotations") or {}


@pytest.fixture
def synced(
    driftguard: Cluster, api_client: client.ApiClient, git_server: GitServer, namespace: str
) -> tuple[Apps, str, str]:
    repo = f"g{uuid.uuid4().hex[:8]}"
    git_server.create_repo(repo)
    sha = git_server.commit(repo, {"deploy.yaml": DEPLOYMENT})
    apps = Apps(api_client, namespace)
    apps.create(
        "shop",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {}},
        driftGuard={"mode": "enforce", "breakGlass": {"groups": ["system:masters"], "maxDuration": "10m"}},
    )
    apps.wait_synced("shop", sha)
    return apps, git_server.git_url(repo), sha


def test_an_edit_of_a_field_git_sets_is_denied_with_where_to_change_it(
    synced: tuple[Apps, str, str], kubectl: Kubectl, namespace: str
) -> None:
    _, url, sha = synced

    edit = ("set", "image", "deployment/web", "web=registry.example/web:hotfix", "-n", namespace)

    def denied_dry_run() -> bool:
        # A server dry-run gets the real verdict without changing anything, so the wait for the
        # guard's index to learn the inventory can never let an edit through.
        return kubectl(*edit, "--dry-run=server", check=False).returncode != 0

    wait_for(denied_dry_run, "the guard to deny a dry-run of kubectl set image", timeout=30)
    result = kubectl(*edit, check=False)
    assert result.returncode != 0
    where = f"({url}, path ., revision {sha[:7]})"
    assert f"Deployment {namespace}/web is managed by Application {namespace}/shop {where}" in result.stderr
    assert "spec.template.spec.containers[0].image is set by Git" in result.stderr
    assert image(kubectl, namespace) == "registry.example/web:1.0"
    # Git does not set replicas: scaling is the HPA's or the user's business.
    kubectl("scale", "deployment/web", "--replicas=3", "-n", namespace)


def test_break_glass_lets_an_edit_through_records_it_and_git_comes_back_when_it_expires(
    synced: tuple[Apps, str, str], kubectl: Kubectl, namespace: str
) -> None:
    apps, _, _ = synced
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=20)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    kubectl(
        "annotate",
        "deployment/web",
        "-n",
        namespace,
        "gitops.driftguard.io/break-glass-reason=incident 42",
        f"gitops.driftguard.io/break-glass-until={until}",
    )
    result = kubectl("set", "image", "deployment/web", "web=registry.example/web:hotfix", "-n", namespace)
    assert "break-glass" in result.stderr.lower(), "kubectl prints the guard's warning"
    app = apps.wait(
        "shop",
        "the break-glass in status",
        lambda a: bool((a.get("status") or {}).get("drift", {}).get("breakGlass")),
    )
    entry = app["status"]["drift"]["breakGlass"][0]
    assert entry["name"] == "web" and entry["reason"] == "incident 42" and entry["expiresAt"] == until
    assert image(kubectl, namespace) == "registry.example/web:hotfix", "no restore while it lasts"
    wait_for(
        lambda: image(kubectl, namespace) == "registry.example/web:1.0",
        "Git's image back after expiry",
        timeout=90,
    )
    wait_for(
        lambda: "gitops.driftguard.io/break-glass-until" not in annotations(kubectl, namespace),
        "the expired break-glass annotations to be removed",
    )
    reasons = kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert "BreakGlass" in reasons and "BreakGlassExpired" in reasons
    assert condition(apps.get("shop"))["status"] == "True"
