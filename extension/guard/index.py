"""The in-memory Application index the guard decides from, and the thread that keeps it current.

Each gunicorn worker holds its own index, filled by one list and then a watch of the storage
ConfigMaps (through a ``Source``: ``extension.storage.Store`` in production, a fake in tests). A
410 Gone (the watch's resourceVersion was compacted) re-lists; any other failure re-lists after a
back-off, serving the last good data meanwhile. The guard is ready once the first list is in.

The guard's reads are lock-free: the index swaps whole immutable entries, and a dict lookup under
the GIL sees either the old or the new one. Writes take a lock, and so do the API's reads of a
whole namespace (``snapshot``), which must see the objects and the resourceVersion together.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from extension.api import jsoncodec
from extension.api.tracking import AppKey, ObjectRef
from extension.api.validation import parse_duration
from extension.kubehttp import Gone, list_and_watch_forever

log = logging.getLogger(__name__)

DEFAULT_BREAK_GLASS_MAX = datetime.timedelta(hours=1)
WATCH_SECONDS = 300


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class AllowRules:
    """``spec.driftGuard.allow``: an entry in any list lets a change through."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()  # "namespace:name" or "system:serviceaccount:namespace:name"
    kinds: tuple[str, ...] = ()  # "Kind" or "group/Kind"
    json_pointers: tuple[str, ...] = ()


@dataclass(frozen=True)
class BreakGlass:
    groups: tuple[str, ...] = ()
    max_duration: datetime.timedelta = DEFAULT_BREAK_GLASS_MAX


@dataclass(frozen=True)
class GuardedApp:
    """What the guard needs of one Application."""

    key: AppKey
    mode: str = "enforce"
    allow: AllowRules = AllowRules()
    break_glass: BreakGlass = BreakGlass()
    repo_url: str = ""
    path: str = ""
    revision: str = ""
    inventory: frozenset[ObjectRef] = frozenset()

    @classmethod
    def of(cls, app: dict[str, Any]) -> GuardedApp:
        """From an Application as the API serves it; tolerant: what it cannot read stays default
        (the API validated the spec, but status is whatever the controller wrote)."""
        meta, spec, status = _dict(app.get("metadata")), _dict(app.get("spec")), _dict(app.get("status"))
        guard, source = _dict(spec.get("driftGuard")), _dict(spec.get("source"))
        allow, glass = _dict(guard.get("allow")), _dict(guard.get("breakGlass"))
        seconds = parse_duration(glass["maxDuration"]) if isinstance(glass.get("maxDuration"), str) else None
        mode = guard.get("mode")
        return cls(
            key=AppKey(str(meta.get("namespace") or ""), str(meta.get("name") or "")),
            mode=mode if mode in ("enforce", "warn", "off") else "enforce",
            allow=AllowRules(
                users=_strings(allow.get("users")),
                groups=_strings(allow.get("groups")),
                service_accounts=_strings(allow.get("serviceAccounts")),
                kinds=_strings(allow.get("kinds")),
                json_pointers=_strings(allow.get("jsonPointers")),
            ),
            break_glass=BreakGlass(
                groups=_strings(glass.get("groups")),
                max_duration=datetime.timedelta(seconds=seconds) if seconds else DEFAULT_BREAK_GLASS_MAX,
            ),
            repo_url=str(source.get("repoURL") or ""),
            path=str(source.get("path") or ""),
            revision=str(_dict(status.get("sync")).get("revision") or ""),
            inventory=frozenset(
                ObjectRef.from_status(entry)
                for entry in _list(status.get("resources"))
                if isinstance(entry, dict)
            ),
        )


NameKey = tuple[str, str, str]  # group, namespace, name


def version_number(rv: str | None) -> int | None:
    """The storage's resourceVersion as a number. kube's clients must treat it as opaque; the
    extension is the storage's server side here, as kube-apiserver's watch cache is for etcd, whose
    revisions these are."""
    return int(rv) if rv and rv.isascii() and rv.isdigit() else None


Held = list[tuple[AppKey, tuple[str, bytes]]]


def _decoded(held: Held) -> list[dict[str, Any]]:
    """Copies of the objects, ordered as the storage lists them: by namespace, then name."""
    return [jsoncodec.loads(data) for _, (_, data) in sorted(held, key=lambda e: (e[0].namespace, e[0].name))]


class AppIndex:
    """Applications by key, and inventory entries by (group, namespace, name) for the scale check."""

    def __init__(self) -> None:
        self._apps: dict[AppKey, GuardedApp] = {}
        # Each Application as last seen: its resourceVersion, and the object serialized (a seventh
        # of the memory of the decoded object, and nothing for the garbage collector to walk).
        self._latest: dict[AppKey, tuple[str, bytes]] = {}
        self._by_name: dict[NameKey, frozenset[tuple[ObjectRef, AppKey]]] = {}
        self._lock = threading.Lock()
        self._advanced = threading.Condition(self._lock)
        self.synced = False
        self.error = "not listed yet"
        self.rv = 0  # the storage's resourceVersion the index holds every change up to

    # --- reads ------------------------------------------------------------------------------
    def get(self, key: AppKey) -> GuardedApp | None:
        return self._apps.get(key)

    def listed(self, group: str, namespace: str, name: str) -> frozenset[tuple[ObjectRef, AppKey]]:
        """Inventory entries of any kind with this group, namespace and name, and their owners."""
        return self._by_name.get((group, namespace, name), frozenset())

    def __len__(self) -> int:
        return len(self._apps)

    def latest(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the Application as the watch last delivered it (the API's writes start from it)."""
        found = self._latest.get(AppKey(namespace, name))
        return jsoncodec.loads(found[1]) if found is not None else None

    def snapshot(self, namespace: str | None) -> tuple[str, list[dict[str, Any]]]:
        """The resourceVersion the index is at, and its Applications (of one namespace, or all) at
        that version, ordered as the storage lists them."""
        with self._lock:
            rv, held = str(self.rv), self._held(namespace)
        return rv, _decoded(held)

    def serving(self) -> bool:
        """Listed, and its watch healthy."""
        return self.synced and not self.error

    def newest(
        self, namespace: str | None, versions: frozenset[str], list_rv: str, timeout: float
    ) -> tuple[str, list[dict[str, Any]]] | None:
        """Copies of the Applications (of one namespace, or all) at least as new as a list the
        storage just made at ``list_rv``, which named ``versions``, and the resourceVersion they
        are at; waiting up to ``timeout`` for the watch to bring them. None when the index does not
        get there (or is not serving). Either it holds exactly those versions (a resourceVersion
        names one write of one object, so equal sets mean equal objects: as of ``list_rv``), or it
        holds every change up to ``list_rv`` or later (writes came after the list: as of its own
        version, as kube-apiserver's consistent reads from its watch cache)."""
        target = version_number(list_rv)
        deadline = time.monotonic() + timeout
        with self._advanced:
            while True:
                if not self.serving():
                    return None
                held = self._held(namespace)
                if len(held) == len(versions) and all(rv in versions for _, (rv, _) in held):
                    at = list_rv
                    break
                if target is not None and self.rv >= target:
                    at = str(self.rv)
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._advanced.wait(left)
        return at, _decoded(held)

    def _held(self, namespace: str | None) -> Held:  # with the lock held
        return [(k, v) for k, v in self._latest.items() if namespace in (None, k.namespace)]

    def caught_up(self, rv: int, timeout: float) -> bool:
        """Whether the index is serving (listed, its watch healthy) and holds every change up to
        the storage's resourceVersion ``rv``, waiting up to ``timeout`` for the watch to get there."""
        deadline = time.monotonic() + timeout
        with self._advanced:
            while self.serving() and self.rv < rv:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._advanced.wait(left)
            return self.serving()

    # --- writes -----------------------------------------------------------------------------
    def seen(self, rv: str) -> None:
        """A bookmark of the watch brought the index up to ``rv``."""
        with self._advanced:
            self._advance(version_number(rv))

    def _advance(self, number: int | None) -> None:  # with the lock held
        if number is not None and number > self.rv:
            self.rv = number
            self._advanced.notify_all()

    def failed(self, error: str) -> None:
        """The watch broke: the data is kept for the guard, but reads go to the storage."""
        with self._advanced:
            self.error = error
            self._advanced.notify_all()

    def _index(self, app: GuardedApp, add: bool) -> None:
        for ref in app.inventory:
            name_key = (ref.group, ref.namespace, ref.name)
            entries = set(self._by_name.get(name_key, ()))
            if add:
                entries.add((ref, app.key))
            else:
                entries.discard((ref, app.key))
            if entries:
                self._by_name[name_key] = frozenset(entries)
            else:
                self._by_name.pop(name_key, None)

    def put(self, app: GuardedApp) -> None:
        with self._lock:
            previous = self._apps.get(app.key)
            if previous is not None:
                self._index(previous, add=False)
            self._index(app, add=True)
            self._apps[app.key] = app

    def remove(self, key: AppKey) -> None:
        with self._lock:
            previous = self._apps.pop(key, None)
            if previous is not None:
                self._index(previous, add=False)

    def replace(self, apps: list[GuardedApp], objects: Sequence[dict[str, Any]] = (), rv: str = "") -> None:
        """Everything at once, after a (re-)list at ``rv``: the guard's view, and the listed objects."""
        by_key = {a.key: a for a in apps}
        latest = {
            AppKey(o["metadata"]["namespace"], o["metadata"]["name"]): (
                str(o["metadata"].get("resourceVersion") or ""),
                jsoncodec.dumps(o),
            )
            for o in objects
        }
        by_name: dict[NameKey, set[tuple[ObjectRef, AppKey]]] = {}
        for app in by_key.values():
            for ref in app.inventory:
                by_name.setdefault((ref.group, ref.namespace, ref.name), set()).add((ref, app.key))
        with self._lock:
            self._apps, self._latest = by_key, latest
            self._by_name = {k: frozenset(v) for k, v in by_name.items()}
            self.synced, self.error = True, ""
            # The list's own version, even below an earlier one (etcd restored from a backup):
            # the index holds exactly what the list held, and no more.
            self.rv = version_number(rv) or 0
            self._advanced.notify_all()

    def apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            return
        app = GuardedApp.of(obj)
        version = str(_dict(obj.get("metadata")).get("resourceVersion") or "")
        rv = version_number(version)
        if kind in ("ADDED", "MODIFIED"):
            self.put(app)
            data = jsoncodec.dumps(obj)
            with self._advanced:
                self._latest[app.key] = (version, data)
                self._advance(rv)
        elif kind == "DELETED":
            self.remove(app.key)
            with self._advanced:
                self._latest.pop(app.key, None)
                self._advance(rv)


class Source(Protocol):
    """Applications as the storage serves them (``extension.storage.Store``)."""

    def list(
        self, namespace: str | None, resource_version: str | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...

    def watch(
        self, namespace: str | None, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]: ...


@dataclass
class IndexSync:
    """List, then watch, forever, into ``index``. ``run`` is the thread's body."""

    source: Source
    index: AppIndex
    watch_seconds: int = WATCH_SECONDS
    sleep: Callable[[float], None] = time.sleep
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="guard-index", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        list_and_watch_forever(self._list_and_watch, self._stop, self._failed, self.sleep)

    def _failed(self, exc: Exception, backoff: float) -> None:  # keep serving the last good index
        self.index.failed(f"cannot list or watch Applications: {exc}")
        log.warning("drift guard index: %s; retrying in %.1fs", self.index.error, backoff)

    def _list_and_watch(self) -> None:
        items, rv = self.source.list(None)
        self.index.replace([GuardedApp.of(app) for app in items], items, rv)
        log.info("drift guard index: %d Applications at resourceVersion %s", len(self.index), rv)
        while not self._stop.is_set():
            try:
                events = self.source.watch(None, rv, self.watch_seconds)
                for event in events:
                    rv = self._handle(event, rv)
                    if self._stop.is_set():
                        return
            except Exception as exc:
                if getattr(exc, "code", None) == 410:
                    raise Gone(f"the Application watch: {exc}") from exc
                raise

    def _handle(self, event: dict[str, Any], rv: str) -> str:
        kind, obj = event.get("type"), _dict(event.get("object"))
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(f"the Application watch: {obj.get('message', '')}")
            raise RuntimeError(f"watch error: {obj.get('message', obj)}")
        if kind == "BOOKMARK":
            self.index.seen(str(_dict(obj.get("metadata")).get("resourceVersion") or ""))
        else:
            self.index.apply(event)
        return str(_dict(obj.get("metadata")).get("resourceVersion") or rv)
