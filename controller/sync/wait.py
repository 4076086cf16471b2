"""Waiting between sync waves: a wave waits for the one before to be healthy (controller/health.py
assesses each object), within a deadline."""

from __future__ import annotations

import logging
import time
from typing import Any

from controller import health
from controller import status as st
from controller.kube import Kube
from controller.sync.compare import live
from controller.sync.project import Scope
from extension.api.tracking import AppKey

log = logging.getLogger("controller.reconcile")


def wait_healthy(kube: Kube, scope: Scope, key: AppKey, step: list[dict[str, Any]], timeout: float) -> None:
    """A wave waits for the one before to be healthy, within a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = [health.assess(live(kube, scope, obj)) for obj in step]
        worst = health.worst(statuses)
        if worst.status in (health.Status.Healthy, health.Status.Suspended):
            return
        if worst.status == health.Status.Degraded or time.monotonic() > deadline:
            raise st.Step(st.HEALTH_DEGRADED, f"a sync wave did not become healthy: {worst.message}")
        log.info("[%s] waiting for a sync wave to become healthy: %s", key, worst.message)
        time.sleep(1.0)
