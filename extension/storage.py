"""Applications stored as ConfigMaps in the install namespace, through kube-apiserver.

The cluster's own datastore holds them: the ConfigMap's resourceVersion is the Application's,
so optimistic concurrency, watch resume and 410 Gone come from kube-apiserver itself, and any
number of extension replicas serve the same data. Nothing is kept in the pod.

One ConfigMap per Application, named ``<namespace>.<name>`` (a valid, readable name) or, when that
is too long, ``app-<digest>``. Its labels say what it is and which namespace it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from extension.api import errors, jsoncodec

log = logging.getLogger(__name__)

STORAGE_LABEL = "gitops.driftguard.io/storage"
STORAGE_VALUE = "application"
NAMESPACE_LABEL = "gitops.driftguard.io/app-namespace"
DATA_KEY = "application.json"


def storage_name(namespace: str, name: str) -> str:
    joined = f"{namespace}.{name}"
    if len(joined) <= 253:
        return joined
    return "app-" + hashlib.sha256(joined.encode()).hexdigest()[:40]


def _status_of(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


class Store:
    """CRUD and watch of Applications over a ``CoreV1Api`` bound to the extension's identity."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    # --- translation -------------------------------------------------------------------------
    def _to_app(self, cm: dict[str, Any]) -> dict[str, Any]:
        app: dict[str, Any] = jsoncodec.loads((cm.get("data") or {})[DATA_KEY])
        app["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
        return app

    def _to_configmap(self, app: dict[str, Any]) -> dict[str, Any]:
        meta = app["metadata"]
        stored = jsoncodec.loads(jsoncodec.dumps(app))
        stored["metadata"].pop("resourceVersion", None)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": storage_name(meta["namespace"], meta["name"]),
                "namespace": self.namespace,
                "labels": {STORAGE_LABEL: STORAGE_VALUE, NAMESPACE_LABEL: meta["namespace"]},
            },
            "data": {DATA_KEY: jsoncodec.dumps(stored, sort_keys=True).decode()},
        }
        if meta.get("resourceVersion"):
            body["metadata"]["resourceVersion"] = meta["resourceVersion"]
        return body

    def _selector(self, namespace: str | None) -> str:
        selector = f"{STORAGE_LABEL}={STORAGE_VALUE}"
        return f"{selector},{NAMESPACE_LABEL}={namespace}" if namespace else selector

    def _call(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_preload_content", False)
        try:
            response = fn(*args, **kwargs)
        except ApiException as exc:
            raise self._translate(exc, name) from exc
        return jsoncodec.loads(response.data)

    def _translate(self, exc: ApiException, name: str) -> errors.APIError:
        status = _status_of(exc)
        reason = status.get("reason", "")
        if exc.status == 404:
            return errors.not_found(name)
        if exc.status == 409 and reason == "AlreadyExists":
            return errors.already_exists(name)
        if exc.status == 409:
            return errors.stale(name)
        if exc.status == 410:
            return errors.gone(status.get("message", "resource version too old"))
        if exc.status in (401, 403):
            # The extension's own identity lacks a right: an install problem, not the user's.
            log.error("storage call refused by kube-apiserver: %s", status.get("message", exc.reason))
            return errors.internal(
                f"the extension may not use its storage: {status.get('message', exc.reason)}"
            )
        if exc.status == 422:
            return errors.APIError(422, "Invalid", status.get("message", "invalid"))
        return errors.service_unavailable(f"storage unavailable: {status.get('message', exc.reason)}")

    # --- verbs -------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any]:
        cm = self._call(
            name, self.core.read_namespaced_config_map, storage_name(namespace, name), self.namespace
        )
        if (cm["metadata"].get("labels") or {}).get(NAMESPACE_LABEL) != namespace:
            raise errors.not_found(name)
        return self._to_app(cm)

    def namespace_phase(self, namespace: str) -> str | None:
        """The Namespace's phase (Active, Terminating), or None when it does not exist."""
        try:
            ns = self.core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._translate(exc, namespace) from exc
        return (ns.status.phase if ns.status else None) or "Active"

    def list(
        self, namespace: str | None, resource_version: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        kwargs: dict[str, Any] = {"label_selector": self._selector(namespace)}
        if resource_version:
            kwargs["resource_version"] = resource_version
            kwargs["resource_version_match"] = "NotOlderThan"
        found = self._call("", self.core.list_namespaced_config_map, self.namespace, **kwargs)
        apps = [self._to_app(cm) for cm in found.get("items") or []]
        apps.sort(key=lambda a: (a["metadata"]["namespace"], a["metadata"]["name"]))
        return apps, found["metadata"].get("resourceVersion", "")

    def create(self, app: dict[str, Any]) -> dict[str, Any]:
        name = app["metadata"]["name"]
        return self._to_app(
            self._call(name, self.core.create_namespaced_config_map, self.namespace, self._to_configmap(app))
        )

    def update(self, app: dict[str, Any]) -> dict[str, Any]:
        """Replace; a resourceVersion in ``app`` is a precondition (stale -> 409 Conflict)."""
        meta = app["metadata"]
        body = self._to_configmap(app)
        return self._to_app(
            self._call(
                meta["name"],
                self.core.replace_namespaced_config_map,
                body["metadata"]["name"],
                self.namespace,
                body,
            )
        )

    def delete(self, app: dict[str, Any]) -> None:
        meta = app["metadata"]
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=meta.get("resourceVersion"))
        )
        self._call(
            meta["name"],
            self.core.delete_namespaced_config_map,
            storage_name(meta["namespace"], meta["name"]),
            self.namespace,
            body=options,
        )

    def watch(
        self,
        namespace: str | None,
        resource_version: str | None,
        timeout_seconds: int,
        send_initial_events: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Watch events translated to Applications. kube-apiserver's ERROR events (410 Gone on a
        compacted resourceVersion) pass through unchanged, so clients re-list as they would."""
        kwargs: dict[str, Any] = {
            "label_selector": self._selector(namespace),
            "watch": True,
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds,
            "_preload_content": False,
        }
        if resource_version:
            kwargs["resource_version"] = resource_version
        if send_initial_events:
            # A "watch list" (kubectl wait, client-go informers): kube-apiserver sends the current
            # objects as ADDED, then a bookmark annotated k8s.io/initial-events-end.
            kwargs["send_initial_events"] = True
            kwargs["resource_version_match"] = "NotOlderThan"
        try:
            # _preload_content=False: the raw urllib3 response, streamed line by line.
            response: Any = self.core.list_namespaced_config_map(self.namespace, **kwargs)
        except ApiException as exc:
            raise self._translate(exc, "") from exc
        try:
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield self._translate_event(jsoncodec.loads(line))
        finally:
            response.release_conn()

    def _translate_event(self, event: dict[str, Any]) -> dict[str, Any]:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            return event
        if kind == "BOOKMARK":
            meta = obj.get("metadata", {})
            bookmark: dict[str, Any] = {"resourceVersion": meta.get("resourceVersion", "")}
            if meta.get("annotations"):  # k8s.io/initial-events-end ends a watch list
                bookmark["annotations"] = meta["annotations"]
            return {
                "type": "BOOKMARK",
                "object": {
                    "kind": "Application",
                    "apiVersion": "gitops.driftguard.io/v1alpha1",
                    "metadata": bookmark,
                },
            }
        return {"type": kind, "object": self._to_app(obj)}
