"""Discovery documents for /apis, /apis/<group> and /apis/<group>/<version>. Pure."""

from __future__ import annotations

from typing import Any

from extension.api.kinds import KINDS
from extension.api.schema import GROUP, VERSION

GROUP_VERSION = f"{GROUP}/{VERSION}"


def api_group() -> dict[str, Any]:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [version],
        "preferredVersion": version,
    }


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group()]}


def api_resource_list() -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in KINDS:
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.singular,
                "namespaced": True,
                "kind": kind.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": list(kind.short_names),
                "categories": list(kind.categories),
            }
        )
        if kind.status:
            resources.append(
                {
                    "name": f"{kind.plural}/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": kind.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        # Operations as subresources: RBAC can grant "may sync" (create applications/sync)
        # without "may edit".
        for operation in kind.operations:
            resources.append(
                {
                    "name": f"{kind.plural}/{operation}",
                    "singularName": "",
                    "namespaced": True,
                    "kind": kind.kind,
                    "verbs": ["create"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": resources,
    }
