"""Whether a reconcile syncs now (controller/sync/decide.py), with plain dicts."""

from __future__ import annotations

import datetime
from typing import Any

from controller.sync.compare import Comparison
from controller.sync.decide import decide
from extension.api.tracking import ObjectRef

SHA, OLD = "a" * 40, "b" * 40
REF = ObjectRef("", "ConfigMap", "shop", "greeting")
NOW = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)


def app(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "shop", "namespace": "shop", "generation": 2},
        "spec": {"syncPolicy": {"automated": {}}},
        "status": {"observedGeneration": 2, "history": [{"id": 0, "revision": OLD}], **status},
    }


def drifted() -> Comparison:
    return Comparison(desired={REF: {}}, live={REF: {}}, drifted={REF: ["data.GREETING"]}, foreign={})


def hook_failed(sha: str) -> dict[str, Any]:
    return {"type": "HookFailed", "status": "True", "reason": "PreSyncFailed",
            "message": f"revision {sha[:7]}: PreSync hook Job migrate: the job failed"}  # fmt: skip


def test_auto_sync_deploys_a_new_revision() -> None:
    found = app()
    assert decide(found, found["status"], SHA, drifted(), [REF], NOW, None).wants_sync


def test_auto_sync_does_not_run_again_hooks_that_failed_at_this_revision() -> None:
    found = app(conditions=[hook_failed(SHA)])
    assert not decide(found, found["status"], SHA, drifted(), [REF], NOW, None).wants_sync
    # A newer commit, a sync request or a spec change does.
    assert decide(found, found["status"], "c" * 40, drifted(), [REF], NOW, None).wants_sync
    requested = {**found, "operation": {"sync": {}, "initiatedBy": {"username": "jane"}}}
    assert decide(requested, found["status"], SHA, drifted(), [REF], NOW, None).wants_sync
    edited = {**found, "metadata": {**found["metadata"], "generation": 3}}
    assert decide(edited, found["status"], SHA, drifted(), [REF], NOW, None).wants_sync
