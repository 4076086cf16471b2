"""The extension's own CA and serving certificate, kept in a Secret, and caBundle injection into
the APIService and the drift guard's webhook configurations.

On start every replica calls ``ensure_serving_secret``: the first makes the CA and certificate,
the others (and later starts) reuse them, and a certificate in the last third of its life is
re-issued. A create or update that loses a race to another replica re-reads the winner's Secret.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass

from cryptography import x509
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from certs import pki

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingSecret:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


IP_ADDRESSES = ("127.0.0.1",)


def service_dns_names(service: str, namespace: str) -> list[str]:
    svc = f"{service}.{namespace}.svc"
    return [service, f"{service}.{namespace}", svc, f"{svc}.cluster.local", "localhost"]


def _decode(secret: client.V1Secret) -> ServingSecret | None:
    data = secret.data or {}
    try:
        return ServingSecret(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")))
    except (KeyError, ValueError):
        return None


def _usable(current: ServingSecret | None, dns_names: list[str]) -> bool:
    if current is None or pki.needs_rotation(current.cert_pem) or pki.needs_rotation(current.ca_pem):
        return False
    if not pki.issued_by(current.cert_pem, current.ca_pem):
        return False
    sans = pki.load_cert(current.cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # The IP SAN serves webhook URLs on the host (https://127.0.0.1:<port>, the local overlay).
    ips = {str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)}
    return set(dns_names) <= set(sans.value.get_values_for_type(x509.DNSName)) and set(IP_ADDRESSES) <= ips


def ensure_serving_secret(api: client.ApiClient, namespace: str, name: str, service: str) -> ServingSecret:
    core = client.CoreV1Api(api)
    dns_names = service_dns_names(service, namespace)
    for _ in range(3):
        try:
            secret = core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            secret = None
        current = _decode(secret) if secret else None
        if _usable(current, dns_names):
            assert current is not None
            return current
        ca_key = (secret.data or {}).get("ca.key") if secret else None
        ca = None
        if current and ca_key and not pki.needs_rotation(current.ca_pem):
            ca = pki.KeyPair(current.ca_pem, base64.b64decode(ca_key))
        ca = ca or pki.new_ca(f"{service}-ca")
        leaf = pki.new_serving_cert(ca, f"{service}.{namespace}.svc", dns_names, list(IP_ADDRESSES))
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name, namespace=namespace,
                resource_version=secret.metadata.resource_version if secret and secret.metadata else None,
                labels={"app.kubernetes.io/part-of": "driftguard"},
            ),
            type="kubernetes.io/tls",
            data={k: base64.b64encode(v).decode() for k, v in {
                "ca.crt": ca.cert_pem, "ca.key": ca.key_pem,
                "tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem,
            }.items()},
        )  # fmt: skip
        try:
            if secret:
                core.replace_namespaced_secret(name, namespace, body)
                log.info("re-issued the serving certificate in Secret %s/%s", namespace, name)
            else:
                core.create_namespaced_secret(namespace, body)
                log.info("made a CA and serving certificate in Secret %s/%s", namespace, name)
            return ServingSecret(ca.cert_pem, leaf.cert_pem, leaf.key_pem)
        except ApiException as exc:
            if exc.status != 409:
                raise
            log.info("another replica wrote Secret %s/%s first; reading theirs", namespace, name)
    raise RuntimeError(f"could not settle Secret {namespace}/{name} after 3 concurrent writes")


def inject_api_service_ca(api: client.ApiClient, api_service: str, ca_pem: bytes) -> bool:
    """Write the CA into the APIService's caBundle; True when it changed."""
    registration = client.ApiregistrationV1Api(api)
    current = registration.read_api_service(api_service)
    bundle = base64.b64encode(ca_pem).decode()
    if current.spec and current.spec.ca_bundle == bundle:
        return False
    registration.patch_api_service(
        api_service, {"spec": {"caBundle": bundle, "insecureSkipTLSVerify": False}}
    )
    log.info("wrote the CA into APIService %s's caBundle", api_service)
    return True


WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def inject_webhook_ca(api: client.ApiClient, kind: str, name: str, ca_pem: bytes) -> bool:
    """Write the CA into every webhook's clientConfig.caBundle in the ``kind`` configuration
    ``name``; True when one changed. Each change is a JSON Patch guarded by a ``test`` of the
    webhook's name, so a configuration re-applied meanwhile with other webhooks is not corrupted."""
    registration = client.AdmissionregistrationV1Api(api)
    read, patch = {
        "ValidatingWebhookConfiguration": (
            registration.read_validating_webhook_configuration,
            registration.patch_validating_webhook_configuration,
        ),
        "MutatingWebhookConfiguration": (
            registration.read_mutating_webhook_configuration,
            registration.patch_mutating_webhook_configuration,
        ),
    }[kind]
    bundle = base64.b64encode(ca_pem).decode()
    ops: list[dict[str, object]] = []
    current = json.loads(read(name, _preload_content=False).data)  # type: ignore[attr-defined]
    for i, webhook in enumerate(current.get("webhooks") or []):
        if (webhook.get("clientConfig") or {}).get("caBundle") == bundle:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": webhook.get("name")})
        ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle})
    if not ops:
        return False
    patch(name, ops)
    log.info("wrote the CA into the caBundle of %s %s", kind, name)
    return True
