"""kube-apiserver calls an admission webhook on the host through ``clientConfig.url``."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from subprocess import CompletedProcess

import pytest
from kubernetes import client

from certs import pki
from tests.support.tls import Seen, TLSServer, serve_tls
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., CompletedProcess[str]]
DENIAL = "ConfigMap {name} is managed by Git: change it there"


def deny_labelled(seen: Seen) -> tuple[int, dict[str, object]]:
    review = json.loads(seen.body)
    request = review["request"]
    name = request["name"]
    response: dict[str, object] = {"uid": request["uid"], "allowed": False}
    response["status"] = {"code": 403, "message": DENIAL.format(name=name)}
    return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


@pytest.fixture
def webhook_server() -> Iterator[tuple[TLSServer, pki.KeyPair]]:
    ca = pki.new_ca("webhook-test-ca")
    server = serve_tls(pki.new_serving_cert(ca, "webhook", ip_addresses=["127.0.0.1"]), deny_labelled)
    yield server, ca
    server.stop()


def test_a_url_webhook_on_the_host_denies_and_kubectl_shows_its_message(
    api_client: client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    webhook_server: tuple[TLSServer, pki.KeyPair],
) -> None:
    server, ca = webhook_server
    name = f"deny-{namespace}.test.driftguard.io"
    admission = client.AdmissionregistrationV1Api(api_client)
    admission.create_validating_webhook_configuration(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": name,
                    "clientConfig": {
                        "url": f"{server.url}/validate",
                        "caBundle": base64.b64encode(ca.cert_pem).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "objectSelector": {"matchLabels": {"guarded": "yes"}},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    try:
        # The configuration reaches the apiserver's admission chain shortly after it is stored;
        # server-side dry runs probe for that without creating anything.
        manifest = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: {namespace}\n"
            "  labels: {guarded: 'yes'}\ndata: {k: v}\n"
        )

        def rejected() -> CompletedProcess[str] | None:
            result = kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
            return result if "denied the request" in result.stderr else None

        result = wait_for(rejected, "the webhook to reject a labelled ConfigMap (server dry-run)", timeout=30)
        assert f'admission webhook "{name}" denied the request' in result.stderr
        assert DENIAL.format(name="app-config") in result.stderr

        real = kubectl("apply", "-f", "-", input=manifest, check=False)
        assert real.returncode != 0
        assert DENIAL.format(name="app-config") in real.stderr
        unlabelled = kubectl(
            "create", "configmap", "free", "-n", namespace, "--from-literal=k=v", check=False
        )
        assert unlabelled.returncode == 0, unlabelled.stderr

        reviews = [json.loads(s.body) for s in server.seen if s.path.split("?")[0] == "/validate"]
        assert reviews, "the webhook server saw no AdmissionReview"
        assert all(r["request"]["namespace"] == namespace for r in reviews)
        assert not any(r["request"]["name"] == "free" for r in reviews), "the objectSelector did not filter"
    finally:
        admission.delete_validating_webhook_configuration(name)
