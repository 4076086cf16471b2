"""The live objects, and how each differs from Git: a server-side apply dry run of the rendered
object on top of the live one (controller/diff.py says which fields count)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller import diff, plan
from controller.kube import Kube
from controller.sync.project import Scope
from extension.api.tracking import AppKey, ObjectRef, claimed_app


def live(kube: Kube, scope: Scope, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The live object, None when it does not exist; a kind the server does not serve yet (a
    CustomResourceDefinition in the same sync brings it) has no live objects either."""
    res = kube.resource(*plan.group_kind(obj))
    meta = obj["metadata"]
    return None if res is None else scope.objects.get(res, meta.get("namespace", ""), meta["name"])


def drift(
    scope: Scope, obj: dict[str, Any], live: dict[str, Any] | None, rules: list[dict[str, Any]]
) -> list[str] | None:
    """The drifted fields, [] when in sync, None when missing (no dry run then: its kind may not
    even exist yet, as Argo CD's SkipDryRunOnMissingResource)."""
    if live is None:
        return None
    predicted = scope.objects.apply(obj, dry_run=True)
    return diff.drift(live, predicted, rules)


@dataclass
class Comparison:
    """Each desired object's live state and drift, and those another Application manages (foreign:
    never compared, never taken over), with why."""

    desired: dict[ObjectRef, dict[str, Any]]
    live: dict[ObjectRef, dict[str, Any] | None]
    drifted: dict[ObjectRef, list[str] | None]  # of every desired object but the foreign ones
    foreign: dict[ObjectRef, str]


def compare(
    kube: Kube,
    scope: Scope,
    key: AppKey,
    desired: dict[ObjectRef, dict[str, Any]],
    rules: list[dict[str, Any]],
) -> Comparison:
    found: dict[ObjectRef, dict[str, Any] | None] = {}
    drifted: dict[ObjectRef, list[str] | None] = {}
    foreign: dict[ObjectRef, str] = {}
    for ref, obj in desired.items():
        found[ref] = live(kube, scope, obj)
        current = found[ref]
        owner = claimed_app(current) if current is not None else None
        if found[ref] is not None and owner is not None and owner != key:
            foreign[ref] = f"{ref} is managed by Application {owner}; refusing to take it over"
            continue
        drifted[ref] = drift(scope, obj, found[ref], rules)
    return Comparison(desired, found, drifted, foreign)
