"""Label and field selectors, parsed and matched as kube-apiserver does. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from extension.api.errors import bad_request

Matcher = Callable[[Mapping[str, str]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _holds(labels: Mapping[str, str], key: str, op: str, values: frozenset[str]) -> bool:
    if op == "in":
        return labels.get(key) in values
    if op == "notin":
        return labels.get(key) not in values
    if op in ("=", "=="):
        return labels.get(key) in values
    if op == "!=":
        return labels.get(key) not in values
    if op == "exists":
        return key in labels
    return key not in labels  # "!"


def label_selector(selector: str | None) -> Matcher:
    """A matcher for a ``labelSelector`` query value; an empty selector matches everything."""
    requirements: list[tuple[str, str, frozenset[str]]] = []
    for part in _split(selector or ""):
        if m := _SET.match(part):
            negate, key, op, values = m.groups()
            if negate:
                raise bad_request(f"unable to parse requirement: {part.strip()!r}")
            requirements.append((key, op, frozenset(v.strip() for v in values.split(",") if v.strip())))
        elif m := _EQ.match(part):
            key, op, value = m.groups()
            requirements.append((key, op, frozenset([value])))
        elif m := _EXISTS.match(part):
            negate, key = m.groups()
            requirements.append((key, "!" if negate else "exists", frozenset()))
        else:
            raise bad_request(
                f"unable to parse requirement: found {part.strip()!r}, expected a label requirement"
            )
    return lambda labels: all(_holds(labels, *r) for r in requirements)


FIELDS = ("metadata.name", "metadata.namespace")


def field_selector(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A matcher for a ``fieldSelector``: Applications support metadata.name and metadata.namespace,
    as custom resources do; any other field is a 400 with kube's message."""
    checks: list[tuple[str, str, str]] = []
    for part in _split(selector or ""):
        m = _EQ.match(part)
        if not m:
            raise bad_request(f"invalid selector: {part.strip()!r}; can't understand {part.strip()!r}")
        key, op, value = m.groups()
        if key not in FIELDS:
            raise bad_request(f"field label not supported: {key}")
        checks.append((key, op, value))

    def match(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        for key, op, value in checks:
            actual = meta.get(key.split(".", 1)[1], "")
            if (actual == value) != (op in ("=", "==")):
                return False
        return True

    return match
