"""The AdmissionReview wire format (admission.k8s.io/v1): types, parsing and answering. Pure.

Two kinds of bad input, told apart on purpose:

- a body that is not an AdmissionReview at all (not JSON, another apiVersion or kind, no request
  or uid) cannot be answered: ``parse`` raises ``BadReview`` and the view answers 400;
- an AdmissionReview whose request has an unexpected shape (an object that is not an object, a
  user without a name) can be answered: ``undecodable`` says why, and the guard allows it with that
  reason logged, rather than failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypedDict

from extension.api import jsoncodec

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict, total=False):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    userInfo: UserInfo
    object: dict[str, Any] | None
    oldObject: dict[str, Any] | None
    dryRun: bool
    options: dict[str, Any] | None


class AdmissionStatus(TypedDict, total=False):
    code: int
    reason: str
    message: str


class AdmissionResponse(TypedDict, total=False):
    uid: str
    allowed: bool
    status: AdmissionStatus
    warnings: list[str]
    patchType: Literal["JSONPatch"]
    patch: str  # base64 of a JSON Patch


class AdmissionReview(TypedDict, total=False):
    apiVersion: str
    kind: str
    request: AdmissionRequest
    response: AdmissionResponse


class BadReview(ValueError):
    """The body is no AdmissionReview this server can answer (400)."""


def parse(body: bytes) -> AdmissionRequest:
    """The request in an AdmissionReview body; ``BadReview`` says what is wrong with it."""
    try:
        review = jsoncodec.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadReview(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(review, dict):
        raise BadReview(f"the body must be a JSON object (an AdmissionReview), not {type(review).__name__}")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise BadReview(
            f"expected apiVersion {API_VERSION!r} and kind {KIND!r}, got "
            f"{review.get('apiVersion')!r} and {review.get('kind')!r} (register the webhook with "
            "admissionReviewVersions: [v1])"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("the AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("the AdmissionReview's request has no uid")
    return request  # type: ignore[return-value]  # its shape is checked by undecodable()


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _object_problem(obj: object, what: str) -> str | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        return f"{what} is a {type(obj).__name__}, not an object"
    for key in ("apiVersion", "kind"):
        if key in obj and not isinstance(obj[key], str):
            return f"{what}.{key} is not a string"
    meta = obj.get("metadata", {})
    if not isinstance(meta, dict):
        return f"{what}.metadata is not an object"
    for key in ("name", "namespace", "deletionTimestamp"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"{what}.metadata.{key} is not a string"
    for key in ("labels", "annotations"):
        if meta.get(key) is not None and not _string_map(meta[key]):
            return f"{what}.metadata.{key} is not a map of strings"
    for key in ("managedFields", "ownerReferences"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return f"{what}.metadata.{key} is not a list of objects"
    return None


def undecodable(request: AdmissionRequest) -> str | None:
    """Why the guard cannot read this request, or None when it can."""
    raw: dict[str, Any] = dict(request)
    if raw.get("operation") not in OPERATIONS:
        return f"operation {raw.get('operation')!r} is none of {', '.join(OPERATIONS)}"
    for key, fields in (
        ("kind", ("group", "version", "kind")),
        ("resource", ("group", "version", "resource")),
    ):
        value = raw.get(key)
        if not isinstance(value, dict) or not all(isinstance(value.get(f), str) for f in fields):
            return f"request.{key} is not a {'/'.join(fields)} object"
    for key in ("subResource", "name", "namespace"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            return f"request.{key} is not a string"
    user = raw.get("userInfo")
    if not isinstance(user, dict) or not isinstance(user.get("username"), str):
        return "request.userInfo has no username"
    if user.get("groups") is not None and not _strings(user["groups"]):
        return "request.userInfo.groups is not a list of strings"
    for key in ("object", "oldObject"):
        problem = _object_problem(raw.get(key), f"request.{key}")
        if problem:
            return problem
    needed = {"CREATE": ("object",), "UPDATE": ("object", "oldObject"), "DELETE": ("oldObject",)}
    for key in needed.get(raw["operation"], ()):
        if raw.get(key) is None:
            return f"a {raw['operation']} review without request.{key}"
    return None


def request_for(
    uid: str,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    operation: Literal["CREATE", "UPDATE", "DELETE"],
    user: UserInfo,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None,
    dry_run: bool,
) -> AdmissionRequest:
    """The request kube-apiserver would send the webhooks for a write (for the writes our own API
    serves, which no webhook sees)."""
    meta = (new if new is not None else old or {}).get("metadata") or {}
    return {
        "uid": uid, "kind": kind, "resource": resource, "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""), "operation": operation, "userInfo": user,
        "object": new, "oldObject": old, "dryRun": dry_run, "options": {},
    }  # fmt: skip


def review_of(response: AdmissionResponse) -> AdmissionReview:
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def bad_request(message: str) -> dict[str, Any]:
    """The 400 body: a metav1.Status, as every error of this server."""
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "BadRequest", "code": 400,
    }  # fmt: skip


def handle(
    body: bytes, decide: Callable[[AdmissionRequest], AdmissionResponse]
) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body for a webhook call; ``decide`` must not raise."""
    try:
        request = parse(body)
    except BadReview as exc:
        return 400, bad_request(str(exc))
    return 200, dict(review_of(decide(request)))
