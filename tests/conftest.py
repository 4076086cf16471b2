"""Session-wide fixtures: one real control plane per test session, a namespace per test.

Cluster tests are marked ``cluster``. The ``cluster`` fixture runs hack/local-up.sh, which reuses
a running control plane in seconds or starts one; a control plane this session started is
stopped at the end unless DRIFTGUARD_KEEP_CLUSTER=1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client, config

from tests.support.cluster import LOCAL_DIR, REPO_ROOT, TEST_PROJECT, Cluster, running_pid
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for


def _running() -> bool:
    kubectl, kubeconfig = LOCAL_DIR / "bin" / "kubectl", LOCAL_DIR / "kubeconfig"
    if not (kubectl.exists() and kubeconfig.exists()):
        return False
    probe = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz", "--request-timeout=5s"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    was_running = _running()
    up = subprocess.run(
        [str(REPO_ROOT / "hack" / "local-up.sh")], capture_output=True, text=True, check=False
    )
    if up.returncode != 0:
        pytest.fail(f"hack/local-up.sh failed (exit {up.returncode}):\n{up.stderr[-4000:]}", pytrace=False)
    yield Cluster(LOCAL_DIR / "kubeconfig", LOCAL_DIR / "bin", LOCAL_DIR / "pki")
    if not was_running and os.environ.get("DRIFTGUARD_KEEP_CLUSTER") != "1":
        subprocess.run([str(REPO_ROOT / "hack" / "local-down.sh")], capture_output=True, check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-node install runs last: it replaces the host processes the other tests talk to."""
    items.sort(key=lambda item: item.get_closest_marker("node") is not None)


@pytest.fixture(scope="session")
def driftguard(cluster: Cluster) -> Iterator[Cluster]:
    """driftguard installed from manifests/local with the extension (under gunicorn) and the
    controller running on the host (hack/install-local.sh). What this session started is stopped
    at the end, so the next session never talks to stale code."""
    was_running = running_pid("driftguard-extension") is not None
    up = subprocess.run(
        [str(REPO_ROOT / "hack" / "install-local.sh")], capture_output=True, text=True, check=False
    )
    if up.returncode != 0:
        pytest.fail(
            f"hack/install-local.sh failed (exit {up.returncode}):\n{up.stderr[-4000:]}", pytrace=False
        )
    project = {
        "apiVersion": "gitops.driftguard.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": TEST_PROJECT, "namespace": "driftguard-system"},
        "spec": {
            "description": "The test session's namespaces",
            "sourceNamespaces": ["t-*"],
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(project))
    yield cluster
    if not was_running:
        for process in ("driftguard-controller", "driftguard-extension"):
            pid = running_pid(process)
            if pid:
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda p=process: running_pid(p) is None, f"{process} to stop", timeout=30)  # type: ignore[misc]


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """Real repositories served on loopback over git:// (git daemon) and http:// (http-backend)."""
    with GitServer(tmp_path_factory.mktemp("git")) as server:
        yield server


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    return cluster.kubectl


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")
