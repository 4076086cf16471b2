"""Two extension replicas serve the same data: nothing lives in the pod."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from certs import pki, serving
from tests.support.cluster import LOCAL_DIR, REPO_ROOT, TEST_PROJECT, Cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """Talks to one extension process directly, as the front proxy does."""

    def __init__(self, port: int, ca: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca))
        pki = LOCAL_DIR / "pki"
        self.context.load_cert_chain(str(pki / "front-proxy-client.crt"), str(pki / "front-proxy-client.key"))

    def ready(self, proc: subprocess.Popen[bytes], tmp_path: Path) -> bool:
        assert proc.poll() is None, (tmp_path / "replica.log").read_text()[-3000:]
        try:
            return self.request("GET", "/readyz")[0] == 200
        except (OSError, ValueError):
            return False

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=10)
        try:
            headers = {"X-Remote-User": "kubernetes-admin", "X-Remote-Group": "system:masters",
                       "Content-Type": "application/json"}  # fmt: skip
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            return response.status, json.loads(data) if is_json else data.decode()
        finally:
            conn.close()


def start_replica(
    port: int, tmp_path: Path, refresh_seconds: int = 300
) -> tuple[subprocess.Popen[bytes], Any]:
    env = {
        **os.environ,
        "KUBECONFIG": str(LOCAL_DIR / "extension" / "kubeconfig"),
        "DRIFTGUARD_BIND": f"127.0.0.1:{port}",
        "DRIFTGUARD_CERT_DIR": str(tmp_path / "tls"),
        "DRIFTGUARD_WORKERS": "1",
        "DRIFTGUARD_REFRESH_SECONDS": str(refresh_seconds),
    }
    log = (tmp_path / "replica.log").open("w")
    proc = subprocess.Popen(
        [str(LOCAL_DIR / "venv" / "bin" / "gunicorn"), "--config", "python:extension.gunicorn_conf",
         "extension.wsgi:app"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, log


@pytest.fixture
def second_replica(driftguard: Cluster, tmp_path: Path) -> Iterator[Replica]:
    port = free_port()
    proc, log = start_replica(port, tmp_path)
    try:
        # The first replica's CA: both serve certificates from the one Secret.
        replica = Replica(port, LOCAL_DIR / "extension" / "tls" / "ca.crt")
        wait_for(lambda: replica.ready(proc, tmp_path), f"the second replica on 127.0.0.1:{port}", timeout=60)
        yield replica
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_second_replica_shares_the_certificate_and_the_data(
    second_replica: Replica, namespace: str, driftguard: Cluster, api_client: client.ApiClient
) -> None:
    # The second replica serves the very certificate kept in the one Secret (the first one's copy
    # may lag a re-issue by its refresh interval: test_a_reissued_certificate_… re-issues it).
    secret = client.CoreV1Api(api_client).read_namespaced_secret(
        "driftguard-extension-tls", "driftguard-system"
    )
    kept = ssl.PEM_cert_to_DER_cert(base64.b64decode(secret.data["tls.crt"]).decode())
    theirs = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", second_replica.port)))
    assert kept == theirs

    body = {
        "apiVersion": "gitops.driftguard.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop"},
        "spec": {
            "source": {"repoURL": "git://127.0.0.1:9/shop.git"},
            "destination": {"namespace": "shop"},
            "project": TEST_PROJECT,
        },
    }
    base = f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications"
    code, created = second_replica.request("POST", base, body)
    assert code == 201, created

    # The replica behind the APIService sees what the other one wrote (at that version or at a
    # later one: the controller may have written the status since).
    seen = json.loads(driftguard.kubectl("get", "dgapp", "shop", "-n", namespace, "-o", "json").stdout)
    assert seen["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(seen["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    assert seen["spec"] == created["spec"]
    # A LIST through the first replica right after each write through the second: its index may
    # not have the write yet, and it answers the newest anyway.
    first = Replica(int(os.environ.get("EXTENSION_PORT", "8443")), LOCAL_DIR / "extension" / "tls" / "ca.crt")
    names = {"shop"}
    for i in range(20):
        code, written = second_replica.request("POST", base, {**body, "metadata": {"name": f"web-{i}"}})
        assert code == 201, written
        names.add(f"web-{i}")
        code, listed = first.request("GET", base)
        assert code == 200 and {a["metadata"]["name"] for a in listed["items"]} == names, f"after web-{i}"

    # A write through kubectl is visible to the second replica, and a stale write there conflicts.
    driftguard.kubectl("annotate", "dgapp", "shop", "-n", namespace, "via=kubectl")
    code, current = second_replica.request("GET", f"{base}/shop")
    assert code == 200 and current["metadata"]["annotations"]["via"] == "kubectl"
    driftguard.kubectl("annotate", "dgapp", "web-0", "-n", namespace, "via=kubectl")
    code, current_list = second_replica.request("GET", base)
    via = {
        a["metadata"]["name"]: a["metadata"].get("annotations", {}).get("via") for a in current_list["items"]
    }
    assert code == 200 and via["shop"] == via["web-0"] == "kubectl"
    created["spec"]["project"] = "stale"
    code, status = second_replica.request("PUT", f"{base}/shop", created)
    assert code == 409 and status["reason"] == "Conflict"


def test_a_reissued_certificate_is_served_without_a_restart(
    driftguard: Cluster, api_client: client.ApiClient, tmp_path: Path
) -> None:
    port = free_port()
    proc, log = start_replica(port, tmp_path, refresh_seconds=1)
    try:
        replica = Replica(port, LOCAL_DIR / "extension" / "tls" / "ca.crt")
        wait_for(
            lambda: replica.ready(proc, tmp_path), f"a replica on 127.0.0.1:{port} to be ready", timeout=60
        )
        served = ssl.get_server_certificate(("127.0.0.1", port))

        # Re-issue the serving certificate in the Secret, from the same CA, as a rotation does.
        core = client.CoreV1Api(api_client)
        secret = core.read_namespaced_secret("driftguard-extension-tls", "driftguard-system")
        ca = pki.KeyPair(base64.b64decode(secret.data["ca.crt"]), base64.b64decode(secret.data["ca.key"]))
        leaf = pki.new_serving_cert(ca, "driftguard-extension.driftguard-system.svc",
                                    serving.service_dns_names("driftguard-extension", "driftguard-system"),
                                    ["127.0.0.1"])  # fmt: skip
        data = {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem}
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        core.patch_namespaced_secret("driftguard-extension-tls", "driftguard-system", {"data": encoded})

        def serves_new() -> bool:
            now = ssl.get_server_certificate(("127.0.0.1", port))
            return now != served and ssl.PEM_cert_to_DER_cert(now) == ssl.PEM_cert_to_DER_cert(
                leaf.cert_pem.decode()
            )

        wait_for(serves_new, "the replica to serve the re-issued certificate", timeout=30)
        assert replica.request("GET", "/readyz")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
