"""driftguard installed for real: the image this checkout builds, run by a real kubelet and
containerd from manifests/ (the local-node overlay), proven from inside the cluster by
hack/e2e-install.sh. Runs once per session, after every other test (tests/conftest.py), because
it replaces the host processes the other tests talk to, and puts them back when it is done."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import LOCAL_DIR, REPO_ROOT, Cluster, running_pid

pytestmark = [pytest.mark.cluster, pytest.mark.node]

STEPS = [
    "kubectl apply --server-side -k manifests/local-node",
    "waiting for the Deployments, the APIService and the webhooks",
    "an Application syncs to Synced/Healthy",
    "a kubectl edit of a managed field is denied",
    "a deleted extension pod is replaced, and no Application is lost",
    "a deleted controller pod hands its Lease to another replica, which acts",
    "e2e-install passed",
]


def run_e2e_install(log: Path, timeout: float) -> int:
    """hack/e2e-install.sh in a session of its own. Past the deadline the whole session gets
    SIGTERM, so the script's EXIT trap still cleans up (the node, the pods, the host processes)."""
    with log.open("w") as out:
        script = subprocess.Popen(
            [str(REPO_ROOT / "hack" / "e2e-install.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return script.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGTERM)
            script.wait(timeout=300)
            raise AssertionError(f"hack/e2e-install.sh took more than {timeout:.0f}s; see {log}") from None


# Above the script's own deadline, so that the test's ends it, not pytest-timeout's SIGKILL.
@pytest.mark.timeout(2100)
def test_the_image_installed_from_manifests_runs_on_a_real_node(driftguard: Cluster) -> None:
    log = LOCAL_DIR / "logs" / "e2e-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    status = run_e2e_install(log, timeout=1500)
    text = log.read_text()
    assert status == 0, f"hack/e2e-install.sh exited {status}; see {log}:\n{text[-6000:]}"
    done = re.findall(r"^\S+ == (.*)$", text, flags=re.MULTILINE)
    assert [step for step in done if step in STEPS] == STEPS, f"steps run: {done}"
    denial = re.search(r"denied the request: (Deployment \S+ is managed by Application \S+)", text)
    assert denial is not None and "e2e-shop/shop" in denial.group(1), text[-4000:]
    # The script put the host processes back for whatever runs after it.
    assert running_pid("driftguard-extension") is not None
    assert running_pid("driftguard-controller") is not None
    nodes = driftguard.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert "node/driftguard-node" not in nodes, "the real node was left registered"
