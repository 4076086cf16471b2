"""The OpenAPI v2 and v3 documents for the aggregated API, built from each kind's schema.

kube-apiserver merges our v2 document into its own ``/openapi/v2`` and proxies v3 per group
version; kubectl reads them for ``explain``, for client-side validation, for the patch type of
``apply`` (no strategic-merge-patch content type here, so it sends merge patches, as for CRDs),
and for whether the server validates fields itself (the ``fieldValidation`` parameter of each
PATCH operation). The documents list meta.k8s.io's types themselves, so every ``$ref`` resolves
inside the document. Pure: no I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from extension.api.kinds import APPLICATIONS, KINDS, Kind
from extension.api.schema import (
    GROUP,
    ROLLBACK_REQUEST_KIND,
    ROLLBACK_REQUEST_SCHEMA,
    SYNC_REQUEST_KIND,
    SYNC_REQUEST_SCHEMA,
    VERSION,
    Schema,
)

GROUP_VERSION_PATH = f"apis/{GROUP}/{VERSION}"
_PREFIX = f"/{GROUP_VERSION_PATH}"
# io.driftguard.gitops.v1alpha1.Application: the reversed group, as kube names CRD schemas.
_OURS = ".".join(reversed(GROUP.split("."))) + f".{VERSION}"
APPLICATION = f"{_OURS}.{APPLICATIONS.kind}"
APPLICATION_LIST = f"{_OURS}.{APPLICATIONS.list_kind}"
SYNC_REQUEST = f"{_OURS}.{SYNC_REQUEST_KIND}"
ROLLBACK_REQUEST = f"{_OURS}.{ROLLBACK_REQUEST_KIND}"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META, LIST_META, STATUS = f"{_META}.ObjectMeta", f"{_META}.ListMeta", f"{_META}.Status"
_TIME, _PATCH = f"{_META}.Time", f"{_META}.Patch"
# kube's operationId stem and tag: GitopsDriftguardIoV1alpha1 and gitopsDriftguardIo_v1alpha1
_GROUP_STEM = "".join(part.capitalize() for part in GROUP.split("."))
_OP_STEM = _GROUP_STEM + VERSION.capitalize()
_TAG = f"{_GROUP_STEM[0].lower()}{_GROUP_STEM[1:]}_{VERSION}"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
_RESPONSE_TYPES = ("application/json", "application/yaml")

Ref = Callable[[str], str]


def _v3_ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _v2_ref(name: str) -> str:
    return f"#/definitions/{name}"


def _gvk(kind: str, group: str = GROUP, version: str = VERSION) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


# --- meta.k8s.io: just enough for `kubectl explain application.metadata` and validation -------
def _str(description: str) -> Schema:
    return {"type": "string", "description": description}


def _int(description: str) -> Schema:
    return {"type": "integer", "format": "int64", "description": description}


def _field(ref: Ref, name: str, description: str, *, v3: bool) -> Schema:
    # OpenAPI 3.0 ignores siblings of $ref, so v3 wraps the ref in allOf to keep the description.
    if v3:
        return {"allOf": [{"$ref": ref(name)}], "description": description}
    return {"$ref": ref(name), "description": description}


def _meta_schemas(ref: Ref, *, v3: bool) -> dict[str, Schema]:
    def time(description: str) -> Schema:
        return _field(ref, _TIME, description, v3=v3)

    def string_map(description: str) -> Schema:
        return {"type": "object", "additionalProperties": {"type": "string"}, "description": description}

    return {
        OBJECT_META: {
            "type": "object",
            "description": "Metadata every persisted resource has: its name, labels and lifecycle.",
            "properties": {
                "name": _str("The name, unique in its namespace; cannot be changed."),
                "generateName": _str("A prefix the server completes to a unique name when name is empty."),
                "namespace": _str("The namespace the object lives in; cannot be changed."),
                "selfLink": _str("Deprecated; always empty."),
                "uid": _str("The server-assigned unique id of this object; never reused."),
                "resourceVersion": _str(
                    "An opaque version the server changes on every write; send it back to update "
                    "only the version you read (409 Conflict otherwise)."
                ),
                "generation": _int("Incremented by the server on every change to spec."),
                "creationTimestamp": time("When the object was created."),
                "deletionTimestamp": time(
                    "When deletion was requested; the object goes once its finalizers are done."
                ),
                "deletionGracePeriodSeconds": _int("Seconds allowed for graceful deletion."),
                "labels": string_map("Key-value pairs for selecting and organizing objects."),
                "annotations": string_map("Key-value pairs for tools and humans; not selectable."),
                "finalizers": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                    "description": "Entries that must be removed before the object is deleted.",
                },
                "ownerReferences": {
                    "type": "array",
                    "items": _field(ref, f"{_META}.OwnerReference", "An owner.", v3=v3),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["uid"],
                    "description": "Objects this one depends on; it is garbage-collected when they go.",
                },
                "managedFields": {
                    "type": "array",
                    "items": _field(ref, f"{_META}.ManagedFieldsEntry", "A manager's fields.", v3=v3),
                    "description": "Which field manager set which fields, as server-side apply records it.",
                },
            },
        },
        LIST_META: {
            "type": "object",
            "description": "Metadata of a list.",
            "properties": {
                "resourceVersion": _str("The version of the list; start a watch from it."),
                "continue": _str("Pass as `continue` to get the next page; empty on the last page."),
                "remainingItemCount": _int("How many items are left after this page, when known."),
                "selfLink": _str("Deprecated; always empty."),
            },
        },
        f"{_META}.OwnerReference": {
            "type": "object",
            "description": "An object that owns this one.",
            "required": ["apiVersion", "kind", "name", "uid"],
            "properties": {
                "apiVersion": _str("The owner's API version."),
                "kind": _str("The owner's kind."),
                "name": _str("The owner's name."),
                "uid": _str("The owner's uid."),
                "controller": {
                    "type": "boolean",
                    "description": "True if the owner is the managing controller.",
                },
                "blockOwnerDeletion": {
                    "type": "boolean",
                    "description": "If true, foreground deletion of the owner waits for this object.",
                },
            },
        },
        f"{_META}.ManagedFieldsEntry": {
            "type": "object",
            "description": "The fields one field manager set with one operation.",
            "properties": {
                "manager": _str("The field manager's name."),
                "operation": _str("Apply or Update."),
                "apiVersion": _str("The version of the object the fields are in."),
                "time": time("When the fields were last changed."),
                "fieldsType": _str("The format of fieldsV1; always FieldsV1."),
                "fieldsV1": _field(ref, f"{_META}.FieldsV1", "The set of fields.", v3=v3),
                "subresource": _str("The subresource the fields were set through, if any."),
            },
        },
        f"{_META}.FieldsV1": {"type": "object", "description": "A set of fields, as a trie of field paths."},
        _TIME: {
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 time, in UTC, to seconds.",
        },
        _PATCH: {"type": "object", "description": "A patch, in the format its Content-Type names."},
        STATUS: {
            "type": "object",
            "description": "The result of an operation that returns no object, and every error.",
            "properties": {
                "apiVersion": _str("v1"),
                "kind": _str("Status"),
                "metadata": _field(ref, LIST_META, "List metadata; usually empty.", v3=v3),
                "status": _str("Success or Failure."),
                "message": _str("What happened, for humans."),
                "reason": _str("A machine-readable reason such as NotFound, Conflict or Invalid."),
                "code": {"type": "integer", "format": "int32", "description": "The HTTP status code."},
                "details": _field(ref, f"{_META}.StatusDetails", "More about the reason.", v3=v3),
            },
            "x-kubernetes-group-version-kind": [_gvk("Status", "", "v1")],
        },
        f"{_META}.StatusDetails": {
            "type": "object",
            "description": "The object a Status is about, and the causes of an error.",
            "properties": {
                "group": _str("The group of the object."),
                "kind": _str("The kind of the object."),
                "name": _str("The name of the object."),
                "uid": _str("The uid of the object."),
                "retryAfterSeconds": {
                    "type": "integer",
                    "format": "int32",
                    "description": "Seconds to wait before retrying.",
                },
                "causes": {
                    "type": "array",
                    "items": _field(ref, f"{_META}.StatusCause", "A cause.", v3=v3),
                    "description": "Each problem, e.g. each invalid field.",
                },
            },
        },
        f"{_META}.StatusCause": {
            "type": "object",
            "description": "One problem behind an error.",
            "properties": {
                "reason": _str("A machine-readable reason such as FieldValueRequired."),
                "message": _str("The problem, for humans."),
                "field": _str("The field's path, such as spec.source.repoURL."),
            },
        },
    }


# --- our schemas -------------------------------------------------------------------------------
def _object_schema(schema: Schema, kind: str, ref: Ref, *, v3: bool) -> Schema:
    """A top-level kind: the schema with the GVK kubectl looks up, and metadata as ObjectMeta."""
    result = copy.deepcopy(schema)
    properties = result.setdefault("properties", {})
    if "metadata" in properties:
        properties["metadata"] = _field(ref, OBJECT_META, "Standard object metadata.", v3=v3)
    result["x-kubernetes-group-version-kind"] = [_gvk(kind)]
    return result


def _list_schema(kind: Kind, ref: Ref, *, v3: bool) -> Schema:
    return {
        "type": "object",
        "description": f"A list of {kind.kind}s.",
        "required": ["items"],
        "properties": {
            "apiVersion": _str(f"Always '{GROUP}/{VERSION}'."),
            "kind": _str(f"Always '{kind.list_kind}'."),
            "metadata": _field(ref, LIST_META, "Standard list metadata.", v3=v3),
            "items": {
                "type": "array",
                "description": f"The {kind.kind}s.",
                "items": {"$ref": ref(f"{_OURS}.{kind.kind}")},
            },
        },
        "x-kubernetes-group-version-kind": [_gvk(kind.list_kind)],
    }


def _definitions(ref: Ref, *, v3: bool) -> dict[str, Schema]:
    kinds: dict[str, Schema] = {}
    for kind in KINDS:
        kinds[f"{_OURS}.{kind.kind}"] = _object_schema(kind.schema, kind.kind, ref, v3=v3)
        kinds[f"{_OURS}.{kind.list_kind}"] = _list_schema(kind, ref, v3=v3)
    return {
        **kinds,
        SYNC_REQUEST: _object_schema(SYNC_REQUEST_SCHEMA, SYNC_REQUEST_KIND, ref, v3=v3),
        ROLLBACK_REQUEST: _object_schema(ROLLBACK_REQUEST_SCHEMA, ROLLBACK_REQUEST_KIND, ref, v3=v3),
        **_meta_schemas(ref, v3=v3),
    }


# --- paths: one table of operations, rendered as v3 or v2 ------------------------------------
_PARAMS: dict[str, tuple[str, str, str]] = {
    # name: (in, type, description)
    "namespace": ("path", "string", "The namespace."),
    "name": ("path", "string", "The object's name."),
    "pretty": ("query", "string", "If 'true', the output is indented."),
    "dryRun": ("query", "string", "'All' checks the request without persisting it."),
    "fieldManager": ("query", "string", "The name of the actor making the change, for managedFields."),
    "fieldValidation": ("query", "string", "Unknown fields: Ignore, Warn (default) or Strict (an error)."),
    "force": ("query", "boolean", "Server-side apply: take over fields other managers own."),
    "labelSelector": ("query", "string", "Only objects whose labels match, e.g. 'team=a,tier!=web'."),
    "fieldSelector": ("query", "string", "Only objects whose metadata.name or metadata.namespace match."),
    "limit": ("query", "integer", "The most items to return; continue with the returned token."),
    "continue": ("query", "string", "The token from the previous page."),
    "resourceVersion": ("query", "string", "Read at or after this version; start a watch from it."),
    "resourceVersionMatch": ("query", "string", "How resourceVersion applies: Exact or NotOlderThan."),
    "watch": ("query", "boolean", "Stream changes as watch events instead of returning a list."),
    "allowWatchBookmarks": ("query", "boolean", "Let a watch send BOOKMARK events."),
    "sendInitialEvents": ("query", "boolean", "Start a watch with the current objects as ADDED events."),
    "timeoutSeconds": ("query", "integer", "End a list or watch after this many seconds."),
    "gracePeriodSeconds": ("query", "integer", "Seconds before the object is deleted."),
    "propagationPolicy": ("query", "string", "Orphan, Background or Foreground deletion of dependents."),
}
_READ = ("pretty",)
_SELECT = ("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "resourceVersionMatch")
_LIST = ("pretty", *_SELECT, "watch", "allowWatchBookmarks", "sendInitialEvents", "timeoutSeconds")
_WRITE = ("pretty", "dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = (*_WRITE, "force")
_DELETE = ("pretty", "dryRun", "gracePeriodSeconds", "propagationPolicy")
_POST = ("pretty", "dryRun", "fieldManager")


@dataclass(frozen=True)
class _Op:
    path: str
    method: str
    action: str  # x-kubernetes-action
    op_id: str  # kube's form: verb + group + version + what
    description: str
    params: tuple[str, ...]
    kind: str  # the GVK kubectl matches: the request body's kind, as kube does
    response: str
    body: str | None = None  # the request body's schema
    codes: tuple[str, ...] = ("200",)

    @property
    def body_types(self) -> tuple[str, ...]:
        return PATCH_TYPES if self.method == "patch" else _RESPONSE_TYPES


def _ops(kind: Kind) -> list[_Op]:
    """The operations of one kind, named as kube names a CRD's (``listNamespacedApplication``)."""
    k, one, many = kind.kind, f"{_OURS}.{kind.kind}", f"{_OURS}.{kind.list_kind}"
    ns_path = f"{_PREFIX}/namespaces/{{namespace}}/{kind.plural}"
    item = f"{ns_path}/{{name}}"
    an = "an" if k[0] in "AEIOU" else "a"
    # fmt: off
    ops = [
        _Op(ns_path, "get", "list", f"listNamespaced{k}", f"List or watch {k}s.", _LIST, k, many),
        _Op(ns_path, "post", "post", f"createNamespaced{k}", f"Create {an} {k}.", _WRITE, k, one,
            body=one, codes=("200", "201", "202")),
        _Op(ns_path, "delete", "deletecollection", f"deleteCollectionNamespaced{k}",
            f"Delete every {k} that matches the selectors.", _LIST + _DELETE[1:], k, STATUS),
        _Op(item, "get", "get", f"readNamespaced{k}", f"Read {an} {k}.", _READ, k, one),
        _Op(item, "put", "put", f"replaceNamespaced{k}", f"Replace {an} {k}.", _WRITE, k, one, body=one,
            codes=("200", "201")),
        _Op(item, "patch", "patch", f"patchNamespaced{k}", f"Patch {an} {k}.", _PATCH_PARAMS, k, one,
            body=_PATCH, codes=("200", "201")),
        _Op(item, "delete", "delete", f"deleteNamespaced{k}",
            f"Delete {an} {k}; it goes once its finalizers are done.", _DELETE, k, one, codes=("200", "202")),
        _Op(f"{_PREFIX}/{kind.plural}", "get", "list", f"list{k}ForAllNamespaces",
            f"List or watch {k}s in all namespaces.", _LIST, k, many),
    ]
    if kind.status:
        ops += [
            _Op(f"{item}/status", "get", "get", f"readNamespaced{k}Status", f"Read {an} {k}'s status.", _READ,
                k, one),
            _Op(f"{item}/status", "put", "put", f"replaceNamespaced{k}Status", f"Replace {an} {k}'s status.",
                _WRITE, k, one, body=one, codes=("200", "201")),
            _Op(f"{item}/status", "patch", "patch", f"patchNamespaced{k}Status", f"Patch {an} {k}'s status.",
                _PATCH_PARAMS, k, one, body=_PATCH, codes=("200", "201")),
        ]
    if "sync" in kind.operations:
        ops.append(_Op(f"{item}/sync", "post", "post", f"createNamespaced{k}Sync",
                       f"Ask the controller to sync the {k} now; answers with the {k}.", _POST,
                       SYNC_REQUEST_KIND, one, body=SYNC_REQUEST))
    if "diff" in kind.operations:
        ops.append(_Op(f"{item}/diff", "post", "post", f"createNamespaced{k}Diff",
                       f"Ask the controller to compare the {k} with Git now (a dry-run sync with prune of "
                       f"its target revision; only resources may be set); answers with the {k}.", _POST,
                       SYNC_REQUEST_KIND, one, body=SYNC_REQUEST))
    if "rollback" in kind.operations:
        ops.append(_Op(f"{item}/rollback", "post", "post", f"createNamespaced{k}Rollback",
                       f"Ask the controller to deploy an earlier revision; answers with the {k}.",
                       _POST, ROLLBACK_REQUEST_KIND, one, body=ROLLBACK_REQUEST))
    # fmt: on
    return ops


_OPS = tuple(op for kind in KINDS for op in _ops(kind))


def _common(op: _Op) -> dict[str, Any]:
    verb, rest = re.fullmatch(r"([a-z]+)(.*)", op.op_id).groups()  # type: ignore[union-attr]
    return {
        "operationId": f"{verb}{_OP_STEM}{rest}",
        "description": op.description,
        "tags": [_TAG],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": _gvk(op.kind),
    }


def _path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _v3_param(name: str) -> Schema:
    where, kind, description = _PARAMS[name]
    param: Schema = {"name": name, "in": where, "description": description, "schema": {"type": kind}}
    if where == "path":
        param["required"] = True
    return param


def _v3_operation(op: _Op) -> Schema:
    # Every parameter sits on the operation, not the path item: kubectl looks for
    # fieldValidation among the PATCH operation's own parameters.
    result: Schema = {
        **_common(op),
        "parameters": [_v3_param(p) for p in (*_path_params(op.path), *op.params)],
    }
    if op.body:
        content = {t: {"schema": {"$ref": _v3_ref(op.body)}} for t in op.body_types}
        result["requestBody"] = {"required": True, "content": content}
    result["responses"] = {"401": {"description": "Unauthorized"}}
    for code in op.codes:
        content = {t: {"schema": {"$ref": _v3_ref(op.response)}} for t in _RESPONSE_TYPES}
        result["responses"][code] = {"description": "OK", "content": content}
    return result


def _v2_param(name: str) -> Schema:
    where, kind, description = _PARAMS[name]
    param: Schema = {"name": name, "in": where, "description": description, "type": kind, "uniqueItems": True}
    if where == "path":
        param["required"] = True
    return param


def _v2_operation(op: _Op) -> Schema:
    params = [_v2_param(p) for p in (*_path_params(op.path), *op.params)]
    if op.body:
        params.append({"name": "body", "in": "body", "required": True, "schema": {"$ref": _v2_ref(op.body)}})
    responses: Schema = {"401": {"description": "Unauthorized"}}
    responses |= {code: {"description": "OK", "schema": {"$ref": _v2_ref(op.response)}} for code in op.codes}
    return {
        **_common(op),
        # kubectl apply picks its patch type from these: no strategic merge patch, as for CRDs.
        "consumes": list(op.body_types) if op.body else ["*/*"],
        "produces": list(_RESPONSE_TYPES),
        "schemes": ["https"],
        "parameters": params,
        "responses": responses,
    }


def _render(operation: Callable[[_Op], Schema]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in _OPS:
        paths.setdefault(op.path, {})[op.method] = operation(op)
    return paths


_INFO = {"title": "driftguard", "version": VERSION}


def openapi_v3_group_version() -> dict[str, Any]:
    """The OpenAPI 3.0 document served at ``/openapi/v3/apis/gitops.driftguard.io/v1alpha1``."""
    return {
        "openapi": "3.0.0",
        "info": dict(_INFO),
        "paths": _render(_v3_operation),
        "components": {"schemas": _definitions(_v3_ref, v3=True)},
    }


def openapi_v2() -> dict[str, Any]:
    """The Swagger 2.0 document served at ``/openapi/v2``; kube-apiserver merges it into its own."""
    return {
        "swagger": "2.0",
        "info": dict(_INFO),
        "paths": _render(_v2_operation),
        "definitions": _definitions(_v2_ref, v3=False),
    }


def openapi_v3_root(hash: str) -> dict[str, Any]:
    """The ``/openapi/v3`` discovery document: where our group version's document is."""
    url = f"/openapi/v3/{GROUP_VERSION_PATH}?hash={hash}"
    return {"paths": {GROUP_VERSION_PATH: {"serverRelativeURL": url}}}


def content_hash(doc: dict[str, Any]) -> str:
    """A stable hash of a document, in kube's form (uppercase hex SHA-512 of canonical JSON);
    clients cache ``?hash=`` URLs for a long time, so it must change with the content."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha512(canonical.encode()).hexdigest().upper()
