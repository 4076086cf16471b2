"""Applications and AppProjects stored as ConfigMaps in the install namespace, through kube-apiserver.

The cluster's own datastore holds them: the ConfigMap's resourceVersion is the object's, so
optimistic concurrency, watch resume and 410 Gone come from kube-apiserver itself, and any number
of extension replicas serve the same data. Nothing is kept in the pod.

One ConfigMap per Application, named ``<namespace>.<name>`` (a valid, readable name) or, when that
is too long, ``app-<digest>``; one per AppProject, named ``appproject-<digest>`` (never an
Application's: those have a dot or start with ``app-``). Its labels say what it is and which
namespace it belongs to.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import urllib3

from extension.api import errors, jsoncodec
from extension.api.kinds import APPLICATIONS, Kind
from extension.kubehttp import KubeHTTP, close, events, status_of
from extension.namespaces import NamespacePhases

log = logging.getLogger(__name__)

STORAGE_LABEL = "gitops.driftguard.io/storage"
STORAGE_VALUE = APPLICATIONS.storage
NAMESPACE_LABEL = "gitops.driftguard.io/app-namespace"
DATA_KEY = f"{STORAGE_VALUE}.json"
# Only the metadata of each stored object (kube-apiserver's PartialObjectMetadataList), or the full
# list from a server that cannot: either way each item's resourceVersion.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def storage_name(namespace: str, name: str, kind: Kind = APPLICATIONS) -> str:
    joined = f"{namespace}.{name}"
    digest = hashlib.sha256(joined.encode()).hexdigest()[:40]
    if kind is not APPLICATIONS:
        return f"{kind.storage}-{digest}"
    return joined if len(joined) <= 253 else f"app-{digest}"


class Store:
    """CRUD and watch of Applications through kube-apiserver, as the extension's identity."""

    def __init__(
        self,
        http: KubeHTTP,
        namespace: str,
        namespaces: NamespacePhases | None = None,
        kind: Kind = APPLICATIONS,
    ) -> None:
        self.http, self.kind = http, kind
        self._data_key = f"{kind.storage}.json"
        self.namespaces = namespaces
        self.namespace = namespace
        self._base = f"/api/v1/namespaces/{quote(namespace)}/configmaps"
        # Stored ConfigMaps found not to hold the Application they say, by name, at which version:
        # the versions a LIST compares leave them out too, as every read does.
        self._disowned_seen: dict[str, str] = {}

    # --- translation -------------------------------------------------------------------------
    def _to_app(self, cm: dict[str, Any]) -> dict[str, Any]:
        app: dict[str, Any] = jsoncodec.loads((cm.get("data") or {})[self._data_key])
        app["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
        return app

    def _disowned(self, cm: dict[str, Any], app: dict[str, Any]) -> bool:
        """Whether a stored ConfigMap does not hold the Application its name and namespace label
        say (edited by hand): then no read counts it as one, so that a GET, a LIST by namespace and
        the watch agree on what exists. Logged once per version of it."""
        meta, own = cm["metadata"], app["metadata"]
        name, rv = meta.get("name", ""), meta.get("resourceVersion", "")
        label = (meta.get("labels") or {}).get(NAMESPACE_LABEL)
        if label == own.get("namespace") and name == storage_name(label, own.get("name", ""), self.kind):
            return False
        if self._disowned_seen.get(name) != rv:
            self._disowned_seen[name] = rv
            log.warning(
                "ConfigMap %s/%s does not hold the Application its name and label %s=%s say (it "
                "holds %s/%s): left out of every read",
                self.namespace, name, NAMESPACE_LABEL, label, own.get("namespace"), own.get("name"),
            )  # fmt: skip
        return True

    def _to_configmap(self, app: dict[str, Any]) -> dict[str, Any]:
        meta = app["metadata"]
        stored = jsoncodec.loads(jsoncodec.dumps(app))
        stored["metadata"].pop("resourceVersion", None)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": storage_name(meta["namespace"], meta["name"], self.kind),
                "namespace": self.namespace,
                "labels": {STORAGE_LABEL: self.kind.storage, NAMESPACE_LABEL: meta["namespace"]},
            },
            "data": {self._data_key: jsoncodec.dumps(stored, sort_keys=True).decode()},
        }
        if meta.get("resourceVersion"):
            body["metadata"]["resourceVersion"] = meta["resourceVersion"]
        return body

    def _selector(self, namespace: str | None) -> str:
        selector = f"{STORAGE_LABEL}={self.kind.storage}"
        return f"{selector},{NAMESPACE_LABEL}={namespace}" if namespace else selector

    def _call(
        self,
        name: str,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        accept: str = "",
    ) -> Any:
        try:
            response = self.http.send(method, path, query=query, body=body, accept=accept)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise errors.service_unavailable(f"storage unavailable: {exc}") from exc
        if response.status >= 300:
            raise self._translate(response.status, response.data, name)
        return jsoncodec.loads(response.data)

    def _translate(self, code: int, data: bytes, name: str) -> errors.APIError:
        status = status_of(data)
        reason, message = status.get("reason", ""), status.get("message") or f"HTTP {code}"
        if code == 404:
            return errors.not_found(self.kind, name)
        if code == 409 and reason == "AlreadyExists":
            return errors.already_exists(self.kind, name)
        if code == 409:
            return errors.stale(self.kind, name)
        if code == 410:
            return errors.gone(status.get("message", "resource version too old"))
        if code in (401, 403):
            # The extension's own identity lacks a right: an install problem, not the user's.
            log.error("storage call refused by kube-apiserver: %s", message)
            return errors.internal(f"the extension may not use its storage: {message}")
        if code == 422:
            return errors.APIError(422, "Invalid", status.get("message", "invalid"))
        return errors.service_unavailable(f"storage unavailable: {message}")

    # --- verbs -------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any]:
        cm = self._call(name, "GET", f"{self._base}/{quote(storage_name(namespace, name, self.kind))}")
        app = self._to_app(cm)
        if self._disowned(cm, app):
            raise errors.not_found(self.kind, name)
        return app

    def namespace_phase(self, namespace: str) -> str | None:
        """The Namespace's phase (Active, Terminating), or None when it does not exist: from the
        namespace watch when it knows the namespace, read otherwise."""
        known = self.namespaces.known(namespace) if self.namespaces else None
        if known is not None:
            return known
        try:
            ns = self._call(namespace, "GET", f"/api/v1/namespaces/{quote(namespace)}")
        except errors.APIError as exc:
            if exc.code == 404:
                return None
            raise
        return str((ns.get("status") or {}).get("phase") or "Active")

    def list(
        self, namespace: str | None, resource_version: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        query: dict[str, Any] = {"labelSelector": self._selector(namespace)}
        if resource_version:
            query["resourceVersion"] = resource_version
            query["resourceVersionMatch"] = "NotOlderThan"
        found = self._call("", "GET", self._base, query=query)
        apps = [app for cm in found.get("items") or [] if not self._disowned(cm, app := self._to_app(cm))]
        apps.sort(key=lambda a: (a["metadata"]["namespace"], a["metadata"]["name"]))
        return apps, found["metadata"].get("resourceVersion", "")

    def versions(self, namespace: str | None) -> tuple[frozenset[str], str]:
        """The resourceVersion of every stored Application (of one namespace, or all), and the
        list's: a consistent read of the metadata only, to tell whether the index is as new."""
        query = {"labelSelector": self._selector(namespace)}
        found = self._call("", "GET", self._base, query=query, accept=METADATA_LIST)
        versions = frozenset(
            i["metadata"]["resourceVersion"]
            for i in found.get("items") or []
            if self._disowned_seen.get(i["metadata"]["name"]) != i["metadata"]["resourceVersion"]
        )
        return versions, found["metadata"].get("resourceVersion", "")

    def create(self, app: dict[str, Any]) -> dict[str, Any]:
        body = self._to_configmap(app)
        return self._to_app(self._call(app["metadata"]["name"], "POST", self._base, body=body))

    def update(self, app: dict[str, Any]) -> dict[str, Any]:
        """Replace; a resourceVersion in ``app`` is a precondition (stale -> 409 Conflict)."""
        body = self._to_configmap(app)
        path = f"{self._base}/{quote(body['metadata']['name'])}"
        return self._to_app(self._call(app["metadata"]["name"], "PUT", path, body=body))

    def delete(self, app: dict[str, Any]) -> None:
        meta = app["metadata"]
        options = {
            "apiVersion": "v1", "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": meta.get("resourceVersion")},
        }  # fmt: skip
        path = f"{self._base}/{quote(storage_name(meta['namespace'], meta['name'], self.kind))}"
        self._call(meta["name"], "DELETE", path, body=options)

    def watch(
        self,
        namespace: str | None,
        resource_version: str | None,
        timeout_seconds: int,
        send_initial_events: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Watch events translated to Applications. kube-apiserver's ERROR events (410 Gone on a
        compacted resourceVersion) pass through unchanged, so clients re-list as they would."""
        query: dict[str, Any] = {
            "labelSelector": self._selector(namespace),
            "watch": True,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout_seconds,
            "resourceVersion": resource_version or None,
        }
        if send_initial_events:
            # A "watch list" (kubectl wait, client-go informers): kube-apiserver sends the current
            # objects as ADDED, then a bookmark annotated k8s.io/initial-events-end.
            query["sendInitialEvents"] = True
            query["resourceVersionMatch"] = "NotOlderThan"
        # kube-apiserver ends the watch after timeoutSeconds (0: its own default, up to an hour) and
        # sends a bookmark about once a minute: a read that waits longer means the stream is dead.
        read_timeout = (timeout_seconds or 3600) + 30.0
        try:
            response = self.http.send(
                "GET", self._base, query=query, timeout=(10.0, read_timeout), stream=True
            )
            if response.status >= 300:
                data = response.data
                close(response)
                raise self._translate(response.status, data, "")
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise errors.service_unavailable(f"storage unavailable: {exc}") from exc
        try:
            for event in events(response):
                yield self._translate_event(event)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise errors.service_unavailable(f"the storage watch ended: {exc}") from exc
        finally:
            close(response)

    def _translate_event(self, event: dict[str, Any]) -> dict[str, Any]:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            return event
        meta = obj.get("metadata", {})
        if kind == "BOOKMARK":
            # k8s.io/initial-events-end in the annotations ends a watch list
            return _bookmark(self.kind, meta.get("resourceVersion", ""), meta.get("annotations"))
        app = self._to_app(obj)
        disowned = self._disowned(obj, app)
        if kind == "DELETED":
            self._disowned_seen.pop(meta.get("name", ""), None)
        if disowned:
            if kind == "ADDED":
                # A new ConfigMap that holds no Application of its own: nothing changed for a reader.
                return _bookmark(self.kind, meta.get("resourceVersion", ""))
            # A record edited (or deleted) after it held one: its Application is gone from reads.
            key = _named(meta.get("name", ""), app, self.kind)
            if key is None:
                return {"type": "ERROR", "object": errors.gone(
                    f"the storage ConfigMap {meta.get('name')} was edited by hand: list again"
                ).status()}  # fmt: skip
            app["metadata"]["namespace"], app["metadata"]["name"] = key
            kind = "DELETED"
        return {"type": kind, "object": app}


def _named(configmap: str, app: dict[str, Any], kind: Kind) -> tuple[str, str] | None:
    """The object a storage ConfigMap's name stands for: ``<namespace>.<name>`` (a namespace has no
    dots), or a digest, which only the object it was made from can be checked against."""
    if "." in configmap and kind is APPLICATIONS:
        namespace, _, name = configmap.partition(".")
        return namespace, name
    own = app["metadata"]
    if storage_name(own.get("namespace", ""), own.get("name", ""), kind) == configmap:
        return own["namespace"], own["name"]
    return None


def _bookmark(kind: Kind, rv: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": rv}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": kind.kind,
            "apiVersion": kind.api_version,
            "metadata": metadata,
        },
    }
