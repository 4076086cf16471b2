"""The dashboard's routes: the page and its files, and the two reads only a server can make."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import Flask, Response, redirect, request

from extension.api import errors, jsoncodec
from extension.auth import Attributes, User
from extension.ui import csrf

RESOURCE = "ui"  # how kube-apiserver names the path ui/... when it authorizes it
FILES = {  # name: media type; flat names, as kube-apiserver authorizes ui/NAME but not ui/a/b
    "app.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_WATCH_TIMEOUT = 1800


@dataclass
class Seams:
    """What the routes need from the API server around them."""

    prefix: str
    user: Callable[[], User]
    authorize: Callable[[User, Attributes], None]  # raises Forbidden
    allowed: Callable[[User, Attributes], bool]
    applications: Any  # extension.applications.Applications: list and watch
    stream: Callable[[Iterator[dict[str, Any]]], Response]  # a watch's events, as the API streams them


def _read(name: str) -> bytes:
    return resources.files("extension.ui").joinpath("static", name).read_bytes()


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


class Namespaces:
    """Which namespaces' Applications a user may ``verb`` (list, watch): all when the user may at
    the cluster scope, else each namespace as its own SubjectAccessReview says, asked once."""

    def __init__(self, seams: Seams, who: User, verb: str) -> None:
        self.seams, self.who, self.verb = seams, who, verb
        self.everywhere = seams.allowed(who, Attributes(verb, "applications"))
        self.known: dict[str, bool] = {}

    def __call__(self, namespace: str) -> bool:
        if self.everywhere:
            return True
        if namespace not in self.known:
            attrs = Attributes(self.verb, "applications", namespace)
            self.known[namespace] = self.seams.allowed(self.who, attrs)
        return self.known[namespace]


def register(app: Flask, seams: Seams) -> None:
    base = f"{seams.prefix}/{RESOURCE}"
    index = _read("index.html").decode()
    files = {name: _read(name) for name in FILES}

    @app.get(base)
    def ui_redirect() -> Any:
        seams.authorize(seams.user(), Attributes("list", RESOURCE))
        return redirect(f"{RESOURCE}/", code=301)

    @app.get(f"{base}/")
    def ui_index() -> Response:
        seams.authorize(seams.user(), Attributes("list", RESOURCE))
        held = request.cookies.get(csrf.COOKIE, "")
        token = held if _TOKEN.match(held) else csrf.new_token()  # one per browser: tabs share it
        page = index.replace("{{csrf}}", token)  # a token of [A-Za-z0-9_-] only: nothing to escape
        response = _secure(Response(page, mimetype="text/html"))
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(csrf.COOKIE, token, path="/", httponly=True, samesite="Strict")
        return response

    @app.get(f"{base}/<name>")
    def ui_file(name: str) -> Response:
        who = seams.user()
        seams.authorize(who, Attributes("get", RESOURCE, name=name))
        if name == "applications":
            return _applications(seams, who)
        if name == "watch":
            return _watch(seams, who)
        if name not in FILES:
            raise errors.APIError(404, "NotFound", f'the dashboard has no file "{name}"')
        response = _secure(Response(files[name], mimetype=FILES[name]))
        response.headers["Cache-Control"] = "no-cache"
        return response


def _applications(seams: Seams, who: User) -> Response:
    """The Applications of every namespace the user may list (the API lists one namespace, or all
    of them for who may list at the cluster scope)."""
    may = Namespaces(seams, who, "list")
    items, rv = seams.applications.list(None, lambda a: True)
    body = {
        "kind": "ApplicationList", "apiVersion": seams.prefix.removeprefix("/apis/"),
        "metadata": {"resourceVersion": rv},
        "items": [a for a in items if may(a["metadata"]["namespace"])],
        "allNamespaces": may.everywhere,
    }  # fmt: skip
    return Response(jsoncodec.dumps(body), mimetype="application/json")


def _watch(seams: Seams, who: User) -> Response:
    """A watch of the Applications of every namespace the user may watch, from ``resourceVersion``
    (what ``applications`` answered): the list page's live updates."""
    rv = request.args.get("resourceVersion") or None
    may = Namespaces(seams, who, "watch")
    events = seams.applications.watch(None, rv, _WATCH_TIMEOUT, False)

    def permitted() -> Iterator[dict[str, Any]]:
        for event in events:
            obj = event.get("object") or {}
            namespace = (obj.get("metadata") or {}).get("namespace")
            if event["type"] in ("ADDED", "MODIFIED", "DELETED") and not may(str(namespace)):
                continue
            yield event

    return seams.stream(permitted())
