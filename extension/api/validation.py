"""Defaults, validation and unknown-field detection for Applications, as pure functions.

Every check reports every problem at once, each with its field path, in the words
kube-apiserver uses, so a 422 from us reads like one from a built-in. The functions take any
JSON value and never raise: a string where an object belongs is a FieldError, not a crash.
Type, enum, bound, date-time and required checks come from ``APPLICATION_SCHEMA``; the rules a
schema cannot say (URLs, paths, durations, syncOptions) are written out below. A null is
treated as absent, as kube-apiserver prunes nulls from a CRD's non-nullable fields.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from extension.api.schema import (
    APPLICATION_SCHEMA,
    ROLLBACK_REQUEST_SCHEMA,
    SYNC_OPTION_VALUES,
    SYNC_REQUEST_SCHEMA,
    Schema,
)

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
FORBIDDEN = "FieldValueForbidden"

# What kube-apiserver prints for each reason (k8s.io/apimachinery/pkg/util/validation/field).
_REASON_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    TOO_LONG: "Too long",
    FORBIDDEN: "Forbidden",
}
# Reasons whose text never shows the bad value, as in kube.
_VALUELESS = {REQUIRED, TOO_LONG, FORBIDDEN}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: a metav1.StatusCause once serialized."""

    path: str
    type: str
    message: str
    value: object = None

    def body(self) -> str:
        """The text after the path, e.g. ``Unsupported value: "block": supported values: ...``."""
        text = _REASON_TEXT.get(self.type, self.type)
        if self.type not in _VALUELESS:
            text += f": {_go_value(self.value)}"
        return f"{text}: {self.message}" if self.message else text

    def detail(self) -> str:
        """The line kube-apiserver prints, e.g. ``spec.source.repoURL: Required value``."""
        return f"{self.path}: {self.body()}"

    def cause(self) -> dict[str, str]:
        """As a metav1.StatusCause for a 422 Invalid Status's ``details.causes``."""
        return {"reason": self.type, "message": self.body(), "field": self.path}


def _go_value(value: object) -> str:
    # Go prints numbers and booleans bare, strings quoted, and other values as data.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, default=repr)


def _required(path: str, message: str = "") -> FieldError:
    return FieldError(path, REQUIRED, message)


def _invalid(path: str, value: object, message: str) -> FieldError:
    return FieldError(path, INVALID, message, value)


def _not_supported(path: str, value: object, supported: Iterable[str]) -> FieldError:
    return FieldError(
        path, NOT_SUPPORTED, "supported values: " + ", ".join(f'"{s}"' for s in supported), value
    )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- the schema walk: types, enums, bounds, required fields, defaults, unknown fields ----------
_JSON_TYPES: dict[str, type] = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    for name, python_type in _JSON_TYPES.items():
        if isinstance(value, python_type):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


def _has_type(node: Schema, value: object) -> bool:
    wanted: str | None = node.get("type")
    if wanted not in _JSON_TYPES:
        return True
    # bool is an int in Python, never in JSON.
    return _type_name(value) == wanted


def _schema_errors(node: Schema, value: object, path: str) -> Iterator[FieldError]:
    if not _has_type(node, value):
        # Like kube, show the JSON type rather than the value, which may be a large object.
        yield _invalid(path, _type_name(value), f"must be of type {node['type']}")
        return
    if "enum" in node and value not in node["enum"]:
        yield _not_supported(path, value, node["enum"])
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            yield _invalid(path, value, f"must be greater than or equal to {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            yield _invalid(path, value, f"must be less than or equal to {node['maximum']}")
    if node.get("format") == "date-time" and isinstance(value, str) and not _is_time(value):
        yield _invalid(path, value, "must be an RFC 3339 time, e.g. 2024-01-31T12:00:00Z")
    if isinstance(value, list):
        for index, item in enumerate(value):
            if item is not None:
                yield from _schema_errors(node.get("items", {}), item, f"{path}[{index}]")
    if isinstance(value, dict):
        for key in node.get("required", ()):
            if value.get(key) is None:
                yield _required(_join(path, key))
        properties, values = node.get("properties", {}), node.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, values if isinstance(values, dict) else None)
            if sub is not None and item is not None:
                child = _join(path, key) if key in properties else f"{path}[{key}]"
                yield from _schema_errors(sub, item, child)


def _unknown(node: Schema, value: object, path: str) -> Iterator[str]:
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            yield from _unknown(node["items"], item, f"{path}[{index}]")
    if not isinstance(value, dict) or node.get("type") != "object":
        return
    properties, values = node.get("properties"), node.get("additionalProperties")
    if properties is None and values is None:
        return  # an open object, like metadata
    for key, item in value.items():
        if properties and key in properties:
            yield from _unknown(properties[key], item, _join(path, key))
        elif isinstance(values, dict):
            yield from _unknown(values, item, f"{path}[{key}]")
        else:
            yield _join(path, str(key))


def _default(node: Schema, value: object) -> None:
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _default(node["items"], item)
    if not isinstance(value, dict):
        return
    # As for a CRD, a default applies when the parent object exists; a default of {} lets the
    # defaults below it apply too (driftGuard.mode, retry.backoff.*).
    for key, sub in node.get("properties", {}).items():
        if "default" in sub and value.get(key) is None:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            _default(sub, value[key])


# --- names, paths, URLs, durations, times ------------------------------------------------------
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_LABEL}')"
)
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    f"is '{_SUBDOMAIN}')"
)

# No scheme, user or host may start with '-': git would read such a URL as an option.
_GIT_URL_RE = re.compile(
    r"(?:https?|ssh|git)://[^\s/?#\-][^\s/?#]*(?:[/?#]\S*)?"
    r"|file://[^\s/]*/\S+"
    r"|[\w.~+][\w.~+\-]*@[\w.\-]+:(?!//)\S+",
    re.ASCII,
)
# The one destination there is until destinations in other clusters exist (Argo CD's names for it).
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
_GO_DURATION_RE = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+|0")
_GO_DURATION_PART_RE = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_JSON_POINTER_RE = re.compile(r"(/([^/~]|~[01])*)+")


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _name_problems(value: str, pattern: re.Pattern[str], message: str, max_length: int) -> list[str]:
    problems = []
    if len(value) > max_length:
        problems.append(f"must be no more than {max_length} characters")
    if not pattern.fullmatch(value):
        problems.append(message)
    return problems


def subdomain_problems(value: str, max_length: int = 253) -> list[str]:
    """Why ``value`` is not a DNS-1123 subdomain, in kube's words; empty when it is one."""
    return _name_problems(value, _SUBDOMAIN_RE, _SUBDOMAIN_MESSAGE, max_length)


def label_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 label (a namespace name), in kube's words."""
    return _name_problems(value, _LABEL_RE, _LABEL_MESSAGE, 63)


def parse_duration(value: str) -> float | None:
    """Seconds in a Go duration such as ``5s``, ``3m`` or ``1h30m``; None when it is not one."""
    if not _GO_DURATION_RE.fullmatch(value):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _GO_DURATION_PART_RE.findall(value))


def _is_time(value: str) -> bool:
    if not _TIME_RE.fullmatch(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


def _git_path_problem(value: str) -> str | None:
    # Paths are read inside the checkout; none may reach outside it.
    if "\x00" in value or "\\" in value:
        return "must not contain NUL or backslash characters"
    if value.startswith("/"):
        return "must be relative to the repository root"
    if ".." in value.split("/"):
        return "must not contain '..'"
    return None


# --- the rules a schema cannot say ----------------------------------------------------------
def _get(obj: object, key: str, kind: type) -> Any:
    """``obj[key]`` when obj is an object and the value has the given type, else None (the
    schema walk has already reported a wrong type)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def _strings(obj: object, key: str, path: str) -> Iterator[tuple[str, str]]:
    for index, item in enumerate(_get(obj, key, list) or ()):
        if isinstance(item, str):
            yield f"{path}.{key}[{index}]", item


def _metadata_errors(meta: object, for_create: bool) -> Iterator[FieldError]:
    name, generate = _get(meta, "name", str), _get(meta, "generateName", str)
    if meta is not None and not isinstance(meta, dict):
        return  # reported by the schema walk
    if generate and for_create:
        # kube checks the prefix with a trailing '-' masked, since the suffix follows it.
        masked = generate[:-1] + "a" if len(generate) > 1 and generate.endswith("-") else generate
        for problem in subdomain_problems(masked):
            yield _invalid("metadata.generateName", generate, problem)
    if not name:
        if not (generate and for_create):
            value = meta.get("name") if isinstance(meta, dict) else None
            if value is None or value == "":
                yield _required("metadata.name", "name or generateName is required")
            else:
                yield _invalid("metadata.name", _type_name(value), "must be of type string")
    else:
        for problem in subdomain_problems(name):
            yield _invalid("metadata.name", name, problem)
    namespace = _get(meta, "namespace", str)
    for problem in label_problems(namespace) if namespace else ():
        yield _invalid("metadata.namespace", namespace, problem)
    # ObjectMeta's shapes, which selectors, finalizer handling and kubectl rely on.
    for key in ("labels", "annotations"):
        value = meta.get(key) if isinstance(meta, dict) else None
        if value is None:
            continue
        if not isinstance(value, dict):
            yield _invalid(f"metadata.{key}", _type_name(value), "must be of type object")
            continue
        for k, v in value.items():
            if not isinstance(v, str):
                yield _invalid(f"metadata.{key}.{k}", _type_name(v), "must be of type string")
            elif key == "labels" and v:
                for problem in _name_problems(v, _LABEL_VALUE, "a valid label value", 63):
                    yield _invalid(f"metadata.labels.{k}", v, problem)
    finalizers = meta.get("finalizers") if isinstance(meta, dict) else None
    if finalizers is not None:
        if not isinstance(finalizers, list):
            yield _invalid("metadata.finalizers", _type_name(finalizers), "must be of type array")
        else:
            for index, item in enumerate(finalizers):
                if not isinstance(item, str) or not item:
                    yield _invalid(f"metadata.finalizers[{index}]", item, "must be a non-empty string")


def _carries_credentials(url: str) -> bool:
    """Whether a URL holds what may be a secret: any user info in http(s):// and git:// URLs (a
    token often stands alone as the user name), a password in ssh:// ones. ``git@host:path`` and
    ``ssh://git@host/...`` name a login, not a secret."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return False
    userinfo, at, _ = rest.split("/", 1)[0].rpartition("@")
    if not at:
        return False
    return scheme.lower() != "ssh" or ":" in userinfo


def _source_errors(source: object, path: str) -> Iterator[FieldError]:
    repo = _get(source, "repoURL", str)
    if repo == "":
        yield _required(f"{path}.repoURL")
    elif repo is not None and _carries_credentials(repo):
        # FORBIDDEN shows no value: the message must not echo the token back.
        yield FieldError(
            f"{path}.repoURL",
            FORBIDDEN,
            "must not carry credentials (user:password@ or token@): put them in a repository "
            "credential Secret in driftguard-system, labelled gitops.driftguard.io/secret-type=repository "
            "(README, 'Repository credentials')",
        )
    elif repo is not None and not _GIT_URL_RE.fullmatch(repo):
        yield _invalid(
            f"{path}.repoURL",
            repo,
            "must be a Git URL: https://, http://, ssh://, git://, file:// or user@host:path",
        )
    source_path = _get(source, "path", str)
    if source_path is not None and (problem := _git_path_problem(source_path)):
        yield _invalid(f"{path}.path", source_path, problem)
    revision = _get(source, "targetRevision", str)
    if revision is not None and (problem := _revision_problem(revision)):
        yield _invalid(f"{path}.targetRevision", revision, problem)
    set_tools = [tool for tool in ("directory", "kustomize", "helm") if _get(source, tool, dict) is not None]
    for tool in set_tools[1:]:
        yield FieldError(f"{path}.{tool}", FORBIDDEN, f"may not be set together with {path}.{set_tools[0]}")
    kustomize_namespace = _get(_get(source, "kustomize", dict), "namespace", str)
    for problem in label_problems(kustomize_namespace) if kustomize_namespace else ():
        yield _invalid(f"{path}.kustomize.namespace", kustomize_namespace, problem)
    yield from _helm_errors(_get(source, "helm", dict), f"{path}.helm")


def _revision_problem(revision: str) -> str | None:
    if not revision:
        return "must not be empty"
    if any(c.isspace() for c in revision):
        return "must not contain whitespace"
    if revision.startswith("-"):
        return "must not start with '-'"  # git would read it as an option
    return None


def _helm_errors(helm: dict[str, Any] | None, path: str) -> Iterator[FieldError]:
    for item_path, value_file in _strings(helm, "valueFiles", path):
        problem = _git_path_problem(value_file) if value_file else "must not be empty"
        if problem:
            yield _invalid(item_path, value_file, problem)
    seen: set[str] = set()
    for index, parameter in enumerate(_get(helm, "parameters", list) or ()):
        name = _get(parameter, "name", str)
        if name == "":
            yield _required(f"{path}.parameters[{index}].name")
        elif name is not None and name in seen:
            yield FieldError(f"{path}.parameters[{index}].name", DUPLICATE, "", name)
        seen.add(name or "")
    release = _get(helm, "releaseName", str)
    for problem in subdomain_problems(release, 53) if release else ():
        yield _invalid(f"{path}.releaseName", release, problem)


def _destination_errors(destination: object, path: str) -> Iterator[FieldError]:
    namespace = _get(destination, "namespace", str)
    for problem in label_problems(namespace) if namespace else ():
        yield _invalid(f"{path}.namespace", namespace, problem)
    server = _get(destination, "server", str)
    if server and server.rstrip("/") != IN_CLUSTER_SERVER:
        yield _invalid(
            f"{path}.server",
            server,
            f"only the cluster driftguard runs in is supported: leave it empty or set {IN_CLUSTER_SERVER}",
        )
    name = _get(destination, "name", str)
    if name and name != IN_CLUSTER_NAME:
        yield _invalid(
            f"{path}.name",
            name,
            f"only the cluster driftguard runs in is supported: leave it empty or set {IN_CLUSTER_NAME!r}",
        )
    elif name and server:
        yield FieldError(f"{path}.name", FORBIDDEN, f"may not be set together with {path}.server")


def _sync_policy_errors(policy: object, path: str) -> Iterator[FieldError]:
    seen: set[str] = set()
    for item_path, option in _strings(policy, "syncOptions", path):
        key, sep, value = option.partition("=")
        if not sep:
            yield _invalid(item_path, option, 'must be Key=Value, e.g. "CreateNamespace=true"')
        elif key not in SYNC_OPTION_VALUES:
            yield _not_supported(item_path, key, sorted(SYNC_OPTION_VALUES))
        elif value not in SYNC_OPTION_VALUES[key]:
            yield _not_supported(item_path, option, (f"{key}={v}" for v in SYNC_OPTION_VALUES[key]))
        elif key in seen:
            yield FieldError(item_path, DUPLICATE, "", option)
        seen.add(key)
    backoff = _get(_get(policy, "retry", dict), "backoff", dict)
    for key in ("duration", "maxDuration"):
        yield from _duration_errors(backoff, key, f"{path}.retry.backoff")


def _duration_errors(obj: object, key: str, path: str, *, positive: bool = False) -> Iterator[FieldError]:
    value = _get(obj, key, str)
    if value is None:
        return
    seconds = parse_duration(value)
    if seconds is None:
        yield _invalid(f"{path}.{key}", value, "must be a duration such as '30s', '5m' or '1h30m'")
    elif positive and seconds <= 0:
        yield _invalid(f"{path}.{key}", value, "must be longer than 0s")


def _pointer_errors(obj: object, key: str, path: str) -> Iterator[FieldError]:
    for item_path, pointer in _strings(obj, key, path):
        if not _JSON_POINTER_RE.fullmatch(pointer):
            yield _invalid(
                item_path, pointer, "must be a JSON pointer (RFC 6901) starting with '/', e.g. /spec/replicas"
            )


def _non_empty_errors(obj: object, key: str, path: str) -> Iterator[FieldError]:
    for item_path, value in _strings(obj, key, path):
        if not value:
            yield _invalid(item_path, value, "must not be empty")


def _drift_guard_errors(guard: object, path: str) -> Iterator[FieldError]:
    allow = _get(guard, "allow", dict)
    for key in ("users", "groups", "kinds"):
        yield from _non_empty_errors(allow, key, f"{path}.allow")
    for item_path, account in _strings(allow, "serviceAccounts", f"{path}.allow"):
        # As kube names them in usernames too: system:serviceaccount:<namespace>:<name>.
        namespace, sep, name = account.removeprefix("system:serviceaccount:").partition(":")
        if not sep or label_problems(namespace) or subdomain_problems(name):
            yield _invalid(
                item_path,
                account,
                "must be 'namespace:name' or 'system:serviceaccount:namespace:name', "
                "e.g. 'monitoring:prometheus-operator'",
            )
    yield from _pointer_errors(allow, "jsonPointers", f"{path}.allow")
    break_glass = _get(guard, "breakGlass", dict)
    yield from _non_empty_errors(break_glass, "groups", f"{path}.breakGlass")
    yield from _duration_errors(break_glass, "maxDuration", f"{path}.breakGlass", positive=True)


def _spec_errors(spec: object) -> Iterator[FieldError]:
    yield from _source_errors(_get(spec, "source", dict), "spec.source")
    yield from _destination_errors(_get(spec, "destination", dict), "spec.destination")
    project = _get(spec, "project", str)
    for problem in subdomain_problems(project) if project is not None else ():
        yield _invalid("spec.project", project, problem)
    yield from _sync_policy_errors(_get(spec, "syncPolicy", dict), "spec.syncPolicy")
    for index, entry in enumerate(_get(spec, "ignoreDifferences", list) or ()):
        entry_path = f"spec.ignoreDifferences[{index}]"
        if _get(entry, "kind", str) == "":
            yield _required(f"{entry_path}.kind")
        yield from _pointer_errors(entry, "jsonPointers", entry_path)
    yield from _drift_guard_errors(_get(spec, "driftGuard", dict), "spec.driftGuard")


def _sync_errors(sync: object, path: str) -> Iterator[FieldError]:
    revision = _get(sync, "revision", str)
    if revision and (problem := _revision_problem(revision)):
        yield _invalid(_join(path, "revision"), revision, problem)
    for index, resource in enumerate(_get(sync, "resources", list) or ()):
        for key in ("kind", "name"):
            if _get(resource, key, str) == "":
                yield _required(f"{_join(path, 'resources')}[{index}].{key}")


def _operation_errors(operation: object, path: str) -> Iterator[FieldError]:
    if not isinstance(operation, dict):
        return
    chosen = [key for key in ("sync", "rollback") if operation.get(key) is not None]
    if not chosen:
        yield _required(f"{path}.sync", "an operation needs sync or rollback")
    elif len(chosen) == 2:
        yield FieldError(f"{path}.rollback", FORBIDDEN, f"may not be set together with {path}.sync")
    yield from _sync_errors(_get(operation, "sync", dict), f"{path}.sync")


# --- the public functions ----------------------------------------------------------------------
def apply_defaults(app: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``app`` with the schema's defaults filled in where a field is absent or null:
    project ``default``, revisionHistoryLimit 10, driftGuard.mode ``enforce``, source path ``.``
    and targetRevision ``HEAD``, and Argo CD's retry defaults when retry is set."""
    result = copy.deepcopy(app)
    _default(APPLICATION_SCHEMA, result)
    return result


def validate(app: dict[str, Any], *, for_create: bool = False) -> list[FieldError]:
    """Every problem with ``app``. ``for_create`` lets metadata.generateName stand in for a name."""
    if not isinstance(app, dict):
        return [_invalid("<root>", _type_name(app), "must be of type object")]
    errors = list(_metadata_errors(app.get("metadata"), for_create))
    errors += _schema_errors(APPLICATION_SCHEMA, app, "")
    errors += _spec_errors(app.get("spec"))
    errors += _operation_errors(app.get("operation"), "operation")
    operation_state = _get(app.get("status"), "operationState", dict)
    errors += _operation_errors(_get(operation_state, "operation", dict), "status.operationState.operation")
    return errors


def validate_sync_request(body: object) -> list[FieldError]:
    """Problems with a POST body for the ``sync`` subresource; paths are relative to the body."""
    if not isinstance(body, dict):
        return [_invalid("<root>", _type_name(body), "must be of type object")]
    return [*_schema_errors(SYNC_REQUEST_SCHEMA, body, ""), *_sync_errors(body, "")]


def validate_rollback_request(body: object) -> list[FieldError]:
    """Problems with a POST body for the ``rollback`` subresource; paths are relative to the body."""
    if not isinstance(body, dict):
        return [_invalid("<root>", _type_name(body), "must be of type object")]
    return list(_schema_errors(ROLLBACK_REQUEST_SCHEMA, body, ""))


# metadata is ObjectMeta and apiVersion/kind are the server's; neither is ours to check here.
_NOT_OURS = frozenset({"apiVersion", "kind", "metadata"})


def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """Paths of fields the schema does not know, e.g. ``spec.source.repoUrl``, for kube's
    ``fieldValidation`` (reported as ``unknown field "spec.source.repoUrl"``)."""
    if not isinstance(obj, dict):
        return []
    ours = {key: value for key, value in obj.items() if key not in _NOT_OURS}
    return list(_unknown(APPLICATION_SCHEMA, ours, ""))
