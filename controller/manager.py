"""Runs reconciles: a work queue, watches on Applications and on managed objects, the Git poll,
leader election and the HTTP endpoints (/metrics, /healthz, /readyz, /api/webhook).

A key is never reconciled by two workers at once; an event that arrives while it is being
reconciled queues it once more. Self-heal is driven by watches on managed objects, never by
polling them; Git is polled (with jitter) and refreshed at once by the webhook receiver.
"""

from __future__ import annotations

import heapq
import http.server
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controller import receiver
from controller.kube import Kube, KubeError, Resource
from controller.reconcile import Reconciler
from extension.api.projects import INSTALL_NAMESPACE
from extension.api.schema import GROUP, VERSION
from extension.api.tracking import MANAGED_LABEL, MANAGED_VALUE, AppKey, ObjectRef, claimed_app

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 1 << 20
# Watches end (and resume from their resourceVersion) at least this often; reads time out after
# WATCH_SECONDS + 30, so a watch whose server died unseen is replaced within that.
WATCH_SECONDS = 60


class Queue:
    """Keys due at a time; each handed to one worker at a time (client-go's workqueue rules)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, AppKey]] = []
        self._due: dict[AppKey, float] = {}
        self._processing: set[AppKey] = set()
        self._again: dict[AppKey, float] = {}
        self._seq = 0

    def add(self, key: AppKey, after: float = 0.0) -> None:
        due = time.monotonic() + after
        with self._cond:
            if key in self._processing:
                self._again[key] = min(due, self._again.get(key, due))
                return
            if key in self._due and self._due[key] <= due:
                return
            self._push(key, due)

    def _push(self, key: AppKey, due: float) -> None:
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))
        self._cond.notify()

    def get(self, stop: threading.Event) -> AppKey | None:
        with self._cond:
            while not stop.is_set():
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier due time
                if self._heap and self._heap[0][0] <= time.monotonic():
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    self._processing.add(key)
                    return key
                wait = self._heap[0][0] - time.monotonic() if self._heap else 1.0
                self._cond.wait(timeout=max(0.01, min(wait, 1.0)))
        return None

    def done(self, key: AppKey) -> None:
        with self._cond:
            self._processing.discard(key)
            again = self._again.pop(key, None)
            if again is not None and (key not in self._due or self._due[key] > again):
                self._push(key, again)

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)


class Manager:
    def __init__(
        self,
        kube: Kube,
        reconciler: Reconciler,
        *,
        workers: int,
        poll_seconds: float,
        webhook_secret: str = "",
    ) -> None:
        self.kube, self.reconciler = kube, reconciler
        self.workers, self.poll_seconds, self.webhook_secret = workers, poll_seconds, webhook_secret
        self.queue = Queue()
        self.stop = threading.Event()
        self.apps: dict[AppKey, dict[str, Any]] = {}
        self._from_watch: set[AppKey] = set()  # keys whose copy in apps came from the watch
        self._listening: set[tuple[str, str]] = set()  # (group, kind) whose watch is listed and open
        reconciler.watching = lambda group, kind: (group, kind) in self._listening
        # AppProjects, from a watch once it has listed them: a change wakes their Applications.
        self.projects: dict[str, dict[str, Any]] | None = None
        self._direct_project = reconciler.project
        reconciler.project = self._project
        self.apps_synced = threading.Event()
        self._watched: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        # When a watch showed a managed object drifting: for the restore-latency metric.
        self._drift_seen: dict[AppKey, float] = {}

    # --- workers ------------------------------------------------------------------------------
    def start(self) -> None:
        threads: list[tuple[Callable[[], None], str]] = [
            (self._watch_projects, "watch-appprojects"),
            (self._watch_apps, "watch-applications"),
            (self._poll, "poll"),
        ]
        threads += [(self._work, f"worker-{n}") for n in range(self.workers)]
        for target, name in threads:
            threading.Thread(target=target, name=name, daemon=True).start()

    def _work(self) -> None:
        while not self.stop.is_set():
            key = self.queue.get(self.stop)
            if key is None:
                return
            try:
                # Pending first, then the copy: a copy read after our status write came back is
                # current; one read before that check may not be.
                pending = self.reconciler.pending(key)
                with self._lock:
                    known = self.apps.get(key) if key in self._from_watch and not pending else None
                outcome = self.reconciler.reconcile(key, known)
                seen = self._drift_seen.pop(key, None)
                if seen is not None:
                    self.reconciler.metrics.restore.observe(time.monotonic() - seen)
                if outcome.requeue_after is not None:
                    self.queue.add(key, outcome.requeue_after)
                self._ensure_object_watches(key)
            except KubeError as exc:  # e.g. the aggregated API briefly unavailable
                log.warning("[%s] %s; retrying in 5s", key, exc.message)
                self.queue.add(key, 5.0)
            except Exception:  # one Application's bug must not stop the others
                log.exception("[%s] reconcile failed unexpectedly; retrying in 10s", key)
                self.queue.add(key, 10.0)
            finally:
                self.queue.done(key)

    def _poll(self) -> None:
        while not self.stop.wait(self.poll_seconds * random.uniform(0.9, 1.1)):  # noqa: S311 (jitter)
            self.reconciler.sources.expire()
            # A relist as well: a watch through the aggregation layer can outlive the extension
            # replica that served it without a word, and no Application may wait for that.
            try:
                listing = self.kube.request("GET", self.kube.app_path())["items"]
            except KubeError as exc:
                log.warning("listing Applications: %s", exc.message)
                listing = []
            with self._lock:
                # Only what the watch missed; such a copy is never reconciled from (a deleted
                # Application could come back this way): _from_watch does not list it.
                for app in listing:
                    self.apps.setdefault(AppKey(app["metadata"]["namespace"], app["metadata"]["name"]), app)
                keys = list(self.apps)
            # Spread over most of the interval: fetches do not come in a burst, and an Application
            # a watch or a push wakes (due now) never queues behind a whole poll's worth of them.
            for key in keys:
                self.queue.add(key, random.uniform(0, self.poll_seconds * 0.8))  # noqa: S311

    # --- Applications ---------------------------------------------------------------------------
    def _watch_apps(self) -> None:
        path = self.kube.app_path()
        while not self.stop.is_set():
            try:
                listing = self.kube.request("GET", path)
                fresh = {
                    AppKey(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in listing["items"]
                }
                with self._lock:
                    gone = [self.apps[k] for k in self.apps if k not in fresh]
                    self.apps, self._from_watch = fresh, set(fresh)
                for key, app in fresh.items():
                    self.reconciler.status_seen(key, app["metadata"].get("resourceVersion", ""))
                for app in gone:
                    self._deleted(app)
                for key in fresh:
                    self.queue.add(key)
                self.apps_synced.set()
                version = listing["metadata"]["resourceVersion"]
                while not self.stop.is_set():
                    version = self._follow_apps(path, version)
            except KubeError as exc:
                log.warning("watching Applications: %s; listing again in 2s", exc.message)
                self.stop.wait(2.0)
            except Exception:  # the watch must outlive any surprise
                log.exception("watching Applications failed unexpectedly; listing again in 5s")
                self.stop.wait(5.0)
            except _Gone:
                log.info("Application watch expired; listing again")

    def _follow_apps(self, path: str, version: str) -> str:
        query = {"resourceVersion": version, "allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
        for event in self.kube.stream(path, query, WATCH_SECONDS):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise _Gone()
            version = obj.get("metadata", {}).get("resourceVersion") or version
            if kind == "BOOKMARK":
                continue
            key = AppKey(obj["metadata"]["namespace"], obj["metadata"]["name"])
            with self._lock:
                old = self.apps.get(key)
                if kind == "DELETED":
                    self.apps.pop(key, None)
                    self._from_watch.discard(key)
                else:
                    self.apps[key] = obj
                    self._from_watch.add(key)
            self.reconciler.status_seen(key, version)
            if kind == "DELETED":
                self._deleted(obj)
            elif old is None or _wants_reconcile(old, obj):
                self.queue.add(key)
        return version

    # --- AppProjects ----------------------------------------------------------------------------
    def _project(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            known = self.projects
        if known is None:  # not listed yet (or the watch failed): read it
            return self._direct_project(name)
        return known.get(name)

    def _watch_projects(self) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{INSTALL_NAMESPACE}/appprojects"
        while not self.stop.is_set():
            try:
                listing = self.kube.request("GET", path)
                fresh = {p["metadata"]["name"]: p for p in listing["items"]}
                with self._lock:
                    before, self.projects = self.projects or {}, fresh
                self._wake_projects({n for n in set(before) | set(fresh) if before.get(n) != fresh.get(n)})
                version = listing["metadata"]["resourceVersion"]
                query = {"allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
                while not self.stop.is_set():
                    for event in self.kube.stream(path, {**query, "resourceVersion": version}, WATCH_SECONDS):
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            raise _Gone()
                        version = obj.get("metadata", {}).get("resourceVersion") or version
                        if kind in ("ADDED", "MODIFIED", "DELETED"):
                            name = obj["metadata"]["name"]
                            with self._lock:
                                known = self.projects if self.projects is not None else {}
                                if kind == "DELETED":
                                    known.pop(name, None)
                                else:
                                    known[name] = obj
                            self._wake_projects({name})
            except (KubeError, _Gone) as exc:
                with self._lock:
                    self.projects = None  # read directly until listed again
                log.warning(
                    "watching AppProjects: %s; listing again in 2s", getattr(exc, "message", "expired")
                )
                self.stop.wait(2.0)
            except Exception:
                with self._lock:
                    self.projects = None
                log.exception("watching AppProjects failed unexpectedly; listing again in 5s")
                self.stop.wait(5.0)

    def _wake_projects(self, names: set[str]) -> None:
        """A project changed: its Applications are judged again at once (a project tightened stops
        their next sync, one loosened lets it go)."""
        if not names:
            return
        with self._lock:
            keys = [
                k
                for k, a in self.apps.items()
                if ((a.get("spec") or {}).get("project") or "default") in names
            ]
        for key in keys:
            self.reconciler.forget(key)
            self.queue.add(key)

    def _deleted(self, app: dict[str, Any]) -> None:
        self.reconciler.drop(AppKey(app["metadata"]["namespace"], app["metadata"]["name"]))
        try:
            self.reconciler.release(app)
        except KubeError as exc:
            log.warning("releasing the objects of a deleted Application: %s", exc.message)

    # --- managed objects ------------------------------------------------------------------------
    def _ensure_object_watches(self, key: AppKey) -> None:
        with self._lock:
            app = self.apps.get(key) or {}
        for entry in (app.get("status") or {}).get("resources") or []:
            kind = (str(entry.get("group") or ""), str(entry.get("kind") or ""))
            with self._lock:
                if kind in self._watched:
                    continue
            res = self.kube.resource(*kind)
            if res is None or "watch" not in res.verbs:
                continue
            with self._lock:
                if kind in self._watched:
                    continue
                self._watched.add(kind)
            threading.Thread(
                target=self._watch_objects, args=(res,), name=f"watch-{res.plural}", daemon=True
            ).start()

    def _watch_objects(self, res: Resource) -> None:
        selector = f"{MANAGED_LABEL}={MANAGED_VALUE}"
        log.info("watching managed %s", res.plural)
        while not self.stop.is_set():
            try:
                version = self.kube.list(res, selector)["metadata"]["resourceVersion"]
                # Changes before this list came as no event: compare every Application in full.
                self.reconciler.forget()
                self._listening.add((res.group, res.kind))
                query = {
                    "labelSelector": selector,
                    "resourceVersion": version,
                    "timeoutSeconds": WATCH_SECONDS,
                }
                while not self.stop.is_set():
                    for event in self.kube.stream(
                        res.path(), {**query, "resourceVersion": version}, WATCH_SECONDS
                    ):
                        if event.get("type") == "ERROR":
                            raise _Gone()
                        obj = event.get("object") or {}
                        version = obj.get("metadata", {}).get("resourceVersion") or version
                        self._object_event(str(event.get("type")), obj)
            except KubeError as exc:
                self._listening.discard((res.group, res.kind))
                log.warning("watching %s: %s; listing again in 2s", res.plural, exc.message)
                self.stop.wait(2.0)
            except Exception:
                self._listening.discard((res.group, res.kind))
                log.exception("watching %s failed unexpectedly; listing again in 5s", res.plural)
                self.stop.wait(5.0)
            except _Gone:
                continue

    def _object_event(self, kind: str, obj: dict[str, Any]) -> None:
        if kind not in ("MODIFIED", "DELETED"):
            return
        ref = ObjectRef.of(obj)
        written = self.reconciler.written.get((ref.group, ref.kind, ref.namespace, ref.name))
        if kind == "MODIFIED" and written == obj["metadata"].get("resourceVersion"):
            return  # our own apply coming back
        # The Application the tracking id names, and the one that had the object in sync last
        # (they differ when someone removed or changed the tracking id): both look again.
        owners = {k for k in (claimed_app(obj), self.reconciler.owner_of(ref)) if k is not None}
        for owner in owners:
            self.reconciler.touch(owner)
            with self._lock:
                known = owner in self.apps
            if known:
                self._drift_seen.setdefault(owner, time.monotonic())
                self.queue.add(owner)

    # --- Git webhook receiver -------------------------------------------------------------------
    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        try:
            push = receiver.verify_and_parse(headers, body, self.webhook_secret)
        except receiver.ReceiverError as exc:
            return exc.status, str(exc)
        if push is None:
            return 202, "ignored: not a push event"
        refreshed = []
        with self._lock:
            apps = list(self.apps.items())
        for key, app in apps:
            url = str(((app.get("spec") or {}).get("source") or {}).get("repoURL") or "")
            if any(receiver.same_repo(url, pushed) for pushed in push.repo_urls):
                self.reconciler.sources.expire(url)
                self.queue.add(key)
                refreshed.append(str(key))
        log.info(
            "push to %s (%s): refreshing %d Applications",
            sorted(push.repo_urls)[:1],
            push.ref,
            len(refreshed),
        )
        return 200, json.dumps({"refreshed": refreshed})


class _Gone(Exception):
    pass


def _wants_reconcile(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an Application event asks for work: our own status writes do not."""

    def essence(app: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in app["metadata"].items() if k not in ("resourceVersion", "managedFields")}
        return {**{k: v for k, v in app.items() if k not in ("status", "metadata")}, "metadata": meta}

    return essence(old) != essence(new)


def serve(
    manager: Manager, bind: str, ready: Callable[[], list[str]], reuse_port: bool = False
) -> http.server.ThreadingHTTPServer:
    """The controller's plain-HTTP endpoints (in a cluster, put TLS in front of /api/webhook).
    ``reuse_port`` lets replicas that share a host network share the port (SO_REUSEPORT)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(
            self, code: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8"
        ) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(manager.reconciler.metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/livez"):
                self._reply(200, "ok\n")
            elif self.path == "/readyz":
                problems = ready()
                self._reply(503 if problems else 200, "".join(f"[-] {p}\n" for p in problems) or "ok\n")
            else:
                self._reply(404, "not found\n")

        def do_POST(self) -> None:
            if self.path != "/api/webhook":
                self._reply(404, "not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_WEBHOOK_BODY:
                self._reply(413, f"the body is larger than {MAX_WEBHOOK_BODY} bytes\n")
                return
            code, text = manager.receive({k: v for k, v in self.headers.items()}, self.rfile.read(length))
            self._reply(code, text + "\n")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    host, _, port = bind.rpartition(":")

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_port = reuse_port

    server = Server((host, int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
