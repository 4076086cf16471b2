"""The extension's own CA and serving certificate, kept in a Secret, and caBundle injection into
the APIService and the drift guard's webhook configurations.

On start and every few minutes, every replica calls ``ensure_serving_secret``: the first makes the
CA and certificate, the others (and later calls) reuse them; a certificate in the last third of its
life is re-issued, and a CA in the last third of its life is replaced with an overlap (``settle``).
A create or update that loses a race to another replica re-reads the winner's Secret.
"""

from __future__ import annotations

import base64
import datetime
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
    ca_pem: bytes  # the CA that signed the serving certificate
    cert_pem: bytes
    key_pem: bytes
    bundle_pem: bytes = b""  # every CA kube-apiserver is to trust (the caBundle); ca_pem when empty

    @property
    def ca_bundle(self) -> bytes:
        return self.bundle_pem or self.ca_pem


IP_ADDRESSES = ("127.0.0.1",)
# A new CA is trusted (in every caBundle) this long before it signs the serving certificate, so
# kube-apiserver trusts a replica's certificate whichever CA signed it, before, during and after.
CA_OVERLAP = datetime.timedelta(minutes=10)
NEXT_CA_SINCE = "gitops.driftguard.io/next-ca-since"


def service_dns_names(service: str, namespace: str) -> list[str]:
    svc = f"{service}.{namespace}.svc"
    return [service, f"{service}.{namespace}", svc, f"{svc}.cluster.local", "localhost"]


@dataclass(frozen=True)
class TLSState:
    """What the Secret holds: the signing CA, the serving certificate, the CAs to trust, and during
    a CA rotation the next CA with the time it was first trusted."""

    ca: pki.KeyPair
    leaf: pki.KeyPair
    trusted: tuple[bytes, ...]
    next_ca: pki.KeyPair | None = None
    next_since: datetime.datetime | None = None

    def serving(self) -> ServingSecret:
        return ServingSecret(self.ca.cert_pem, self.leaf.cert_pem, self.leaf.key_pem, b"".join(self.trusted))


def _usable(
    current: ServingSecret | None, dns_names: list[str], now: datetime.datetime | None = None,
    due_ok: bool = False,
) -> bool:  # fmt: skip
    """The serving certificate can stay: signed by the CA, with every name, and not due for
    rotation (or, with ``due_ok``, still valid: the next CA re-issues it soon anyway)."""
    if current is None or not _valid(current.cert_pem, now or datetime.datetime.now(datetime.UTC)):
        return False
    if not due_ok and pki.needs_rotation(current.cert_pem, now):
        return False
    if not pki.issued_by(current.cert_pem, current.ca_pem):
        return False
    sans = pki.load_cert(current.cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # The IP SAN serves webhook URLs on the host (https://127.0.0.1:<port>, the local overlay).
    ips = {str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)}
    return set(dns_names) <= set(sans.value.get_values_for_type(x509.DNSName)) and set(IP_ADDRESSES) <= ips


def _valid(cert_pem: bytes, now: datetime.datetime) -> bool:
    try:
        return pki.remaining(cert_pem, now) > datetime.timedelta(0)
    except pki.CertError:
        return False


def settle(
    current: TLSState | None, service: str, namespace: str, now: datetime.datetime,
    overlap: datetime.timedelta = CA_OVERLAP,
) -> TLSState:  # fmt: skip
    """The state the Secret should hold (pure but for new keys). A CA in the last third of its life
    gets a successor that is trusted at once and signs only after ``overlap``; the old CA stays
    trusted until it expires, so certificates it signed keep working while replicas move over."""
    dns_names = service_dns_names(service, namespace)

    def leaf_of(ca: pki.KeyPair) -> pki.KeyPair:
        return pki.new_serving_cert(ca, f"{service}.{namespace}.svc", dns_names, list(IP_ADDRESSES))

    if current is None or not _valid(current.ca.cert_pem, now):
        # Nothing (or nothing valid) to overlap with: a new CA signs at once.
        ca = pki.new_ca(f"{service}-ca")
        return TLSState(ca, leaf_of(ca), (ca.cert_pem,))
    ca, leaf, next_ca, since = current.ca, current.leaf, current.next_ca, current.next_since
    if next_ca is not None and since is None:
        since = now  # when it was first trusted is lost: the overlap starts again
    if next_ca is not None and since is not None and now - since >= overlap:
        ca, next_ca, since = next_ca, None, None  # trusted everywhere by now: it signs from here on
    elif next_ca is None and pki.needs_rotation(ca.cert_pem, now):
        next_ca, since = pki.new_ca(f"{service}-ca"), now
    during_overlap = next_ca is not None
    if not _usable(ServingSecret(ca.cert_pem, leaf.cert_pem, leaf.key_pem), dns_names, now, during_overlap):
        leaf = leaf_of(ca)
    trusted = [ca.cert_pem, *([next_ca.cert_pem] if next_ca else [])]
    trusted += [c for c in current.trusted if c not in trusted and _valid(c, now)]
    return TLSState(ca, leaf, tuple(trusted), next_ca, since)


_PEM_END = b"-----END CERTIFICATE-----"


def _split_pems(bundle: bytes) -> tuple[bytes, ...]:
    return tuple(part.strip() + b"\n" + _PEM_END + b"\n" for part in bundle.split(_PEM_END) if part.strip())


def _norm(pem: bytes) -> bytes:
    """One certificate's PEM as this module writes it, so equal certificates compare equal."""
    pems = _split_pems(pem)
    return pems[0] if pems else pem


def _decode(secret: client.V1Secret) -> TLSState | None:
    """What the Secret holds, or None when it holds nothing usable (a new CA is made then)."""
    try:
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        ca = pki.KeyPair(_norm(data["ca.crt"]), data["ca.key"])
        leaf = pki.KeyPair(data["tls.crt"], data["tls.key"])
    except (KeyError, ValueError):
        return None
    next_ca = (
        pki.KeyPair(_norm(data["next-ca.crt"]), data["next-ca.key"])
        if "next-ca.key" in data and "next-ca.crt" in data
        else None
    )
    since_text = ((secret.metadata.annotations if secret.metadata else None) or {}).get(NEXT_CA_SINCE)
    try:
        since = datetime.datetime.fromisoformat(since_text) if since_text else None
    except ValueError:
        since = None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=datetime.UTC)
    trusted = tuple(dict.fromkeys(_split_pems(data.get("ca-bundle.crt", b"")))) or (ca.cert_pem,)
    return TLSState(ca, leaf, trusted, next_ca, since)


def _encode(state: TLSState, name: str, namespace: str, resource_version: str | None) -> client.V1Secret:
    data = {
        "ca.crt": state.ca.cert_pem, "ca.key": state.ca.key_pem,
        "tls.crt": state.leaf.cert_pem, "tls.key": state.leaf.key_pem,
        "ca-bundle.crt": b"".join(state.trusted),
    }  # fmt: skip
    if state.next_ca is not None:
        data |= {"next-ca.crt": state.next_ca.cert_pem, "next-ca.key": state.next_ca.key_pem}
    annotations = {NEXT_CA_SINCE: state.next_since.isoformat()} if state.next_since else None
    return client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name, namespace=namespace, resource_version=resource_version, annotations=annotations,
            labels={"app.kubernetes.io/part-of": "driftguard"},
        ),
        type="kubernetes.io/tls",
        data={k: base64.b64encode(v).decode() for k, v in data.items()},
    )  # fmt: skip


def ensure_serving_secret(
    api: client.ApiClient, namespace: str, name: str, service: str, now: datetime.datetime | None = None
) -> ServingSecret:
    """Read the Secret, settle it (see ``settle``) and write it back when that changed anything. A
    write that loses a race to another replica re-reads the winner's Secret."""
    core = client.CoreV1Api(api)
    for _ in range(3):
        try:
            secret = core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            secret = None
        current = _decode(secret) if secret else None
        wanted = settle(current, service, namespace, now or datetime.datetime.now(datetime.UTC))
        if wanted == current:
            return wanted.serving()
        version = secret.metadata.resource_version if secret and secret.metadata else None
        body = _encode(wanted, name, namespace, version)
        try:
            if secret:
                # replace drops the annotation once the rotation is over
                core.replace_namespaced_secret(name, namespace, body)
                log.info("updated Secret %s/%s: %s", namespace, name, _what_changed(current, wanted))
            else:
                core.create_namespaced_secret(namespace, body)
                log.info("made a CA and serving certificate in Secret %s/%s", namespace, name)
            return wanted.serving()
        except ApiException as exc:
            if exc.status != 409:
                raise
            log.info("another replica wrote Secret %s/%s first; reading theirs", namespace, name)
    raise RuntimeError(f"could not settle Secret {namespace}/{name} after 3 concurrent writes")


def _what_changed(before: TLSState | None, after: TLSState) -> str:
    if before is None:
        return "a new CA and serving certificate"
    changes = []
    if after.next_ca is not None and before.next_ca is None:
        changes.append(
            f"a new CA, trusted now and signing in {int(CA_OVERLAP.total_seconds() // 60)} minutes"
        )
    if after.ca != before.ca:
        changes.append("the new CA signs from now on")
    if after.leaf != before.leaf:
        changes.append("re-issued the serving certificate")
    if after.trusted != before.trusted and not changes:
        changes.append("dropped an expired CA from the caBundle")
    return "; ".join(changes) or "rewrote it"


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
