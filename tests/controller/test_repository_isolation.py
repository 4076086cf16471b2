"""Repository isolation: an Application's source is fetched only from a URL its project allows,
with credentials granted to its project, and never from the controller's own filesystem. Real
Git over loopback: ``git http-backend`` with basic auth for the private repository."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from tests.controller.conftest import Tenant
from tests.support.apps import Apps, condition
from tests.support.gitserver import GitServer

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value!r}\n"


@pytest.fixture
def credentials(api_client: client.ApiClient) -> Iterator[Callable[..., str]]:
    """Makes repository credential Secrets in driftguard-system; deletes them afterwards."""
    core, made = client.CoreV1Api(api_client), []

    def make(url: str, username: str, password: str, project: str = "") -> str:
        name = f"repo-{uuid.uuid4().hex[:8]}"
        data = {
            "url": url,
            "username": username,
            "password": password,
            **({"project": project} if project else {}),
        }
        labels = {"gitops.driftguard.io/secret-type": "repository"}
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), string_data=data)
        core.create_namespaced_secret("driftguard-system", secret)
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespaced_secret(name, "driftguard-system")


def test_an_application_with_a_file_url_is_refused_and_nothing_is_deployed(
    apps: Apps, kubectl: Kubectl, namespace: str
) -> None:
    manifest = {
        "apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "local", "namespace": namespace},
        "spec": {"source": {"repoURL": "file:///tmp/driftguard-git/0123456789abcdef"},
                 "destination": {"namespace": namespace}, "project": "tests"},
    }  # fmt: skip
    result = kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0
    assert (
        "spec.source.repoURL: Forbidden: file:///tmp/driftguard-git/0123456789abcdef: file:// repositories"
        in (result.stderr)
    )
    assert "DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES=true" in result.stderr
    assert kubectl("get", "applications.gitops.driftguard.io", "-n", namespace, "-o", "name").stdout == ""


def test_another_projects_private_repository_is_not_fetched_for_a_tenant_even_once_fetched(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl,
    namespace: str, credentials: Callable[..., str],
) -> None:  # fmt: skip
    # Team B (the test's namespace, project tests) has a private repository and a credential
    # scoped to its project; its Application fetches and syncs it.
    git_server.commit(repo, {"secret.yaml": configmap("team-b-secret", "b's-private-value")})
    url = git_server.http_url(repo)
    credentials(url, git_server.username, git_server.password, project="tests")
    team_b = Apps(api_client, namespace)
    team_b.create("private", {"repoURL": url}, syncPolicy={"automated": {}})
    team_b.wait_synced("private")
    # Tenant A names the same URL: no credential is granted to its project, so the fetch fails as
    # it would with no credential anywhere, and nothing of B's reaches A's namespace.
    tenant.as_user("apply", "-f", "-", input=tenant.application("stolen", url, tenant.project,
                                                                  syncPolicy={"automated": {}}))  # fmt: skip
    team_a = Apps(api_client, tenant.namespace)
    failed = team_a.wait("stolen", "FetchFailed", lambda a: condition(a).get("reason") == "FetchFailed")
    message = condition(failed)["message"]
    assert "the server asks for credentials and none are configured" in message, message
    assert "tests" not in message and "secret" not in message.lower().replace("team-b-secret", "")
    assert kubectl("get", "configmap", "team-b-secret", "-n", tenant.namespace, check=False).returncode != 0
    assert "b's-private-value" not in json.dumps(failed)


def test_a_credential_without_a_project_serves_an_application_in_driftguard_system(
    git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl, namespace: str,
    credentials: Callable[..., str], driftguard: object,
) -> None:  # fmt: skip
    git_server.commit(repo, {"cm.yaml": configmap("platform", "from-a-private-repo")})
    url = git_server.http_url(repo)
    credentials(url, git_server.username, git_server.password)
    name = f"platform-{uuid.uuid4().hex[:6]}"
    admin = Apps(api_client, "driftguard-system")
    admin.create(name, {"repoURL": url}, project="default", destination={"namespace": namespace},
                 syncPolicy={"automated": {}})  # fmt: skip
    try:
        admin.wait_synced(name)
        value = kubectl(
            "get", "configmap", "platform", "-n", namespace, "-o", "jsonpath={.data.value}"
        ).stdout
        assert value == "from-a-private-repo"
    finally:
        custom = client.CustomObjectsApi(api_client)
        custom.delete_namespaced_custom_object("gitops.driftguard.io", "v1alpha1", "driftguard-system",
                                               "applications", name)  # fmt: skip
