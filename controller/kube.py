"""The controller's only door to kube-apiserver: REST calls, discovery, watches and Events.

Every answer that is not 2xx, and every transport error, becomes a :class:`KubeError` carrying
the parsed ``metav1.Status``, so the rest of the controller reasons about reasons (NotFound,
Conflict, Invalid, Forbidden), never about HTTP. Decisions live elsewhere.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config

from extension.api import jsoncodec
from extension.api.schema import GROUP, PLURAL, VERSION
from extension.api.tracking import FIELD_MANAGER, IMPERSONATED_BY
from extension.kubehttp import KubeHTTP, close, events, status_of

log = logging.getLogger(__name__)

APPS_PATH = f"/apis/{GROUP}/{VERSION}"


class KubeError(Exception):
    """A failed call, with kube's Status: ``reason`` is NotFound, Conflict, Invalid, Forbidden..."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    @property
    def temporary(self) -> bool:
        return self.code in (0, 429, 500, 502, 503, 504) or self.reason in ("Timeout", "ServerTimeout")


@dataclass(frozen=True)
class Resource:
    """A kind as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        return base + (f"/{quote(name)}" if name else "")


def load_client(kubeconfig: str | None) -> client.ApiClient:
    if kubeconfig:
        api: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return api
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


@dataclass
class _Discovery:
    """What discovery found, shared by a Kube and its impersonating copies."""

    resources: dict[tuple[str, str], Resource] = field(default_factory=dict)
    discovered_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Kube:
    """Thin REST over one ``ApiClient``'s pool and credentials; thread-safe (urllib3's pool is)."""

    def __init__(self, api: client.ApiClient, *, timeout: float = 30.0) -> None:
        self.http = KubeHTTP(api, user_agent=f"{FIELD_MANAGER}/v1alpha1")
        self.timeout = timeout
        self.user = ""  # whom every request impersonates; empty: the controller itself
        self._discovery = _Discovery()

    def _impersonation(self) -> dict[str, str] | None:
        if not self.user:
            return None
        return {"Impersonate-User": self.user, f"Impersonate-Extra-{IMPERSONATED_BY}": FIELD_MANAGER}

    def impersonating(self, user: str) -> Kube:
        """The same client acting as ``user`` (``Impersonate-User``): kube-apiserver authorizes
        every request as that user, so its RBAC has the last word. The user extra IMPERSONATED_BY
        tells the drift guard that the controller sent it. Discovery stays shared."""
        copied = copy.copy(self)
        copied.user = user
        return copied

    # --- raw calls ----------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, query: dict[str, Any], body: Any, content_type: str, timeout: Any,
        stream: bool = False,
    ) -> Any:  # fmt: skip
        """The urllib3 response (not read yet when ``stream``); a non-2xx status raises
        :class:`KubeError`."""
        try:
            response = self.http.send(
                method, path, query=query, body=body, content_type=content_type, timeout=timeout,
                stream=stream, headers=self._impersonation(),
            )  # fmt: skip
            if response.status >= 300:
                data = response.data
                response.release_conn()
                status = status_of(data)
                raise KubeError(
                    response.status, str(status.get("reason") or response.reason or "Unknown"),
                    str(status.get("message") or response.reason or "no message"),
                )  # fmt: skip
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, reset, timed out
            raise KubeError(0, "ServiceUnavailable", f"{method} {path}: {exc}") from exc
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        response = self._send(method, path, query or {}, body, content_type, timeout or self.timeout)
        data = response.data
        response.release_conn()
        return jsoncodec.loads(data) if data else None

    def stream(self, path: str, query: dict[str, Any], timeout: float) -> Iterator[dict[str, Any]]:
        """A watch, event by event; ends when the server closes it."""
        response = self._send(
            "GET", path, {**query, "watch": "true"}, None, "application/json", (10, timeout + 30), stream=True
        )
        try:
            yield from events(response)
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # reset, ended early, read timeout
            raise KubeError(0, "ServiceUnavailable", f"watch {path}: {exc}") from exc
        finally:
            close(response)

    # --- discovery ----------------------------------------------------------------------------
    def _discover(self) -> None:
        """Every kind the server serves, read as the controller itself (an impersonated
        ServiceAccount's view would be shared by every Application)."""
        own = self.impersonating("") if self.user else self
        found: dict[tuple[str, str], Resource] = {}
        versions: list[tuple[str, str]] = [("", v) for v in own.request("GET", "/api")["versions"]]
        for group in own.request("GET", "/apis")["groups"]:
            versions.append((group["name"], group["preferredVersion"]["version"]))
        for group, version in versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = own.request("GET", path)
            except KubeError as exc:  # an unavailable aggregated API must not stop the rest
                log.warning("discovery of %s failed: %s", path, exc.message)
                continue
            for res in listing.get("resources") or []:
                if "/" in res["name"]:
                    continue
                key = (group, res["kind"])
                found.setdefault(key, Resource(
                    group, version, res["kind"], res["name"], bool(res.get("namespaced")),
                    frozenset(res.get("verbs") or ()),
                ))  # fmt: skip
        self._discovery.resources, self._discovery.discovered_at = found, time.monotonic()

    def resource(self, group: str, kind: str) -> Resource | None:
        """The resource serving ``kind`` in ``group``; discovery is refreshed when a kind is
        unknown (a CRD applied a moment ago), at most every 5 seconds."""
        with self._discovery.lock:
            found = self._discovery.resources.get((group, kind))
            if found is None and time.monotonic() - self._discovery.discovered_at > 5:
                self._discover()
                found = self._discovery.resources.get((group, kind))
            return found

    def resource_for(self, obj: dict[str, Any], wait: float = 0.0) -> Resource:
        """The resource serving ``obj``'s kind; with ``wait``, discovery is asked again (every
        second, up to ``wait`` seconds) for a kind a CRD established a moment ago."""
        api_version = str(obj.get("apiVersion") or "")
        group = api_version.rpartition("/")[0]
        deadline = time.monotonic() + wait
        while (res := self.resource(group, str(obj.get("kind")))) is None and time.monotonic() < deadline:
            time.sleep(1.0)
            with self._discovery.lock:
                self._discovery.discovered_at = 0.0  # the next lookup discovers again
        if res is None:
            raise KubeError(
                404, "NotFound", f"the server has no resource for {obj.get('kind')} in {api_version}"
            )
        return res

    # --- objects ------------------------------------------------------------------------------
    def _get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when it does not exist."""
        try:
            found: dict[str, Any] = self.request("GET", path)
        except KubeError as exc:
            if exc.code == 404:
                return None
            raise
        return found

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(res.path(namespace, name))

    def list(self, res: Resource, label_selector: str = "") -> dict[str, Any]:
        listing: dict[str, Any] = self.request(
            "GET", res.path(), query={"labelSelector": label_selector or None}
        )
        return listing

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False, force: bool = True) -> dict[str, Any]:
        """Server-side apply under the controller's field manager."""
        res = self.resource_for(obj)
        meta = obj["metadata"]
        query = {"fieldManager": FIELD_MANAGER, "force": "true" if force else None}
        if dry_run:
            query["dryRun"] = "All"
        applied: dict[str, Any] = self.request(
            "PATCH", res.path(meta.get("namespace", ""), meta["name"]), query=query,
            body=obj, content_type="application/apply-patch+yaml",
        )  # fmt: skip
        return applied

    def patch(
        self, res: Resource, namespace: str, name: str, patch: Any, *, json_patch: bool = False
    ) -> dict[str, Any]:
        """A merge patch, or with ``json_patch`` a JSON patch (whose ``test`` operations are
        preconditions: a failed one answers 422)."""
        content_type = "application/json-patch+json" if json_patch else "application/merge-patch+json"
        patched: dict[str, Any] = self.request(
            "PATCH", res.path(namespace, name), query={"fieldManager": FIELD_MANAGER},
            body=patch, content_type=content_type,
        )  # fmt: skip
        return patched

    def delete(self, res: Resource, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete in the background; False when it was already gone. ``uid`` makes sure the object
        deleted is the one the inventory recorded, not a namesake created since."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", res.path(namespace, name), body=body)
        except KubeError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    # --- applications -------------------------------------------------------------------------
    def app_path(self, namespace: str = "", name: str = "", sub: str = "") -> str:
        path = APPS_PATH + (f"/namespaces/{namespace}" if namespace else "") + f"/{PLURAL}"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def get_app(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.app_path(namespace, name))

    def put_app(self, app: dict[str, Any], sub: str = "") -> dict[str, Any]:
        meta = app["metadata"]
        written: dict[str, Any] = self.request(
            "PUT", self.app_path(meta["namespace"], meta["name"], sub), body=app,
            query={"fieldManager": FIELD_MANAGER},
        )  # fmt: skip
        return written

    # --- events -------------------------------------------------------------------------------
    def event(self, regarding: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on an object (``kubectl describe`` lists them). Best effort: failing to
        report must never fail a sync."""
        meta = regarding.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": regarding.get("apiVersion"), "kind": regarding.get("kind"),
                "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type, "reason": reason, "message": message[:1024],
            "source": {"component": FIELD_MANAGER}, "reportingComponent": FIELD_MANAGER,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }  # fmt: skip
        try:
            self.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body)
        except KubeError as exc:
            log.warning(
                "[%s/%s] could not record Event %s: %s", namespace, meta.get("name"), reason, exc.message
            )
