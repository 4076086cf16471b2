"""What the plugin prints, from plain dicts: tables as kubectl aligns them, an Application's
summary and resource tree, history, drift, sync results and diffs. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

RED, GREEN, CYAN, RESET = "\033[31m", "\033[32m", "\033[36m", "\033[0m"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns as kubectl prints them: upper-case headers, left-aligned, three spaces apart."""
    cells = [[str(h).upper() for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "<none>" if value is None else ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "<none>"
    return str(value)


def server_table(doc: dict[str, Any], *, wide: bool, all_namespaces: bool) -> str:
    """A meta.k8s.io Table as ``kubectl get`` prints it (``-o wide`` adds priority columns)."""
    columns = [
        (i, c) for i, c in enumerate(doc.get("columnDefinitions", [])) if wide or not c.get("priority")
    ]
    header = [c["name"] for _, c in columns]
    rows = []
    for row in doc.get("rows", []):
        cells = [row["cells"][i] for i, _ in columns]
        if all_namespaces:
            cells.insert(0, ((row.get("object") or {}).get("metadata") or {}).get("namespace", ""))
        rows.append(cells)
    if all_namespaces:
        header.insert(0, "Namespace")
    return table(header, rows) if rows else ""


def _ref(entry: dict[str, Any]) -> str:
    kind = entry.get("kind", "")
    group = entry.get("group", "")
    return f"{kind}.{group}" if group else kind


def summary(app: dict[str, Any]) -> str:
    meta, spec, status = app["metadata"], app.get("spec") or {}, app.get("status") or {}
    source, destination = spec.get("source") or {}, spec.get("destination") or {}
    sync, health = status.get("sync") or {}, status.get("health") or {}
    operation = status.get("operationState") or {}
    auto = (spec.get("syncPolicy") or {}).get("automated")
    lines = [
        ("Name", f"{meta['namespace']}/{meta['name']}"),
        ("Project", spec.get("project", "")),
        ("Repo", source.get("repoURL", "")),
        ("Path", source.get("path") or source.get("chart") or "."),
        ("Target", source.get("targetRevision", "HEAD")),
        (
            "Destination",
            f"{destination.get('server') or destination.get('name') or 'in-cluster'}"
            f" / {destination.get('namespace', '')}",
        ),
        (
            "Sync Policy",
            "Automated"
            + (" (Prune)" if auto.get("prune") else "")
            + (" (SelfHeal)" if auto.get("selfHeal") else "")
            if auto is not None
            else "Manual",
        ),
        ("Drift Guard", (spec.get("driftGuard") or {}).get("mode", "enforce")),
        ("Sync Status", f"{sync.get('status', 'Unknown')} to {(sync.get('revision') or '')[:7] or '?'}"),
        (
            "Health Status",
            health.get("status", "Unknown") + (f": {health['message']}" if health.get("message") else ""),
        ),
    ]
    if operation:
        lines.append(("Operation", f"{operation.get('phase', '')}: {operation.get('message', '')}"))
    for condition in status.get("conditions") or []:
        if condition.get("type") != "Ready" or condition.get("status") != "True":
            lines.append(("Condition", f"{condition.get('type')}: {condition.get('message', '')}"))
    width = max(len(k) for k, _ in lines) + 1
    return "\n".join(f"{k + ':':<{width}} {v}" for k, v in lines)


def tree(app: dict[str, Any]) -> str:
    """Each deployed object: kind, namespace, name, sync, health and message, then its drift."""
    status = app.get("status") or {}
    drift: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for entry in (status.get("drift") or {}).get("resources") or []:
        key = (
            entry.get("group", ""),
            entry.get("kind", ""),
            entry.get("namespace", ""),
            entry.get("name", ""),
        )
        drift.setdefault(key, []).append(entry)
    rows = []
    for res in status.get("resources") or []:
        health = res.get("health") or {}
        rows.append(
            [
                _ref(res),
                res.get("namespace", ""),
                res.get("name", ""),
                res.get("status", ""),
                health.get("status", ""),
                health.get("message", ""),
            ]
        )
        key = (res.get("group", ""), res.get("kind", ""), res.get("namespace", ""), res.get("name", ""))
        for change in drift.get(key, []):
            fields = ", ".join(change.get("fields") or [])
            rows.append(
                ["└─ drift", "", fields, "", "", f"by {change.get('by', '?')} at {change.get('at', '?')}"]
            )
    if not rows:
        return "No resources deployed yet."
    return table(["Kind", "Namespace", "Name", "Sync", "Health", "Message"], rows)


def history(app: dict[str, Any]) -> str:
    rows = []
    for entry in (app.get("status") or {}).get("history") or []:
        by = entry.get("initiatedBy") or {}
        who = "automated" if by.get("automated") else by.get("username", "")
        rows.append([entry.get("id"), entry.get("deployedAt", ""), (entry.get("revision") or "")[:12], who])
    return table(["ID", "Date", "Revision", "Initiated By"], rows) if rows else "No history yet."


def drift(app: dict[str, Any]) -> str:
    found = (app.get("status") or {}).get("drift") or {}
    rows = [
        [
            _ref(e),
            e.get("namespace", ""),
            e.get("name", ""),
            ", ".join(e.get("fields") or []),
            e.get("by", ""),
            e.get("at", ""),
        ]
        for e in found.get("resources") or []
    ]
    out = table(["Kind", "Namespace", "Name", "Fields", "By", "At"], rows) if rows else "No drift recorded."
    glass = [
        [
            _ref(e),
            e.get("namespace", ""),
            e.get("name", ""),
            e.get("by", ""),
            e.get("expiresAt", ""),
            e.get("reason", ""),
        ]
        for e in found.get("breakGlass") or []
    ]
    if glass:
        out += "\n\nBreak-glass:\n" + table(["Kind", "Namespace", "Name", "By", "Until", "Reason"], glass)
    return out


def results(state: dict[str, Any]) -> str:
    entries = (state.get("syncResult") or {}).get("resources") or []
    rows = [
        [
            _ref(e),
            e.get("namespace", ""),
            e.get("name", ""),
            e.get("status", "") + (f" ({e['hookPhase']} hook)" if e.get("hookPhase") else ""),
            e.get("message", ""),
        ]
        for e in entries
    ]
    return table(["Kind", "Namespace", "Name", "Result", "Message"], rows) if rows else "Nothing to do."


def result_line(entry: dict[str, Any]) -> str:
    """One object's result in a sync's progress, as kubectl apply prints one: ``deployment.apps/web
    created``, with a namespace and a message when there are."""
    group = f".{entry['group']}" if entry.get("group") else ""
    where = f" -n {entry['namespace']}" if entry.get("namespace") else ""
    message = f": {entry['message']}" if entry.get("message") else ""
    kind = str(entry.get("kind", "")).lower()
    hook = f" ({entry['hookPhase']} hook)" if entry.get("hookPhase") else ""
    return f"{kind}{group}/{entry.get('name', '')}{where} {entry.get('status', '')}{hook}{message}"


def bar(done: int, total: int, width: int = 20) -> str:
    """``[########------------] 8/20``"""
    filled = min(width, width * done // total) if total > 0 else 0
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total}"


def diffs(state: dict[str, Any], *, colour: bool) -> tuple[str, bool]:
    """The unified diff of each object a sync would change, and whether there is any change."""
    out: list[str] = []
    changed = False
    for entry in (state.get("syncResult") or {}).get("resources") or []:
        if entry.get("status") in ("unchanged", "", None):
            continue
        changed = True
        title = (
            f"===== {_ref(entry)} {entry.get('namespace', '')}/{entry.get('name', '')} ({entry['status']})"
        )
        out.append(_paint(title, CYAN, colour))
        for line in (entry.get("diff") or entry.get("message") or "").splitlines():
            if line.startswith("+") and not line.startswith("+++"):
                line = _paint(line, GREEN, colour)
            elif line.startswith("-") and not line.startswith("---"):
                line = _paint(line, RED, colour)
            out.append(line)
    return "\n".join(out), changed


def _paint(text: str, colour: str, on: bool) -> str:
    return f"{colour}{text}{RESET}" if on else text
