#!/usr/bin/env python3
"""Records what kube-apiserver answers for the server-side apply cases in
tests/extension/testdata/server-side-apply.yaml, from a CRD serving our schema on the local control
plane (hack/local-up.sh), into server-side-apply.expected.json next to it. The unit tests then hold
extension/api/managed_fields.py to those answers.

usage: .local/venv/bin/python hack/record-apply-cases.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.oracle import ORACLE_GROUP, oracle_crd, request  # noqa: E402

CASES = REPO / "tests" / "extension" / "testdata" / "server-side-apply.yaml"
EXPECTED = CASES.with_name("server-side-apply.expected.json")
PKI = REPO / ".local" / "pki"
OURS = "gitops.driftguard.io"


def kubectl(*args: str, input: str | None = None) -> str:
    cmd = [
        str(REPO / ".local" / "bin" / "kubectl"),
        "--kubeconfig",
        str(REPO / ".local" / "kubeconfig"),
        *args,
    ]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, check=True).stdout


def step_request(namespace: str, step: dict[str, Any]) -> tuple[str, str, bytes, str]:
    base = f"/apis/{ORACLE_GROUP}/v1alpha1/namespaces/{namespace}/applications"
    body = {"apiVersion": f"{ORACLE_GROUP}/v1alpha1", "kind": "Application", **step["config"]}
    body.setdefault("metadata", {})["name"] = "shop"
    if "create" in step:
        return "POST", f"{base}?fieldManager={step['create']}", json.dumps(body).encode(), "application/json"
    if "patch" in step:
        return (
            "PATCH", f"{base}/shop?fieldManager={step['patch']}", json.dumps(step["config"]).encode(),
            "application/merge-patch+json",
        )  # fmt: skip
    sub = "/status" if step.get("subresource") == "status" else ""
    force = "&force=true" if step.get("force") else ""
    return (
        "PATCH", f"{base}/shop{sub}?fieldManager={step['apply']}{force}", json.dumps(body).encode(),
        "application/apply-patch+yaml",
    )  # fmt: skip


def outcome(code: int, answer: Any) -> dict[str, Any]:
    if code < 300:
        return {"code": code}
    return {"code": code, "message": str(answer.get("message", "")).replace(ORACLE_GROUP, OURS)}


def final(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    managers = sorted(
        [e["manager"], e["operation"], e.get("subresource", ""), "time" in e, e.get("fieldsV1")]
        for e in meta.get("managedFields", [])
    )
    return {
        "metadata": {k: meta[k] for k in ("labels", "annotations", "finalizers", "generation") if k in meta},
        "spec": obj.get("spec"),
        "status": obj.get("status"),
        "managedFields": managers,
    }


def main() -> int:
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(oracle_crd()))
    kubectl("wait", "--for=condition=Established", f"crd/applications.{ORACLE_GROUP}", "--timeout=60s")
    namespace = f"record-apply-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    expected: dict[str, Any] = {}
    try:
        for case in yaml.safe_load(CASES.read_text()):
            steps = []
            for step in case["steps"]:
                steps.append(outcome(*request(PKI, *step_request(namespace, step))))
            code, obj = request(
                PKI,
                "GET",
                f"/apis/{ORACLE_GROUP}/v1alpha1/namespaces/{namespace}/applications/shop",
                None,
                "application/json",
            )
            assert code == 200, obj
            expected[case["name"]] = {"steps": steps, "final": final(obj)}
            request(
                PKI,
                "DELETE",
                f"/apis/{ORACLE_GROUP}/v1alpha1/namespaces/{namespace}/applications/shop",
                None,
                "application/json",
            )
            print(f"recorded: {case['name']}")
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
    EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
