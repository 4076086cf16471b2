"""The dashboard's routes: the page and its files, and the two reads only a server can make."""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import Flask, Response, request

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
WATCHES_PER_USER = 4
_LINK = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>driftguard</title>'
    '<meta http-equiv="refresh" content="0;url=ui/"></head>'
    '<body><p><a href="ui/">The driftguard dashboard</a></p></body></html>'
)


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
    the cluster scope, else each namespace as its own SubjectAccessReview says. Asked each time
    (the authorizer keeps answers for seconds), so a watch stops sending what a revoked right no
    longer covers."""

    def __init__(self, seams: Seams, who: User, verb: str) -> None:
        self.seams, self.who, self.verb = seams, who, verb

    @property
    def everywhere(self) -> bool:
        return self.seams.allowed(self.who, Attributes(self.verb, "applications"))

    def __call__(self, namespace: str) -> bool:
        return self.everywhere or self.seams.allowed(
            self.who, Attributes(self.verb, "applications", namespace)
        )


class WatchCap:
    """At most ``per_user`` dashboard watches per user on this replica: ``ui`` is open to every
    authenticated user, so none may hold all of the replica's watch slots."""

    def __init__(self, per_user: int) -> None:
        self.per_user, self.lock, self.held = per_user, threading.Lock(), collections.Counter[str]()

    def take(self, user: str) -> bool:
        with self.lock:
            if self.held[user] >= self.per_user:
                return False
            self.held[user] += 1
            return True

    def give_back(self, user: str) -> None:
        with self.lock:
            self.held[user] -= 1
            if self.held[user] <= 0:
                del self.held[user]


def register(app: Flask, seams: Seams) -> None:
    base = f"{seams.prefix}/{RESOURCE}"
    index = _read("index.html").decode()
    files = {name: _read(name) for name in FILES}

    cap = WatchCap(WATCHES_PER_USER)

    @app.get(base)
    def ui_collection() -> Response:
        """``ui?watch=true``: the list page's watch (a watch of the collection, as kube-apiserver
        authorizes and times it: a long-running request). ``ui`` alone: a link to ``ui/`` (the
        aggregator does not pass redirects on)."""
        who = seams.user()
        if request.args.get("watch") in ("true", "1"):
            seams.authorize(who, Attributes("watch", RESOURCE))
            return _watch(seams, who, cap)
        seams.authorize(who, Attributes("list", RESOURCE))
        return _secure(Response(_LINK, mimetype="text/html"))

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


def _watch(seams: Seams, who: User, cap: WatchCap) -> Response:
    """A watch of the Applications of every namespace the user may watch, from ``resourceVersion``
    (what ``applications`` answered). The others' changes go out as bookmarks: the client's
    resourceVersion stays current, and a client that has gone is found at the next write."""
    rv = request.args.get("resourceVersion") or None
    may = Namespaces(seams, who, "watch")
    if not cap.take(who.name):
        raise errors.APIError(
            429, "TooManyRequests",
            f"{who.name} already has {cap.per_user} dashboard watches open on this replica; close a tab",
            {"retryAfterSeconds": 5},
        )  # fmt: skip
    try:
        events = seams.applications.watch(None, rv, _WATCH_TIMEOUT, False)
    except Exception:
        cap.give_back(who.name)
        raise

    def permitted() -> Iterator[dict[str, Any]]:
        try:
            for event in events:
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                if event["type"] in ("ADDED", "MODIFIED", "DELETED") and not may(str(meta.get("namespace"))):
                    event = {"type": "BOOKMARK", "object": {
                        "kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
                        "metadata": {"resourceVersion": meta.get("resourceVersion", "")},
                    }}  # fmt: skip
                yield event
        finally:
            cap.give_back(who.name)

    try:
        return seams.stream(permitted())
    except Exception:  # no slot: the generator never runs, so its finally does not either
        cap.give_back(who.name)
        raise
