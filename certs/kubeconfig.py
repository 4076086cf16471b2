"""Kubeconfig documents for client-certificate users. Pure: returns dicts; ``files`` writes them."""

from __future__ import annotations

import base64
from typing import Any

from certs.pki import KeyPair


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig(
    server: str,
    ca_pem: bytes,
    client: KeyPair,
    *,
    cluster: str = "driftguard-local",
    user: str = "admin",
    namespace: str | None = None,
) -> dict[str, Any]:
    """A one-context kubeconfig that trusts ``ca_pem`` and authenticates with ``client``."""
    context: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert_pem),
                    "client-key-data": _b64(client.key_pem),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": context}],
        "current-context": cluster,
    }
