"""The guard's only call to kube-apiserver: reading the parent of a ``scale`` request.

A Scale carries no labels or managedFields, so for a scale of an object some inventory lists, the
guard reads the object itself, once, to learn whether Git owns ``spec.replicas``. RBAC for it is
``manifests/base/extension-rbac-scale-parents.yaml`` (get on the built-in scalable kinds).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from kubernetes import client

from extension.guard.reviews import GroupVersionResource
from extension.guard.verdicts import ParentUnavailable

# Well inside the scale webhook's timeoutSeconds, so a slow read is our own error, not a timeout.
READ_TIMEOUT_SECONDS = 1.0


class KubeParentReader:
    def __init__(self, api: client.ApiClient, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.api, self.timeout = api, timeout

    def get(self, resource: GroupVersionResource, namespace: str, name: str) -> dict[str, Any] | None:
        group, version, plural = resource["group"], resource["version"], resource["resource"]
        quote = urllib.parse.quote
        path = f"/apis/{quote(group)}/{quote(version)}" if group else f"/api/{quote(version)}"
        if namespace:
            path += f"/namespaces/{quote(namespace)}"
        path += f"/{quote(plural)}/{quote(name)}"
        what = f"{plural}{'.' + group if group else ''} {namespace + '/' if namespace else ''}{name}"
        try:
            method, url, headers, body, post = self.api.param_serialize(
                "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
            )
            response = self.api.call_api(method, url, headers, body, post, _request_timeout=self.timeout)
            data = response.read()  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ParentUnavailable(f"could not read {what}: {exc}") from exc
        if response.status == 404:
            return None
        if response.status != 200:
            raise ParentUnavailable(f"could not read {what}: {response.status} {response.reason}")
        parent: dict[str, Any] = json.loads(data)
        return parent
