"""Discovery documents for /apis, /apis/<group> and /apis/<group>/<version>. Pure."""

from __future__ import annotations

from typing import Any

from extension.api.schema import CATEGORIES, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION

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
    resources: list[dict[str, Any]] = [
        {
            "name": PLURAL,
            "singularName": SINGULAR,
            "namespaced": True,
            "kind": KIND,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": SHORT_NAMES,
            "categories": CATEGORIES,
        },
        {"name": f"{PLURAL}/status", "singularName": "", "namespaced": True, "kind": KIND,
         "verbs": ["get", "patch", "update"]},
        # Operations as subresources: RBAC can grant "may sync" (create applications/sync)
        # without "may edit".
        {"name": f"{PLURAL}/sync", "singularName": "", "namespaced": True, "kind": KIND, "verbs": ["create"]},
        {"name": f"{PLURAL}/rollback", "singularName": "", "namespaced": True, "kind": KIND,
         "verbs": ["create"]},
    ]  # fmt: skip
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": resources,
    }
