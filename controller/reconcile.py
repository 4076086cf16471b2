"""One reconcile of one Application: fetch, render, diff, apply, prune, assess, report.

Each step that fails stops the ones after it and says so in a condition with its own reason
(FetchFailed, RenderFailed, ApplyFailed, PruneFailed): nothing is pruned after a failed fetch,
render or apply, or after an empty render unless ``allowEmpty``. The status is written once, at
the end, whatever happened (plus, before new objects are created, the grown inventory, so that a
controller killed mid-sync leaves no object it does not know about).
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import breakglass, diff, health, plan
from controller import status as st
from controller.breakglass import next_expiry
from controller.git import RepoCache
from controller.kube import Kube, KubeError, Resource
from controller.metrics import Metrics
from controller.render import Limits
from controller.sources import Sources
from extension.api import fieldsets, jsoncodec, projects, seals
from extension.api.checks import parse_time
from extension.api.schema import GROUP, VERSION
from extension.api.tracking import (
    BREAK_GLASS_GRANT,
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    FIELD_MANAGER,
    MANAGED_LABEL,
    RESOURCES_FINALIZER,
    SKIP_RECONCILE_ANNOTATIONS,
    TRACKING_ANNOTATION,
    AppKey,
    ObjectRef,
    claimed_app,
)
from extension.api.validation import parse_duration, validate

log = logging.getLogger(__name__)

# How long an Application found in sync may skip re-comparing its objects when nothing woke it but
# the poll: the watches on managed objects report every change (see Reconciler.touch), so this is
# only a safety net for a change a watch missed.
QUIET_SECONDS = 600.0
# The seal key is read again this often (it is made once, but a restore may bring another), and
# at most this often while it is missing.
SEAL_KEEP_SECONDS = 600.0
SEAL_RETRY_SECONDS = 10.0
# A dry run's diffs, all objects together, are kept in status up to this size (status is stored in
# a ConfigMap, at most 1 MiB).
MAX_DIFFS_BYTES = 200 * 1024


def now_text(clock: Callable[[], datetime.datetime]) -> str:
    return clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Options:
    namespace: str = "driftguard-system"
    bin_dir: Path = Path(".local/bin")
    poll_seconds: float = 60.0
    max_prune_share: float = 0.5
    wave_timeout: float = 120.0
    allow_local_repositories: bool = False  # file:// sources (unsafe on a shared cluster)
    limits: Limits = field(default_factory=Limits)


@dataclass
class Outcome:
    """What the manager should do next with this Application."""

    requeue_after: float | None = None
    failed: bool = False


def skip_reconcile(app: dict[str, Any]) -> bool:
    """The Application says to leave it alone. On one that another Application deploys (app of
    apps), only Git may say so: the annotation counts when the controller applied it, so that a
    hand edit, which the drift guard lets through as a field Git does not set, cannot stop it."""
    meta = app["metadata"]
    annotations = meta.get("annotations") or {}
    said = [a for a in SKIP_RECONCILE_ANNOTATIONS if annotations.get(a) == "true"]
    if not said or claimed_app(app) is None:
        return bool(said)
    for entry in meta.get("managedFields") or []:
        if (entry.get("manager"), entry.get("operation")) != (FIELD_MANAGER, "Apply"):
            continue
        try:
            owned = fieldsets.decode(entry.get("fieldsV1") or {})
        except ValueError:
            return False
        return any(("f:metadata", "f:annotations", f"f:{a}") in owned for a in said)
    return False


@dataclass(frozen=True)
class Quiet:
    """An Application found in sync: while Git renders the same objects, the spec is the same and
    no watch reported a change to its objects, comparing again would find the same."""

    # What the compare saw: the Application's uid (one deleted and created again under its name
    # starts afresh), the digest of the rendered objects, the generation, Reconciler.touch's count
    # and Reconciler.forget's count (watch relists) when the compare began.
    seen: tuple[str, str, int, int, int]
    until: float  # monotonic: compare again after this, whatever


@dataclass
class Target:
    revision: str  # what was asked: a branch, tag, SHA or HEAD
    source: dict[str, Any]
    sha: str = ""
    access: str = ""  # the credential Secret it was fetched with; "" for none
    objects: list[dict[str, Any]] = field(default_factory=list)


class Reconciler:
    def __init__(
        self, kube: Kube, repos: RepoCache, options: Options, metrics: Metrics,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:  # fmt: skip
        self.kube, self.options, self.metrics, self.clock = kube, options, metrics, clock
        self.sources = Sources(
            kube, repos, metrics, namespace=options.namespace, bin_dir=options.bin_dir,
            limits=options.limits, poll_seconds=options.poll_seconds,
            allow_local=options.allow_local_repositories,
        )  # fmt: skip
        self._lock = threading.Lock()
        # Per worker thread, for the reconcile it runs: the project and the objects' client.
        self._local = threading.local()
        self._seal: tuple[bytes | None, float] = (None, -SEAL_KEEP_SECONDS)  # (key, monotonic read)
        # resourceVersions this controller wrote, so that the watch can skip its own echoes.
        self.written: dict[tuple[str, str, str, str], str] = {}
        # The resourceVersion of each Application's last status write, until the watch brings it
        # back: until then the watch's copy is older than what this controller knows.
        self.status_written: dict[AppKey, str] = {}
        self.failures: dict[AppKey, int] = {}
        self._touched: dict[AppKey, int] = {}
        self._quiet: dict[AppKey, Quiet] = {}
        self._owners: dict[ObjectRef, AppKey] = {}  # of the objects of quiet Applications
        self._epoch = 0
        # Whether a watch reports changes to a kind (set by the manager): only then may an
        # Application of that kind skip a compare.
        self.watching: Callable[[str, str], bool] = lambda group, kind: False
        # The AppProject of a name, None when missing (the manager answers from its watch).
        self.project: Callable[[str], dict[str, Any] | None] = self.read_project

    # --- what the watches tell ----------------------------------------------------------------
    def touch(self, key: AppKey) -> None:
        """One of the Application's objects changed (not by this controller): compare it again."""
        with self._lock:
            self._touched[key] = self._touched.get(key, 0) + 1

    def owner_of(self, ref: ObjectRef) -> AppKey | None:
        """The Application that last found ``ref`` in sync, whatever its tracking id says now."""
        with self._lock:
            return self._owners.get(ref)

    def pending(self, key: AppKey) -> bool:
        """A status write of ours that the watch has not brought back yet."""
        with self._lock:
            return key in self.status_written

    def status_seen(self, key: AppKey, resource_version: str) -> None:
        """The watch delivered ``key`` at ``resource_version``: if that is our last status write,
        the watch's copy is current again."""
        with self._lock:
            if self.status_written.get(key) == resource_version:
                del self.status_written[key]

    def drop(self, key: AppKey) -> None:
        """The Application is gone: forget what was kept about it."""
        with self._lock:
            for kept in (self._quiet, self._touched, self.status_written, self.failures):
                kept.pop(key, None)
            for ref in [r for r, owner in self._owners.items() if owner == key]:
                del self._owners[ref]

    def forget(self, key: AppKey | None = None) -> None:
        """Compare one Application (or all) in full next time: a watch may have missed changes."""
        with self._lock:
            if key is None:
                self._quiet.clear()
                self._epoch += 1
            else:
                self._quiet.pop(key, None)

    def _target(self, app: dict[str, Any], key: AppKey) -> Target:
        spec, operation = app.get("spec") or {}, app.get("operation") or {}
        source = copy.deepcopy(spec.get("source") or {})
        revision = str(source.get("targetRevision") or "HEAD")
        if "rollback" in operation:
            wanted = operation["rollback"].get("id")
            entry = next(
                (h for h in (app.get("status") or {}).get("history") or [] if h.get("id") == wanted), None
            )
            if entry is None:
                raise st.Step(
                    st.APPLY_FAILED, f"rollback: history has no entry with id {wanted}", temporary=False
                )
            source = copy.deepcopy(entry.get("source") or source)
            revision = str(entry["revision"])
        elif (operation.get("sync") or {}).get("revision"):
            revision = str(operation["sync"]["revision"])
        return self._build(app, key, source, revision)

    def _deployed(self, app: dict[str, Any], key: AppKey) -> Target | None:
        """What the last sync deployed (the newest history entry), e.g. the revision a rollback
        put back while auto-sync is paused; None without history."""
        history = (app.get("status") or {}).get("history") or []
        if not history:
            return None
        entry = history[-1]
        source = copy.deepcopy(entry.get("source") or (app.get("spec") or {}).get("source") or {})
        return self._build(app, key, source, str(entry["revision"]))

    def _build(self, app: dict[str, Any], key: AppKey, source: dict[str, Any], revision: str) -> Target:
        spec = app.get("spec") or {}
        url = str(source.get("repoURL") or "")
        name, project = self._local.project
        if not projects.repo_allowed(project, url):
            # Checked again for every source, a rollback's from history included: never fetched.
            raise st.Step(
                st.PROJECT_DENIED, f"repository {url}: project {name} does not allow it in sourceRepos; "
                "nothing was fetched, applied or pruned", temporary=False,
            )  # fmt: skip
        target = Target(revision, source)
        # A sync or rollback request deploys what Git holds now, not what the last poll saw.
        target.sha, target.access = self.sources.resolve(
            url, revision, project=name, app_namespace=str(app["metadata"].get("namespace") or ""),
            refresh=bool(app.get("operation")),
        )  # fmt: skip
        destination_ns = str((spec.get("destination") or {}).get("namespace") or "")
        rendered = self.sources.render(url, target.access, target.sha, source, destination_ns, key.name)
        allow_empty = bool(((spec.get("syncPolicy") or {}).get("automated") or {}).get("allowEmpty"))
        if not rendered and not allow_empty:
            raise st.Step(
                st.RENDER_FAILED,
                f"path {source.get('path') or '.'} rendered no objects at revision {st.short(target.sha)}; "
                "nothing was applied or pruned "
                "(set spec.syncPolicy.automated.allowEmpty: true if that is meant)",
                temporary=False,
            )
        try:
            target.objects = plan.prepare(rendered, key, destination_ns, self._namespaced)
        except plan.PlanError as exc:
            raise st.Step(st.RENDER_FAILED, str(exc), temporary=False) from exc
        server, dest_name, _ = projects.destination(spec.get("destination"))
        refused = projects.object_refusals(project, name, server, dest_name, (
            (*plan.group_kind(o), str(o["metadata"].get("namespace") or ""), str(o["metadata"]["name"]),
             bool(o["metadata"].get("namespace")))
            for o in target.objects
        ))  # fmt: skip
        if refused:
            listed = "; ".join(str(r) for r in refused[:10]) + (
                f"; and {len(refused) - 10} more" if len(refused) > 10 else ""
            )
            raise st.Step(
                st.PROJECT_DENIED,
                f"revision {st.short(target.sha)}: {listed}. Nothing was applied or pruned; "
                "what is deployed stays",
                temporary=False,
            )
        return target

    def _objects(self) -> Kube:
        """The client for the Application's objects (reads, dry runs, applies, prunes): as the
        ServiceAccount its project names for the destination, when it names one. Only inside a
        project (``_enter_project``): never the controller's own rights by default."""
        kube: Kube | None = getattr(self._local, "kube", None)
        if kube is None:
            raise RuntimeError("an Application's objects are touched only as its project allows")
        return kube

    def read_project(self, name: str) -> dict[str, Any] | None:
        """The AppProject ``name`` as stored now, None when missing (``project`` asks this unless the
        manager answers from its watch)."""
        found: dict[str, Any] | None = self.kube._get(
            f"/apis/{GROUP}/{VERSION}/namespaces/{projects.INSTALL_NAMESPACE}/appprojects/{name}"
        )
        return found

    def _enter_project(self, app: dict[str, Any]) -> None:
        """Judge the Application by its project, and act as whom the project names: every step after
        this reads ``self._local``. Raises ProjectDenied."""
        spec, meta = app.get("spec") or {}, app["metadata"]
        name = str(spec.get("project") or projects.DEFAULT_PROJECT)
        project = self.project(name)
        if project is None:
            raise st.Step(
                st.PROJECT_DENIED,
                f"project {name} does not exist in {projects.INSTALL_NAMESPACE}; nothing was fetched, "
                "applied or pruned, and what is deployed stays",
                temporary=False,
            )
        refused = projects.application_refusals(project, name, str(meta.get("namespace") or ""), spec)
        if refused:
            raise st.Step(
                st.PROJECT_DENIED,
                "; ".join(str(r) for r in refused)
                + ". Nothing was fetched, applied or pruned; what is deployed stays",
                temporary=False,
            )
        server, _, namespace = projects.destination(spec.get("destination"))
        user = projects.service_account(project, server, namespace, str(meta.get("namespace") or ""))
        self._local.project, self._local.spec = (name, project), spec
        self._local.kube = self.kube.impersonating(user) if user else self.kube

    def _leave_project(self) -> None:
        self._local.__dict__.clear()

    def _namespaced(self, group: str, kind: str) -> bool | None:
        res = self.kube.resource(group, kind)
        return None if res is None else res.namespaced

    # --- the reconcile ----------------------------------------------------------------------
    def reconcile(self, key: AppKey, known: dict[str, Any] | None = None) -> Outcome:
        """Reconcile ``key``. ``known`` is the Application as the watch delivered it, which saves
        a read; the caller passes it only when no status write of ours is pending (``pending``).
        One that carries an operation is read again: never act on an operation twice."""
        current = known is not None and not known.get("operation")
        app = jsoncodec.clone(known) if current else self.kube.get_app(key.namespace, key.name)
        if app is None:
            return Outcome()
        if app["metadata"].get("deletionTimestamp"):
            return self._finalize(app, key)
        if skip_reconcile(app):
            log.debug("[%s] skipped: annotated skip-reconcile", key)
            return Outcome()
        started = time.monotonic()
        old_status = jsoncodec.clone(app.get("status") or {})
        status = jsoncodec.clone(old_status)
        now = now_text(self.clock)
        operation = app.get("operation")
        outcome = Outcome(requeue_after=self.options.poll_seconds)
        spec = app.get("spec") or {}
        try:
            _check_spec(app)
            self._enter_project(app)
            target = self._target(app, key)
            self._sync_and_assess(app, key, target, status, now)
            status["conditions"] = st.set_condition(
                status.get("conditions") or [], st.READY, "True", "Reconciled",
                f"{'synced' if status['sync']['status'] == 'Synced' else 'compared'} revision "
                f"{st.short(target.sha)}", now,
            )  # fmt: skip
            if status.get("health", {}).get("status") == "Degraded":
                status["conditions"] = st.set_condition(
                    status["conditions"], st.READY, "False", st.HEALTH_DEGRADED,
                    status["health"].get("message", ""), now,
                )  # fmt: skip
            self.failures.pop(key, None)
            expiry = next_expiry(status, self.clock())
            if expiry is not None and outcome.requeue_after is not None:
                outcome.requeue_after = min(outcome.requeue_after, expiry + 1.0)
        except st.Step as exc:
            outcome = self._failed(app, key, status, exc, now)
        except KubeError as exc:
            failed = st.Step(st.APPLY_FAILED, exc.message, exc.temporary)
            outcome = self._failed(app, key, status, failed, now)
        finally:
            self._leave_project()
            status["reconciledAt"] = now
            if not self._paused(app):
                status["observedGeneration"] = app["metadata"].get("generation", 1)
            if operation is not None or _changed(old_status, status, self.clock()):
                self._write_status(app, status, operation)
            self.metrics.reconcile.observe(time.monotonic() - started)
        if outcome.requeue_after is None and spec.get("syncPolicy", {}).get("automated"):
            outcome.requeue_after = self.options.poll_seconds
        return outcome

    def _failed(
        self, app: dict[str, Any], key: AppKey, status: dict[str, Any], exc: st.Step, now: str
    ) -> Outcome:
        log.warning("[%s] %s: %s", key, exc.reason, exc.message)
        status["conditions"] = st.set_condition(
            status.get("conditions") or [], st.READY, "False", exc.reason, exc.message, now
        )
        status.setdefault("sync", {})["status"] = (
            "Unknown"
            if exc.reason in (st.FETCH_FAILED, st.RENDER_FAILED, st.INVALID_SPEC, st.PROJECT_DENIED)
            else "OutOfSync"
        )
        status["sync"].setdefault("revision", "")
        if app.get("operation"):
            status["operationState"] = self._operation_state(app, "Failed", exc.message, now, None)
        old = (app.get("status") or {}).get("conditions") or []
        before = st.find_condition(old, st.READY)
        if not before or before.get("reason") != exc.reason or before.get("message") != exc.message:
            self.kube.event(app, "Warning", exc.reason, exc.message)
        attempts = self.failures[key] = self.failures.get(key, 0) + 1
        retry = (app.get("spec") or {}).get("syncPolicy", {}).get("retry") or {}
        backoff = retry.get("backoff") or {}
        base = parse_duration(str(backoff.get("duration") or "5s")) or 5.0
        factor = float(backoff.get("factor") or 2)
        cap = parse_duration(str(backoff.get("maxDuration") or "3m")) or 180.0
        limit = int(retry.get("limit", 5))
        self.metrics.syncs.labels(result="failed").inc()
        if limit >= 0 and attempts > limit and not exc.temporary:
            # Permanent errors stop retrying after the limit; the poll and Git changes retry.
            return Outcome(requeue_after=self.options.poll_seconds, failed=True)
        return Outcome(requeue_after=min(cap, base * factor ** (attempts - 1)), failed=True)

    def _paused(self, app: dict[str, Any]) -> bool:
        status = app.get("status") or {}
        paused = st.find_condition(status.get("conditions") or [], st.AUTO_SYNC_PAUSED)
        return bool(paused) and app["metadata"].get("generation") == status.get("observedGeneration")

    # --- compare, sync, prune, assess -------------------------------------------------------
    def _live(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The live object, None when it does not exist; a kind the server does not serve yet (a
        CustomResourceDefinition in the same sync brings it) has no live objects either."""
        res = self.kube.resource(*plan.group_kind(obj))
        meta = obj["metadata"]
        return None if res is None else self._objects().get(res, meta.get("namespace", ""), meta["name"])

    def _compare(
        self, obj: dict[str, Any], live: dict[str, Any] | None, rules: list[dict[str, Any]]
    ) -> list[str] | None:
        """The drifted fields, [] when in sync, None when missing (no dry run then: its kind may not
        even exist yet, as Argo CD's SkipDryRunOnMissingResource)."""
        if live is None:
            return None
        predicted = self._objects().apply(obj, dry_run=True)
        return diff.drift(live, predicted, rules)

    def seal_key(self) -> bytes | None:
        """The drift guard's seal key (extension.api.seals), read from its Secret and kept; None
        until the extension has made it (then nothing counts as the guard's)."""
        with self._lock:
            key, read_at = self._seal
        if time.monotonic() - read_at < (SEAL_KEEP_SECONDS if key is not None else SEAL_RETRY_SECONDS):
            return key
        path = f"/api/v1/namespaces/{self.options.namespace}/secrets/{seals.SECRET_NAME}"
        try:
            secret = self.kube.request("GET", path)
            key = base64.b64decode((secret.get("data") or {}).get(seals.SECRET_KEY) or "") or None
        except (KubeError, ValueError) as exc:
            log.warning("cannot read the drift guard's seal key %s: %s", seals.SECRET_NAME, exc)
        with self._lock:
            self._seal = (key, time.monotonic())
        return key

    def _sync_and_assess(
        self, app: dict[str, Any], key: AppKey, target: Target, status: dict[str, Any], now: str
    ) -> None:
        spec, operation = app.get("spec") or {}, app.get("operation") or {}
        policy = spec.get("syncPolicy") or {}
        # `automated: {}` turns auto-sync on, as in Argo CD: presence counts, not content.
        auto_sync = isinstance(policy.get("automated"), dict)
        automated = policy.get("automated") or {}
        options = plan.parse_options(policy.get("syncOptions") or [])
        rules = spec.get("ignoreDifferences") or []
        inventory = st.inventory(status)
        desired = {ObjectRef.of(o): o for o in target.objects}
        with self._lock:
            touched, quiet, epoch = self._touched.get(key, 0), self._quiet.get(key), self._epoch
        digest = hashlib.sha256(json.dumps(target.objects, sort_keys=True).encode()).hexdigest()
        uid, generation = str(app["metadata"].get("uid")), int(app["metadata"].get("generation") or 0)
        if (
            not operation and quiet is not None and time.monotonic() < quiet.until
            and quiet.seen == (uid, digest, generation, touched, epoch)
            and (status.get("sync") or {}).get("status") == "Synced"
        ):  # fmt: skip
            # In sync when last compared, and nothing changed since: the same objects from Git
            # (perhaps at a newer commit), the same spec, no change reported by the watches.
            self.metrics.compares.labels(mode="skipped").inc()
            before = status.setdefault("sync", {}).get("revision")
            if before != target.sha:
                log.info("[%s] revision %s renders the same objects as %s: in sync, nothing to apply",
                         key, st.short(target.sha), st.short(str(before)))  # fmt: skip
            status["sync"]["revision"] = target.sha
            return
        self.metrics.compares.labels(mode="full").inc()
        live: dict[ObjectRef, dict[str, Any] | None] = {}
        drifted: dict[ObjectRef, list[str] | None] = {}
        foreign: dict[ObjectRef, str] = {}
        for ref, obj in desired.items():
            live[ref] = self._live(obj)
            current = live[ref]
            owner = claimed_app(current) if current is not None else None
            if live[ref] is not None and owner is not None and owner != key:
                foreign[ref] = f"{ref} is managed by Application {owner}; refusing to take it over"
                continue
            drifted[ref] = self._compare(obj, live[ref], rules)
        seal_key, clock_now = self.seal_key(), self.clock()
        out_of_sync = {ref for ref, fields in drifted.items() if fields != []}
        break_glass = {ref for ref in out_of_sync if breakglass.active(live.get(ref), clock_now, seal_key)}
        self._report_unbacked(status, desired, live, seal_key, now)
        # Decide whether to sync now.
        paused = self._paused(app) and "rollback" not in operation and "sync" not in operation
        # Git moved past what was deployed (the newest history entry), not merely past what was
        # last compared: a compare, a dry run or a pause reports Git's revision without deploying it.
        history = status.get("history") or []
        git_changed = not history or target.sha != history[-1].get("revision")
        spec_changed = app["metadata"].get("generation") != status.get("observedGeneration")
        self_heal = bool(automated.get("selfHeal"))
        sync_request = operation.get("sync") or {}
        prune_on = bool(automated.get("prune")) or bool(sync_request.get("prune"))
        to_prune = prune_on and any(ref not in desired for ref in inventory)
        wants_sync = bool(operation) or (
            auto_sync and not paused and (bool(out_of_sync - break_glass) or to_prune)
            and (self_heal or git_changed or spec_changed or any(drifted[r] is None for r in out_of_sync))
        )  # fmt: skip
        changes = plan.ChangeSet()
        # The objects a sync request names; None: all of them.
        selected: set[ObjectRef] | None = {
            ObjectRef.from_status(r) for r in sync_request.get("resources") or []
        } or None
        # A break-glass that has expired: the state comes back whatever the sync policy says; Git's
        # newest when auto-sync deploys it, otherwise (manual sync, or paused after a rollback) the
        # state that was deployed.
        expired = {
            ref
            for ref in desired
            if ref not in foreign and breakglass.expired(live.get(ref), clock_now, seal_key)
        }
        expired_live = {ref: live.get(ref) for ref in expired}  # as the grant was checked on
        restoring = bool(expired) and not wants_sync
        if sync_request.get("dryRun"):
            self._dry_run(app, key, target, desired, live, drifted, foreign, break_glass, selected, inventory,
                          prune_on, rules, options, status, now)  # fmt: skip
            kept = [r for r in inventory if r not in desired]
        elif wants_sync or restoring:
            source, source_desired = target, desired
            if restoring:
                selected = expired
                deployed = self._deployed(app, key) if not auto_sync or self._paused(app) else None
                if deployed is not None and deployed.sha != target.sha:
                    source, source_desired = deployed, {ObjectRef.of(o): o for o in deployed.objects}
                    # An object the deployed revision does not have has no state to restore.
                    selected = {ref for ref in expired if ref in source_desired}
            initiator = operation.get("initiatedBy") or {
                "automated": True,
                "username": "driftguard-controller",
            }
            why = " to end an expired break-glass" if restoring else ""
            count = len(source_desired if selected is None else selected)
            log.info("[%s] syncing revision %s (%d objects)%s", key, st.short(source.sha), count, why)
            if operation:
                status["operationState"] = self._operation_state(app, "Running", "syncing", now, None)
            applied = self._sync(
                app, key, source, source_desired, live, drifted, foreign, break_glass, selected, options,
                inventory, status, changes,
            )  # fmt: skip
            # What the applies answered is the live state now: in sync with what was applied.
            for ref, obj in applied.items():
                live[ref] = obj
                drifted[ref] = [] if source is target else self._compare(desired[ref], obj, rules)
            if not changes.failed() and not restoring:
                prune_plan, found = self._plan_prune(key, inventory, desired, prune_on, sync_request)
                self._prune(app, key, prune_plan, found, changes, status, now)
            kept = self._leftovers(inventory, desired, changes)
            failed = changes.failed()
            message = f"revision {st.short(source.sha)}: {changes.summary()}"
            if failed:
                message += "; " + "; ".join(str(c) for c in failed[:3])
            phase = "Failed" if failed else "Succeeded"
            if (
                operation
                or changes.count("created") + changes.count("configured") + changes.count("pruned")
                or git_changed
            ):
                status["operationState"] = self._operation_state(app, phase, message, now, source, changes)
            if not failed and not restoring and (git_changed or operation or spec_changed):
                status["history"] = st.add_history(
                    status.get("history") or [], target.sha, target.source, now,
                    {k: v for k, v in initiator.items() if k in ("username", "automated")},
                    int(spec.get("revisionHistoryLimit", 10)),
                )  # fmt: skip
            for ref in expired - {c.ref for c in failed}:
                self._end_break_glass(app, ref, desired[ref], expired_live[ref])
            if "rollback" in operation and not failed:
                status["conditions"] = st.set_condition(
                    status.get("conditions") or [], st.AUTO_SYNC_PAUSED, "True", "RolledBack",
                    f"rolled back to history {operation['rollback'].get('id')} "
                    f"(revision {st.short(target.sha)}); "
                    "auto-sync stays paused until the spec changes", now,
                )  # fmt: skip
            elif sync_request and not failed:
                status["conditions"] = st.remove_condition(
                    status.get("conditions") or [], st.AUTO_SYNC_PAUSED
                )
            self.metrics.syncs.labels(result="failed" if failed else "succeeded").inc()
            self.kube.event(
                app, "Warning" if failed else "Normal", "SyncFailed" if failed else "Synced", message
            )
            log.info("[%s] %s", key, message)
            if failed:
                pruning = all(c.message.startswith("prune failed") for c in failed)
                raise st.Step(st.PRUNE_FAILED if pruning else st.APPLY_FAILED, message)
        else:
            kept = [r for r in inventory if r not in desired]
        # A pause from an earlier rollback ends once the spec has changed since.
        was_paused = st.find_condition((app.get("status") or {}).get("conditions") or [], st.AUTO_SYNC_PAUSED)
        if was_paused and not self._paused(app) and "rollback" not in operation:
            status["conditions"] = st.remove_condition(status.get("conditions") or [], st.AUTO_SYNC_PAUSED)
        self._report(app, key, target, status, desired, live, drifted, foreign, kept, seal_key)
        if foreign:
            raise st.Step(st.APPLY_FAILED, "; ".join(sorted(foreign.values())), temporary=False)
        drift = status.get("drift") or {}
        in_sync = status["sync"]["status"] == "Synced" and not kept
        watched = all(self.watching(ref.group, ref.kind) for ref in desired)
        if in_sync and watched and not drift.get("resources") and not drift.get("breakGlass"):
            with self._lock:
                until = time.monotonic() + QUIET_SECONDS
                self._quiet[key] = Quiet((uid, digest, generation, touched, epoch), until)
                self._owners.update((ref, key) for ref in desired)
        else:
            self.forget(key)

    def _report_unbacked(
        self, status: dict[str, Any], desired: dict[ObjectRef, dict[str, Any]],
        live: dict[ObjectRef, dict[str, Any] | None], seal_key: bytes | None, now: str,
    ) -> None:  # fmt: skip
        """Break-glass annotations no grant of the guard backs are ignored, and said so."""
        unbacked = sorted(ref for ref in desired if breakglass.unbacked(live.get(ref), seal_key))
        if not unbacked:
            status["conditions"] = st.remove_condition(status.get("conditions") or [], st.BREAK_GLASS_IGNORED)
            return
        listed = ", ".join(str(ref) for ref in unbacked[:5]) + (" and more" if len(unbacked) > 5 else "")
        if seal_key is None:
            status["conditions"] = st.set_condition(
                status.get("conditions") or [], st.BREAK_GLASS_IGNORED, "True", "SealKeyUnavailable",
                f"{listed} carry break-glass annotations, but the drift guard's seal key (Secret "
                f"{self.options.namespace}/{seals.SECRET_NAME}) cannot be read, so no grant can be checked: "
                "they are ignored and Git's state is kept as usual",
                now,
            )  # fmt: skip
            return
        status["conditions"] = st.set_condition(
            status.get("conditions") or [], st.BREAK_GLASS_IGNORED, "True", "NotGranted",
            f"{listed} carry break-glass annotations that the drift guard did not grant (set by someone "
            "outside spec.driftGuard.breakGlass.groups, with an expiry past maxDuration, or edited since): "
            "they are ignored and Git's state is kept as usual",
            now,
        )  # fmt: skip

    def _dry_run(
        self, app: dict[str, Any], key: AppKey, target: Target, desired: dict[ObjectRef, dict[str, Any]],
        live: dict[ObjectRef, dict[str, Any] | None], drifted: dict[ObjectRef, list[str] | None],
        foreign: dict[ObjectRef, str], break_glass: set[ObjectRef], selected: set[ObjectRef] | None,
        inventory: list[ObjectRef], prune_on: bool, rules: list[dict[str, Any]], options: dict[str, str],
        status: dict[str, Any], now: str,
    ) -> None:  # fmt: skip
        """What a sync would do, with each object's diff, in status.operationState; nothing in the
        cluster changes (every apply is a server-side dry run) and history stays as it is."""
        changes, diffs, crds = plan.ChangeSet(), {}, plan.crd_kinds(desired.values())
        created_namespaces = {ref.name for ref in desired if (ref.group, ref.kind) == ("", "Namespace")}
        if options.get("CreateNamespace") == "true":
            created_namespaces.add(str((app["spec"].get("destination") or {}).get("namespace") or ""))
        for step in plan.waves(
            desired[r] for r in desired if r not in foreign and (selected is None or r in selected)
        ):
            for obj in step:
                ref = ObjectRef.of(obj)
                current, fields = live.get(ref), drifted.get(ref)
                try:
                    if ref in break_glass:
                        changes.add(ref, "skipped", "break-glass is active")
                    elif current is None:
                        predicted, note = self._dry_create(obj, created_namespaces, crds)
                        changes.add(ref, "created", note)
                        diffs[ref] = diff.unified(None, predicted or obj, rules, str(ref))
                    elif fields:
                        predicted = self._objects().apply(obj, dry_run=True)
                        changes.add(ref, "configured", f"fields: {', '.join(fields[:10])}")
                        diffs[ref] = diff.unified(current, predicted, rules, str(ref))
                    else:
                        changes.add(ref, "unchanged")
                except KubeError as exc:
                    changes.add(ref, "failed", f"{exc.reason}: {exc.message}")
        for ref, why in foreign.items():
            changes.add(ref, "failed", why)
        prune_plan, found = self._plan_prune(
            key, inventory, desired, prune_on, (app.get("operation") or {}).get("sync")
        )
        for ref in prune_plan.delete:
            live_found = found.get(ref)
            if live_found is not None and claimed_app(live_found[1]) == key:
                changes.add(ref, "pruned")
                diffs[ref] = diff.unified(live_found[1], None, rules, str(ref))
        for ref in prune_plan.keep:
            if found.get(ref) is not None:
                changes.add(
                    ref, "skipped", prune_plan.refused or "left in place: pruning is off or Prune=false"
                )
        failed = changes.failed()
        message = f"dry run of revision {st.short(target.sha)}: {changes.summary()}; nothing was changed"
        if failed:
            message += "; " + "; ".join(str(c) for c in failed[:3])
        status["operationState"] = self._operation_state(
            app, "Failed" if failed else "Succeeded", message, now, target, changes, diffs
        )
        self.kube.event(app, "Warning" if failed else "Normal", "DryRun", message)
        log.info("[%s] %s", key, message)

    def _dry_create(
        self, obj: dict[str, Any], created_namespaces: set[str], crds: set[tuple[str, str]]
    ) -> tuple[dict[str, Any] | None, str]:
        """A server-side dry run of creating ``obj``, when the server can judge it now: not for a
        kind that a CRD in the same sync brings, nor in a namespace the sync creates."""
        res = self.kube.resource(*plan.group_kind(obj))
        if res is None and plan.group_kind(obj) in crds:
            return (
                None,
                "its kind is not served yet (a CustomResourceDefinition in this sync brings it): not dry-run",
            )
        if res is None:
            res = self.kube.resource_for(obj)  # raises: the server has no resource for it
        namespace = obj["metadata"].get("namespace") or ""
        if res.namespaced and namespace in created_namespaces:
            ns = self.kube.resource("", "Namespace")
            if ns is not None and self.kube.get(ns, "", namespace) is None:
                return None, f"namespace {namespace} is created by this sync: not dry-run"
        return self._objects().apply(obj, dry_run=True), ""

    def _end_break_glass(
        self, app: dict[str, Any], ref: ObjectRef, obj: dict[str, Any], live: dict[str, Any] | None
    ) -> None:
        """Remove the expired break-glass's annotations: only those the grant was checked on (a new
        break-glass set meanwhile stays, and the patch fails its test)."""
        res = self.kube.resource_for(obj)
        annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
        path = "/metadata/annotations/"
        until = {
            "op": "test",
            "path": path + BREAK_GLASS_UNTIL.replace("/", "~1"),
            "value": annotations.get(BREAK_GLASS_UNTIL),
        }
        patch: list[dict[str, Any]] = [until] + [
            {"op": "remove", "path": path + name.replace("/", "~1")}
            for name in (BREAK_GLASS_REASON, BREAK_GLASS_UNTIL, BREAK_GLASS_GRANT)
            if name in annotations
        ]
        try:
            ended = self._objects().patch(res, ref.namespace, ref.name, patch, json_patch=True)
        except KubeError as exc:
            log.warning("[%s/%s] could not remove the expired break-glass from %s: %s",
                        app["metadata"]["namespace"], app["metadata"]["name"], ref, exc.message)  # fmt: skip
            return
        self.written[_wkey(ref)] = ended["metadata"].get("resourceVersion", "")
        message = f"break-glass on {ref} expired; Git's state is restored"
        self.kube.event(app, "Normal", "BreakGlassExpired", message)
        self.kube.event(ended, "Normal", "BreakGlassExpired", message)

    def _inventory_live(self, ref: ObjectRef) -> tuple[Resource, dict[str, Any]] | None:
        """An inventory entry's live object with its resource, or None when it is gone."""
        res = self.kube.resource(ref.group, ref.kind)
        obj = None if res is None else self._objects().get(res, ref.namespace, ref.name)
        return None if res is None or obj is None else (res, obj)

    def _sync(
        self, app: dict[str, Any], key: AppKey, target: Target, desired: dict[ObjectRef, dict[str, Any]],
        live: dict[ObjectRef, dict[str, Any] | None], drifted: dict[ObjectRef, list[str] | None],
        foreign: dict[ObjectRef, str], break_glass: set[ObjectRef], selected: set[ObjectRef] | None,
        options: dict[str, str], inventory: list[ObjectRef], status: dict[str, Any], changes: plan.ChangeSet,
    ) -> dict[ObjectRef, dict[str, Any]]:  # fmt: skip
        """Apply in waves; returns the objects applied, as kube-apiserver answered."""
        spec = app.get("spec") or {}
        destination_ns = str((spec.get("destination") or {}).get("namespace") or "")
        if options.get("CreateNamespace") == "true" and destination_ns:
            ns = self.kube.resource("", "Namespace")
            # Whether it exists is the controller's to read; creating it is the project's to allow
            # (judged with the Application) and its ServiceAccount's, when it names one.
            if ns is not None and self.kube.get(ns, "", destination_ns) is None:
                self._objects().request("POST", "/api/v1/namespaces", body={
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": destination_ns},
                })  # fmt: skip
                log.info("[%s] created namespace %s (CreateNamespace=true)", key, destination_ns)
        # Record what is about to exist before it exists: a crash mid-sync leaves nothing untracked.
        known = set(inventory)
        new = [
            r for r in desired if r not in known and r not in foreign and (selected is None or r in selected)
        ]
        if new:
            grown = [
                *status.get("resources", []),
                *(st.resource_entry(r, "", "OutOfSync", None) for r in new),
            ]
            status["resources"] = grown
            self._write_status(app, status, None, keep_operation=True)
        only_out_of_sync = options.get("ApplyOutOfSyncOnly") == "true"
        crds = plan.crd_kinds(desired.values())
        applied: dict[ObjectRef, dict[str, Any]] = {}
        steps = plan.waves(
            desired[r] for r in desired if r not in foreign and (selected is None or r in selected)
        )
        if app.get("operation") or len(steps) > 1:
            # Worth an Event of its own when someone asked, or when the sync waits for each step
            # to be healthy; otherwise Synced or SyncFailed follows at once.
            count = sum(len(step) for step in steps)
            message = f"syncing revision {st.short(target.sha)}: {count} objects in {len(steps)} steps"
            self.kube.event(app, "Normal", "SyncStarted", message)
        for index, step in enumerate(steps):
            for obj in step:
                ref = ObjectRef.of(obj)
                if ref in break_glass:
                    changes.add(ref, "skipped", "break-glass is active")
                    continue
                if only_out_of_sync and drifted.get(ref) == []:
                    changes.add(ref, "unchanged")
                    continue
                try:
                    # A kind a CRD of this sync defines appears in discovery a moment after the
                    # CRD is established (the step before waited for that).
                    res = self.kube.resource_for(
                        obj, wait=self.options.wave_timeout if (ref.group, ref.kind) in crds else 0.0
                    )
                    if res.namespaced != bool(ref.namespace):
                        # Judged by the project as one scope, served as the other (a CRD changed
                        # since): never apply what the project did not judge.
                        scope = "namespaced" if res.namespaced else "cluster-scoped"
                        changes.add(ref, "failed", f"the server now serves {ref.kind} as {scope}; sync again")
                        continue
                    result = self._objects().apply(obj)
                except KubeError as exc:
                    changes.add(ref, "failed", f"{exc.reason}: {exc.message}")
                    continue
                applied[ref] = result
                self.written[_wkey(ref)] = result["metadata"].get("resourceVersion", "")
                action = (
                    "created"
                    if live.get(ref) is None
                    else ("configured" if drifted.get(ref) else "unchanged")
                )
                changes.add(ref, action)
            if changes.failed():
                return applied
            if index < len(steps) - 1:
                if app.get("operation"):
                    self._progress(app, status, target, changes, step, index + 1, len(steps))
                self._wait_healthy(key, step)
        for ref in foreign:
            changes.add(ref, "failed", foreign[ref])
        return applied

    def _progress(
        self, app: dict[str, Any], status: dict[str, Any], target: Target, changes: plan.ChangeSet,
        step: list[dict[str, Any]], done: int, total: int,
    ) -> None:  # fmt: skip
        """A requested operation shows each step's results as the step ends, while the next one
        waits for it to be healthy: who follows it (``kubectl driftguard sync``, the dashboard)
        sees the sync go by wave and object."""
        wave = plan.wave(step[0])
        message = f"step {done} of {total} (wave {wave}) applied; waiting for it to become healthy"
        state = self._operation_state(app, "Running", message, now_text(self.clock), target, changes)
        state["startedAt"] = (status.get("operationState") or {}).get("startedAt") or state["startedAt"]
        status["operationState"] = state
        self._write_status(app, status, None, keep_operation=True)

    def _wait_healthy(self, key: AppKey, step: list[dict[str, Any]]) -> None:
        """A wave waits for the one before to be healthy, within a deadline."""
        deadline = time.monotonic() + self.options.wave_timeout
        while True:
            statuses = [health.assess(self._live(obj)) for obj in step]
            worst = health.worst(statuses)
            if worst.status in (health.Status.Healthy, health.Status.Suspended):
                return
            if worst.status == health.Status.Degraded or time.monotonic() > deadline:
                raise st.Step(st.HEALTH_DEGRADED, f"a sync wave did not become healthy: {worst.message}")
            log.info("[%s] waiting for a sync wave to become healthy: %s", key, worst.message)
            time.sleep(1.0)

    def _plan_prune(
        self, key: AppKey, inventory: list[ObjectRef], desired: dict[ObjectRef, Any], prune_on: bool,
        sync_request: dict[str, Any] | None,
    ) -> tuple[plan.PrunePlan, dict[ObjectRef, tuple[Resource, dict[str, Any]] | None]]:  # fmt: skip
        """The prune plan, and the live objects of the inventory entries that left Git. What the
        project no longer allows (a kind, a namespace) is left in place, as Argo CD does."""
        found = {ref: self._inventory_live(ref) for ref in inventory if ref not in desired}
        no_prune = [
            r for r, f in found.items() if f is not None and plan.object_options(f[1]).get("Prune") == "false"
        ] + self._not_permitted([r for r in found if found[r] is not None])
        prune_plan = plan.plan_prune(
            inventory, desired, prune=prune_on, no_prune=no_prune, max_share=self.options.max_prune_share,
            confirmed=bool((sync_request or {}).get("confirmPrune")), app=key,
        )  # fmt: skip
        return prune_plan, found

    def _prune(
        self, app: dict[str, Any], key: AppKey, prune_plan: plan.PrunePlan,
        found: dict[ObjectRef, tuple[Resource, dict[str, Any]] | None], changes: plan.ChangeSet,
        status: dict[str, Any], now: str,
    ) -> None:  # fmt: skip
        if prune_plan.refused:
            known = st.find_condition(status.get("conditions") or [], st.PRUNE_REFUSED)
            if not known or known.get("message") != prune_plan.refused:
                self.kube.event(app, "Warning", "PruneRefused", prune_plan.refused)
            status["conditions"] = st.set_condition(
                status.get("conditions") or [],
                st.PRUNE_REFUSED,
                "True",
                "ConfirmationRequired",
                prune_plan.refused,
                now,
            )
        else:
            status["conditions"] = st.remove_condition(status.get("conditions") or [], st.PRUNE_REFUSED)
        for ref in prune_plan.delete:
            try:
                live_found = found.get(ref)
                if live_found is None:
                    changes.add(ref, "pruned", "already gone")
                    continue
                res, obj = live_found
                if claimed_app(obj) != key:
                    # Never prune what this Application does not own by its tracking id.
                    changes.add(ref, "pruned", "no longer carries this Application's tracking id; left alone")
                    continue
                self._objects().delete(res, ref.namespace, ref.name, uid=obj["metadata"].get("uid"))
                changes.add(ref, "pruned")
                self.kube.event(app, "Normal", "Pruned", f"{ref} left Git and was deleted")
            except KubeError as exc:
                changes.add(ref, "failed", f"prune failed ({exc.reason}): {exc.message}")
                self.kube.event(app, "Warning", st.PRUNE_FAILED, f"{ref}: {exc.message}")

    def _leftovers(
        self, inventory: list[ObjectRef], desired: dict[ObjectRef, Any], changes: plan.ChangeSet
    ) -> list[ObjectRef]:
        """Inventory entries that left Git and still exist: kept, or whose deletion failed."""
        pruned = {c.ref for c in changes.changes if c.action == "pruned"}
        return [r for r in inventory if r not in desired and r not in pruned]

    def _report(
        self, app: dict[str, Any], key: AppKey, target: Target, status: dict[str, Any],
        desired: dict[ObjectRef, dict[str, Any]], live: dict[ObjectRef, dict[str, Any] | None],
        drifted: dict[ObjectRef, list[str] | None], foreign: dict[ObjectRef, str], kept: list[ObjectRef],
        seal_key: bytes | None,
    ) -> None:  # fmt: skip
        entries, healths, drift_entries = [], [], []
        for ref, obj in desired.items():
            if ref in foreign:
                continue
            obj_live = live.get(ref)
            fields = drifted.get(ref)
            assessed = health.assess(obj_live)
            if assessed is not None:
                healths.append((ref, assessed))
            entry = st.resource_entry(
                ref, str(obj.get("apiVersion", "")).rpartition("/")[2],
                "Synced" if fields == [] else "OutOfSync",
                {"status": str(assessed.status), "message": assessed.message} if assessed else None,
            )  # fmt: skip
            entries.append(entry)
            if fields:
                # Who and when, as the drift guard stamped and sealed them in warn mode.
                drift_entries.append({
                    "group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
                    "fields": fields[:20], **breakglass.drift_author(obj_live, seal_key),
                })  # fmt: skip
        for ref in kept:
            entry = st.resource_entry(ref, "", "OutOfSync", None)
            entry["requiresPruning"] = True
            entries.append(entry)
        status["resources"] = entries
        synced = all(e["status"] == "Synced" for e in entries) and not foreign
        status["sync"] = {"status": "Synced" if synced else "OutOfSync", "revision": target.sha}
        worst = health.worst(h for _, h in healths)
        bad = next(
            (f"{ref}: {h.message}" for ref, h in healths if h.status == worst.status and h.message), ""
        )
        status["health"] = {
            "status": str(worst.status),
            "message": bad if worst.status != health.Status.Healthy else "",
        }
        before = {
            (d["kind"], d["namespace"], d["name"]) for d in (status.get("drift") or {}).get("resources") or []
        }
        after = {(d["kind"], d["namespace"], d["name"]) for d in drift_entries}
        for d in drift_entries:
            if (d["kind"], d["namespace"], d["name"]) not in before:
                who = f" by {d['by']}" if d.get("by") else ""
                self.kube.event(
                    app,
                    "Warning",
                    "DriftDetected",
                    f"{d['kind']} {d['namespace']}/{d['name']} drifted{who}: {', '.join(d['fields'][:5])}",
                )
                self.metrics.drift.inc()
        for kind, namespace, name in sorted(before - after):
            self.kube.event(app, "Normal", "DriftRestored", f"{kind} {namespace}/{name} matches Git again")
        break_glass = self._break_glass(app, desired, live, status.get("drift") or {}, seal_key)
        status["drift"] = {"resources": drift_entries, "breakGlass": break_glass}

    def _break_glass(
        self, app: dict[str, Any], desired: dict[ObjectRef, dict[str, Any]],
        live: dict[ObjectRef, dict[str, Any] | None], old_drift: dict[str, Any], seal_key: bytes | None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Active break-glass the guard granted on managed objects: recorded in status and as
        Events once each."""
        known = {
            (b.get("kind"), b.get("namespace"), b.get("name"), b.get("expiresAt"))
            for b in old_drift.get("breakGlass") or []
        }
        active = []
        for ref in desired:
            obj = live.get(ref)
            if obj is None or not breakglass.active(obj, self.clock(), seal_key):
                continue
            entry = breakglass.entry(ref, obj, seal_key)
            active.append(entry)
            if (ref.kind, ref.namespace, ref.name, entry["expiresAt"]) not in known:
                message = (
                    f"break-glass on {ref} until {entry['expiresAt']}, granted to {entry.get('by', '?')}: "
                    f"{entry['reason']}"
                )
                self.kube.event(app, "Warning", "BreakGlass", message)
                self.kube.event(obj, "Warning", "BreakGlass", message)
        return active

    # --- status, operations, deletion -------------------------------------------------------
    def _operation_state(
        self, app: dict[str, Any], phase: str, message: str, now: str, target: Target | None,
        changes: plan.ChangeSet | None = None, diffs: dict[ObjectRef, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """``diffs`` (a dry run's) are kept per resource up to MAX_DIFFS_BYTES in all."""
        previous = (app.get("status") or {}).get("operationState") or {}
        operation = app.get("operation") or {"sync": {}, "initiatedBy": {"automated": True}}
        state: dict[str, Any] = {
            "phase": phase, "message": message[:2000], "operation": operation,
            "startedAt": previous.get("startedAt") if previous.get("phase") == "Running" else now,
        }  # fmt: skip
        if phase != "Running":
            state["finishedAt"] = now
        if target is not None:
            result = [{
                "group": c.ref.group, "kind": c.ref.kind, "namespace": c.ref.namespace, "name": c.ref.name,
                "status": c.action, "message": c.message,
            } for c in (changes.changes if changes else [])]  # fmt: skip
            state["syncResult"] = {"revision": target.sha, "source": target.source, "resources": result}
            if diffs is not None:
                state["syncResult"]["dryRun"] = True
                budget = MAX_DIFFS_BYTES
                for entry, change in zip(result, changes.changes if changes else [], strict=True):
                    text = diffs.get(change.ref)
                    if text:
                        entry["diff"] = (
                            text if len(text) <= budget else "(left out: the dry run's diffs passed 200 KiB)"
                        )
                        budget -= len(entry["diff"])
        return state

    def _write_status(
        self, app: dict[str, Any], status: dict[str, Any], operation: Any, keep_operation: bool = False
    ) -> None:
        """Write status through the status subresource; clear the operation we took up (but not a
        newer one that arrived meanwhile)."""
        body = copy.deepcopy(app)
        body["status"] = status
        for _ in range(5):
            if operation is not None and not keep_operation and body.get("operation") == operation:
                body["operation"] = None
            try:
                written = self.kube.put_app(body, "status")
                app["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]
                key = AppKey(app["metadata"]["namespace"], app["metadata"]["name"])
                with self._lock:
                    self.status_written[key] = written["metadata"]["resourceVersion"]
                app["status"] = written.get("status")
                app["operation"] = written.get("operation")
                return
            except KubeError as exc:
                if exc.code != 409:
                    raise
                fresh = self.kube.get_app(app["metadata"]["namespace"], app["metadata"]["name"])
                if fresh is None:
                    return
                body = fresh
                body["status"] = status
        raise KubeError(409, "Conflict", "could not write status after 5 conflicts")

    def _not_permitted(self, refs: list[ObjectRef]) -> list[ObjectRef]:
        """Of the inventory entries ``refs``, those the project no longer allows (kind, namespace)."""
        name, project = self._local.project
        spec = self._local.spec
        server, dest_name, _ = projects.destination(spec.get("destination"))
        info = [(r.group, r.kind, r.namespace, r.name, bool(r.namespace)) for r in refs]
        refused = {r.what for r in projects.object_refusals(project, name, server, dest_name, info)}
        return [r for r, i in zip(refs, info, strict=True) if projects.object_name(*i) in refused]

    def _finalize(self, app: dict[str, Any], key: AppKey) -> Outcome:
        finalizers = app["metadata"].get("finalizers") or []
        if RESOURCES_FINALIZER not in finalizers:
            return Outcome()
        try:
            # As the project's ServiceAccount, and only what the project allows: a deletion never
            # lends the controller's own rights. Without a project, the finalizer stays.
            self._enter_project(app)
            return self._delete_inventory(app, key, finalizers)
        except st.Step as exc:
            message = f"the deployed objects cannot be deleted: {exc.message}"
            log.warning("[%s] %s", key, message)
            known = (app.get("status") or {}).get("conditions") or []
            before = st.find_condition(known, st.READY) or {}
            if before.get("message") != message:
                self.kube.event(app, "Warning", exc.reason, message)
            return Outcome(requeue_after=self.options.poll_seconds, failed=True)
        finally:
            self._leave_project()

    def _delete_inventory(self, app: dict[str, Any], key: AppKey, finalizers: list[str]) -> Outcome:
        remaining = []
        deletions = plan.plan_prune(
            st.inventory(app.get("status") or {}), [], prune=True, confirmed=True
        ).delete
        refused = set(self._not_permitted(deletions))
        for ref in deletions:
            if ref in refused:
                log.info("[%s] left %s in place: its project no longer allows it", key, ref)
                continue
            found = self._inventory_live(ref)
            if found is None or claimed_app(found[1]) != key:
                continue
            res, obj = found
            try:
                self._objects().delete(res, ref.namespace, ref.name, uid=obj["metadata"].get("uid"))
                log.info("[%s] deleted %s (Application deleted)", key, ref)
            except KubeError as exc:
                remaining.append(f"{ref}: {exc.message}")
        if remaining:
            self.kube.event(app, "Warning", st.PRUNE_FAILED, "could not delete: " + "; ".join(remaining[:3]))
            return Outcome(requeue_after=5.0, failed=True)
        body = copy.deepcopy(app)
        body["metadata"]["finalizers"] = [f for f in finalizers if f != RESOURCES_FINALIZER]
        try:
            self.kube.put_app(body)
        except KubeError as exc:
            if exc.code in (404, 409):
                return Outcome(requeue_after=0.5 if exc.code == 409 else None)
            raise
        return Outcome()

    def release(self, app: dict[str, Any]) -> None:
        """An Application deleted without the resources finalizer: its objects stay, without
        the managed marks, so the guard lets them go."""
        key = AppKey(app["metadata"]["namespace"], app["metadata"]["name"])
        try:
            self._enter_project(app)
            self._release(key, app)
        except st.Step as exc:
            # The objects keep their marks; the guard lets through objects whose Application is gone.
            log.warning("[%s] its objects keep their marks: %s", key, exc.message)
        finally:
            self._leave_project()

    def _release(self, key: AppKey, app: dict[str, Any]) -> None:
        for ref in st.inventory(app.get("status") or {}):
            found = self._inventory_live(ref)
            if found is None or claimed_app(found[1]) != key:
                continue
            res = found[0]
            patch = {
                "metadata": {"labels": {MANAGED_LABEL: None}, "annotations": {TRACKING_ANNOTATION: None}}
            }
            try:
                self._objects().patch(res, ref.namespace, ref.name, patch)
                log.info("[%s] released %s (Application deleted without %s)", key, ref, RESOURCES_FINALIZER)
            except KubeError as exc:
                log.warning("[%s] could not release %s: %s", key, ref, exc.message)


def _check_spec(app: dict[str, Any]) -> None:
    """Refuse a stored spec that today's rules refuse at write time (written before a rule existed,
    e.g. another cluster as destination or a token in repoURL): nothing is fetched, applied or
    pruned for it until it is fixed."""
    problems = [p for p in validate(app) if p.path.startswith("spec.")]
    if problems:
        raise st.Step(
            st.INVALID_SPEC,
            "the spec is refused, so nothing was fetched, applied or pruned: "
            + "; ".join(p.detail() for p in problems[:5])
            + ". Fix it with kubectl edit or kubectl apply.",
            temporary=False,
        )


# reconciledAt alone is refreshed at most this often: a reconcile that changes nothing else (most
# of them, with many Applications) then writes nothing.
RECONCILED_AT_REFRESH = datetime.timedelta(minutes=5)


def _changed(old: dict[str, Any], new: dict[str, Any], now: datetime.datetime) -> bool:
    strip = ("reconciledAt",)
    if {k: v for k, v in old.items() if k not in strip} != {k: v for k, v in new.items() if k not in strip}:
        return True
    last = parse_time(str(old.get("reconciledAt", "")))
    return last is None or now - last >= RECONCILED_AT_REFRESH


def _wkey(ref: ObjectRef) -> tuple[str, str, str, str]:
    return (ref.group, ref.kind, ref.namespace, ref.name)
