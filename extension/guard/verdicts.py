"""Every drift-guard decision, from the AdmissionReview, the Application index, the settings and the
time. No HTTP, no kube client: the one read a decision may need (the parent of a ``scale``
request) goes through ``ParentReader``, which tests fake.

``mutate`` answers the mutating webhook, which decides UPDATEs (allow, deny, warnings and, in warn
mode, a JSON Patch that stamps who drifted which fields and when); ``review`` answers the
validating webhooks, which decide CREATE, DELETE and scale. Both decide the same way through
``decide``, and neither has side effects, so dry-run requests get the same verdict.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonpatch

from extension.api import seals
from extension.api.checks import parse_time
from extension.api.tracking import (
    BREAK_GLASS_GRANT,
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    DRIFTED_AT,
    DRIFTED_BY,
    DRIFTED_FIELDS,
    DRIFTED_SEAL,
    FIELD_MANAGER,
    IMPERSONATED_BY,
    MANAGED_LABEL,
    TRACKING_ANNOTATION,
    AppKey,
    ObjectRef,
    claimed_app,
)
from extension.guard import fields
from extension.guard.fields import Drift
from extension.guard.index import GuardedApp
from extension.guard.reviews import (
    AdmissionRequest,
    AdmissionResponse,
    GroupVersionResource,
    UserInfo,
    undecodable,
)

log = logging.getLogger(__name__)

DEFAULT_CONTROLLER_USERNAME = "system:serviceaccount:driftguard-system:driftguard-controller"
# Deletions that follow one kube-apiserver already admitted: the namespace controller empties a
# deleted namespace, the garbage collector removes the dependents of a deleted owner. Denying them
# would leave namespaces Terminating forever; the deletion that started them was the one to guard.
CASCADE_DELETERS = (
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
)
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
# The workloads kube-apiserver serves a scale subresource for, and their kinds. For these the
# inventory lookup is exact; a custom resource's plural cannot be guessed, so any inventory entry
# with its group, namespace and name leads to the parent read.
BUILT_IN_SCALABLE = {
    ("apps", "deployments"): "Deployment",
    ("apps", "statefulsets"): "StatefulSet",
    ("apps", "replicasets"): "ReplicaSet",
    ("", "replicationcontrollers"): "ReplicationController",
}
MAX_FIELDS_NAMED = 3


@dataclass(frozen=True)
class GuardSettings:
    controller_username: str = DEFAULT_CONTROLLER_USERNAME
    cascade_deleters: tuple[str, ...] = CASCADE_DELETERS


class Apps(Protocol):
    """The Application index as verdicts read it (``extension.guard.index.AppIndex``)."""

    synced: bool

    def get(self, key: AppKey) -> GuardedApp | None: ...
    def listed(self, group: str, namespace: str, name: str) -> frozenset[tuple[ObjectRef, AppKey]]: ...


class ParentReader(Protocol):
    """Reads the object a ``scale`` request resizes; None when it is gone."""

    def get(self, resource: GroupVersionResource, namespace: str, name: str) -> dict[str, Any] | None: ...


class ParentUnavailable(Exception):
    """The parent of a scale request could not be read; the message is shown to the user."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    why: str  # for the log: what decided
    message: str = ""  # the denial, as kubectl prints it
    warnings: tuple[str, ...] = ()
    stamp: tuple[Drift, ...] = ()  # warn mode: the drift to record on the object
    grant: str = ""  # the user a break-glass set by this request is granted to (mutating webhook)


def allow(why: str, *warnings: str) -> Verdict:
    return Verdict(True, why, warnings=warnings)


# --- words -----------------------------------------------------------------------------------
def _where(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _owner(app: GuardedApp) -> str:
    revision = app.revision[:7] if app.revision else "not synced yet"
    repo, path = app.repo_url or "no repository", app.path or "."
    return f"Application {app.key} ({repo}, path {path}, revision {revision})"


def _listing(names: Sequence[str]) -> str:
    shown = list(names[:MAX_FIELDS_NAMED])
    more = len(names) - len(shown)
    if more:
        return ", ".join(shown) + f" and {more} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _set_by_git(drift: Sequence[Drift]) -> str:
    return f"{_listing([d.path for d in drift])} {'is' if len(drift) == 1 else 'are'} set by Git"


def _go_duration(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (
        (f"{hours}h" if hours else "")
        + (f"{minutes}m" if minutes else "")
        + (f"{seconds}s" if seconds else "")
    )
    return text or "0s"


def _rfc3339(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- who may ---------------------------------------------------------------------------------
def _identity_rule(app: GuardedApp, user: UserInfo, group: str, kind: str) -> str | None:
    """The allow rule that lets this user (or any user, for this kind) through, if any."""
    rules, name = app.allow, user.get("username", "")
    if name in rules.users:
        return f"spec.driftGuard.allow.users ({name})"
    for member in user.get("groups") or ():
        if member in rules.groups:
            return f"spec.driftGuard.allow.groups ({member})"
    for account in rules.service_accounts:
        full = account if account.startswith(SERVICE_ACCOUNT_PREFIX) else SERVICE_ACCOUNT_PREFIX + account
        if name == full:
            return f"spec.driftGuard.allow.serviceAccounts ({account})"
    for entry in rules.kinds:
        if entry in (kind, f"{group}/{kind}") or (not group and entry in (f"core/{kind}", f"v1/{kind}")):
            return f"spec.driftGuard.allow.kinds ({entry})"
    return None


@dataclass(frozen=True)
class BreakGlassCheck:
    valid: bool
    problems: tuple[str, ...] = ()
    reason: str = ""
    until: str = ""


def break_glass(
    app: GuardedApp, user: UserInfo, annotations: dict[str, str], now: datetime.datetime
) -> BreakGlassCheck | None:
    """Whether the break-glass annotations make this change legitimate; None when there are none."""
    reason, until = annotations.get(BREAK_GLASS_REASON), annotations.get(BREAK_GLASS_UNTIL)
    if reason is None and until is None:
        return None
    problems: list[str] = []
    allowed = app.break_glass.groups
    if not allowed:
        problems.append(f"Application {app.key} names no spec.driftGuard.breakGlass.groups")
    elif not set(user.get("groups") or ()) & set(allowed):
        problems.append(f"{user.get('username')} is in none of the break-glass groups ({', '.join(allowed)})")
    if not (reason or "").strip():
        problems.append(f"the annotation {BREAK_GLASS_REASON} must give a reason")
    expiry = parse_time(until or "")
    if expiry is None:
        problems.append(
            f"the annotation {BREAK_GLASS_UNTIL} must be an RFC 3339 time such as 2030-01-01T12:00:00Z"
        )
    elif expiry <= now:
        problems.append(f"it expired at {until}")
    elif expiry > now + app.break_glass.max_duration:
        problems.append(
            f"{BREAK_GLASS_UNTIL} is more than {_go_duration(app.break_glass.max_duration)} ahead "
            "(spec.driftGuard.breakGlass.maxDuration)"
        )
    return BreakGlassCheck(not problems, tuple(problems), (reason or "").strip(), until or "")


# --- deciding --------------------------------------------------------------------------------
def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(_meta(obj).get("annotations") or {})


def _guarded(
    request: AdmissionRequest,
    app: GuardedApp,
    where: str,
    group: str,
    kind: str,
    drift: list[Drift],
    glass_source: dict[str, Any] | None,
    now: datetime.datetime,
) -> Verdict:
    """A change to a managed object (``drift`` empty: a deletion): allow rules, break-glass, mode."""
    user = request.get("userInfo") or {}
    deleting = request.get("operation") == "DELETE"
    rule = _identity_rule(app, user, group, kind)
    if rule:
        return allow(f"allowed by {rule}")
    if not deleting:
        drift = [d for d in drift if not fields.covered(d.pointer, app.allow.json_pointers)]
        if not drift:
            return allow("allowed by spec.driftGuard.allow.jsonPointers")
    what = "deletes" if deleting else f"changes {_listing([d.path for d in drift])} of"
    glass = break_glass(app, user, _annotations(glass_source), now)
    if glass and glass.valid:
        return allow(
            "break-glass",
            f"break-glass: {user.get('username')} {what} {where} (reason: {glass.reason!r}) until "
            f"{glass.until}; Application {app.key} restores Git's state when it expires.",
        )
    if deleting:
        head = (
            f"{where} is managed by {_owner(app)}: it is deleted through Git. Remove it from Git and "
            "the controller prunes it"
        )
    else:
        head = f"{where} is managed by {_owner(app)}: {_set_by_git(drift)}"
    if app.mode == "warn":
        tail = (
            "the controller re-creates it unless it leaves Git."
            if deleting
            else "the change is recorded as drift; change it in Git to keep it."
        )
        return Verdict(
            True, "warn mode", warnings=(f"{head}. Allowed in warn mode: {tail}",), stamp=tuple(drift)
        )
    it = "it" if len(drift) == 1 else "them"
    message = (
        f"{head}, or see 'break-glass' in the README."
        if deleting
        else f"{head}. Change {it} in Git, or see 'break-glass' in the README."
    )
    if glass:
        message += f" Break-glass refused: {'; '.join(glass.problems)}."
    return Verdict(False, "enforce mode", message=message)


def _create(
    request: AdmissionRequest, apps: Apps, where: str, group: str, kind: str, now: datetime.datetime
) -> Verdict:
    """Only the controller creates what an Application deploys, so a tracking id that claims an
    Application for this very object is the controller's to set. The managed label alone claims
    nothing: kube's own controllers copy labels (a Service's onto its Endpoints, a template's onto
    Pods), and so does ``kubectl expose``. Nor does an id copied from another object, or an object
    made by its owner's controller (a Deployment's annotations reach its ReplicaSets)."""
    obj = request.get("object") or {}
    key = claimed_app(obj)
    if key is None:
        return allow("claims no Application")
    if any(ref.get("controller") is True for ref in _meta(obj).get("ownerReferences") or ()):
        return allow("made by its owner's controller")
    app = apps.get(key)
    if app is None:
        if not apps.synced:
            return Verdict(False, "index not synced", message=_starting())
        return allow("its Application does not exist", _missing(where, key))
    if app.mode == "off":
        return allow("mode off")
    user = request.get("userInfo") or {}
    rule = _identity_rule(app, user, group, kind)
    if rule:
        return allow(f"allowed by {rule}")
    glass = break_glass(app, user, _annotations(obj), now)
    if glass and glass.valid:
        return allow("break-glass", f"break-glass: {where} created outside Git (reason: {glass.reason!r}).")
    head = (
        f"{where} claims {_owner(app)} in its annotation {TRACKING_ANNOTATION}, and only the "
        "driftguard controller creates what an Application deploys"
    )
    if app.mode == "warn":
        return allow("warn mode", f"{head}. Allowed in warn mode.")
    return Verdict(
        False, "claims an Application", message=f"{head}. Add it to Git, or remove the annotation."
    )


def _missing(where: str, key: AppKey) -> str:
    return (
        f"{where} names Application {key} in its tracking id, but that Application does not exist: "
        "the drift guard does not protect it."
    )


def _starting() -> str:
    return "the drift guard has not loaded the Applications yet (it is starting); retry in a few seconds."


def _scale(
    request: AdmissionRequest, apps: Apps, parents: ParentReader | None, now: datetime.datetime
) -> Verdict:
    resource = request["resource"]
    group, plural = resource["group"], resource["resource"]
    namespace, name = request.get("namespace") or "", request.get("name") or ""
    listed = apps.listed(group, namespace, name)
    built_in = BUILT_IN_SCALABLE.get((group, plural))
    if not listed or (built_in and not any(ref.kind == built_in for ref, _ in listed)):
        return allow("scale of an object no inventory lists")
    if parents is None:
        raise ParentUnavailable("no parent reader is configured")
    parent = parents.get(resource, namespace, name)
    if parent is None:
        return allow("scale of an object that is gone")
    key, ref = claimed_app(parent), ObjectRef.of(parent)
    app = apps.get(key) if key else None
    if app is None or ref not in app.inventory or app.mode == "off":
        return allow("scale of an unmanaged object")
    old = ((request.get("oldObject") or {}).get("spec") or {}).get("replicas")
    new = ((request.get("object") or {}).get("spec") or {}).get("replicas")
    if old == new or not fields.owns(parent, "/spec/replicas"):
        return allow("spec.replicas is not set by Git")
    where = _where(ref.kind, namespace, name)
    drift = [Drift(("spec", "replicas"), "changed")]
    return _guarded(request, app, where, ref.group, ref.kind, drift, parent, now)


def decide(
    request: AdmissionRequest,
    apps: Apps,
    settings: GuardSettings,
    now: datetime.datetime,
    parents: ParentReader | None = None,
) -> Verdict:
    """The verdict on a decodable request (see ``reviews.undecodable``). May raise."""
    operation, subresource = request["operation"], request.get("subResource") or ""
    user = request.get("userInfo") or {}
    if subresource and subresource != "scale":
        return allow(f"{subresource} subresource")
    if user.get("username") == settings.controller_username:
        return allow("the controller")
    if FIELD_MANAGER in ((user.get("extra") or {}).get(IMPERSONATED_BY) or ()):
        return allow("the controller, as the ServiceAccount its project names")
    if subresource == "scale":
        return _scale(request, apps, parents, now) if operation == "UPDATE" else allow("scale")
    if operation not in ("CREATE", "UPDATE", "DELETE"):
        return allow(operation)
    group, kind = request["kind"]["group"], request["kind"]["kind"]
    subject = request.get("object") if operation == "CREATE" else request.get("oldObject")
    meta = _meta(subject)
    namespace = request.get("namespace") or str(meta.get("namespace") or "")
    name = request.get("name") or str(meta.get("name") or meta.get("generateName") or "")
    where = _where(kind, namespace, name)
    if operation == "CREATE":
        return _create(request, apps, where, group, kind, now)
    key = claimed_app(subject or {})
    if key is None:
        return allow("no tracking id of its own: unmanaged")
    app = apps.get(key)
    if app is None:
        if not apps.synced:
            return Verdict(False, "index not synced", message=_starting())
        return allow("its Application does not exist", _missing(where, key))
    if ObjectRef.of(subject or {}) not in app.inventory:
        return allow(f"not in the inventory of Application {key}")
    if app.mode == "off":
        return allow("mode off")
    if operation == "DELETE":
        if user.get("username") in settings.cascade_deleters:
            return allow("a cascading deletion")
        return _guarded(request, app, where, group, kind, [], subject, now)
    new = request.get("object")
    drift = fields.drifted(subject, new)
    if meta.get("deletionTimestamp"):
        # Already being deleted: finalizers are removed by their controllers, as they must be.
        drift = [d for d in drift if d.tokens[:2] != ("metadata", "finalizers")]
    verdict = _guarded(request, app, where, group, kind, drift, new, now) if drift else None
    return _with_grant(verdict or allow("changes no field Git sets"), request, app, subject, new, now)


_GLASS_KEYS = (BREAK_GLASS_REASON, BREAK_GLASS_UNTIL)


def _with_grant(
    verdict: Verdict, request: AdmissionRequest, app: GuardedApp, old: dict[str, Any] | None,
    new: dict[str, Any] | None, now: datetime.datetime,
) -> Verdict:  # fmt: skip
    """An allowed UPDATE that sets or changes the break-glass annotations: granted (the mutating
    webhook seals the grant) when the requester may break the glass now, else a warning that the
    controller will ignore them. Anyone who may annotate can write the annotations; only the grant
    makes the controller hold off."""
    before, after = _annotations(old), _annotations(new)
    if not verdict.allowed or all(before.get(k) == after.get(k) for k in _GLASS_KEYS):
        return verdict
    user = request.get("userInfo") or {}
    glass = break_glass(app, user, after, now)
    if glass is None:
        return verdict  # removed
    if glass.valid:
        return dataclasses.replace(verdict, grant=str(user.get("username", "")))
    warning = (
        f"break-glass not granted: {'; '.join(glass.problems)}. Application {app.key} ignores these "
        "annotations and keeps restoring Git's state."
    )
    return dataclasses.replace(verdict, warnings=(*verdict.warnings, warning))


# --- answering -------------------------------------------------------------------------------
def _looks_managed(request: AdmissionRequest, apps: Apps) -> bool:
    """For a request the guard failed on: could it be a managed object? Then it is denied."""
    if (request.get("subResource") or "") == "scale":
        resource: dict[str, Any] = dict(request.get("resource") or {})
        return bool(
            apps.listed(
                str(resource.get("group", "")), request.get("namespace") or "", request.get("name") or ""
            )
        )
    for key in ("object", "oldObject"):
        obj = request.get(key)
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if isinstance(meta, dict) and (
            MANAGED_LABEL in (meta.get("labels") or {})
            or TRACKING_ANNOTATION in (meta.get("annotations") or {})
        ):
            return True
    return False


def _prefix(request: AdmissionRequest) -> str:
    namespace, name = request.get("namespace") or "", request.get("name") or ""
    return f"[{namespace}/{name}]" if namespace else f"[{name}]"


def _verdict(
    request: AdmissionRequest,
    apps: Apps,
    settings: GuardSettings,
    now: datetime.datetime,
    parents: ParentReader | None,
) -> Verdict:
    """``decide`` made total: undecodable requests are allowed, failures deny what may be managed.
    Denials and warnings are logged."""
    uid = request.get("uid", "")
    problem = undecodable(request)
    if problem:
        log.warning(
            "%s allowed a review the guard cannot decode (uid %s): %s", _prefix(request), uid, problem
        )
        return allow(f"undecodable: {problem}")
    try:
        verdict = decide(request, apps, settings, now, parents)
    except Exception as exc:
        log.exception("%s the drift guard failed on review uid %s", _prefix(request), uid)
        try:
            managed = _looks_managed(request, apps)
        except Exception:
            managed = True
        if not managed:
            return allow("error on an unmanaged object")
        detail = str(exc) if isinstance(exc, ParentUnavailable) else type(exc).__name__
        return Verdict(
            False,
            "error",
            message=(
                f"the drift guard could not check this change ({detail}), and it does not let changes "
                f"to objects Git manages through unchecked; retry, or tell your admin (request uid {uid})."
            ),
        )
    if not verdict.allowed or verdict.warnings:
        user = (request.get("userInfo") or {}).get("username")
        log.info(
            "%s %s %s of %s by %s (uid %s, dryRun %s): %s",
            _prefix(request), "denied" if not verdict.allowed else "allowed", request.get("operation"),
            request.get("kind", {}).get("kind"), user, uid, bool(request.get("dryRun")),
            verdict.message or "; ".join(verdict.warnings),
        )  # fmt: skip
    return verdict


def _answer(request: AdmissionRequest, verdict: Verdict) -> AdmissionResponse:
    response: AdmissionResponse = {"uid": request.get("uid", ""), "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": verdict.message}
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    return response


def review(
    request: AdmissionRequest,
    apps: Apps,
    settings: GuardSettings,
    now: datetime.datetime,
    parents: ParentReader | None = None,
) -> AdmissionResponse:
    """The validating webhooks' answer (CREATE, DELETE and scale): allow, deny, warnings. Never
    raises: a failure denies what may be managed."""
    return _answer(request, _verdict(request, apps, settings, now, parents))


def annotate_patch(obj: dict[str, Any], annotations: dict[str, str]) -> list[dict[str, Any]]:
    """The JSON Patch that sets ``annotations`` on the object."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    patch: list[dict[str, Any]] = jsonpatch.JsonPatch.from_diff(obj, {**obj, "metadata": meta}).patch
    return patch


def records(
    obj: dict[str, Any], verdict: Verdict, user: str, now: datetime.datetime, key: bytes | None
) -> dict[str, str]:
    """The annotations that record what the guard let through: in warn mode who changed which
    fields (JSON pointers, comma-separated) and when; a break-glass grant. Each is sealed with
    ``key`` so that the controller can tell them from annotations anyone could write; without a
    key the drift stamp stays a hint and no grant is written."""
    stamped: dict[str, str] = {}
    if verdict.stamp:
        stamped = {
            DRIFTED_BY: user,
            DRIFTED_FIELDS: ",".join(d.pointer for d in verdict.stamp),
            DRIFTED_AT: _rfc3339(now),
        }
        if key is not None:
            uid = str((obj.get("metadata") or {}).get("uid") or "")
            stamped[DRIFTED_SEAL] = seals.drift_seal(
                key, uid, stamped[DRIFTED_BY], stamped[DRIFTED_FIELDS], stamped[DRIFTED_AT]
            )
    if verdict.grant and key is not None:
        stamped[BREAK_GLASS_GRANT] = seals.grant(key, obj, verdict.grant)
    return stamped


def mutate(
    request: AdmissionRequest,
    apps: Apps,
    settings: GuardSettings,
    now: datetime.datetime,
    key: bytes | None = None,
) -> AdmissionResponse:
    """The mutating webhook's answer, which decides UPDATEs: the same verdict as ``review`` and a
    JSON Patch that records, sealed with ``key``, warn-mode drift and break-glass grants on the
    object. Never raises."""
    verdict = _verdict(request, apps, settings, now, None)
    obj = request.get("object")
    if verdict.grant and key is None:
        log.warning(
            "%s no seal key: the break-glass cannot be granted (uid %s)", _prefix(request), request.get("uid")
        )
        verdict = dataclasses.replace(
            verdict,
            warnings=(
                *verdict.warnings,
                "break-glass not granted: the drift guard has no seal key yet; retry.",
            ),
        )
    response = _answer(request, verdict)
    if verdict.allowed and (verdict.stamp or verdict.grant) and isinstance(obj, dict):
        user = (request.get("userInfo") or {}).get("username", "")
        try:
            patch = annotate_patch(obj, records(obj, verdict, user, now, key))
        except Exception:  # the stamp is a record, not a check: never fail the request over it
            log.exception("%s could not stamp the drift (uid %s)", _prefix(request), request.get("uid"))
            return response
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return response
