"""kube-apiserver as the user's kubeconfig reaches it, for the plugin: JSON in and out, errors as
kubectl prints them. The only I/O of the plugin besides the terminal."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import config

from extension.api import jsoncodec
from extension.kubehttp import KubeHTTP, close, events, status_of

GROUP, VERSION = "gitops.driftguard.io", "v1alpha1"
API = f"/apis/{GROUP}/{VERSION}"
RESOURCE = f"applications.{GROUP}"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class CLIError(Exception):
    """A failure to print as kubectl does, then exit 1."""


@dataclass(frozen=True)
class Flags:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    as_user: str | None = None
    as_groups: tuple[str, ...] = ()


def _kubeconfig(flags: Flags) -> str:
    """--kubeconfig, else $KUBECONFIG (every file it lists, merged, as kubectl does), else ~/.kube/config."""
    return flags.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


class Kube:
    def __init__(self, flags: Flags) -> None:
        path = _kubeconfig(flags)
        try:
            api = config.new_client_from_config(config_file=path, context=flags.context)  # type: ignore[no-untyped-call]
            contexts, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise CLIError(f"error: cannot use the kubeconfig {path}: {exc}") from None
        chosen = (
            next((c for c in contexts if c["name"] == flags.context), current) if flags.context else current
        )
        self.namespace = flags.namespace or (chosen or {}).get("context", {}).get("namespace") or "default"
        self.http = KubeHTTP(api, user_agent="kubectl-driftguard/v1alpha1")
        self.headers: dict[str, str] = {}
        if flags.as_user:
            self.headers["Impersonate-User"] = flags.as_user
        if len(flags.as_groups) > 1:
            raise CLIError("error: --as-group takes one group")
        for group in flags.as_groups:
            self.headers["Impersonate-Group"] = group
        self._discovery: dict[str, list[dict[str, Any]] | None] = {}
        self._openapi_paths: dict[str, Any] | None = None
        self._groups: list[dict[str, Any]] | None = None

    def call(self, method: str, path: str, body: Any = None, *, accept: str = "",
             content_type: str = "application/json", query: dict[str, Any] | None = None) -> Any:  # fmt: skip
        try:
            response = self.http.send(
                method, path, body=body, accept=accept, content_type=content_type, query=query,
                headers=self.headers,
            )  # fmt: skip
        except urllib3.exceptions.HTTPError as exc:
            raise CLIError(f"error: the server at {self.http.base} could not be reached: {exc}") from None
        if response.status >= 400:
            status = status_of(response.data)
            reason = status.get("reason") or "Unknown"
            message = status.get("message") or response.data.decode(errors="replace")[:500]
            raise CLIError(f"Error from server ({reason}): {message}")
        return jsoncodec.loads(response.data) if response.data else None

    # --- Applications -----------------------------------------------------------------------
    def app_path(self, name: str = "", namespace: str | None = None) -> str:
        base = f"{API}/namespaces/{namespace or self.namespace}/applications"
        return f"{base}/{name}" if name else base

    def app(self, name: str) -> dict[str, Any]:
        try:
            return dict(self.call("GET", self.app_path(name)))
        except CLIError as exc:
            if "(NotFound)" in str(exc):
                raise CLIError(f'{exc} in namespace "{self.namespace}" (use -n to look elsewhere)') from None
            raise

    def until(
        self, name: str, done: Callable[[dict[str, Any]], bool], timeout: float,
        progress: Callable[[dict[str, Any]], None] = lambda app: None,
    ) -> dict[str, Any] | None:  # fmt: skip
        """Follows the Application through a watch, so that every status the controller writes is
        seen (a sync's steps go by fast), until ``done`` says so (it) or the timeout passes (None).
        ``progress`` sees each version, and again each second when nothing changes."""
        deadline = time.monotonic() + timeout
        app = self.app(name)
        while True:
            progress(app)
            if done(app):
                return app
            if time.monotonic() >= deadline:
                return None
            app = self._next(name, app) or app

    def _next(self, name: str, app: dict[str, Any]) -> dict[str, Any] | None:
        """The Application's next version after ``app``, or None when none came within a second."""
        query = {
            "watch": True, "fieldSelector": f"metadata.name={name}", "allowWatchBookmarks": False,
            "resourceVersion": app["metadata"].get("resourceVersion"), "timeoutSeconds": 60,
        }  # fmt: skip
        try:
            response = self.http.send(
                "GET", self.app_path(), query=query, headers=self.headers, stream=True, timeout=(10.0, 1.0)
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
                return None  # a watch's headers come with its first event: none within a second
            raise CLIError(f"error: the server at {self.http.base} could not be reached: {exc}") from None
        try:
            if response.status >= 400:
                status = status_of(response.read())
                raise CLIError(
                    f"Error from server ({status.get('reason') or 'Unknown'}): {status.get('message')}"
                )
            for event in events(response):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind in ("ADDED", "MODIFIED"):
                    return dict(obj)
                if kind == "DELETED":
                    raise CLIError(f'error: application "{name}" was deleted in namespace "{self.namespace}"')
                if kind == "ERROR":  # 410 Gone: too old to watch from; read it again
                    return self.app(name)
            return None
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError):
            return None  # nothing within a second (or the watch ended): the caller ticks, then watches on
        finally:
            close(response)

    # --- any kind: discovery, objects, schemas -------------------------------------------------
    def api_resources(self, group_version: str) -> list[dict[str, Any]] | None:
        """The resources discovery lists for ``v1`` or ``GROUP/VERSION`` (subresources left out),
        None when the server does not serve that version."""
        if group_version not in self._discovery:
            prefix = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
            try:
                listing = self.call("GET", prefix)
            except CLIError as exc:
                if "(NotFound)" not in str(exc):
                    raise
                listing = None
            self._discovery[group_version] = (
                None if listing is None else [r for r in listing.get("resources", []) if "/" not in r["name"]]
            )
        return self._discovery[group_version]

    def preferred_version(self, group: str) -> str | None:
        """``v1`` for the core group, else the group's preferred ``GROUP/VERSION``; None when the
        server does not serve the group."""
        if not group:
            return "v1"
        for found in self.groups():
            if found["name"] == group:
                return str(found["preferredVersion"]["groupVersion"])
        return None

    def groups(self) -> list[dict[str, Any]]:
        """The API groups discovery lists under /apis (read once)."""
        if self._groups is None:
            self._groups = list(self.call("GET", "/apis").get("groups", []))
        return self._groups

    def object_path(self, group_version: str, kind: str, namespace: str, name: str) -> str | None:
        """The path of one object of ``kind`` as discovery serves it, None when the server has no
        such kind (in that version)."""
        for res in self.api_resources(group_version) or []:
            if res["kind"] == kind:
                base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
                where = f"/namespaces/{namespace}" if res["namespaced"] and namespace else ""
                return f"{base}{where}/{res['name']}/{name}"
        return None

    def get_object(self, path: str) -> dict[str, Any] | None:
        """The object at ``path`` as the user may read it, None when it does not exist; any other
        answer (Forbidden, say) is a CLIError as kubectl prints it."""
        try:
            return dict(self.call("GET", path))
        except CLIError as exc:
            if str(exc).startswith("Error from server (NotFound)"):
                return None
            raise

    def openapi(self, group_version: str) -> dict[str, Any] | None:
        """The OpenAPI v3 document of ``v1`` or ``GROUP/VERSION``, None when it cannot be read."""
        key = f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"
        try:
            if self._openapi_paths is None:
                self._openapi_paths = dict(self.call("GET", "/openapi/v3").get("paths") or {})
            url = (self._openapi_paths.get(key) or {}).get("serverRelativeURL")
            if not url:
                return None
            path, _, query = str(url).partition("?")
            hashed = dict(part.partition("=")[::2] for part in query.split("&") if part)
            return dict(self.call("GET", path, query=hashed or None))
        except CLIError:
            return None

    # --- any kind, for break-glass ------------------------------------------------------------
    def resource_for(self, kind: str) -> tuple[str, bool, str]:
        """(the collection's path prefix, e.g. ``/apis/apps/v1/deployments``, namespaced, Kind) of
        the resource a kind, plural, singular or short name names, as kubectl resolves it through
        discovery."""
        wanted = kind.lower()
        groups = [("", "v1")] + [(g["name"], g["preferredVersion"]["groupVersion"]) for g in self.groups()]
        group_hint = ""
        if "." in wanted:
            wanted, group_hint = wanted.split(".", 1)
        for group, group_version in groups:
            if group_hint and group != group_hint:
                continue
            try:
                listing = self.api_resources(group_version)
            except CLIError:
                continue
            for res in listing or []:
                names = {
                    res["name"],
                    res.get("singularName", ""),
                    res["kind"].lower(),
                    *res.get("shortNames", []),
                }
                if wanted in names:
                    prefix = f"/apis/{group_version}" if group else "/api/v1"
                    return f"{prefix}/{res['name']}", bool(res["namespaced"]), res["kind"]
        raise CLIError(f'error: the server doesn\'t have a resource type "{kind}"')
