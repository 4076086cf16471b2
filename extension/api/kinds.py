"""The kinds the aggregated API serves, as data: names, schema, validation and where they live.

Everything generic (storage, the verbs, routes, discovery, OpenAPI, Tables, errors) takes a
``Kind``; what only Applications have (the sync and rollback operations, the drift guard's index)
stays with them. Pure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from extension.api import appprojects, managed_fields, validation
from extension.api.checks import FieldError
from extension.api.schema import (
    APPLICATION_SCHEMA,
    CATEGORIES,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    Schema,
)


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    schema: Schema
    storage: str  # the storage label's value and the stem of the data key
    validate: Callable[..., list[FieldError]]
    defaults: Callable[[dict[str, Any]], dict[str, Any]]
    unknown_fields: Callable[[dict[str, Any]], list[str]]
    status: bool  # has a status subresource
    operations: tuple[str, ...] = ()  # POST subresources that record an operation
    only_namespace: str = ""  # the one namespace objects of this kind may live in, if any
    # Unknown fields refused whatever fieldValidation says: a field of a newer Argo CD that we
    # would drop could only widen what a project allows.
    strict_fields: bool = False
    categories: tuple[str, ...] = tuple(CATEGORIES)

    @property
    def typed_schema(self) -> Schema:
        """The schema server-side apply and managedFields read: ObjectMeta typed in."""
        return _typed(self.kind)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def resource(self) -> str:
        """``applications.gitops.driftguard.io``, as kube names a resource in messages."""
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"


APPLICATIONS = Kind(
    kind=KIND, plural=PLURAL, singular=SINGULAR, short_names=tuple(SHORT_NAMES), schema=APPLICATION_SCHEMA,
    storage="application", validate=validation.validate, defaults=validation.apply_defaults,
    unknown_fields=validation.unknown_fields, status=True, operations=("sync", "rollback", "diff"),
)  # fmt: skip
APPPROJECTS = Kind(
    kind=appprojects.PROJECT_KIND, plural=appprojects.PROJECT_PLURAL, singular=appprojects.PROJECT_SINGULAR,
    short_names=tuple(appprojects.PROJECT_SHORT_NAMES), schema=appprojects.PROJECT_SCHEMA,
    storage="appproject", validate=appprojects.validate_project, defaults=appprojects.project_defaults,
    unknown_fields=appprojects.project_unknown_fields, status=False, only_namespace="driftguard-system",
    strict_fields=True,
)  # fmt: skip
KINDS = (APPLICATIONS, APPPROJECTS)


@functools.cache
def _typed(kind: str) -> Schema:
    return managed_fields.typed_schema(next(k for k in KINDS if k.kind == kind).schema)
