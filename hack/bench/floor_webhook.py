"""The floor of any admission webhook served from Python under gunicorn: a bare WSGI callable that
allows every AdmissionReview it gets, under the extension's worker model (gthread, keep-alive, TLS).
hack/bench/guard.py runs it beside the drift guard, so the guard's own cost shows apart from the
cost of a round trip from kube-apiserver to a gunicorn process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    uid = json.loads(body)["request"]["uid"]
    answer = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "response": {"uid": uid, "allowed": True}}  # fmt: skip
    data = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
