"""The Application's project: judged before anything is fetched, and whom the Application's objects
are touched as (the ServiceAccount the project names for the destination, when it names one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller import status as st
from controller.kube import Kube
from extension.api import projects
from extension.api.tracking import ObjectRef


@dataclass(frozen=True)
class Scope:
    """One reconcile inside the Application's project. ``objects`` is the client for the
    Application's objects (reads, dry runs, applies, prunes): as the ServiceAccount its project
    names for the destination, when it names one. Only a Scope carries it: never the controller's
    own rights by default."""

    name: str  # the project's
    project: dict[str, Any]
    spec: dict[str, Any]  # the Application's
    objects: Kube

    def not_permitted(self, refs: list[ObjectRef]) -> list[ObjectRef]:
        """Of the inventory entries ``refs``, those the project no longer allows (kind, namespace)."""
        server, dest_name, _ = projects.destination(self.spec.get("destination"))
        info = [(r.group, r.kind, r.namespace, r.name, bool(r.namespace)) for r in refs]
        refused = {r.what for r in projects.object_refusals(self.project, self.name, server, dest_name, info)}
        return [r for r, i in zip(refs, info, strict=True) if projects.object_name(*i) in refused]


def enter_project(
    kube: Kube, app: dict[str, Any], project_of: Callable[[str], dict[str, Any] | None]
) -> Scope:
    """Judge the Application by its project, and act as whom the project names: every step after
    this takes the Scope. Raises ProjectDenied."""
    spec, meta = app.get("spec") or {}, app["metadata"]
    name = str(spec.get("project") or projects.DEFAULT_PROJECT)
    project = project_of(name)
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
    return Scope(name, project, spec, kube.impersonating(user) if user else kube)
