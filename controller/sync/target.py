"""What to deploy: a revision of the Application's source fetched, rendered, prepared (plan.prepare)
and checked against its project, whether it is what the spec asks, what a sync or rollback request
names, or what the last sync deployed."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from controller import hookspec, plan
from controller import status as st
from controller.kube import Kube
from controller.sources import Sources
from controller.sync.project import Scope
from extension.api import projects
from extension.api.tracking import AppKey


@dataclass
class Target:
    revision: str  # what was asked: a branch, tag, SHA or HEAD
    source: dict[str, Any]
    sha: str = ""
    access: str = ""  # the credential Secret it was fetched with; "" for none
    objects: list[dict[str, Any]] = field(default_factory=list)  # compared, applied, tracked, pruned
    hooks: list[hookspec.Hook] = field(default_factory=list)  # run by a sync, never tracked or pruned


class Targets:
    def __init__(self, kube: Kube, sources: Sources) -> None:
        self.kube, self.sources = kube, sources

    def wanted(self, scope: Scope, app: dict[str, Any], key: AppKey) -> Target:
        """What the spec asks for, or the revision a sync request names, or a rollback's history entry."""
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
        return self._build(scope, app, key, source, revision)

    def deployed(self, scope: Scope, app: dict[str, Any], key: AppKey, judge: bool = True) -> Target | None:
        """What the last sync deployed (the newest history entry), e.g. the revision a rollback
        put back while auto-sync is paused; None without history. Without ``judge``, its objects
        are not checked against the project (the caller judges what it uses)."""
        history = (app.get("status") or {}).get("history") or []
        if not history:
            return None
        entry = history[-1]
        source = copy.deepcopy(entry.get("source") or (app.get("spec") or {}).get("source") or {})
        return self._build(scope, app, key, source, str(entry["revision"]), judge)

    def refusals(self, scope: Scope, app: dict[str, Any], objs: list[dict[str, Any]]) -> list[str]:
        """What the project refuses of ``objs``, in words."""
        server, dest_name, _ = projects.destination((app.get("spec") or {}).get("destination"))
        return [str(r) for r in projects.object_refusals(scope.project, scope.name, server, dest_name, (
            (*plan.group_kind(o), str(o["metadata"].get("namespace") or ""),
             str(o["metadata"].get("name") or o["metadata"].get("generateName") or ""),
             bool(o["metadata"].get("namespace")))
            for o in objs
        ))]  # fmt: skip

    def _build(
        self, scope: Scope, app: dict[str, Any], key: AppKey, source: dict[str, Any], revision: str,
        judge: bool = True,
    ) -> Target:  # fmt: skip
        spec = app.get("spec") or {}
        url = str(source.get("repoURL") or "")
        name, project = scope.name, scope.project
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
        refused = self.refusals(scope, app, target.objects) if judge else []
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
        # Hooks are judged by the project as any object is, then kept apart: a sync runs them.
        try:
            split = hookspec.partition(target.objects)
        except plan.PlanError as exc:
            raise st.Step(st.RENDER_FAILED, str(exc), temporary=False) from exc
        target.objects, target.hooks = split.resources, split.hooks
        return target

    def _namespaced(self, group: str, kind: str) -> bool | None:
        res = self.kube.resource(group, kind)
        return None if res is None else res.namespaced
