"""Leader election on a coordination.k8s.io Lease, so two replicas never both act.

The leader renews every ``renew`` seconds; a replica takes the Lease over only when the holder
has not renewed for ``duration`` seconds. Optimistic concurrency (resourceVersion) settles races.
A leader that cannot renew in time stops acting (the caller exits), as client-go's does.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

from controller.kube import Kube, KubeError

log = logging.getLogger(__name__)

LEASE_NAME = "driftguard-controller"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _text(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self, kube: Kube, namespace: str, identity: str, duration: int = 15, renew: float = 5.0
    ) -> None:
        self.kube, self.namespace, self.identity = kube, namespace, identity
        self.duration, self.renew = duration, renew
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE_NAME}"
        self.lost = threading.Event()

    def _try(self) -> bool:
        now = _now()
        try:
            lease: dict[str, Any] = self.kube.request("GET", self.path)
        except KubeError as exc:
            if exc.code != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                    "acquireTime": _text(now), "renewTime": _text(now), "leaseTransitions": 0,
                },
            }  # fmt: skip
            self.kube.request("POST", self.path.rpartition("/")[0], body=body)
            return True
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime")) or datetime.datetime.min.replace(tzinfo=datetime.UTC)
        expired = (now - renewed).total_seconds() > int(spec.get("leaseDurationSeconds") or self.duration)
        if holder not in (self.identity, None, "") and not expired:
            return False
        if holder != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = _text(now)
            log.info("taking over the Lease %s/%s from %r", self.namespace, LEASE_NAME, holder)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self.duration, renewTime=_text(now))
        self.kube.request("PUT", self.path, body=lease)
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this replica leads (True) or ``stop`` is set (False)."""
        log.info("waiting to lead (Lease %s/%s, identity %s)", self.namespace, LEASE_NAME, self.identity)
        while not stop.is_set():
            try:
                if self._try():
                    log.info("leading as %s", self.identity)
                    threading.Thread(target=self._keep, args=(stop,), name="lease", daemon=True).start()
                    return True
            except KubeError as exc:
                log.warning("leader election: %s", exc.message)
            stop.wait(self.renew)
        return False

    def _keep(self, stop: threading.Event) -> None:
        last = _now()
        while not stop.wait(self.renew):
            try:
                if not self._try():
                    break
                last = _now()
            except KubeError as exc:
                log.warning("renewing the Lease: %s", exc.message)
                if (_now() - last).total_seconds() < self.duration - self.renew:
                    continue
                break
        if not stop.is_set():
            log.error("lost the Lease %s/%s; stopping", self.namespace, LEASE_NAME)
            self.lost.set()

    def release(self) -> None:
        """Hand the Lease back on a clean shutdown, so a standby takes over at once."""
        try:
            lease = self.kube.request("GET", self.path)
            if lease.get("spec", {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["renewTime"] = _text(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
                self.kube.request("PUT", self.path, body=lease)
        except KubeError as exc:
            log.warning("releasing the Lease: %s", exc.message)
