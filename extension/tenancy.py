"""Projects at write time: an Application may be written only as its project allows, and the
project ``default`` exists. The rules are ``extension.api.projects``; here they meet the storage.
A ``file://`` source is refused unless the operator allows local repositories.

An Application write that changes the spec is judged against the project it names, read from
storage and kept for PROJECT_SECONDS (creating a thousand Applications reads each project once a
second or so, not a thousand times): a project changed in the last moments may be judged as it
was, and the controller, which watches projects, judges every sync again anyway. A missing
project, a project its namespace may not use, a repository or destination the project does not
allow: 403 Forbidden, naming the project and the rule. Status and operation writes, and
metadata-only writes (a finalizer removed), are not judged again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from extension.api import errors
from extension.api.kinds import APPLICATIONS
from extension.api.projects import (
    DEFAULT_PROJECT,
    INSTALL_NAMESPACE,
    application_refusals,
    is_local_url,
    local_refused,
)
from extension.resources import Policy, Resources, WriteOptions

log = logging.getLogger(__name__)

PROJECT_SECONDS = 2.0
MAX_PROJECTS_KEPT = 256

# The project Argo CD makes for itself, and with the same rules: it allows everything, and only
# Applications in the install namespace (which only cluster admins write) may use it.
DEFAULT_PROJECT_OBJECT: dict[str, Any] = {
    "apiVersion": APPLICATIONS.api_version,
    "kind": "AppProject",
    "metadata": {"name": DEFAULT_PROJECT},
    "spec": {
        "description": "Anything, for Applications in driftguard-system only",
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
    },
}


def application_policy(
    projects: Resources, *, allow_local: bool = False, clock: Callable[[], float] = time.monotonic
) -> Policy:
    kept: dict[str, tuple[dict[str, Any] | None, float]] = {}
    lock = threading.Lock()

    def project(name: str) -> dict[str, Any] | None:
        with lock:
            found = kept.get(name)
        if found is not None and clock() - found[1] < PROJECT_SECONDS:
            return found[0]
        try:
            read: dict[str, Any] | None = projects.get(INSTALL_NAMESPACE, name)
        except errors.APIError as exc:
            if exc.code != 404:
                raise
            read = None
        with lock:
            if len(kept) >= MAX_PROJECTS_KEPT:  # names of projects that do not exist, say
                kept.clear()
            kept[name] = (read, clock())
        return read

    def judge(app: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = app.get("spec") or {}
        meta = app["metadata"]
        repo = str((spec.get("source") or {}).get("repoURL") or "")
        if is_local_url(repo) and not allow_local:
            cause = {"reason": "FieldValueForbidden", "field": "spec.source.repoURL",
                     "message": f"Forbidden: {local_refused(repo)}"}  # fmt: skip
            raise errors.invalid(
                APPLICATIONS, str(meta.get("name") or meta.get("generateName") or ""), [cause]
            )
        name, namespace = str(spec.get("project") or DEFAULT_PROJECT), str(meta.get("namespace") or "")
        found = project(name)
        if found is None:
            raise errors.forbidden_by_policy(
                APPLICATIONS,
                str(meta.get("name") or meta.get("generateName") or ""),
                f"spec.project: project {name} does not exist in {INSTALL_NAMESPACE}; a cluster admin makes "
                f"projects there, and one whose sourceNamespaces lists {namespace} can be used here",
            )
        refused = application_refusals(found, name, namespace, spec)
        if refused:
            raise errors.forbidden_by_policy(
                APPLICATIONS, str(meta.get("name") or ""), "; ".join(str(r) for r in refused)
            )

    return judge


def ensure_default_project(projects: Resources) -> None:
    """Make the project ``default`` unless it exists, as Argo CD does on start."""
    try:
        projects.get(INSTALL_NAMESPACE, DEFAULT_PROJECT)
        return
    except errors.APIError as exc:
        if exc.code != 404:
            raise
    try:
        projects.create(
            INSTALL_NAMESPACE,
            dict(DEFAULT_PROJECT_OBJECT),
            WriteOptions(field_manager="driftguard-extension"),
        )
        log.info("made the project %s in %s", DEFAULT_PROJECT, INSTALL_NAMESPACE)
    except errors.APIError as exc:
        if exc.code != 409:  # another replica made it first
            raise
