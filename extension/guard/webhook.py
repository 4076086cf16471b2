"""The webhooks as the Flask views call them: body bytes in, HTTP status and JSON body out. Pure but
for the clock and the parent reader it is given."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from extension.guard import reviews, verdicts
from extension.guard.index import AppIndex
from extension.guard.verdicts import GuardSettings, ParentReader

# An AdmissionReview holds the object twice (object and oldObject) and kube-apiserver stores
# objects of up to about 1.5 MiB, so the limit is well above MAX_BODY of the API.
MAX_REVIEW_BYTES = 8 * 1024 * 1024


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Guard:
    index: AppIndex
    settings: GuardSettings = field(default_factory=GuardSettings)
    parents: ParentReader | None = None
    clock: Callable[[], datetime.datetime] = _now
    # The key that seals the guard's records on objects (extension.api.seals); None until known.
    seal_key: Callable[[], bytes | None] = lambda: None

    def validate(self, body: bytes) -> tuple[int, dict[str, Any]]:
        return reviews.handle(
            body, lambda r: verdicts.review(r, self.index, self.settings, self.clock(), self.parents)
        )

    def mutate(self, body: bytes) -> tuple[int, dict[str, Any]]:
        return reviews.handle(
            body, lambda r: verdicts.mutate(r, self.index, self.settings, self.clock(), self.seal_key())
        )

    def admit(self, request: reviews.AdmissionRequest) -> reviews.AdmissionResponse:
        """The verdict on a write the API serves itself (an Application that another one manages),
        as the webhooks give it: UPDATE through the mutating one, which also records."""
        if request.get("operation") == "UPDATE":
            return verdicts.mutate(request, self.index, self.settings, self.clock(), self.seal_key())
        return verdicts.review(request, self.index, self.settings, self.clock(), self.parents)

    def readiness(self) -> list[str]:
        if self.index.synced:
            return []
        return [f"the drift guard has not loaded the Applications yet ({self.index.error})"]
