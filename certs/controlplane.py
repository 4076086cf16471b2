"""The PKI of the local control plane that hack/local-up.sh starts.

``ensure(directory, server)`` makes whatever is missing, expiring or no longer signed by its CA,
and keeps the rest, so running it again is cheap and never invalidates a running cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from certs import files, pki
from certs.kubeconfig import kubeconfig

# The names kube-apiserver's aggregation layer expects (CONTROL-PLANE.md).
FRONT_PROXY_CLIENT_CN = "front-proxy-client"

APISERVER_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
# 10.0.0.1 is the first address of --service-cluster-ip-range: the `kubernetes` Service's
# ClusterIP must be in the cert, even though nothing here ever dials it.
APISERVER_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class Client:
    name: str  # file stem and kubeconfig name
    common_name: str
    organizations: tuple[str, ...] = ()


# Clients signed by the cluster CA; each also gets <name>.kubeconfig.
CLIENTS = (
    Client("admin", "kubernetes-admin", ("system:masters",)),
    Client("kube-controller-manager", "system:kube-controller-manager"),
    Client("kube-scheduler", "system:kube-scheduler"),
    # kwok plays the kubelet of every fake node, across nodes: the Node authorizer would refuse it.
    Client("kwok", "kwok", ("system:masters",)),
)


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _ensure_ca(directory: Path, name: str, cn: str, report: Report) -> tuple[pki.KeyPair, bool]:
    try:
        pair = files.read_pair(directory, name)
        if not pki.needs_rotation(pair.cert_pem):
            report.kept.append(name)
            return pair, False
    except pki.CertError:
        pass
    pair = pki.new_ca(cn)
    files.write_pair(directory, name, pair)
    report.created.append(name)
    return pair, True


def _valid_leaf(directory: Path, name: str, ca: pki.KeyPair) -> pki.KeyPair | None:
    try:
        pair = files.read_pair(directory, name)
    except pki.CertError:
        return None
    if pki.needs_rotation(pair.cert_pem) or not pki.issued_by(pair.cert_pem, ca.cert_pem):
        return None
    return pair


def ensure(directory: Path, server: str) -> Report:
    report = Report()
    directory.mkdir(parents=True, exist_ok=True)
    ca, _ = _ensure_ca(directory, "ca", "driftguard-local-ca", report)
    front_proxy_ca, _ = _ensure_ca(directory, "front-proxy-ca", "driftguard-local-front-proxy-ca", report)

    if _valid_leaf(directory, "apiserver", ca):
        report.kept.append("apiserver")
    else:
        files.write_pair(
            directory,
            "apiserver",
            pki.new_serving_cert(ca, "kube-apiserver", APISERVER_DNS, APISERVER_IPS),
        )
        report.created.append("apiserver")

    if _valid_leaf(directory, "front-proxy-client", front_proxy_ca):
        report.kept.append("front-proxy-client")
    else:
        files.write_pair(
            directory, "front-proxy-client", pki.new_client_cert(front_proxy_ca, FRONT_PROXY_CLIENT_CN)
        )
        report.created.append("front-proxy-client")

    for client in CLIENTS:
        pair = _valid_leaf(directory, client.name, ca)
        if pair:
            report.kept.append(client.name)
        else:
            pair = pki.new_client_cert(ca, client.common_name, client.organizations)
            files.write_pair(directory, client.name, pair)
            report.created.append(client.name)
        # Always rewritten: cheap, and it follows a changed server address.
        files.write_kubeconfig(
            directory / f"{client.name}.kubeconfig", kubeconfig(server, ca.cert_pem, pair, user=client.name)
        )

    if (directory / "sa.key").exists() and (directory / "sa.pub").exists():
        report.kept.append("sa")
    else:
        private, public = pki.new_signing_keypair()
        files.write_atomic(directory / "sa.key", private, 0o600)
        files.write_atomic(directory / "sa.pub", public)
        report.created.append("sa")
    return report
