"""The AppProject a benchmark's Applications use: their namespaces, any repository, anything
namespaced in the namespaces it names (Applications in other namespaces than driftguard-system
need a project that lists theirs)."""

from __future__ import annotations

from typing import Any


def project(name: str, namespaces: list[str], destinations: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gitops.driftguard.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": "driftguard-system"},
        "spec": {
            "description": "A benchmark's Applications",
            "sourceNamespaces": namespaces,
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": ns} for ns in destinations],
            **spec,
        },
    }
