"""The Flask app: the aggregated API for applications.gitops.driftguard.io, the drift guard's
admission webhooks (``/validate``, ``/mutate``, in a WSGI layer before Flask), plus health.

Views only parse and serialize: authentication and authorization are in ``auth``, the verbs in
``resources``, the wire formats in ``api``, the guard's decisions in ``guard``. Every error is a
``metav1.Status``.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from flask import Flask, Response, g, request, stream_with_context
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from extension import ui
from extension.api import discovery, errors, jsoncodec, managed_fields, openapi, patches, selectors, table
from extension.api.kinds import Kind
from extension.api.schema import GROUP, VERSION
from extension.applications import Applications
from extension.auth import Attributes, RequestHeaderConfig, User, authenticate
from extension.guard import reviews
from extension.guard.webhook import MAX_REVIEW_BYTES, Guard
from extension.resources import Resources, Result, WriteOptions
from extension.ui import csrf

log = logging.getLogger(__name__)

PREFIX = f"/apis/{GROUP}/{VERSION}"
MAX_BODY = 1024 * 1024  # as kube-apiserver's default for a single object, more or less
DRAIN_LIMIT = 16 * 1024 * 1024  # an oversized body read and dropped before the 413; past it, a reset
WATCH_TIMEOUT_DEFAULT = 1800


class Authorizer(Protocol):
    def check(self, user: User, attrs: Attributes) -> tuple[bool, str]: ...


@dataclass
class Deps:
    """What the app needs from the outside world; tests pass fakes at this seam."""

    applications: Applications
    authorizer: Authorizer
    requestheader: Callable[[], RequestHeaderConfig | None]
    readiness: Callable[[], list[str]] = lambda: []  # what is not ready yet
    guard: Guard | None = None  # the drift guard's webhooks; None serves none
    # Each open watch holds a worker thread; past this many, new watches get 429 so that short
    # requests (and the probes) always find a thread.
    max_watches: int = 24
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    peer_cert: Callable[[dict[str, Any]], dict[str, Any] | None] = field(
        default=lambda environ: _gunicorn_peer_cert(environ)
    )
    projects: Resources | None = None  # AppProjects; None serves none


def _gunicorn_peer_cert(environ: dict[str, Any]) -> dict[str, Any] | None:
    sock = environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    return getpeercert() if getpeercert else None


def _json(body: Any, code: int = 200, warnings: list[str] | None = None) -> Response:
    response = Response(jsoncodec.dumps(body), status=code, mimetype="application/json")
    for warning in warnings or []:
        response.headers.add("Warning", '299 - "' + warning.replace('"', '\\"') + '"')
    return response


def _error(exc: errors.APIError) -> Response:
    response = _json(exc.status(), exc.code)
    if exc.details and "retryAfterSeconds" in exc.details:
        response.headers["Retry-After"] = str(exc.details["retryAfterSeconds"])
    return response


def _write_options() -> WriteOptions:
    dry_run = request.args.getlist("dryRun")
    if any(d != "All" for d in dry_run):
        raise errors.bad_request(f'dryRun: Unsupported value: {dry_run}: supported values: "All"')
    validation = request.args.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": '
            'supported values: "Ignore", "Strict", "Warn"'
        )
    manager = managed_fields.manager_from(
        request.args.get("fieldManager"), request.headers.get("User-Agent", "")
    )
    if len(manager) > 128:
        raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
    who: User | None = g.get("user")
    writer: reviews.UserInfo | None = None
    if who is not None:
        writer = {
            "username": who.name,
            "groups": list(who.groups),
            "extra": {k: list(v) for k, v in who.extra},
        }
    return WriteOptions(
        dry_run=bool(dry_run), field_validation=validation, field_manager=manager, user=writer
    )


def _body() -> Any:
    raw = request.get_data(cache=False)
    if not raw:
        return None
    try:
        return jsoncodec.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc


def _drain(environ: dict[str, Any]) -> None:
    """Reads an oversized body (up to DRAIN_LIMIT) without keeping it, so that the client, which is
    still sending, reads the 413 instead of a connection reset (kube-apiserver's proxy would answer
    503 for it)."""
    stream, left = environ["wsgi.input"], DRAIN_LIMIT
    while left > 0 and (chunk := stream.read(min(left, 65536))):
        left -= len(chunk)


def _patch(
    res: Resources, namespace: str, name: str, may_create: Callable[[], None], *, status: bool = False
) -> Result:
    """PATCH: server-side apply for application/apply-patch+yaml, else a merge or JSON patch."""
    media = (request.content_type or "").split(";")[0].strip()
    force = request.args.get("force")
    if media != patches.APPLY:
        if force is not None:
            raise errors.APIError(
                422, "Invalid", "force: Forbidden: may not be specified for non-apply patch"
            )
        return res.patch(
            namespace, name, request.content_type or "", _body(), _write_options(), status=status
        )
    if not request.args.get("fieldManager"):
        raise errors.APIError(
            422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
            "is required for apply patch",
        )  # fmt: skip
    forced = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False, "": False}.get(
        (force or "").lower()
    )  # Go's strconv.ParseBool, as kube parses the parameter
    if forced is None:
        raise errors.bad_request(f'force: Invalid value: "{force}": must be true or false')
    config = patches.decode_apply(request.get_data(cache=False))
    return res.apply(
        namespace, name, config, _write_options(), force=forced, may_create=may_create, status=status
    )


WEBHOOK_PATHS = ("/validate", "/mutate")


class Webhooks:
    """The drift guard's admission webhooks, served before Flask: kube-apiserver waits for them on
    every write to a managed object, and Flask's request machinery would cost more than the
    verdict itself (measured in the README). Everything else goes to the Flask app.

    They need no authentication: they only answer, they change nothing, and kube-apiserver reaches
    them over TLS it verifies against the caBundle (it presents no client certificate)."""

    def __init__(self, app: Callable[..., Any], guard: Guard | None) -> None:
        self.app, self.guard = app, guard

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path not in WEBHOOK_PATHS:
            return self.app(environ, start_response)
        try:
            code, body = self._answer(environ, path)
        except Exception:  # a bug answers a Status, never a bare 500 page
            log.exception("unhandled error on %s %s", environ.get("REQUEST_METHOD"), path)
            code, body = 500, errors.internal("the drift guard failed; see its log").status()
        data = jsoncodec.dumps(body)
        start_response(
            f"{code} {HTTPStatus(code).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def _answer(self, environ: dict[str, Any], path: str) -> tuple[int, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "")
        if method != "POST":
            return 405, errors.method_not_allowed(method, path).status()
        if self.guard is None:
            return 404, errors.APIError(
                404, "NotFound", "the drift guard is not enabled on this server"
            ).status()
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return 400, reviews.bad_request("the Content-Length header is not a number")
        too_large = f"the AdmissionReview is larger than the limit of {MAX_REVIEW_BYTES} bytes"
        if length > MAX_REVIEW_BYTES:
            return 400, reviews.bad_request(too_large)
        # Without a length (chunked), read one byte past the limit to tell an oversized body.
        body = environ["wsgi.input"].read(length if length >= 0 else MAX_REVIEW_BYTES + 1)
        if len(body) > MAX_REVIEW_BYTES:
            return 400, reviews.bad_request(too_large)
        return self.guard.validate(body) if path == "/validate" else self.guard.mutate(body)


def create_app(deps: Deps) -> Flask:
    app = Flask(__name__)
    app.wsgi_app = Webhooks(app.wsgi_app, deps.guard)  # type: ignore[method-assign]
    watch_slots = threading.BoundedSemaphore(deps.max_watches)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.before_request
    def refuse_cross_site_writes() -> None:
        if request.method in csrf.SAFE_METHODS:
            return
        user()  # who is not authenticated gets 401, whatever else is wrong
        reason = csrf.refusal(request.method, request.headers.get, request.cookies)
        if reason is not None:
            raise errors.APIError(403, "Forbidden", reason)

    @app.errorhandler(errors.APIError)
    def api_error(exc: errors.APIError) -> Response:
        return _error(exc)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        _drain(request.environ)
        return _error(errors.too_large(MAX_BODY))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        if code == 404:
            return _error(
                errors.APIError(404, "NotFound", "the server could not find the requested resource")
            )
        if code == 405:
            return _error(errors.method_not_allowed(request.method, request.path))
        return _error(errors.APIError(code, exc.name.replace(" ", ""), exc.description or exc.name))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(errors.internal(type(exc).__name__))

    # --- health: no authentication, as kube-apiserver's probes expect ------------------------
    @app.get("/healthz")
    @app.get("/livez")
    def live() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.get("/readyz")
    def ready() -> Response:
        missing = deps.readiness() + (deps.guard.readiness() if deps.guard else [])
        if missing:
            return Response("not ready: " + "; ".join(missing), status=503, mimetype="text/plain")
        return Response("ok", mimetype="text/plain")

    # --- authenticated from here on ----------------------------------------------------------
    def user() -> User:
        known: User | None = g.get("user")
        if known is not None:  # authenticated once per request (a write is, before its CSRF check)
            return known
        config = deps.requestheader()
        if config is None:
            raise errors.service_unavailable("the requestheader configuration is not loaded yet")
        who = authenticate(deps.peer_cert(request.environ), request.environ, config)
        g.user = who  # the writer the drift guard judges (_write_options)
        return who

    # As many as the requests that may wait on one (threads start only when needed).
    reviews_pool = ThreadPoolExecutor(max_workers=deps.max_watches + 8, thread_name_prefix="review")

    def authorize(who: User, attrs: Attributes) -> None:
        allowed, _ = deps.authorizer.check(who, attrs)
        if not allowed:
            resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
            raise errors.forbidden(who.name, attrs.verb, resource, attrs.namespace, attrs.name)

    @app.get("/apis")
    def apis() -> Response:
        user()
        return _json(discovery.api_group_list())

    @app.get(f"/apis/{GROUP}")
    def api_group() -> Response:
        user()
        return _json(discovery.api_group())

    @app.get(PREFIX)
    def api_resources() -> Response:
        user()
        return _json(discovery.api_resource_list())

    v3 = openapi.openapi_v3_group_version()
    v3_hash = openapi.content_hash(v3)
    v2 = openapi.openapi_v2()

    @app.get("/openapi/v2")
    def openapi_v2() -> Response:
        user()
        return _json(v2)

    @app.get("/openapi/v3")
    def openapi_v3_root() -> Response:
        user()
        return _json(openapi.openapi_v3_root(v3_hash))

    @app.get(f"/openapi/v3{PREFIX}")
    def openapi_v3() -> Response:
        user()
        response = _json(v3)
        if request.args.get("hash") == v3_hash:
            response.headers["Cache-Control"] = "public, immutable"
        return response

    def stream(
        events: Iterator[dict[str, Any]], kind: Kind, as_table: bool = False, include: str = "Metadata",
        bookmarks: bool = False,
    ) -> Response:  # fmt: skip
        """A watch's events as they come, in one of the replica's watch slots."""
        if not watch_slots.acquire(blocking=False):
            raise errors.APIError(
                429, "TooManyRequests",
                f"this extension replica already serves {deps.max_watches} watches; retry shortly",
                {"retryAfterSeconds": 1},
            )  # fmt: skip
        body = _watch_stream(events, kind, as_table, include, bookmarks, deps.clock)
        return Response(stream_with_context(_released(body, watch_slots)), mimetype="application/json")

    def respond(result: Result) -> Response:
        return _json(result.body, result.code, result.warnings)

    def serve(res: Resources) -> None:
        """The routes of one kind: collection, item, status, operations."""
        kind: Kind = res.kind
        plural = kind.plural

        def list_or_watch(namespace: str | None, who: User) -> Response:
            watching = request.args.get("watch") in ("true", "1")
            authorize(who, Attributes("watch" if watching else "list", plural, namespace))
            labels = selectors.label_selector(request.args.get("labelSelector"))
            fields = selectors.field_selector(request.args.get("fieldSelector"))

            def match(obj: dict[str, Any]) -> bool:
                return labels(obj["metadata"].get("labels") or {}) and fields(obj)

            as_table = table.wants_table(request.headers.get("Accept", ""))
            include = request.args.get("includeObject", "Metadata")
            rv = request.args.get("resourceVersion") or None
            if watching:
                timeout_arg = request.args.get("timeoutSeconds") or str(WATCH_TIMEOUT_DEFAULT)
                if not timeout_arg.isdigit():
                    raise errors.bad_request(
                        f"timeoutSeconds must be a non-negative integer, not {timeout_arg!r}"
                    )
                timeout = int(timeout_arg)
                bookmarks = request.args.get("allowWatchBookmarks") == "true" and not as_table
                initial = request.args.get("sendInitialEvents") == "true"
                events = res.watch(namespace, rv, timeout, initial)
                if request.args.get("labelSelector") or request.args.get("fieldSelector"):
                    # What the client holds: from a resourceVersion, what it listed (as it matches
                    # now); otherwise nothing yet, and the initial events add it.
                    known: set[tuple[str, str]] = set()
                    if rv not in (None, "0") and not initial:
                        known = {
                            (a["metadata"]["namespace"], a["metadata"]["name"])
                            for a in res.list(namespace, match)[0]
                        }
                    events = selected_events(events, match, known)
                return stream(events, kind, as_table, include, bookmarks)
            items, list_rv = res.list(namespace, match, rv)
            if as_table:
                return _json(
                    table.table(
                        items, deps.clock(), kind=kind, resource_version=list_rv, include_object=include
                    )
                )
            return _json(
                {"kind": kind.list_kind, "apiVersion": f"{GROUP}/{VERSION}",
                 "metadata": {"resourceVersion": list_rv}, "items": items}
            )  # fmt: skip

        def one(obj: dict[str, Any]) -> Response:
            if table.wants_table(request.headers.get("Accept", "")):
                include = request.args.get("includeObject", "Metadata")
                rv = obj["metadata"]["resourceVersion"]
                return _json(
                    table.table([obj], deps.clock(), kind=kind, resource_version=rv, include_object=include)
                )
            return _json(obj)

        def all_namespaces() -> Response:
            return list_or_watch(None, user())

        def collection(namespace: str) -> Response:
            who = user()
            if request.method == "GET":
                return list_or_watch(namespace, who)
            if request.method == "POST":
                authorize(who, Attributes("create", plural, namespace))
                return respond(res.create(namespace, _body(), _write_options()))
            authorize(who, Attributes("deletecollection", plural, namespace))
            labels = selectors.label_selector(request.args.get("labelSelector"))
            fields = selectors.field_selector(request.args.get("fieldSelector"))
            return _json(
                res.delete_collection(
                    namespace,
                    lambda a: labels(a["metadata"].get("labels") or {}) and fields(a),
                    _write_options(),
                )
            )

        def item(namespace: str, name: str) -> Response:
            who = user()
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[request.method]
            if verb == "get":
                # The review and the read at once: a GET waits for the slower of the two, not both.
                # Nothing read is answered before the review allows it, and a denial wins over the
                # read's own error (a 404 would tell who may not look that the name is free).
                review = reviews_pool.submit(authorize, who, Attributes(verb, plural, namespace, name))
                try:
                    found = res.get(namespace, name, request.args.get("resourceVersion") or None)
                except Exception:
                    review.result()
                    raise
                review.result()
                return one(found)
            authorize(who, Attributes(verb, plural, namespace, name))
            if verb == "update":
                return respond(res.update(namespace, name, _body(), _write_options()))
            if verb == "patch":
                return respond(
                    _patch(
                        res,
                        namespace,
                        name,
                        lambda: authorize(who, Attributes("create", plural, namespace, "")),
                    )
                )
            options = _body() or {}
            if not isinstance(options, dict):
                raise errors.bad_request("the DELETE body must be a DeleteOptions object")
            return respond(res.delete(namespace, name, _write_options(), options.get("preconditions")))

        def status(namespace: str, name: str) -> Response:
            who = user()
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}[request.method]
            authorize(who, Attributes(verb, plural, namespace, name, subresource="status"))
            if verb == "get":
                return one(res.get(namespace, name, request.args.get("resourceVersion") or None))
            if verb == "update":
                return respond(res.update(namespace, name, _body(), _write_options(), status=True))
            return respond(_patch(res, namespace, name, lambda: None, status=True))

        base = f"{PREFIX}/namespaces/<namespace>/{plural}"
        app.add_url_rule(f"{PREFIX}/{plural}", f"{plural}_all", all_namespaces, methods=["GET"])
        app.add_url_rule(base, f"{plural}_collection", collection, methods=["GET", "POST", "DELETE"])
        app.add_url_rule(f"{base}/<name>", f"{plural}_item", item, methods=["GET", "PUT", "PATCH", "DELETE"])
        if kind.status:
            app.add_url_rule(
                f"{base}/<name>/status", f"{plural}_status", status, methods=["GET", "PUT", "PATCH"]
            )

    apps = deps.applications
    serve(apps)

    ui.register(app, ui.Seams(
        prefix=PREFIX, user=user, authorize=authorize,
        allowed=lambda who, attrs: deps.authorizer.check(who, attrs)[0], applications=apps,
        stream=lambda events: stream(events, apps.kind, bookmarks=True),
    ))  # fmt: skip
    if deps.projects is not None:
        serve(deps.projects)

    @app.post(f"{PREFIX}/namespaces/<namespace>/{apps.kind.plural}/<name>/<operation>")
    def operate(namespace: str, name: str, operation: str) -> Response:
        if operation not in apps.kind.operations:
            raise errors.APIError(
                404, "NotFound", f"the server could not find the requested resource ({operation})"
            )
        who = user()
        authorize(who, Attributes("create", apps.kind.plural, namespace, name, subresource=operation))
        return respond(apps.operate(namespace, name, operation, _body(), who.name, _write_options()))

    return app


def selected_events(
    events: Iterator[dict[str, Any]], match: Callable[[dict[str, Any]], bool], known: set[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    """A watch through a selector, as kube-apiserver filters one: an object that comes to match is
    ADDED, one that stops matching is DELETED, and others' changes are not sent. ``known`` holds
    the objects the client has (those matching when the watch began)."""
    for event in events:
        kind, obj = event["type"], event["object"]
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            yield event
            continue
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if kind == "DELETED" or not match(obj):
            if key in known or (kind == "DELETED" and match(obj)):
                known.discard(key)
                yield {"type": "DELETED", "object": obj}
            continue
        yield {"type": "MODIFIED" if key in known else "ADDED", "object": obj}
        known.add(key)


def _released(stream: Iterator[bytes], slots: threading.BoundedSemaphore) -> Iterator[bytes]:
    """The stream, giving its watch slot back however it ends (timeout, client gone, error)."""
    try:
        yield from stream
    finally:
        slots.release()


def _watch_stream(
    events: Iterator[dict[str, Any]],
    served: Kind,
    as_table: bool,
    include: str,
    bookmarks: bool,
    clock: Callable[[], datetime.datetime],
) -> Iterator[bytes]:
    try:
        for event in events:
            kind, obj = event["type"], event["object"]
            if kind == "BOOKMARK" and not bookmarks:
                continue
            if kind in ("ADDED", "MODIFIED", "DELETED") and as_table:
                rv = obj["metadata"]["resourceVersion"]
                obj = table.table([obj], clock(), kind=served, resource_version=rv, include_object=include)
            yield jsoncodec.dumps({"type": kind, "object": obj}) + b"\n"
    except errors.APIError as exc:
        yield jsoncodec.dumps({"type": "ERROR", "object": exc.status()}) + b"\n"
