"""The webhooks on the wire (/validate and /mutate in the Flask app, with fakes at its seams), bad
input, a property test of the review parser, and the guard's layering."""

from __future__ import annotations

import ast
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extension.app import Deps, create_app
from extension.applications import Applications
from extension.auth import RequestHeaderConfig
from extension.guard import reviews
from extension.guard.index import AppIndex, GuardedApp
from extension.guard.webhook import MAX_REVIEW_BYTES, Guard
from tests.extension.fixtures.guard import app_for, request, review
from tests.extension.test_app import AllowAdmin, FakeStore

NOW = datetime.datetime(2026, 11, 24, 18, 30, tzinfo=datetime.UTC)
REPO = Path(__file__).resolve().parents[2]


def guard_for(*apps: dict[str, Any], synced: bool = True) -> Guard:
    index = AppIndex()
    if synced:
        index.replace([GuardedApp.of(a) for a in apps])
    return Guard(index, clock=lambda: NOW)


def client_for(guard: Guard | None) -> FlaskClient:
    deps = Deps(
        applications=Applications(FakeStore()),
        authorizer=AllowAdmin(),
        requestheader=lambda: RequestHeaderConfig(client_ca_pem="-", allowed_names=("front-proxy-client",)),
        peer_cert=lambda environ: None,  # kube-apiserver calls webhooks without a client certificate
        guard=guard,
    )
    return create_app(deps).test_client()


def shop_listing(*names: str, mode: str = "enforce") -> dict[str, Any]:
    """team-a/shop with every object of these captured reviews in its inventory."""
    app = app_for(request(names[0]), mode=mode)
    for name in names[1:]:
        app["status"]["resources"] += app_for(request(name))["status"]["resources"]
    return app


@pytest.fixture
def client() -> FlaskClient:
    return client_for(guard_for(shop_listing("set-image", "delete-configmap")))


def test_a_denied_review_is_answered_with_the_uid_and_the_message_without_a_client_certificate(
    client: FlaskClient,
) -> None:
    body = review("set-image")
    response = client.post("/validate", json=body)
    assert response.status_code == 200
    answer = response.json
    assert answer is not None
    assert (answer["apiVersion"], answer["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert answer["response"]["uid"] == body["request"]["uid"]
    assert answer["response"]["allowed"] is False
    assert "is set by Git" in answer["response"]["status"]["message"]


def test_the_mutating_webhook_answers_with_a_json_patch_in_warn_mode() -> None:
    warn = client_for(guard_for(app_for(request("set-image"), mode="warn")))
    answer = warn.post("/mutate", json=review("set-image.mutating")).json
    assert answer is not None
    assert answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"


def envelope(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"[1, 2]", "must be a JSON object (an AdmissionReview), not list"),
        (
            envelope(apiVersion="admission.k8s.io/v1beta1", kind="AdmissionReview"),
            "expected apiVersion 'admission.k8s.io/v1' and kind 'AdmissionReview'",
        ),
        (envelope(apiVersion="admission.k8s.io/v1", kind="Status"), "got 'admission.k8s.io/v1' and 'Status'"),
        (envelope(apiVersion="admission.k8s.io/v1", kind="AdmissionReview"), "has no request object"),
        (
            envelope(apiVersion="admission.k8s.io/v1", kind="AdmissionReview", request={}),
            "request has no uid",
        ),
        (b"\xff\xfe", "the body is not valid JSON"),
    ],
)
def test_a_body_that_is_no_admission_review_gets_400_with_a_clear_message(
    client: FlaskClient, body: bytes, fragment: str
) -> None:
    for path in ("/validate", "/mutate"):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, path
        assert response.json is not None
        assert response.json["kind"] == "Status" and response.json["reason"] == "BadRequest"
        assert fragment in response.json["message"], response.json["message"]


def test_a_body_over_the_limit_gets_400(client: FlaskClient) -> None:
    response = client.post("/validate", data=b" " * (MAX_REVIEW_BYTES + 1), content_type="application/json")
    assert response.status_code == 400
    assert response.json is not None
    assert f"larger than the limit of {MAX_REVIEW_BYTES} bytes" in response.json["message"]


def test_a_review_larger_than_the_api_body_limit_is_still_answered(client: FlaskClient) -> None:
    body = review("set-image")
    body["request"]["object"]["metadata"]["annotations"]["big"] = "x" * (2 * 1024 * 1024)
    response = client.post("/validate", json=body)
    assert response.status_code == 200
    assert response.json is not None and response.json["response"]["allowed"] is False


def test_only_post_is_served_and_without_a_guard_there_are_no_webhooks(client: FlaskClient) -> None:
    assert client.get("/validate").status_code == 405
    assert client_for(None).post("/validate", json=review("set-image")).status_code == 404


def test_readyz_says_the_guard_has_not_loaded_the_applications_yet() -> None:
    response = client_for(guard_for(synced=False)).get("/readyz")
    assert response.status_code == 503
    assert "the drift guard has not loaded the Applications yet (not listed yet)" in response.text
    assert client_for(guard_for()).get("/readyz").status_code == 200


# --- the review parser under arbitrary input ----------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["uid", "kind", "resource", "subResource", "namespace", "name", "operation", "userInfo", "object",
          "oldObject", "dryRun"]  # fmt: skip
NAMES = ["set-image", "delete-configmap", "scale-owned", "user-create-claiming", "reset-managed-fields"]


@st.composite
def reviews_with_noise(draw: st.DrawFn) -> bytes:
    """A real review with some of its fields, or fields deep in its objects, replaced by noise."""
    body = review(draw(st.sampled_from(NAMES)))
    req = body["request"]
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        req[key] = draw(JSON)
    for key in ("object", "oldObject"):
        if isinstance(req.get(key), dict) and draw(st.booleans()):
            meta = req[key].get("metadata")
            if isinstance(meta, dict):
                meta[draw(st.sampled_from(["labels", "annotations", "managedFields", "ownerReferences"]))] = (
                    draw(JSON)
                )
            req[key][draw(st.sampled_from(["spec", "data", "metadata"]))] = draw(JSON)
    return json.dumps(body).encode()


def assert_answered(code: int, body: dict[str, Any], sent: bytes) -> None:
    if code == 400:
        assert body["kind"] == "Status" and body["code"] == 400 and body["message"]
        return
    assert code == 200
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == json.loads(sent)["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    assert response["allowed"] or response["status"]["message"]
    json.dumps(body)  # serializable


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()), reviews_with_noise()))
def test_any_body_gets_a_400_or_a_well_formed_answer_and_never_an_exception(body: bytes) -> None:
    guard = guard_for(shop_listing("set-image", "delete-configmap", "user-create-claiming"))
    for handler in (guard.validate, guard.mutate):
        code, answer = handler(body)
        assert_answered(code, answer, body)


@PROPERTY
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))
def test_any_request_inside_a_valid_envelope_is_answered(fields: dict[str, Any]) -> None:
    body = json.dumps(
        {"apiVersion": reviews.API_VERSION, "kind": reviews.KIND, "request": {"uid": "u", **fields}}
    )
    code, answer = guard_for(app_for(request("set-image"))).validate(body.encode())
    assert_answered(code, answer, body.encode())


# --- layering -----------------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["reviews", "fields", "index", "verdicts", "webhook"])
def test_the_guards_decision_code_imports_no_kube_client_web_framework_or_http_library(module: str) -> None:
    tree = ast.parse((REPO / "extension" / "guard" / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
            if node.module.startswith("extension.") and not node.module.startswith(
                ("extension.guard", "extension.api")
            ):
                imported.add(node.module)
    forbidden = {
        "kubernetes",
        "flask",
        "werkzeug",
        "urllib3",
        "requests",
        "http",
        "extension.storage",
        "extension.server",
    }
    assert not imported & forbidden
    assert "extension.guard.kube" not in {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }


# --- settings ------------------------------------------------------------------------------------
def test_the_controller_identity_comes_from_the_environment_and_must_not_be_empty() -> None:
    from extension.settings import Settings

    assert Settings.from_env({}).controller_username == (
        "system:serviceaccount:driftguard-system:driftguard-controller"
    )
    env = {"DRIFTGUARD_CONTROLLER_USERNAME": "system:serviceaccount:gitops:deployer"}
    assert Settings.from_env(env).controller_username == "system:serviceaccount:gitops:deployer"
    with pytest.raises(ValueError, match="DRIFTGUARD_CONTROLLER_USERNAME must not be empty"):
        Settings.from_env({"DRIFTGUARD_CONTROLLER_USERNAME": ""})
