"""Specs driftguard cannot carry out as written are refused: another cluster as destination (it
would deploy into this one) and credentials inside repoURL (they would be shown wherever the URL
is). At write time kubectl gets a 422 naming the field; an Application stored before the rule
existed gets an InvalidSpec condition from the controller, and nothing is fetched or applied."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.apps import Apps, condition
from tests.support.gitserver import GitServer

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def manifest(namespace: str, repo_url: str, server: str = "") -> str:
    return json.dumps({
        "apiVersion": "gitops.driftguard.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "elsewhere", "namespace": namespace},
        "spec": {"source": {"repoURL": repo_url}, "destination": {"namespace": namespace, "server": server}},
    })  # fmt: skip


@pytest.mark.parametrize(
    ("server", "url", "said"),
    [
        (
            "https://10.99.99.99:6443",
            "git://127.0.0.1/x.git",
            'spec.destination.server: Invalid value: "https://10.99.99.99:6443": only the cluster '
            "driftguard runs in is supported",
        ),
        (
            "",
            "https://deploy:ghp_s3cret@127.0.0.1/x.git",
            "spec.source.repoURL: Forbidden: must not carry credentials",
        ),
    ],
)
def test_kubectl_gets_a_422_naming_the_field(
    apps: Apps, kubectl: Kubectl, namespace: str, server: str, url: str, said: str
) -> None:
    result = kubectl("apply", "-f", "-", input=manifest(namespace, url, server), check=False)
    assert result.returncode != 0
    assert said in result.stderr, result.stderr
    assert "ghp_s3cret" not in result.stderr
    assert kubectl("get", "applications.gitops.driftguard.io", "-n", namespace, "-o", "name").stdout == ""


def store_server(kubectl: Kubectl, namespace: str, name: str, server: str) -> None:
    """Set destination.server in the Application's storage, as an Application written before the
    rule existed has it: only a cluster admin can write there."""
    storage = f"{namespace}.{name}"
    stored = kubectl("get", "configmap", storage, "-n", "driftguard-system", "-o", "json").stdout
    app = json.loads(json.loads(stored)["data"]["application.json"])
    app["spec"]["destination"]["server"] = server
    patch = json.dumps({"data": {"application.json": json.dumps(app)}})
    kubectl("patch", "configmap", storage, "-n", "driftguard-system", "--type=merge", "-p", patch)


def test_a_stored_application_naming_another_cluster_is_refused_with_a_condition_and_deploys_nothing(
    apps: Apps, git_server: GitServer, repo: str, kubectl: Kubectl, namespace: str
) -> None:
    git_server.commit(
        repo, {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {a: '1'}\n"}
    )
    apps.create(
        "elsewhere",
        {"repoURL": git_server.git_url(repo)},
        syncPolicy={"automated": {}},
        driftGuard={"mode": "off"},
    )
    apps.wait_synced("elsewhere")

    def refused(server: str) -> dict[str, Any]:
        return apps.wait(
            "elsewhere",
            f"the InvalidSpec condition naming {server}",
            lambda a: condition(a).get("reason") == "InvalidSpec" and server in condition(a)["message"],
        )

    store_server(kubectl, namespace, "elsewhere", "https://10.99.99.99:6443")
    app = refused("https://10.99.99.99:6443")
    message = condition(app)["message"]
    assert "spec.destination.server" in message and "nothing was fetched, applied or pruned" in message
    assert app["status"]["sync"]["status"] == "Unknown"
    # A missing object would be created again by auto-sync, but not while the spec is refused: the
    # reconcile of the next storage edit comes after the deletion, and re-creates nothing.
    kubectl("delete", "configmap", "settings", "-n", namespace)
    store_server(kubectl, namespace, "elsewhere", "https://10.88.88.88:6443")
    refused("https://10.88.88.88:6443")
    assert kubectl("get", "configmap", "settings", "-n", namespace, check=False).returncode != 0
    # Fixed through the API, it syncs again.
    apps.patch("elsewhere", {"spec": {"destination": {"server": "https://kubernetes.default.svc"}}})
    apps.wait_synced("elsewhere")
    assert kubectl("get", "configmap", "settings", "-n", namespace, check=False).returncode == 0
