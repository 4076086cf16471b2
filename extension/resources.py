"""The verbs of the resources we serve, over a store. No HTTP here: app.py parses requests, calls
these, and serializes what they return or raise (``APIError``). ``Resources`` is any kind's;
``Applications`` (applications.py) adds the sync, rollback and diff operations."""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import jsonpatch

from extension.api import errors, fieldsets, managed_fields, objects, patches
from extension.api.checks import REQUIRED
from extension.api.kinds import APPLICATIONS, Kind
from extension.api.schema import GROUP, VERSION
from extension.guard import reviews
from extension.guard.index import version_number

CONFLICT_RETRIES = 5
Entries = list[dict[str, Any]]  # metadata.managedFields
Warnings = list[str]
# How long a read from a resourceVersion waits for the index to reach it, before it reads the
# storage instead.
READ_WAIT_SECONDS = 0.5


class Store(Protocol):
    def get(self, namespace: str, name: str) -> dict[str, Any]: ...
    def namespace_phase(self, namespace: str) -> str | None: ...
    def list(
        self, namespace: str | None, resource_version: str | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...
    def versions(self, namespace: str | None) -> tuple[frozenset[str], str]: ...
    def create(self, app: dict[str, Any]) -> dict[str, Any]: ...
    def update(self, app: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, app: dict[str, Any]) -> None: ...
    def watch(
        self,
        namespace: str | None,
        resource_version: str | None,
        timeout_seconds: int,
        send_initial_events: bool = False,
    ) -> Iterator[dict[str, Any]]: ...


class ReadCache(Protocol):
    """The worker's watch-fed copy of the storage (``extension.guard.index.AppIndex``)."""

    def latest(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def snapshot(self, namespace: str | None) -> tuple[str, list[dict[str, Any]]]: ...
    def caught_up(self, rv: int, timeout: float) -> bool: ...
    def serving(self) -> bool: ...
    def newest(
        self, namespace: str | None, versions: frozenset[str], list_rv: str, timeout: float
    ) -> tuple[str, list[dict[str, Any]]] | None: ...


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict | Warn | Ignore, as kube-apiserver's fieldValidation
    field_manager: str = "unknown"  # who writes: the fieldManager parameter or the User-Agent
    user: reviews.UserInfo | None = None  # the requester, for the drift guard (None: not judged)


@dataclass
class Result:
    body: dict[str, Any]
    code: int = 200
    warnings: list[str] = field(default_factory=list)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# Judges what a write would store, beyond its schema (the project an Application names, say):
# called with the new object and the stored one (None on create) on writes to the main resource;
# raises APIError to refuse. Status and operation writes are not judged again.
Policy = Callable[[dict[str, Any], dict[str, Any] | None], None]
# The drift guard, for objects we serve that an Application manages (app of apps): kube-apiserver
# sends no admission review for an aggregated API, so the writes are reviewed here.
Admission = Callable[[reviews.AdmissionRequest], reviews.AdmissionResponse]


def _invalid(kind: Kind, obj: dict[str, Any], exc: fieldsets.FieldSetError) -> errors.APIError:
    name = (obj.get("metadata") or {}).get("name", "")
    return errors.invalid(
        kind, name, [{"reason": "FieldValueInvalid", "field": exc.field, "message": exc.message}]
    )


@dataclass
class Resources:
    store: Store
    kind: Kind = APPLICATIONS
    policy: Policy = lambda new, old: None
    clock: Callable[[], datetime.datetime] = _now
    new_uid: Callable[[], str] = lambda: str(uuid.uuid4())
    # The Application as this worker's watch of the storage last saw it (a copy), or None. Writes
    # start from it instead of reading the storage first: kube-apiserver's own updates start from
    # its watch cache the same way. The write carries the copy's resourceVersion, so a copy that
    # is behind only costs a conflict, and the retry reads the storage.
    recent: Callable[[str, str], dict[str, Any] | None] = lambda namespace, name: None
    # Answers GET and LIST that name a resourceVersion, and LIST without one once the storage
    # has said which versions are newest (README, "Reads").
    reads: ReadCache | None = None
    admission: Admission | None = None

    def _review(
        self,
        operation: Literal["CREATE", "UPDATE", "DELETE"],
        new: dict[str, Any] | None,
        old: dict[str, Any] | None,
        opts: WriteOptions,
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """The drift guard's verdict on a write, as its webhooks give it for other kinds: a denial
        raises 403; an allowed write may come back with the guard's records added."""
        if self.admission is None or opts.user is None:
            return new, []
        kind: reviews.GroupVersionKind = {"group": GROUP, "version": VERSION, "kind": self.kind.kind}
        resource: reviews.GroupVersionResource = {
            "group": GROUP,
            "version": VERSION,
            "resource": self.kind.plural,
        }
        answer = self.admission(
            reviews.request_for(self.new_uid(), kind, resource, operation, opts.user, new, old, opts.dry_run)
        )
        if not answer.get("allowed"):
            message = (answer.get("status") or {}).get("message") or "denied by the drift guard"
            raise errors.APIError(
                403,
                "Forbidden",
                f'admission webhook "guard.gitops.driftguard.io" denied the request: {message}',
            )
        if new is not None and answer.get("patch"):
            new = jsonpatch.apply_patch(new, json.loads(base64.b64decode(answer["patch"])))
        return new, list(answer.get("warnings") or [])

    # --- checks shared by every write ---------------------------------------------------------
    def _admit(
        self, app: dict[str, Any], opts: WriteOptions, *, for_create: bool, old: dict[str, Any] | None = None
    ) -> list[str]:
        """Default, check unknown fields per fieldValidation, validate; returns warnings. On an update
        (``old``), a field the write leaves as it was is not judged again (kube-apiserver's
        validation ratcheting): an object stored before a rule existed can still have its status
        written, and be fixed one field at a time."""
        warnings = objects.drop_unknown(app, self.kind, opts.field_validation)
        app.update(self.kind.defaults(app))
        problems = self.kind.validate(app, for_create=for_create)
        if old is not None:
            # A missing field is judged by what holds it: a stored item that lacks a field a newer
            # rule requires is kept while the write leaves the item as it was.
            judged = [(p, objects.parent_path(p.path) if p.type == REQUIRED else p.path) for p in problems]
            problems = [p for p, path in judged if not objects.unchanged(old, app, path)]
        if problems:
            name = app.get("metadata", {}).get("name") or app.get("metadata", {}).get("generateName", "")
            raise errors.invalid(self.kind, name, [p.cause() for p in problems])
        return warnings

    # --- reads -------------------------------------------------------------------------------
    def _cached(self, resource_version: str | None) -> ReadCache | None:
        """The index, when the request's resourceVersion lets it answer, as kube-apiserver's watch
        cache does: "0" (any version) while its watch is healthy, or a version the index has
        reached (not older than it). Without one, the read must be the newest, and only the
        storage knows what that is: with two replicas, the other one's writes reach this index
        after its watch delay (a LIST asks the storage, ``list``)."""
        if self.reads is None or not resource_version:
            return None
        at_least = version_number(resource_version)
        if at_least is None:
            return None  # not a version number: the storage answers what it makes of it
        return self.reads if self.reads.caught_up(at_least, READ_WAIT_SECONDS) else None

    def get(self, namespace: str, name: str, resource_version: str | None = None) -> dict[str, Any]:
        cache = self._cached(resource_version)
        if cache is None:
            return self.store.get(namespace, name)
        app = cache.latest(namespace, name)
        if app is None:
            raise errors.not_found(self.kind, name)
        return app

    def list(
        self,
        namespace: str | None,
        match: Callable[[dict[str, Any]], bool],
        resource_version: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        cache = self._cached(resource_version)
        if cache is not None:
            rv, apps = cache.snapshot(namespace)
        elif resource_version or self.reads is None or not self.reads.serving():
            apps, rv = self.store.list(namespace, resource_version or None)
        else:
            # The newest: the storage says which versions that is (the metadata alone, half the
            # bytes and no Application to decode), and the index serves them once it has them.
            versions, list_rv = self.store.versions(namespace)
            found = self.reads.newest(namespace, versions, list_rv, READ_WAIT_SECONDS)
            if found is None:
                apps, rv = self.store.list(namespace)
            else:
                rv, apps = found
        return [a for a in apps if match(a)], rv

    # --- writes ------------------------------------------------------------------------------
    def create(self, namespace: str, body: Any, opts: WriteOptions) -> Result:
        app = objects.for_create(body, namespace, self.clock(), self.new_uid(), self.kind)
        return self._create(namespace, app, opts, None)

    def _create(
        self, namespace: str, app: dict[str, Any], opts: WriteOptions, entries: Entries | None
    ) -> Result:
        """Admit and store a new object; ``entries`` are its managedFields when an apply made it,
        else the creator owns what it set."""
        if self.kind.only_namespace and namespace != self.kind.only_namespace:
            raise errors.forbidden_by_policy(
                self.kind, app["metadata"].get("name") or "",
                f"{self.kind.kind}s live in the namespace {self.kind.only_namespace}, not {namespace}",
            )  # fmt: skip
        warnings = self._admit(app, opts, for_create=True)
        self.policy(app, None)
        app["metadata"]["managedFields"] = (
            entries
            if entries is not None
            else self._fields(
                lambda: managed_fields.updated(
                    None, app, opts.field_manager, self.clock(), schema=self.kind.typed_schema
                ),
                app,
            )
        )
        reviewed, more = self._review("CREATE", app, None, opts)
        app, warnings = reviewed or app, warnings + more
        # As kube-apiserver's NamespaceLifecycle admission does for every namespaced object.
        phase = self.store.namespace_phase(namespace)
        if phase is None:
            raise errors.APIError(
                404, "NotFound", f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )  # fmt: skip
        if phase == "Terminating":
            raise errors.APIError(
                403, "Forbidden",
                f"{self.kind.resource} \"{app['metadata']['name']}\" is forbidden: "
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )  # fmt: skip
        if opts.dry_run:
            return Result(app, 201, warnings)
        return Result(self.store.create(app), 201, warnings)

    def _write(self, old: dict[str, Any], new: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
        if objects.is_finalized(new):
            if not opts.dry_run:
                self.store.delete(new)
            return new
        if new == old or opts.dry_run:
            return new
        return self.store.update(new)

    def _modify(
        self,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]],
        opts: WriteOptions,
        subresource: str = "",
        *,
        applied: bool = False,
    ) -> Result:
        """Read, change, admit, write. ``change`` returns the new object and the resourceVersion the
        client required, if any: that is a precondition (stale -> 409); without one, a concurrent
        write is retried, as kube-apiserver does. An update's managedFields are computed here; an
        apply's (``applied``) come with its new object."""
        for attempt in range(CONFLICT_RETRIES):
            cached = self.recent(namespace, name) if attempt == 0 else None
            old = cached or self.store.get(namespace, name)
            try:
                new, wanted_rv = change(old)
                if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                    raise errors.stale(self.kind, name)
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                warnings = self._admit(new, opts, for_create=False, old=old)
                if not subresource and new.get("spec") != old.get("spec"):
                    self.policy(new, old)  # metadata alone (a finalizer removed, say) is not judged
                objects.bump_generation(old, new)
                if not applied:
                    self._record_update(old, new, opts, subresource)
                # The guard judges the object as it would be stored, managedFields included (they
                # tell it which fields Git sets), as kube-apiserver's webhooks see it.
                if not subresource and new != old:
                    reviewed, more = self._review("UPDATE", new, old, opts)
                    new, warnings = reviewed or new, warnings + more
            except errors.APIError:
                if cached:
                    continue  # judged against a copy that may be behind: judge the stored object
                raise
            if cached and (new == old or opts.dry_run):
                continue  # no write would check the copy's resourceVersion: read the storage
            try:
                return Result(self._write(old, new, opts), 200, warnings)
            except errors.APIError as exc:
                if exc.code != 409 or wanted_rv:
                    raise
        raise errors.conflict(self.kind, name, "too many concurrent writes; try again")

    def _record_update(
        self, old: dict[str, Any], new: dict[str, Any], opts: WriteOptions, subresource: str
    ) -> None:
        """managedFields after an update, as kube-apiserver keeps them: managedFields the client
        sent that differ from the stored ones replace them (how kubectl moves client-side apply's
        fields to its server-side apply manager); an empty or malformed list, or a write to a
        subresource, keeps the stored ones. They change only when the object does."""
        stored = old["metadata"].get("managedFields")
        sent = new["metadata"].pop("managedFields", None)
        managers: list[managed_fields.Manager] | None = None
        if sent == [{}] and not subresource:
            managers = []  # kube's way to clear them: the write's own entry is all that is left
        elif sent and sent != stored and not subresource:
            try:
                managers = managed_fields.decode(sent)
            except ValueError:
                managers = None
        if stored is not None:
            new["metadata"]["managedFields"] = stored
        if new == old and managers is None:
            return
        new["metadata"]["managedFields"] = self._fields(
            lambda: managed_fields.updated(
                old,
                new,
                opts.field_manager,
                self.clock(),
                schema=self.kind.typed_schema,
                subresource=subresource,
                managers=managers,
            ),
            new,
        )

    def _fields(self, compute: Callable[[], Entries], obj: dict[str, Any]) -> Entries:
        """managedFields from ``compute``; an object the schema cannot index (a keyed list item
        without its key) is invalid (422), as in kube."""
        try:
            return compute()
        except fieldsets.FieldSetError as exc:
            raise _invalid(self.kind, obj, exc) from None

    def update(
        self, namespace: str, name: str, body: Any, opts: WriteOptions, *, status: bool = False
    ) -> Result:
        """PUT. As for custom resources, the body must carry the resourceVersion it was read at."""

        def change(old: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
            new = (
                objects.for_status_update(old, body, self.kind)
                if status
                else objects.for_update(old, body, self.kind)
            )
            wanted_rv = (
                body["metadata"].get("resourceVersion") if isinstance(body.get("metadata"), dict) else None
            )
            if not wanted_rv:
                raise errors.invalid(self.kind, name,
                    [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                      "message": "Invalid value: 0x0: must be specified for an update"}],
                )  # fmt: skip
            return new, wanted_rv

        return self._modify(namespace, name, change, opts, "status" if status else "")

    def patch(
        self,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        opts: WriteOptions,
        *,
        status: bool = False,
    ) -> Result:
        def change(old: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
            patched = patches.apply_patch(content_type, old, patch)
            new = (
                objects.for_status_update(old, patched, self.kind)
                if status
                else objects.for_update(old, patched, self.kind)
            )
            # A resourceVersion the patch sets is a precondition, as in kube. The patched object
            # carries the one it was applied to, so a differing one means the patch set it; on a
            # retry against a newer object the same patch then fails as stale, as it should.
            meta = patched.get("metadata")
            wanted_rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
            return new, wanted_rv if wanted_rv != old["metadata"]["resourceVersion"] else None

        return self._modify(namespace, name, change, opts, "status" if status else "")

    def apply(
        self,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        *,
        force: bool,
        may_create: Callable[[], None],
        status: bool = False,
    ) -> Result:
        """Server-side apply: ``body`` is the manager's configuration, merged into the object (or
        creating it, once ``may_create`` has not refused) with kube-apiserver's field ownership."""
        config = objects.for_apply(body, namespace, name, self.kind)
        # Unknown fields go before ownership is computed: no manager owns a field that is not stored.
        warnings = objects.drop_unknown(config, self.kind, opts.field_validation)
        subresource = "status" if status else ""
        wanted = config["metadata"].pop("resourceVersion", None)

        def change(old: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
            merged, entries = self._applied(old, config, opts, force, subresource)
            new = (
                objects.for_status_update(old, merged, self.kind)
                if status
                else objects.for_update(old, merged, self.kind)
            )
            new["metadata"]["managedFields"] = entries
            return new, wanted

        for _ in range(CONFLICT_RETRIES):
            try:
                result = self._modify(namespace, name, change, opts, subresource, applied=True)
            except errors.APIError as exc:
                if exc.code != 404 or status or wanted or (exc.details or {}).get("name") != name:
                    raise
            else:
                result.warnings = warnings + result.warnings
                return result
            may_create()
            merged, entries = self._applied(None, config, opts, force, "")
            app = objects.for_create(merged, namespace, self.clock(), self.new_uid(), self.kind)
            try:
                result = self._create(namespace, app, opts, entries)
            except errors.APIError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                continue  # created meanwhile: apply to it
            result.warnings = warnings + result.warnings
            return result
        raise errors.conflict(self.kind, name, "too many concurrent writes; try again")

    def _applied(
        self,
        live: dict[str, Any] | None,
        config: dict[str, Any],
        opts: WriteOptions,
        force: bool,
        subresource: str,
    ) -> tuple[dict[str, Any], Entries]:
        try:
            return managed_fields.applied(
                live, config, opts.field_manager, self.clock(), schema=self.kind.typed_schema,
                force=force, subresource=subresource,
            )  # fmt: skip
        except managed_fields.ApplyConflict as exc:
            raise errors.APIError(409, "Conflict", exc.message(), {"causes": exc.causes()}) from None
        except fieldsets.FieldSetError as exc:
            raise _invalid(self.kind, config, exc) from None

    def delete(self, namespace: str, name: str, opts: WriteOptions, preconditions: Any = None) -> Result:
        if preconditions is not None and not isinstance(preconditions, dict):
            raise errors.bad_request("DeleteOptions.preconditions must be an object")
        pre = preconditions or {}
        for _ in range(CONFLICT_RETRIES):
            old = self.store.get(namespace, name)
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise errors.conflict(
                    self.kind,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise errors.stale(self.kind, name)
            new = objects.for_delete(old, self.clock())
            self._review("DELETE", None, old, opts)
            if opts.dry_run:
                return Result(new or old)
            try:
                if new is None:
                    self.store.delete(old)
                    return Result(old)
                return Result(self._write(old, new, opts))
            except errors.APIError as exc:
                # Someone wrote in between (the controller's status, say): try again unless the
                # client pinned a version.
                if exc.code != 409 or pre:
                    raise
        raise errors.conflict(self.kind, name, "too many concurrent writes; try again")

    def delete_collection(
        self, namespace: str, match: Callable[[dict[str, Any]], bool], opts: WriteOptions
    ) -> dict[str, Any]:
        apps, rv = self.list(namespace, match)
        deleted = []
        for app in apps:
            try:
                deleted.append(self.delete(namespace, app["metadata"]["name"], opts).body)
            except errors.APIError as exc:
                if exc.code != 404:  # deleted by someone else meanwhile: nothing left to do
                    raise
        return {
            "kind": self.kind.list_kind,
            "apiVersion": self.kind.api_version,
            "metadata": {"resourceVersion": rv},
            "items": deleted,
        }

    def watch(
        self,
        namespace: str | None,
        resource_version: str | None,
        timeout: int,
        send_initial_events: bool = False,
    ) -> Iterator[dict[str, Any]]:
        return self.store.watch(namespace, resource_version, timeout, send_initial_events)
