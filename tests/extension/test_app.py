"""The Flask app with fakes at its seams (store, authorizer, peer certificate): wire behaviour
that needs no cluster. The same behaviour through the real aggregator is in test_kubectl.py."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from extension.api import errors
from extension.api.kinds import APPLICATIONS
from extension.app import MAX_BODY, Deps, create_app, selected_events
from extension.applications import Applications
from extension.auth import Attributes, RequestHeaderConfig, User, authenticate, carry_identity

BASE = "/apis/gitops.driftguard.io/v1alpha1/namespaces/team-a/applications"
PROXY = {"subject": ((("commonName", "front-proxy-client"),),)}
ADMIN = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}


class FakeStore:
    def __init__(self) -> None:
        self.apps: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = 0
        self.events: list[dict[str, Any]] = []
        self.hold = threading.Event()  # while set, a watch stays open after its events

    def _stamp(self, app: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        app = copy.deepcopy(app)
        app["metadata"]["resourceVersion"] = str(self.rv)
        self.apps[(app["metadata"]["namespace"], app["metadata"]["name"])] = app
        return copy.deepcopy(app)

    def namespace_phase(self, namespace: str) -> str | None:
        return {"team-a": "Active", "leaving": "Terminating"}.get(namespace)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.apps:
            raise errors.not_found(APPLICATIONS, name)
        return copy.deepcopy(self.apps[(namespace, name)])

    def list(
        self, namespace: str | None, resource_version: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        return [copy.deepcopy(a) for (ns, _), a in sorted(self.apps.items()) if namespace in (None, ns)], str(
            self.rv
        )

    def versions(self, namespace: str | None) -> tuple[frozenset[str], str]:
        apps, rv = FakeStore.list(self, namespace)
        return frozenset(a["metadata"]["resourceVersion"] for a in apps), rv

    def create(self, app: dict[str, Any]) -> dict[str, Any]:
        if (app["metadata"]["namespace"], app["metadata"]["name"]) in self.apps:
            raise errors.already_exists(APPLICATIONS, app["metadata"]["name"])
        return self._stamp(app)

    def update(self, app: dict[str, Any]) -> dict[str, Any]:
        current = self.get(app["metadata"]["namespace"], app["metadata"]["name"])
        if app["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.stale(APPLICATIONS, app["metadata"]["name"])
        return self._stamp(app)

    def delete(self, app: dict[str, Any]) -> None:
        del self.apps[(app["metadata"]["namespace"], app["metadata"]["name"])]
        self.rv += 1  # a deletion is a write too, as in etcd

    def watch(
        self,
        namespace: str | None,
        resource_version: str | None,
        timeout_seconds: int,
        send_initial_events: bool = False,
    ) -> Iterator[dict[str, Any]]:
        yield from self.events
        while self.hold.is_set():
            time.sleep(0.01)


class AllowAdmin:
    def check(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        return user.name == "admin", ""


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def client(store: FakeStore) -> FlaskClient:
    deps = Deps(
        applications=Applications(store),
        authorizer=AllowAdmin(),
        requestheader=lambda: RequestHeaderConfig(client_ca_pem="-", allowed_names=("front-proxy-client",)),
        peer_cert=lambda environ: environ.get("test.peer_cert"),
    )
    return create_app(deps).test_client()


def call(
    client: FlaskClient, method: str, path: str, *, peer: Any = PROXY, headers: Any = None, **kw: Any
) -> Any:
    """A request as gunicorn hands it on: identity headers carried by its pre_request hook."""
    carried = carry_identity(list((headers or ADMIN).items()))
    return client.open(path, method=method, headers=carried, environ_base={"test.peer_cert": peer}, **kw)


APP = {
    "apiVersion": "gitops.driftguard.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "shop"},
    "spec": {"source": {"repoURL": "https://git.example/shop.git"}, "destination": {"namespace": "shop"}},
}


def test_identity_headers_without_a_proxy_certificate_are_401(client: FlaskClient) -> None:
    response = call(client, "GET", BASE, peer=None)
    assert response.status_code == 401
    assert response.json["kind"] == "Status" and response.json["reason"] == "Unauthorized"


def test_a_certificate_with_a_cn_that_is_not_allowed_is_401(client: FlaskClient) -> None:
    response = call(client, "GET", BASE, peer={"subject": ((("commonName", "mallory"),),)})
    assert response.status_code == 401
    assert "'mallory' is not an allowed front proxy" in response.json["message"]


def test_a_denied_user_gets_403_with_kubes_message(client: FlaskClient) -> None:
    response = call(client, "GET", BASE, headers={"X-Remote-User": "jane"})
    assert response.status_code == 403
    assert response.json["message"] == (
        'applications.gitops.driftguard.io is forbidden: User "jane" cannot list resource "applications" '
        'in API group "gitops.driftguard.io" in the namespace "team-a"'
    )


@pytest.mark.parametrize("name", ["shop", "absent"])
def test_a_denied_get_is_403_whether_or_not_the_application_exists(client: FlaskClient, name: str) -> None:
    """The review and the read run at once; the review decides what is answered."""
    assert call(client, "POST", BASE, json=APP).status_code == 201
    response = call(client, "GET", f"{BASE}/{name}", headers={"X-Remote-User": "jane"})
    assert response.status_code == 403
    assert response.json["kind"] == "Status"
    assert f'applications.gitops.driftguard.io "{name}" is forbidden: User "jane"' in response.json["message"]
    assert call(client, "GET", f"{BASE}/shop").json["metadata"]["name"] == "shop"


@pytest.mark.parametrize(
    ("body", "content_type", "code", "reason", "fragment"),
    [
        (b"{not json", "application/json", 400, "BadRequest", "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "BadRequest", "must be a JSON object"),
        (json.dumps({**APP, "kind": "Pod"}).encode(), "application/json", 400, "BadRequest", "Kind=Pod"),
        (b"x" * (MAX_BODY + 1), "application/json", 413, "RequestEntityTooLarge", "larger than the limit"),
    ],
)
def test_bad_create_bodies_get_a_status_never_a_500(
    client: FlaskClient, body: bytes, content_type: str, code: int, reason: str, fragment: str
) -> None:
    response = call(client, "POST", BASE, data=body, content_type=content_type)
    assert (response.status_code, response.json["reason"]) == (code, reason)
    assert fragment in response.json["message"]


def test_a_strategic_merge_patch_is_415_and_a_merge_patch_works(client: FlaskClient) -> None:
    assert call(client, "POST", BASE, json=APP).status_code == 201
    smp = call(
        client, "PATCH", f"{BASE}/shop", data="{}", content_type="application/strategic-merge-patch+json"
    )
    assert smp.status_code == 415 and smp.json["reason"] == "UnsupportedMediaType"
    merge = call(client, "PATCH", f"{BASE}/shop", data='{"spec":{"project":"x"}}',
                 content_type="application/merge-patch+json")  # fmt: skip
    assert merge.status_code == 200 and merge.json["spec"]["project"] == "x"
    assert merge.json["metadata"]["generation"] == 2


def test_a_dry_run_create_stores_nothing(client: FlaskClient, store: FakeStore) -> None:
    response = call(client, "POST", f"{BASE}?dryRun=All", json=APP)
    assert response.status_code == 201 and response.json["spec"]["project"] == "default"
    assert store.apps == {}


def test_a_watch_passes_kube_apiservers_410_through(client: FlaskClient, store: FakeStore) -> None:
    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
            "message": "too old resource version: 1 (1363)"}  # fmt: skip
    store.events = [{"type": "ERROR", "object": gone}]
    response = call(client, "GET", f"{BASE}?watch=true&resourceVersion=1")
    assert [json.loads(line) for line in response.data.splitlines()] == [{"type": "ERROR", "object": gone}]


def test_health_endpoints_need_no_identity(client: FlaskClient) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert client.get(path).status_code == 200


def test_a_group_with_a_comma_stays_one_group_and_a_forged_carrier_header_is_dropped() -> None:
    headers = [
        ("X-Remote-User", "jane"),
        ("X-Remote-Group", "cn=ops,ou=groups"),
        ("X-Remote-Group", "x,system:masters"),
        ("X-Remote-Extra-Scopes", "a"),
        ("X-Remote-Extra-Scopes", "b"),
        ("X-Driftguard-Identity", '{"groups": ["system:masters"], "extra": {}}'),
    ]
    carried = carry_identity(headers)
    environ = {f"HTTP_{n.upper().replace('-', '_')}": v for n, v in carried}
    config = RequestHeaderConfig(client_ca_pem="-", allowed_names=("front-proxy-client",))
    user = authenticate(PROXY, environ, config)
    assert user.groups == ("cn=ops,ou=groups", "x,system:masters")
    assert dict(user.extra) == {"scopes": ("a", "b")}


def test_create_cannot_set_an_operation_or_status(client: FlaskClient) -> None:
    body = {**APP, "operation": {"sync": {}, "initiatedBy": {"username": "admin"}}, "status": {"sync": {}}}
    created = call(client, "POST", BASE, json=body).json
    assert "operation" not in created and "status" not in created


def test_a_put_without_a_resource_version_is_422_as_for_custom_resources(client: FlaskClient) -> None:
    call(client, "POST", BASE, json=APP)
    response = call(client, "PUT", f"{BASE}/shop", json=APP)
    assert response.status_code == 422
    assert (
        "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        in response.json["message"]
    )


def test_a_put_that_only_omits_defaults_does_not_bump_generation(client: FlaskClient) -> None:
    created = call(client, "POST", BASE, json=APP).json
    body = {**APP, "metadata": {"name": "shop", "resourceVersion": created["metadata"]["resourceVersion"]}}
    updated = call(client, "PUT", f"{BASE}/shop", json=body).json
    assert updated["metadata"]["generation"] == 1


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"name": "shop", "labels": "oops"}, "metadata.labels"),
        ({"name": "shop", "labels": {"a": 1}}, "metadata.labels.a"),
        ({"name": "shop", "finalizers": [{"a": 1}]}, "metadata.finalizers[0]"),
        ({"name": "shop", "annotations": ["x"]}, "metadata.annotations"),
    ],
)
def test_malformed_object_metadata_is_422_not_stored(
    client: FlaskClient, store: FakeStore, metadata: dict[str, Any], field: str
) -> None:
    response = call(client, "POST", BASE, json={**APP, "metadata": metadata})
    assert response.status_code == 422
    assert field in [c["field"] for c in response.json["details"]["causes"]]
    assert store.apps == {}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", f"{BASE}?watch=true&timeoutSeconds=abc", {}),
        ("DELETE", f"{BASE}/shop", {"data": "[1]", "content_type": "application/json"}),
        ("DELETE", f"{BASE}/shop", {"json": {"preconditions": "x"}}),
        ("PUT", f"{BASE}/shop", {"json": {**APP, "metadata": "shop"}}),
        ("PATCH", f"{BASE}/shop", {"data": '[{"op":"replace","path":"/metadata","value":[]}]',
                                   "content_type": "application/json-patch+json"}),
    ],
)  # fmt: skip
def test_malformed_requests_get_400_never_500(
    client: FlaskClient, method: str, path: str, kwargs: Any
) -> None:
    call(client, "POST", BASE, json=APP)
    response = call(client, method, path, **kwargs)
    assert response.status_code == 400, response.json
    assert response.json["kind"] == "Status"


@pytest.mark.parametrize(
    ("namespace", "code", "fragment"),
    [
        ("nope", 404, 'namespaces "nope" not found'),
        ("leaving", 403, "unable to create new content in namespace leaving because it is being terminated"),
    ],
)
def test_create_needs_a_live_namespace(
    client: FlaskClient, store: FakeStore, namespace: str, code: int, fragment: str
) -> None:
    path = f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications"
    response = call(client, "POST", path, json=APP)
    assert response.status_code == code and fragment in response.json["message"]
    assert store.apps == {}


def _event(kind: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"namespace": "team-a", "name": name, "labels": labels}}}


def test_a_selected_watch_adds_objects_that_come_to_match_and_deletes_those_that_leave() -> None:
    events = [
        _event("MODIFIED", "shop", {"tier": "web"}),  # known and still matching
        _event("MODIFIED", "blog", {"tier": "web"}),  # comes to match
        _event("MODIFIED", "shop", {"tier": "db"}),  # leaves
        _event("MODIFIED", "wiki", {"tier": "db"}),  # never matched: not sent
        _event("DELETED", "blog", {"tier": "web"}),
    ]
    match = lambda obj: obj["metadata"]["labels"].get("tier") == "web"  # noqa: E731
    out = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in selected_events(iter(events), match, {("team-a", "shop")})
    ]
    assert out == [("MODIFIED", "shop"), ("ADDED", "blog"), ("DELETED", "shop"), ("DELETED", "blog")]


def test_watches_past_the_cap_get_429_and_a_finished_watch_frees_its_slot(store: FakeStore) -> None:
    deps = Deps(
        applications=Applications(store),
        authorizer=AllowAdmin(),
        requestheader=lambda: RequestHeaderConfig(client_ca_pem="-", allowed_names=("front-proxy-client",)),
        peer_cert=lambda environ: environ.get("test.peer_cert"),
        max_watches=1,
    )
    capped = create_app(deps).test_client()
    # One event to prime the stream with, then the watch stays open until hold is cleared.
    added = {"metadata": {"namespace": "team-a", "name": "shop", "resourceVersion": "1"}}
    store.events = [{"type": "ADDED", "object": added}]
    store.hold.set()
    open_watch = call(capped, "GET", f"{BASE}?watch=true", buffered=False)
    refused = call(capped, "GET", f"{BASE}?watch=true")
    assert refused.status_code == 429 and refused.json["reason"] == "TooManyRequests"
    assert refused.headers["Retry-After"] == "1"
    store.hold.clear()
    open_watch.close()
    assert call(capped, "GET", f"{BASE}?watch=true").status_code == 200
