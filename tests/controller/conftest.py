"""Fixtures the controller's cluster tests share: the Applications of the test's namespace, a
fresh repository on the loopback Git server, and tenants (a namespace, a user with only the
built-in edit role there, and a project of their own)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps
from tests.support.cluster import Cluster
from tests.support.gitserver import GitServer


@pytest.fixture
def apps(driftguard: Cluster, api_client: client.ApiClient, namespace: str) -> Apps:
    return Apps(api_client, namespace)


@pytest.fixture
def repo(git_server: GitServer) -> str:
    name = f"r{uuid.uuid4().hex[:8]}"
    git_server.create_repo(name)
    return name


Kubectl = Callable[..., subprocess.CompletedProcess[str]]
GROUP_VERSION = "gitops.driftguard.io/v1alpha1"


@dataclass
class Tenant:
    namespace: str
    user: str
    project: str
    kubectl: Kubectl

    def as_user(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl(*args, f"--as={self.user}", input=input, check=check)

    def application(self, name: str, repo_url: str, project: str | None = None, **spec: Any) -> str:
        body = {
            "apiVersion": GROUP_VERSION,
            "kind": "Application",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "source": {"repoURL": repo_url},
                "destination": {"namespace": spec.pop("destination_namespace", self.namespace)},
                **({"project": project} if project else {}),
                **spec,
            },
        }
        return json.dumps(body)

    def set_project(self, **spec: Any) -> None:
        body = {
            "apiVersion": GROUP_VERSION,
            "kind": "AppProject",
            "metadata": {"name": self.project, "namespace": "driftguard-system"},
            "spec": spec,
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(body))


@pytest.fixture
def tenant(driftguard: Cluster, api_client: client.ApiClient, kubectl: Kubectl) -> Iterator[Tenant]:
    """A namespace no test project covers, a user with only the built-in edit role there, and a
    project of their own that allows that namespace and nothing else."""
    suffix = uuid.uuid4().hex[:6]
    namespace, user, project = f"tenant-{suffix}", f"alice-{suffix}@example.com", f"team-{suffix}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    kubectl("create", "rolebinding", "editors", "--clusterrole=edit", f"--user={user}", "-n", namespace)
    found = Tenant(namespace, user, project, kubectl)
    found.set_project(
        sourceNamespaces=[namespace],
        sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": namespace}],
    )
    yield found
    kubectl("delete", "appprojects.gitops.driftguard.io", project, "-n", "driftguard-system", check=False)
    core.delete_namespace(namespace, propagation_policy="Background")
