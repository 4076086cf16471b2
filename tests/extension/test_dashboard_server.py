"""The dashboard's server side with fakes at the app's seams: who may open it, what it lists for
whom, its security headers, and the CSRF rule for writes from a browser. The same through the
real aggregator and a real browser is in tests/dashboard/."""

from __future__ import annotations

import html.parser
import json

import pytest
from flask.testing import FlaskClient

from extension.app import Deps, create_app
from extension.applications import Applications
from extension.auth import Attributes, RequestHeaderConfig, User
from extension.ui import csrf, routes
from tests.extension.test_app import APP, FakeStore, call

UI = "/apis/gitops.driftguard.io/v1alpha1/ui"
VIEWER = {"X-Remote-User": "viewer"}


class Rules:
    """admin may do anything; viewer may open the dashboard and list and watch in team-a only."""

    def __init__(self) -> None:
        self.asked: list[Attributes] = []

    def check(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        self.asked.append(attrs)
        if user.name == "admin":
            return True, ""
        if user.name == "viewer":
            return attrs.resource == "ui" or (
                attrs.resource == "applications"
                and attrs.verb in ("list", "watch")
                and attrs.namespace == "team-a"
            ), ""
        return False, ""


@pytest.fixture
def rules() -> Rules:
    return Rules()


@pytest.fixture
def store() -> FakeStore:
    store = FakeStore()
    for namespace in ("team-a", "team-b"):
        app = json.loads(json.dumps(APP))
        app["metadata"].update(namespace=namespace, uid=namespace)
        store.create(app)
    return store


@pytest.fixture
def client(store: FakeStore, rules: Rules) -> FlaskClient:
    deps = Deps(
        applications=Applications(store),
        authorizer=rules,
        requestheader=lambda: RequestHeaderConfig(client_ca_pem="-", allowed_names=("front-proxy-client",)),
        peer_cert=lambda environ: environ.get("test.peer_cert"),
    )
    return create_app(deps).test_client()


class Scripts(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_has_a_strict_csp_no_inline_script_and_a_csrf_token(client: FlaskClient) -> None:
    page = call(client, "GET", f"{UI}/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Cache-Control"] == "no-store"
    parsed = Scripts()
    parsed.feed(page.get_data(as_text=True))
    assert (
        parsed.scripts == [{"type": "module", "src": "app.js"}] and not parsed.inline and not parsed.handlers
    )
    cookie = page.headers["Set-Cookie"]
    token = cookie.split(";")[0].removeprefix(f"{csrf.COOKIE}=")
    assert f'<meta name="csrf-token" content="{token}">' in page.get_data(as_text=True)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    again = call(client, "GET", f"{UI}/", headers=VIEWER)  # the test client sends the cookie back
    assert f'content="{token}"' in again.get_data(as_text=True)  # one token per browser, shared by its tabs


def test_the_files_are_served_and_nothing_else(client: FlaskClient) -> None:
    script = call(client, "GET", f"{UI}/app.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b"innerHTML" not in script.data and b"eval(" not in script.data  # values are set as text
    assert call(client, "GET", f"{UI}/style.css").mimetype == "text/css"
    missing = call(client, "GET", f"{UI}/..%2fapp.py")
    assert missing.status_code == 404 and missing.json["kind"] == "Status"
    link = call(client, "GET", UI)  # no redirect: kube-apiserver's proxy does not pass them on
    assert link.status_code == 200 and b'href="ui/"' in link.data


def test_a_forged_identity_without_the_front_proxy_certificate_is_401(client: FlaskClient) -> None:
    for path in (f"{UI}/", f"{UI}/app.js", f"{UI}/applications", f"{UI}?watch=true"):
        response = call(client, "GET", path, peer=None)
        assert response.status_code == 401 and response.json["reason"] == "Unauthorized", path
    # A write from a browser without the certificate: 401 first, not the CSRF refusal.
    forged = call(
        client, "POST", "/apis/gitops.driftguard.io/v1alpha1/namespaces/team-a/applications/shop/sync",
        peer=None, headers={"X-Remote-User": "admin", "Origin": "http://evil.example"}, data=b"{}",
        content_type="application/json",
    )  # fmt: skip
    assert forged.status_code == 401


def test_who_may_not_open_the_dashboard_gets_403(client: FlaskClient, rules: Rules) -> None:
    response = call(client, "GET", f"{UI}/", headers={"X-Remote-User": "nobody"})
    assert response.status_code == 403 and 'cannot list resource "ui"' in response.json["message"]
    assert Attributes("list", "ui") in rules.asked
    assert call(client, "GET", f"{UI}/app.js", headers={"X-Remote-User": "nobody"}).status_code == 403


def test_the_list_holds_only_the_namespaces_the_user_may_list(client: FlaskClient, rules: Rules) -> None:
    everything = call(client, "GET", f"{UI}/applications").json
    assert [a["metadata"]["namespace"] for a in everything["items"]] == ["team-a", "team-b"]
    assert everything["allNamespaces"] is True
    seen = call(client, "GET", f"{UI}/applications", headers=VIEWER).json
    assert [a["metadata"]["namespace"] for a in seen["items"]] == ["team-a"]
    assert seen["allNamespaces"] is False
    assert Attributes("list", "applications", "team-b") in rules.asked  # asked, per namespace


def test_the_watch_sends_only_the_namespaces_the_user_may_watch(
    client: FlaskClient, store: FakeStore, rules: Rules
) -> None:
    store.events = [{"type": "MODIFIED", "object": store.get(ns, "shop")} for ns in ("team-b", "team-a")]
    response = call(client, "GET", f"{UI}?watch=true&resourceVersion=1", headers=VIEWER)
    events = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    # team-b's change is a bookmark: its resourceVersion, nothing of the object.
    assert [e["type"] for e in events] == ["BOOKMARK", "MODIFIED"]
    hidden = store.get("team-b", "shop")["metadata"]["resourceVersion"]
    assert events[0]["object"]["metadata"] == {"resourceVersion": hidden}
    assert events[1]["object"]["metadata"]["namespace"] == "team-a"
    assert Attributes("watch", "ui") in rules.asked  # the collection's watch, as kube-apiserver names it


def test_a_user_holds_at_most_a_few_dashboard_watches(client: FlaskClient, store: FakeStore) -> None:
    # One event to prime each stream with (the test client reads the first chunk), then each
    # watch stays open until hold is cleared.
    store.events = [{"type": "MODIFIED", "object": store.get("team-a", "shop")}]
    store.hold.set()
    try:
        opened = [
            call(client, "GET", f"{UI}?watch=true&resourceVersion=1", headers=VIEWER, buffered=False)
            for _ in range(routes.WATCHES_PER_USER)
        ]
        refused = call(client, "GET", f"{UI}?watch=true&resourceVersion=1", headers=VIEWER)
        assert refused.status_code == 429 and "dashboard watches open" in refused.json["message"]
        assert call(client, "GET", f"{UI}/applications", headers=VIEWER).status_code == 200
    finally:
        store.hold.clear()
    for response in reversed(opened):  # the test client nests their request contexts
        response.close()
    again = call(client, "GET", f"{UI}?watch=true&resourceVersion=1", headers=VIEWER)
    assert again.status_code == 200  # closed watches give their places back


TOKEN, OTHER = "a" * 43, "b" * 43


@pytest.mark.parametrize(
    ("headers", "cookie", "refused"),
    [
        ({}, None, False),  # kubectl and client libraries send no browser header
        ({"Origin": "http://evil.example"}, None, True),
        ({"Sec-Fetch-Site": "cross-site"}, None, True),
        ({"Origin": "http://127.0.0.1:8001", csrf.HEADER: TOKEN}, None, True),  # no cookie to match
        ({"Origin": "http://127.0.0.1:8001", csrf.HEADER: OTHER}, TOKEN, True),
        ({"Origin": "http://127.0.0.1:8001"}, TOKEN, True),  # the cookie alone, as a cross-site form sends it
        ({"Origin": "http://127.0.0.1:8001", csrf.HEADER: TOKEN}, TOKEN, False),
    ],
)
def test_a_write_from_a_browser_needs_the_csrf_token(
    client: FlaskClient, headers: dict[str, str], cookie: str | None, refused: bool
) -> None:
    if cookie is not None:
        client.set_cookie(csrf.COOKIE, cookie)
    response = call(
        client, "POST", "/apis/gitops.driftguard.io/v1alpha1/namespaces/team-a/applications/shop/sync",
        headers={"X-Remote-User": "admin", **headers}, data=b"{}", content_type="application/json",
    )  # fmt: skip
    if refused:
        assert response.status_code == 403 and csrf.HEADER in response.json["message"], response.json
    else:
        assert response.status_code == 200, response.json["message"]
        assert response.json["operation"]["initiatedBy"] == {"username": "admin"}


def test_csrf_refusal_reads_only_unsafe_methods() -> None:
    browser: dict[str, str] = {"Origin": "http://evil.example"}
    assert csrf.refusal("GET", lambda name: browser.get(name), {}) is None
    assert csrf.refusal("DELETE", lambda name: browser.get(name), {}) is not None
    assert csrf.refusal("PATCH", lambda name: None, {}) is None
