"""One reconcile of one Application: fetch, render, diff, apply, prune, assess, report.

The Reconciler drives the steps in order; each step has its module in controller/sync/ (see its
docstring), and the pure parts are controller/plan.py, diff.py, health.py and status.py.

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

from controller import plan
from controller import status as st
from controller.breakglass import next_expiry
from controller.git import RepoCache
from controller.kube import Kube, KubeError
from controller.metrics import Metrics
from controller.render import Limits
from controller.sources import Sources
from controller.sync import compare, delete, dryrun
from controller.sync.apply import Applier
from controller.sync.decide import decide, paused
from controller.sync.hooks import HookRunner
from controller.sync.operation import Syncer
from controller.sync.project import Scope, enter_project
from controller.sync.report import Reporter, now_text, operation_state, report_unbacked
from controller.sync.statuswrite import StatusWriter
from controller.sync.target import Target, Targets
from extension.api import fieldsets, jsoncodec, projects, seals
from extension.api.checks import parse_time
from extension.api.schema import GROUP, VERSION
from extension.api.tracking import (
    FIELD_MANAGER,
    RESOURCES_FINALIZER,
    SKIP_RECONCILE_ANNOTATIONS,
    AppKey,
    ObjectRef,
    claimed_app,
)
from extension.api.validation import parse_duration, validate

__all__ = ["Options", "Outcome", "Reconciler", "Target", "now_text", "skip_reconcile"]

log = logging.getLogger(__name__)

# How long an Application found in sync may skip re-comparing its objects when nothing woke it but
# the poll: the watches on managed objects report every change (see Reconciler.touch), so this is
# only a safety net for a change a watch missed.
QUIET_SECONDS = 600.0
# The seal key is read again this often (it is made once, but a restore may bring another), and
# at most this often while it is missing.
SEAL_KEEP_SECONDS = 600.0
SEAL_RETRY_SECONDS = 10.0


@dataclass
class Options:
    namespace: str = "driftguard-system"
    bin_dir: Path = Path(".local/bin")
    poll_seconds: float = 60.0
    max_prune_share: float = 0.5
    wave_timeout: float = 120.0
    hook_timeout: float = 600.0  # how long a phase's wave of hooks may run
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
        # The steps' collaborators (controller/sync/).
        self.targets = Targets(kube, self.sources)
        self.status_writer = StatusWriter(kube, self._lock, self.status_written)
        self.applier = Applier(kube, self.status_writer, self.written, options.wave_timeout, clock)
        self.reporter = Reporter(kube, metrics, clock)
        self.hooks = HookRunner(options.hook_timeout)
        self.syncer = Syncer(
            kube,
            self.targets,
            self.applier,
            self.hooks,
            metrics,
            options.max_prune_share,
            options.wave_timeout,
        )
        self.pre_delete = delete.PreDelete(kube, self.targets, self.hooks)

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

    def read_project(self, name: str) -> dict[str, Any] | None:
        """The AppProject ``name`` as stored now, None when missing (``project`` asks this unless the
        manager answers from its watch)."""
        found: dict[str, Any] | None = self.kube._get(
            f"/apis/{GROUP}/{VERSION}/namespaces/{projects.INSTALL_NAMESPACE}/appprojects/{name}"
        )
        return found

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
            scope = enter_project(self.kube, app, self.project)
            target = self.targets.wanted(scope, app, key)
            self._sync_and_assess(scope, app, key, target, status, now)
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
            status["reconciledAt"] = now
            if not paused(app):
                status["observedGeneration"] = app["metadata"].get("generation", 1)
            if operation is not None or _changed(old_status, status, self.clock()):
                self.status_writer.write(app, status, operation)
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
        current = status.get("operationState") or {}
        if app.get("operation") and not (
            current.get("phase") == "Failed" and current.get("operation") == app["operation"]
        ):
            # (A failed sync has written its own, with each object's and hook's result: kept.)
            status["operationState"] = operation_state(app, "Failed", exc.message, now, None)
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

    # --- compare, sync, prune, assess -------------------------------------------------------
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
        self, scope: Scope, app: dict[str, Any], key: AppKey, target: Target, status: dict[str, Any], now: str
    ) -> None:
        """Compare (unless nothing changed since the Application was last found in sync), decide, run
        a dry run or a sync when one is due, and report."""
        spec, operation = app.get("spec") or {}, app.get("operation") or {}
        policy = spec.get("syncPolicy") or {}
        options = plan.parse_options(policy.get("syncOptions") or [])
        rules = spec.get("ignoreDifferences") or []
        # An object that was an ordinary resource and is a hook now leaves the inventory: it is
        # neither kept nor pruned (the hook takes its place).
        hook_refs = {h.ref for h in target.hooks}
        inventory = [ref for ref in st.inventory(status) if ref not in hook_refs]
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
        compared = compare.compare(self.kube, scope, key, desired, rules)
        live, drifted, foreign = compared.live, compared.drifted, compared.foreign
        seal_key, clock_now = self.seal_key(), self.clock()
        report_unbacked(status, desired, live, seal_key, now, self.options.namespace)
        decision = decide(app, status, target.sha, compared, inventory, clock_now, seal_key)
        if decision.sync_request.get("dryRun"):
            dryrun.dry_run(
                self.kube, scope, app, key, target, desired, live, drifted, foreign, decision.break_glass,
                decision.selected, inventory, decision.prune_on, rules, options, status, now,
                self.options.max_prune_share,
            )  # fmt: skip
            kept = [r for r in inventory if r not in desired]
        elif decision.wants_sync or decision.restoring:
            kept = self.syncer.run(
                scope, app, key, target, status, now, compared, decision, options, rules, inventory
            )
        else:
            kept = [r for r in inventory if r not in desired]
        # A pause from an earlier rollback ends once the spec has changed since.
        was_paused = st.find_condition((app.get("status") or {}).get("conditions") or [], st.AUTO_SYNC_PAUSED)
        if was_paused and not paused(app) and "rollback" not in operation:
            status["conditions"] = st.remove_condition(status.get("conditions") or [], st.AUTO_SYNC_PAUSED)
        self.reporter.report(app, key, target, status, desired, live, drifted, foreign, kept, seal_key)
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

    # --- deletion ---------------------------------------------------------------------------
    def _finalize(self, app: dict[str, Any], key: AppKey) -> Outcome:
        finalizers = app["metadata"].get("finalizers") or []
        if RESOURCES_FINALIZER not in finalizers:
            return Outcome()
        try:
            # As the project's ServiceAccount, and only what the project allows: a deletion never
            # lends the controller's own rights. Without a project, the finalizer stays.
            scope = enter_project(self.kube, app, self.project)
            return self._delete_inventory(scope, app, key, finalizers)
        except st.Step as exc:
            message = f"the deployed objects cannot be deleted: {exc.message}"
            log.warning("[%s] %s", key, message)
            known = (app.get("status") or {}).get("conditions") or []
            before = st.find_condition(known, st.READY) or {}
            if before.get("message") != message:
                self.kube.event(app, "Warning", exc.reason, message)
            return Outcome(requeue_after=self.options.poll_seconds, failed=True)

    def _delete_inventory(
        self, scope: Scope, app: dict[str, Any], key: AppKey, finalizers: list[str]
    ) -> Outcome:
        self.pre_delete.run(scope, app, key)
        remaining = delete.delete_inventory(self.kube, scope, app, key)
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
            scope = enter_project(self.kube, app, self.project)
            delete.release(self.kube, scope, key, app)
        except st.Step as exc:
            # The objects keep their marks; the guard lets through objects whose Application is gone.
            log.warning("[%s] its objects keep their marks: %s", key, exc.message)


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
