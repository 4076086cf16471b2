"""The AppProject resource: its schema and validation, as plain data and pure functions.

Argo CD's field names for the common subset, so that a project reads like Argo CD's. What the
fields allow is decided in ``projects``; here only their shapes are checked. Projects live in
driftguard-system, which only cluster admins write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from extension.api.checks import (
    FieldError,
    default,
    get,
    invalid,
    label_problems,
    metadata_errors,
    non_empty_errors,
    required,
    schema_errors,
    subdomain_problems,
    unknown,
)
from extension.api.schema import API_VERSION, Schema
from extension.api.schema import _array as array
from extension.api.schema import _object as object_
from extension.api.schema import _string as string
from extension.api.schema import _strings as string_list

PROJECT_KIND = "AppProject"
PROJECT_PLURAL = "appprojects"
PROJECT_SINGULAR = "appproject"
# Argo CD's CRD takes appproj/appprojs; these cannot clash with it.
PROJECT_SHORT_NAMES = ["dgproj", "dgprojs"]


def _group_kinds(description: str) -> Schema:
    return array(
        description,
        object_(
            "A kind, by API group and kind; both are globs ('*' for any).",
            {
                "group": string("The API group, '' for the core group, '*' for any."),
                "kind": string("The kind, e.g. 'Deployment', or '*' for any."),
            },
            required=["kind"],
        ),
    )


PROJECT_SCHEMA: Schema = object_(
    "An AppProject bounds the Applications that use it: whose namespaces may use it, which "
    "repositories they deploy from, where, which kinds, and as which ServiceAccount.",
    {
        "apiVersion": string(f"Always '{API_VERSION}'."),
        "kind": string(f"Always '{PROJECT_KIND}'."),
        "metadata": {"type": "object"},
        "spec": object_(
            "What the project allows.",
            {
                "description": string("What the project is for."),
                "sourceNamespaces": string_list(
                    "The namespaces whose Applications may use this project (globs). Applications in "
                    "driftguard-system may use any project.",
                    "A namespace or a glob such as 'team-a-*'.",
                ),
                "sourceRepos": string_list(
                    "The repositories Applications may deploy from (globs; a leading '!' denies).",
                    "A URL or a glob such as 'https://git.example/team-a/*'; '*' allows every repository.",
                ),
                "destinations": array(
                    "Where Applications may deploy: every rendered namespaced object's namespace too.",
                    object_(
                        "A destination; each field is a glob, and a leading '!' denies.",
                        {
                            "server": string("The API server's URL, e.g. 'https://kubernetes.default.svc'."),
                            "name": string("The cluster's name, e.g. 'in-cluster'."),
                            "namespace": string("The namespace, e.g. 'team-a' or 'team-a-*'."),
                        },
                    ),
                ),
                "clusterResourceWhitelist": _group_kinds(
                    "The cluster-scoped kinds Applications may deploy; none when empty."
                ),
                "clusterResourceBlacklist": _group_kinds("Cluster-scoped kinds Applications may not deploy."),
                "namespaceResourceWhitelist": _group_kinds(
                    "The namespaced kinds Applications may deploy; all when empty."
                ),
                "namespaceResourceBlacklist": _group_kinds("Namespaced kinds Applications may not deploy."),
                "destinationServiceAccounts": array(
                    "The ServiceAccount the controller impersonates for every read, dry run, apply and "
                    "prune of an Application, by destination: the first entry that matches wins.",
                    object_(
                        "A destination (globs) and the ServiceAccount to act as there.",
                        {
                            "server": string("The API server's URL (a glob)."),
                            "namespace": string("The destination namespace (a glob)."),
                            "defaultServiceAccount": string(
                                "A ServiceAccount name in the destination namespace, or 'namespace:name'."
                            ),
                        },
                        required=["defaultServiceAccount"],
                    ),
                ),
            },
            default={},
        ),
    },
)


def _spec_errors(spec: object) -> Iterator[FieldError]:
    path = "spec"
    for key in ("sourceNamespaces", "sourceRepos"):
        yield from non_empty_errors(spec, key, path)
    for index, entry in enumerate(get(spec, "destinations", list) or ()):
        where = f"{path}.destinations[{index}]"
        if isinstance(entry, dict) and not (entry.get("server") or entry.get("name")):
            yield required(f"{where}.server", "a destination needs a server or a name ('*' for any)")
        if isinstance(entry, dict) and not entry.get("namespace"):
            yield required(f"{where}.namespace", "'*' allows every namespace")
    for index, entry in enumerate(get(spec, "destinationServiceAccounts", list) or ()):
        account = get(entry, "defaultServiceAccount", str)
        if not account:
            continue
        namespace, sep, name = account.rpartition(":")
        problems = (label_problems(namespace) if sep else []) + subdomain_problems(name)
        if problems:
            yield invalid(
                f"{path}.destinationServiceAccounts[{index}].defaultServiceAccount",
                account,
                "must be a ServiceAccount name, or 'namespace:name', e.g. 'deployer' or 'team-a:deployer'",
            )


def validate_project(project: dict[str, Any], *, for_create: bool = False) -> list[FieldError]:
    """Every problem with ``project``."""
    if not isinstance(project, dict):
        return [invalid("<root>", type(project).__name__, "must be of type object")]
    errors = list(metadata_errors(project.get("metadata"), for_create))
    errors += schema_errors(PROJECT_SCHEMA, project, "")
    errors += _spec_errors(project.get("spec"))
    return errors


def project_defaults(project: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(project)
    default(PROJECT_SCHEMA, result)
    return result


def project_unknown_fields(project: dict[str, Any]) -> list[str]:
    if not isinstance(project, dict):
        return []
    ours = {k: v for k, v in project.items() if k not in ("apiVersion", "kind", "metadata")}
    return list(unknown(PROJECT_SCHEMA, ours, ""))
