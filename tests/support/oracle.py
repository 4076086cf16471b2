"""kube-apiserver as the oracle for our server-side apply: a CRD that serves our Application schema
in another group, and a way to talk to it over HTTPS as the local control plane's admin."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any

from extension.api.schema import APPLICATION_SCHEMA

ORACLE_GROUP = "ssa-oracle.driftguard.io"


def oracle_crd(group: str = ORACLE_GROUP) -> dict[str, Any]:
    schema = json.loads(json.dumps(APPLICATION_SCHEMA))
    schema["properties"]["metadata"] = {"type": "object"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"applications.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "applications", "singular": "application", "kind": "Application"},
            "scope": "Namespaced",
            "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}}],
        },
    }  # fmt: skip


def request(pki: Path, method: str, path: str, body: bytes | None, content_type: str) -> tuple[int, Any]:
    """One request to kube-apiserver on 127.0.0.1:6443 as the admin: the status and the JSON answer."""
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", 6443, context=context, timeout=30)
    try:
        conn.request(
            method, path, body=body, headers={"Content-Type": content_type, "Accept": "application/json"}
        )
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"message": raw.decode(errors="replace")}
