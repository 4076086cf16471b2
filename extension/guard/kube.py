"""The guard's calls to kube-apiserver: reading the parent of a ``scale`` request, and its seal key.

A Scale carries no labels or managedFields, so for a scale of an object some inventory lists, the
guard reads the object itself, once, to learn whether Git owns ``spec.replicas``. RBAC for it is
``manifests/base/extension-rbac-scale-parents.yaml`` (get on the built-in scalable kinds).

The seal key (``extension.api.seals``) lives in a Secret of the install namespace that the first
extension to start makes; the guard reads it once, the controller reads it too.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import urllib.parse
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from extension.api import seals
from extension.guard.reviews import GroupVersionResource
from extension.guard.verdicts import ParentUnavailable

log = logging.getLogger(__name__)

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


def ensure_seal_secret(api: client.ApiClient, namespace: str) -> None:
    """Make the seal key's Secret unless it exists. Replicas starting together race to create it;
    the loser keeps the winner's."""
    core = client.CoreV1Api(api)
    try:
        core.read_namespaced_secret(seals.SECRET_NAME, namespace)
        return
    except ApiException as exc:
        if exc.status != 404:
            raise
    key = base64.b64encode(secrets.token_bytes(seals.KEY_BYTES)).decode()
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=seals.SECRET_NAME, namespace=namespace),
        type="Opaque",
        data={seals.SECRET_KEY: key},
    )
    try:
        core.create_namespaced_secret(namespace, body)
        log.info("made the drift guard's seal key in Secret %s/%s", namespace, seals.SECRET_NAME)
    except ApiException as exc:
        if exc.status != 409:
            raise


class SealKey:
    """The seal key, read from its Secret and kept for ``keep_seconds`` (as the controller keeps
    it: a Secret made again is picked up by both); None until it could be read (re-read at most
    every ``retry_seconds`` meanwhile)."""

    def __init__(
        self, api: client.ApiClient, namespace: str, retry_seconds: float = 10.0, keep_seconds: float = 600.0
    ) -> None:
        self.api, self.namespace = api, namespace
        self.retry_seconds, self.keep_seconds = retry_seconds, keep_seconds
        self._key: bytes | None = None
        self._read_at = -keep_seconds
        self._lock = threading.Lock()

    def _due(self) -> bool:
        wait = self.keep_seconds if self._key is not None else self.retry_seconds
        return time.monotonic() - self._read_at >= wait

    def __call__(self) -> bytes | None:
        if not self._due():
            return self._key
        with self._lock:
            if self._due():
                self._read_at = time.monotonic()
                try:
                    secret = client.CoreV1Api(self.api).read_namespaced_secret(
                        seals.SECRET_NAME, self.namespace
                    )
                    self._key = base64.b64decode((secret.data or {})[seals.SECRET_KEY]) or None
                except Exception as exc:  # the guard works on with the key it has, or none
                    log.warning("cannot read the seal key %s/%s: %s", self.namespace, seals.SECRET_NAME, exc)
        return self._key
