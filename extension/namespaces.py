"""Namespace phases from a watch, as kube-apiserver's NamespaceLifecycle admission keeps them.

A create of an Application is refused in a namespace that does not exist or is being deleted. The
phase comes from this watch when it knows the namespace; a namespace it does not know (created a
moment ago, or the watch is down) is read from kube-apiserver, so a burst of creates costs no read
each, and a namespace that starts terminating is known within the watch's delay.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import urllib3

from extension.api import jsoncodec
from extension.kubehttp import Gone, KubeHTTP, close, events, list_and_watch_forever

log = logging.getLogger(__name__)

PATH = "/api/v1/namespaces"
WATCH_SECONDS = 60


def _phase(namespace: dict[str, Any]) -> str:
    return str((namespace.get("status") or {}).get("phase") or "Active")


class NamespacePhases:
    def __init__(self, http: KubeHTTP) -> None:
        self.http = http
        self._phases: dict[str, str] = {}
        self.healthy = False
        self._stop = threading.Event()

    def known(self, name: str) -> str | None:
        """The phase the watch knows for ``name``, or None when it does not know the namespace."""
        return self._phases.get(name) if self.healthy else None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="namespaces", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        list_and_watch_forever(self._list_and_watch, self._stop, self._failed, self._stop.wait)

    def _failed(self, exc: Exception, backoff: float) -> None:  # read them one by one meanwhile
        self.healthy = False
        log.warning("namespace watch: %s; reading namespaces per create, retrying in %.1fs", exc, backoff)

    def _list_and_watch(self) -> None:
        """List, then watch until stopped. The phases are believed only while a watch is open:
        between two, namespaces are read."""
        self.healthy = False
        response = self.http.send("GET", PATH)
        if response.status >= 300:
            raise RuntimeError(f"listing namespaces: HTTP {response.status}")
        listing = jsoncodec.loads(response.data)
        self._phases = {ns["metadata"]["name"]: _phase(ns) for ns in listing.get("items") or []}
        rv = str(listing["metadata"]["resourceVersion"])
        while not self._stop.is_set():
            self.healthy = False
            # The server ends each watch within WATCH_SECONDS: a read that waits longer than that
            # means a dead connection, and the phases are not believed past it.
            query = {"watch": True, "resourceVersion": rv, "allowWatchBookmarks": True,
                     "timeoutSeconds": WATCH_SECONDS}  # fmt: skip
            response = self.http.send(
                "GET", PATH, query=query, timeout=(10.0, WATCH_SECONDS + 30.0), stream=True
            )
            try:
                if response.status >= 300:
                    raise RuntimeError(f"watching namespaces: HTTP {response.status}")
                self.healthy = True
                for event in events(response):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        self.healthy = False
                        message = f"the namespace watch: {obj.get('message', obj)}"
                        # 410 Gone: what changed since is unknown, list again at once.
                        raise Gone(message) if obj.get("code") == 410 else RuntimeError(message)
                    rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                    name = obj.get("metadata", {}).get("name")
                    if kind in ("ADDED", "MODIFIED") and name:
                        self._phases[name] = _phase(obj)
                    elif kind == "DELETED" and name:
                        self._phases.pop(name, None)
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                raise RuntimeError(f"watching namespaces: {exc}") from exc
            finally:
                close(response)
