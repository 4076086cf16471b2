"""Applications' own verbs: the sync, rollback and diff operations, recorded for the controller
(POST subresources, which RBAC grants apart from editing the spec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extension.api import errors, objects
from extension.api.schema import GROUP
from extension.api.validation import validate_rollback_request, validate_sync_request
from extension.resources import CONFLICT_RETRIES, Resources, Result, WriteOptions


@dataclass
class Applications(Resources):
    # --- operations --------------------------------------------------------------------------
    def operate(
        self, namespace: str, name: str, kind: str, body: Any, user: str, opts: WriteOptions
    ) -> Result:
        """``sync`` or ``rollback``: record the operation for the controller to carry out."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise errors.bad_request(f"the {kind} request body must be a JSON object")
        if kind == "diff":
            # A compare with Git, for whoever may read: a dry-run sync with prune of the revision
            # the Application targets, which applies nothing. Another revision is a sync's to
            # compare (a dry run reports its comparison as the Application's status).
            extra = sorted(set(body) - {"apiVersion", "kind", "resources"})
            if extra:
                raise errors.APIError(
                    422, "Invalid",
                    f'diff request for Application "{name}" is invalid: {", ".join(extra)}: Forbidden: '
                    "a diff takes resources only: it compares the revision the Application targets "
                    "(for another one, a sync with dryRun: true)",
                )  # fmt: skip
            body = {**body, "dryRun": True, "prune": True}
        problems = (validate_rollback_request if kind == "rollback" else validate_sync_request)(body)
        if problems:
            raise errors.APIError(
                422, "Invalid",
                f'{kind} request for Application "{name}" is invalid: '
                + ", ".join(p.detail() for p in problems),
                {"name": name, "group": GROUP, "kind": "applications",
                 "causes": [p.cause() for p in problems]},
            )  # fmt: skip
        op = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
        for _ in range(CONFLICT_RETRIES):
            old = self.store.get(namespace, name)
            if old["metadata"].get("deletionTimestamp"):
                raise errors.conflict(self.kind, name, f"the Application is being deleted; {kind} is refused")
            if kind == "diff" and old.get("operation"):
                # Never in place of an operation someone asked for and the controller has not run.
                raise errors.conflict(self.kind, name, "an operation is pending; diff again once it has run")
            if kind == "rollback":
                ids = [h.get("id") for h in (old.get("status") or {}).get("history") or []]
                if op["id"] not in ids:
                    known = ", ".join(str(i) for i in ids) or "none yet"
                    raise errors.APIError(
                        422,
                        "Invalid",
                        f'Application "{name}" has no history id {op["id"]} (known ids: {known})',
                    )
            operation = {
                "sync" if kind == "diff" else kind: op,
                "initiatedBy": {"username": user},
                # To the microsecond: two requests in one second are two operations, which
                # whoever follows one (kubectl driftguard, the dashboard) tells apart by the record.
                "requestedAt": objects.micro_timestamp(self.clock()),
            }
            new = objects.with_operation(old, operation)
            try:
                return Result(self._write(old, new, opts), 200)
            except errors.APIError as exc:
                if exc.code != 409:
                    raise
        raise errors.conflict(self.kind, name, "too many concurrent writes; try again")
