"""The Table that ``kubectl get`` asks for (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``).

Pure: columns are data; cells are computed from an object and the current time, per kind.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from extension.api.appprojects import PROJECT_KIND
from extension.api.kinds import APPLICATIONS, Kind

COLUMNS: list[dict[str, Any]] = [
    {"name": "Name", "type": "string", "format": "name", "priority": 0,
     "description": "Name must be unique within a namespace."},
    {"name": "Sync Status", "type": "string", "format": "", "priority": 0,
     "description": "Whether the live state matches Git: Synced, OutOfSync or Unknown."},
    {"name": "Health", "type": "string", "format": "", "priority": 0,
     "description": "The worst health of the Application's resources."},
    {"name": "Revision", "type": "string", "format": "", "priority": 0,
     "description": "The Git commit last applied (short SHA)."},
    {"name": "Age", "type": "string", "format": "", "priority": 0,
     "description": "Time since the Application was created."},
    {"name": "Repo", "type": "string", "format": "", "priority": 1,
     "description": "The Git repository the manifests come from."},
    {"name": "Path", "type": "string", "format": "", "priority": 1,
     "description": "The directory in the repository."},
    {"name": "Target", "type": "string", "format": "", "priority": 1,
     "description": "The branch, tag or commit to follow."},
    {"name": "Project", "type": "string", "format": "", "priority": 1,
     "description": "The project the Application belongs to."},
    {"name": "Guard", "type": "string", "format": "", "priority": 1,
     "description": "The drift guard's mode: enforce, warn or off."},
]  # fmt: skip


def human_duration(delta: datetime.timedelta) -> str:
    """kube's duration.HumanDuration: 45s, 5m10s, 3h, 2d5h, 400d, 3y."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "<invalid>"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _age(app: dict[str, Any], now: datetime.datetime) -> str:
    created = (app.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    return human_duration(now - datetime.datetime.fromisoformat(created.replace("Z", "+00:00")))


def cells(app: dict[str, Any], now: datetime.datetime) -> list[Any]:
    spec, status = app.get("spec") or {}, app.get("status") or {}
    source = spec.get("source") or {}
    sync, health = status.get("sync") or {}, status.get("health") or {}
    return [
        app["metadata"]["name"],
        sync.get("status") or "Unknown",
        health.get("status") or "Unknown",
        (sync.get("revision") or "")[:7] or "<none>",
        _age(app, now),
        source.get("repoURL", ""),
        source.get("path", ""),
        source.get("targetRevision", ""),
        spec.get("project", ""),
        (spec.get("driftGuard") or {}).get("mode", ""),
    ]


PROJECT_COLUMNS: list[dict[str, Any]] = [
    {"name": "Name", "type": "string", "format": "name", "priority": 0,
     "description": "Name must be unique within a namespace."},
    {"name": "Description", "type": "string", "format": "", "priority": 0,
     "description": "What the project is for."},
    {"name": "Source Namespaces", "type": "string", "format": "", "priority": 0,
     "description": "The namespaces whose Applications may use the project."},
    {"name": "Age", "type": "string", "format": "", "priority": 0,
     "description": "Time since the project was created."},
    {"name": "Repos", "type": "string", "format": "", "priority": 1,
     "description": "The repositories its Applications may deploy from."},
    {"name": "Destinations", "type": "string", "format": "", "priority": 1,
     "description": "Where its Applications may deploy (server/namespace)."},
    {"name": "Service Accounts", "type": "string", "format": "", "priority": 1,
     "description": "Whom the controller acts as, by destination."},
]  # fmt: skip


def _joined(values: Any) -> str:
    return ",".join(str(v) for v in values) if isinstance(values, list) and values else "<none>"


def project_cells(project: dict[str, Any], now: datetime.datetime) -> list[Any]:
    spec = project.get("spec") or {}
    destinations = [
        f"{d.get('server') or d.get('name') or ''}/{d.get('namespace') or ''}"
        for d in spec.get("destinations") or []
        if isinstance(d, dict)
    ]
    accounts = [
        f"{d.get('namespace') or ''}:{d.get('defaultServiceAccount') or ''}"
        for d in spec.get("destinationServiceAccounts") or []
        if isinstance(d, dict)
    ]
    return [
        project["metadata"]["name"],
        spec.get("description") or "",
        _joined(spec.get("sourceNamespaces")),
        _age(project, now),
        _joined(spec.get("sourceRepos")),
        _joined(destinations),
        _joined(accounts),
    ]


_BY_KIND: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any], datetime.datetime], list[Any]]]] = {
    APPLICATIONS.kind: (COLUMNS, cells),
    PROJECT_KIND: (PROJECT_COLUMNS, project_cells),
}


def _row_object(app: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return app
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": app.get("metadata", {}),
    }


def table(
    apps: list[dict[str, Any]],
    now: datetime.datetime,
    *,
    kind: Kind = APPLICATIONS,
    resource_version: str = "",
    include_object: str = "Metadata",
    continue_token: str = "",
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    columns, cells_of = _BY_KIND[kind.kind]
    rows = []
    for app in apps:
        row: dict[str, Any] = {"cells": cells_of(app, now)}
        obj = _row_object(app, include_object)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for a meta.k8s.io/v1 Table (kubectl get does)."""
    for clause in accept.split(","):
        params = {p.strip().split("=", 1)[0]: p.strip().split("=", 1)[-1] for p in clause.split(";")[1:]}
        if (
            params.get("as") == "Table"
            and params.get("g") == "meta.k8s.io"
            and params.get("v") in ("v1", "v1beta1")
        ):
            return True
    return False
