"""Workloads run on the kwok node: what the controller's health checks will rely on."""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., CompletedProcess[str]]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
"""


def test_a_kwok_node_is_ready(kubectl: Kubectl) -> None:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = [
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    assert ready, f"no Ready node among {[n['metadata']['name'] for n in nodes]}"


def test_a_deployment_becomes_available_on_the_kwok_node(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)

    def available() -> dict[str, int] | None:
        status = json.loads(kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)[
            "status"
        ]
        return status if status.get("availableReplicas") == 3 else None

    status = wait_for(available, "deployment web to have 3 available replicas", timeout=120)
    assert status["readyReplicas"] == 3
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout)["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running"] * 3
    assert {p["spec"]["nodeName"] for p in pods} == {"kwok-node-0"}
