"""Defaults, validation and unknown-field detection for Applications, as pure functions.

Every check reports every problem at once, each with its field path, in the words
kube-apiserver uses, so a 422 from us reads like one from a built-in (``checks`` has the building
blocks). Type, enum, bound, date-time and required checks come from ``APPLICATION_SCHEMA``; the
rules a schema cannot say (URLs, paths, durations, syncOptions) are written out below.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from extension.api.checks import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    FieldError,
    default,
    duration_errors,
    get,
    invalid,
    join,
    label_problems,
    metadata_errors,
    non_empty_errors,
    not_supported,
    parse_duration,
    pointer_errors,
    required,
    schema_errors,
    strings,
    subdomain_problems,
    type_name,
    unknown,
)
from extension.api.schema import (
    APPLICATION_SCHEMA,
    ROLLBACK_REQUEST_SCHEMA,
    SYNC_OPTION_VALUES,
    SYNC_REQUEST_SCHEMA,
)

__all__ = [
    "DUPLICATE", "FORBIDDEN", "INVALID", "NOT_SUPPORTED", "REQUIRED", "TOO_LONG", "FieldError",
    "apply_defaults", "parse_duration", "unknown_fields", "validate", "validate_rollback_request",
    "validate_sync_request",
]  # fmt: skip

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


def _git_path_problem(value: str) -> str | None:
    # Paths are read inside the checkout; none may reach outside it.
    if "\x00" in value or "\\" in value:
        return "must not contain NUL or backslash characters"
    if value.startswith("/"):
        return "must be relative to the repository root"
    if ".." in value.split("/"):
        return "must not contain '..'"
    return None


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
    repo = get(source, "repoURL", str)
    if repo == "":
        yield required(f"{path}.repoURL")
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
        yield invalid(
            f"{path}.repoURL",
            repo,
            "must be a Git URL: https://, http://, ssh://, git://, file:// or user@host:path",
        )
    source_path = get(source, "path", str)
    if source_path is not None and (problem := _git_path_problem(source_path)):
        yield invalid(f"{path}.path", source_path, problem)
    revision = get(source, "targetRevision", str)
    if revision is not None and (problem := _revision_problem(revision)):
        yield invalid(f"{path}.targetRevision", revision, problem)
    set_tools = [tool for tool in ("directory", "kustomize", "helm") if get(source, tool, dict) is not None]
    for tool in set_tools[1:]:
        yield FieldError(f"{path}.{tool}", FORBIDDEN, f"may not be set together with {path}.{set_tools[0]}")
    kustomize_namespace = get(get(source, "kustomize", dict), "namespace", str)
    for problem in label_problems(kustomize_namespace) if kustomize_namespace else ():
        yield invalid(f"{path}.kustomize.namespace", kustomize_namespace, problem)
    yield from _helm_errors(get(source, "helm", dict), f"{path}.helm")


def _revision_problem(revision: str) -> str | None:
    if not revision:
        return "must not be empty"
    if any(c.isspace() for c in revision):
        return "must not contain whitespace"
    if revision.startswith("-"):
        return "must not start with '-'"  # git would read it as an option
    return None


def _helm_errors(helm: dict[str, Any] | None, path: str) -> Iterator[FieldError]:
    for item_path, value_file in strings(helm, "valueFiles", path):
        problem = _git_path_problem(value_file) if value_file else "must not be empty"
        if problem:
            yield invalid(item_path, value_file, problem)
    seen: set[str] = set()
    for index, parameter in enumerate(get(helm, "parameters", list) or ()):
        name = get(parameter, "name", str)
        if name == "":
            yield required(f"{path}.parameters[{index}].name")
        elif name is not None and name in seen:
            yield FieldError(f"{path}.parameters[{index}].name", DUPLICATE, "", name)
        seen.add(name or "")
    release = get(helm, "releaseName", str)
    for problem in subdomain_problems(release, 53) if release else ():
        yield invalid(f"{path}.releaseName", release, problem)


def _destination_errors(destination: object, path: str) -> Iterator[FieldError]:
    namespace = get(destination, "namespace", str)
    for problem in label_problems(namespace) if namespace else ():
        yield invalid(f"{path}.namespace", namespace, problem)
    server = get(destination, "server", str)
    if server and server.rstrip("/") != IN_CLUSTER_SERVER:
        yield invalid(
            f"{path}.server",
            server,
            f"only the cluster driftguard runs in is supported: leave it empty or set {IN_CLUSTER_SERVER}",
        )
    name = get(destination, "name", str)
    if name and name != IN_CLUSTER_NAME:
        yield invalid(
            f"{path}.name",
            name,
            f"only the cluster driftguard runs in is supported: leave it empty or set {IN_CLUSTER_NAME!r}",
        )
    elif name and server:
        yield FieldError(f"{path}.name", FORBIDDEN, f"may not be set together with {path}.server")


def _sync_policy_errors(policy: object, path: str) -> Iterator[FieldError]:
    seen: set[str] = set()
    options: set[str] = set()  # an option repeated as it is: the schema's set type reports it
    for item_path, option in strings(policy, "syncOptions", path):
        key, sep, value = option.partition("=")
        if not sep:
            yield invalid(item_path, option, 'must be Key=Value, e.g. "CreateNamespace=true"')
        elif key not in SYNC_OPTION_VALUES:
            yield not_supported(item_path, key, sorted(SYNC_OPTION_VALUES))
        elif value not in SYNC_OPTION_VALUES[key]:
            yield not_supported(item_path, option, (f"{key}={v}" for v in SYNC_OPTION_VALUES[key]))
        elif key in seen and option not in options:
            yield FieldError(item_path, DUPLICATE, "", option)
        seen.add(key)
        options.add(option)
    backoff = get(get(policy, "retry", dict), "backoff", dict)
    for key in ("duration", "maxDuration"):
        yield from duration_errors(backoff, key, f"{path}.retry.backoff")


def _drift_guard_errors(guard: object, path: str) -> Iterator[FieldError]:
    allow = get(guard, "allow", dict)
    for key in ("users", "groups", "kinds"):
        yield from non_empty_errors(allow, key, f"{path}.allow")
    for item_path, account in strings(allow, "serviceAccounts", f"{path}.allow"):
        # As kube names them in usernames too: system:serviceaccount:<namespace>:<name>.
        namespace, sep, name = account.removeprefix("system:serviceaccount:").partition(":")
        if not sep or label_problems(namespace) or subdomain_problems(name):
            yield invalid(
                item_path,
                account,
                "must be 'namespace:name' or 'system:serviceaccount:namespace:name', "
                "e.g. 'monitoring:prometheus-operator'",
            )
    yield from pointer_errors(allow, "jsonPointers", f"{path}.allow")
    break_glass = get(guard, "breakGlass", dict)
    yield from non_empty_errors(break_glass, "groups", f"{path}.breakGlass")
    yield from duration_errors(break_glass, "maxDuration", f"{path}.breakGlass", positive=True)


def _spec_errors(spec: object) -> Iterator[FieldError]:
    yield from _source_errors(get(spec, "source", dict), "spec.source")
    yield from _destination_errors(get(spec, "destination", dict), "spec.destination")
    project = get(spec, "project", str)
    for problem in subdomain_problems(project) if project is not None else ():
        yield invalid("spec.project", project, problem)
    yield from _sync_policy_errors(get(spec, "syncPolicy", dict), "spec.syncPolicy")
    for index, entry in enumerate(get(spec, "ignoreDifferences", list) or ()):
        entry_path = f"spec.ignoreDifferences[{index}]"
        if get(entry, "kind", str) == "":
            yield required(f"{entry_path}.kind")
        yield from pointer_errors(entry, "jsonPointers", entry_path)
    yield from _drift_guard_errors(get(spec, "driftGuard", dict), "spec.driftGuard")


def _sync_errors(sync: object, path: str) -> Iterator[FieldError]:
    revision = get(sync, "revision", str)
    if revision and (problem := _revision_problem(revision)):
        yield invalid(join(path, "revision"), revision, problem)
    for index, resource in enumerate(get(sync, "resources", list) or ()):
        for key in ("kind", "name"):
            if get(resource, key, str) == "":
                yield required(f"{join(path, 'resources')}[{index}].{key}")


def _operation_errors(operation: object, path: str) -> Iterator[FieldError]:
    if not isinstance(operation, dict):
        return
    chosen = [key for key in ("sync", "rollback") if operation.get(key) is not None]
    if not chosen:
        yield required(f"{path}.sync", "an operation needs sync or rollback")
    elif len(chosen) == 2:
        yield FieldError(f"{path}.rollback", FORBIDDEN, f"may not be set together with {path}.sync")
    yield from _sync_errors(get(operation, "sync", dict), f"{path}.sync")


# --- the public functions ----------------------------------------------------------------------
def apply_defaults(app: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``app`` with the schema's defaults filled in where a field is absent or null:
    project ``default``, revisionHistoryLimit 10, driftGuard.mode ``enforce``, source path ``.``
    and targetRevision ``HEAD``, and Argo CD's retry defaults when retry is set."""
    result = copy.deepcopy(app)
    default(APPLICATION_SCHEMA, result)
    return result


def validate(app: dict[str, Any], *, for_create: bool = False) -> list[FieldError]:
    """Every problem with ``app``. ``for_create`` lets metadata.generateName stand in for a name."""
    if not isinstance(app, dict):
        return [invalid("<root>", type_name(app), "must be of type object")]
    errors = list(metadata_errors(app.get("metadata"), for_create))
    errors += schema_errors(APPLICATION_SCHEMA, app, "")
    errors += _spec_errors(app.get("spec"))
    errors += _operation_errors(app.get("operation"), "operation")
    operation_state = get(app.get("status"), "operationState", dict)
    errors += _operation_errors(get(operation_state, "operation", dict), "status.operationState.operation")
    return errors


def validate_sync_request(body: object) -> list[FieldError]:
    """Problems with a POST body for the ``sync`` subresource; paths are relative to the body."""
    if not isinstance(body, dict):
        return [invalid("<root>", type_name(body), "must be of type object")]
    return [*schema_errors(SYNC_REQUEST_SCHEMA, body, ""), *_sync_errors(body, "")]


def validate_rollback_request(body: object) -> list[FieldError]:
    """Problems with a POST body for the ``rollback`` subresource; paths are relative to the body."""
    if not isinstance(body, dict):
        return [invalid("<root>", type_name(body), "must be of type object")]
    return list(schema_errors(ROLLBACK_REQUEST_SCHEMA, body, ""))


# metadata is ObjectMeta and apiVersion/kind are the server's; neither is ours to check here.
_NOT_OURS = frozenset({"apiVersion", "kind", "metadata"})


def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """Paths of fields the schema does not know, e.g. ``spec.source.repoUrl``, for kube's
    ``fieldValidation`` (reported as ``unknown field "spec.source.repoUrl"``)."""
    if not isinstance(obj, dict):
        return []
    ours = {key: value for key, value in obj.items() if key not in _NOT_OURS}
    return list(unknown(APPLICATION_SCHEMA, ours, ""))
