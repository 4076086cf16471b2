"""The aggregation layer reaches a server on the host through an ExternalName Service.

This is how driftguard's extension is served in tests and in the demo: APIService -> Service
(type ExternalName, externalName: localhost) -> https://localhost:<port>, with the serving
certificate checked against the APIService's caBundle for the SAN <service>.<namespace>.svc.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from subprocess import CompletedProcess
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from certs import files, pki
from tests.support.cluster import Cluster
from tests.support.tls import Seen, TLSServer, serve_tls
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., CompletedProcess[str]]
SERVICE = "platform-api"


def discovery(group: str, version: str) -> Callable[[Seen], tuple[int, Any]]:
    group_version = f"{group}/{version}"
    api_group = {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [{"groupVersion": group_version, "version": version}],
        "preferredVersion": {"groupVersion": group_version, "version": version},
    }
    resources = {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": "widgets",
                "singularName": "widget",
                "namespaced": True,
                "kind": "Widget",
                "verbs": ["get", "list"],
            }
        ],
    }

    def answer(seen: Seen) -> tuple[int, Any]:
        path = seen.path.split("?")[0]
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group]}
        if path == f"/apis/{group}":
            return 200, api_group
        if path == f"/apis/{group_version}":
            return 200, resources
        return 404, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 404,
            "reason": "NotFound",
        }

    return answer


@dataclass
class Aggregated:
    group: str
    server: TLSServer
    ca: pki.KeyPair
    serving: pki.KeyPair


@pytest.fixture
def aggregated(cluster: Cluster, api_client: client.ApiClient, namespace: str) -> Iterator[Aggregated]:
    group = f"{namespace}.platform.driftguard.io"
    ca = pki.new_ca("aggregation-test-ca")
    serving = pki.new_serving_cert(ca, SERVICE, [f"{SERVICE}.{namespace}.svc"])
    front_proxy_ca = files.read_pair(cluster.pki_dir, "front-proxy-ca")
    server = serve_tls(serving, discovery(group, "v1"), client_ca_pem=front_proxy_ca.cert_pem)
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": SERVICE},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": server.port, "protocol": "TCP"}],
            },
        },
    )
    registration = client.ApiregistrationV1Api(api_client)
    registration.create_api_service(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"v1.{group}"},
            "spec": {
                "group": group,
                "version": "v1",
                "service": {"namespace": namespace, "name": SERVICE, "port": server.port},
                "caBundle": base64.b64encode(ca.cert_pem).decode(),
                "groupPriorityMinimum": 1000,
                "versionPriority": 15,
            },
        }
    )
    yield Aggregated(group, server, ca, serving)
    registration.delete_api_service(f"v1.{group}")
    server.stop()


def test_an_apiservice_reaches_a_host_server_through_an_externalname_service(
    aggregated: Aggregated, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    group, server = aggregated.group, aggregated.server
    registration = client.ApiregistrationV1Api(api_client)

    def available() -> list[dict[str, Any]] | None:
        status = registration.read_api_service(f"v1.{group}").status
        conditions = [c.to_dict() for c in (status.conditions or [])] if status else []
        ok = any(c["type"] == "Available" and c["status"] == "True" for c in conditions)
        return conditions if ok else None

    wait_for(available, f"APIService v1.{group} to become Available", timeout=60)

    got = json.loads(kubectl("get", "--raw", f"/apis/{group}/v1").stdout)
    assert got["kind"] == "APIResourceList"
    assert got["groupVersion"] == f"{group}/v1"
    assert [r["name"] for r in got["resources"]] == ["widgets"]

    # The request came through the aggregator: front-proxy client cert plus the user's identity.
    proxied = [
        s for s in server.seen if s.path.startswith(f"/apis/{group}/v1") and "X-Remote-User" in s.headers
    ]
    assert proxied, f"no proxied request among {[(s.path, s.peer_cn) for s in server.seen]}"
    assert {s.peer_cn for s in proxied} == {"front-proxy-client"}
    assert proxied[-1].headers["X-Remote-User"] == "kubernetes-admin"
    assert set(proxied[-1].headers["X-Remote-Group"].split(",")) == {"system:masters", "system:authenticated"}


def test_the_serving_certificate_names_the_service_and_a_direct_client_has_no_proxy_cert(
    aggregated: Aggregated, namespace: str
) -> None:
    sans = aggregated.serving.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [f"{SERVICE}.{namespace}.svc"]

    # A direct TLS client that forges X-Remote-User presents no front-proxy certificate, so the
    # server can tell it apart from the aggregator (driftguard answers such requests 401).
    context = ssl.create_default_context(cadata=aggregated.ca.cert_pem.decode())
    context.check_hostname = False  # the certificate names the Service, not 127.0.0.1
    conn = http.client.HTTPSConnection("127.0.0.1", aggregated.server.port, context=context, timeout=10)
    conn.request("GET", "/apis", headers={"X-Remote-User": "system:admin"})
    assert conn.getresponse().status == 200
    conn.close()
    [forged] = [s for s in aggregated.server.seen if s.headers.get("X-Remote-User") == "system:admin"]
    assert forged.peer_cn is None
