"""Writing an Application's status through the status subresource, and remembering what was written
so that the watch can tell its own echoes."""

from __future__ import annotations

import copy
import threading
from typing import Any

from controller.kube import Kube, KubeError
from extension.api.tracking import AppKey


class StatusWriter:
    def __init__(self, kube: Kube, lock: threading.Lock, written: dict[AppKey, str]) -> None:
        self.kube = kube
        self._lock = lock  # the Reconciler's, which guards ``written`` too
        # The resourceVersion of each Application's last status write (Reconciler.status_written).
        self.written = written

    def write(
        self, app: dict[str, Any], status: dict[str, Any], operation: Any, keep_operation: bool = False
    ) -> None:
        """Write status through the status subresource; clear the operation we took up (but not a
        newer one that arrived meanwhile)."""
        body = copy.deepcopy(app)
        body["status"] = status
        for _ in range(5):
            if operation is not None and not keep_operation and body.get("operation") == operation:
                body["operation"] = None
            try:
                written = self.kube.put_app(body, "status")
                app["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]
                key = AppKey(app["metadata"]["namespace"], app["metadata"]["name"])
                with self._lock:
                    self.written[key] = written["metadata"]["resourceVersion"]
                app["status"] = written.get("status")
                app["operation"] = written.get("operation")
                return
            except KubeError as exc:
                if exc.code != 409:
                    raise
                fresh = self.kube.get_app(app["metadata"]["namespace"], app["metadata"]["name"])
                if fresh is None:
                    return
                body = fresh
                body["status"] = status
        raise KubeError(409, "Conflict", "could not write status after 5 conflicts")
