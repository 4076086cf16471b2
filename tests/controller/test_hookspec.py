"""Which rendered objects are sync hooks, of which phase and wave, deleted when, and when one has
finished: Argo CD's semantics, Helm's annotations mapped as Argo CD maps them. Plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from controller import hookspec as hooks
from controller import plan


def job(name: str = "migrate", generate: bool = False, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"generateName": f"{name}-"} if generate else {"name": name}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {**meta, "annotations": annotations}}


def hook_of(obj: dict[str, Any]) -> hooks.Hook:
    found = hooks.classify(obj)
    assert isinstance(found, hooks.Hook), found
    return found


def test_an_object_without_hook_annotations_is_an_ordinary_resource() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    assert hooks.classify(cm) is None
    split = hooks.partition([cm, job(**{"argocd.argoproj.io/hook": "PreSync"})])
    assert split.resources == [cm] and [h.ref.name for h in split.hooks] == ["migrate"]


@pytest.mark.parametrize("key", hooks.HOOK_ANNOTATIONS)
def test_argo_cds_and_our_annotation_name_phases_and_skip(key: str) -> None:
    found = hook_of(job(**{key: "PreSync, PostSync"}))
    assert found.phases == ("PreSync", "PostSync")
    assert found.policies == {"BeforeHookCreation"}  # the default
    assert hooks.classify(job(**{key: "Skip"})) == hooks.SKIP


def test_unknown_values_are_ignored_as_argo_cd_ignores_them() -> None:
    # A phase this controller does not run (Argo CD's PostDelete), or a typo: never applied.
    assert hooks.classify(job(**{"argocd.argoproj.io/hook": "PostDelete"})) == hooks.SKIP
    assert hooks.classify(job(**{"argocd.argoproj.io/hook": "PreSnyc"})) == hooks.SKIP
    assert hook_of(job(**{"argocd.argoproj.io/hook": "PostDelete,PostSync"})).phases == ("PostSync",)
    odd = {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/hook-delete-policy": "Always"}
    assert hook_of(job(**odd)).policies == {"BeforeHookCreation"}


def test_delete_policies_and_when_they_delete() -> None:
    found = hook_of(
        job(
            **{
                "gitops.driftguard.io/hook": "PostSync",
                "gitops.driftguard.io/hook-delete-policy": "HookSucceeded",
            }
        )
    )
    assert found.policies == {"HookSucceeded"}
    assert hooks.delete_after(found, hooks.DONE) and not hooks.delete_after(found, hooks.BROKEN)
    failed = hook_of(
        job(**{"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/hook-delete-policy": "HookFailed"})
    )
    assert hooks.delete_after(failed, hooks.BROKEN) and not hooks.delete_after(failed, hooks.DONE)


@pytest.mark.parametrize(
    ("helm", "phases"),
    [
        ("pre-install", ("PreSync",)),
        ("pre-install,pre-upgrade", ("PreSync",)),
        ("post-install, post-upgrade", ("PostSync",)),
        ("pre-delete", ("PreDelete",)),
    ],
)
def test_helm_hooks_map_as_argo_cd_maps_them(helm: str, phases: tuple[str, ...]) -> None:
    found = hook_of(job(**{"helm.sh/hook": helm, "helm.sh/hook-weight": "-5",
                           "helm.sh/hook-delete-policy": "hook-succeeded,before-hook-creation"}))  # fmt: skip
    assert found.phases == phases and found.wave == -5
    assert found.policies == {"HookSucceeded", "BeforeHookCreation"}


def test_helm_tests_and_hooks_without_a_phase_are_not_applied_and_crd_install_is_a_resource() -> None:
    for helm in ("test", "test-success", "post-delete", "pre-rollback", "pre-instal"):
        assert hooks.classify(job(**{"helm.sh/hook": helm})) == hooks.SKIP, helm
    meta = {"name": "widgets.example.com", "annotations": {"helm.sh/hook": "crd-install"}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta}
    assert hooks.classify(crd) is None  # applied, tracked and pruned like any object


def test_argo_cds_annotation_wins_over_helms_and_a_sync_wave_over_a_weight() -> None:
    found = hook_of(job(**{"argocd.argoproj.io/hook": "Sync", "helm.sh/hook": "pre-install"}))
    assert found.phases == ("Sync",)
    weighted = hook_of(job(**{"helm.sh/hook": "post-install", "helm.sh/hook-weight": "3",
                              "argocd.argoproj.io/sync-wave": "7"}))  # fmt: skip
    assert weighted.wave == 7


def test_generate_name_hooks_and_nameless_ones() -> None:
    assert hook_of(job(generate=True, **{"argocd.argoproj.io/hook": "PreSync"})).generated
    with pytest.raises(plan.PlanError, match=r"needs metadata\.name or metadata\.generateName"):
        hooks.classify(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"annotations": {"argocd.argoproj.io/hook": "Sync"}},
            }
        )


def test_hooks_of_a_phase_run_by_wave() -> None:
    found = [
        hook_of(job("c", **{"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "1"})),
        hook_of(job("a", **{"argocd.argoproj.io/hook": "PreSync"})),
        hook_of(job("b", **{"argocd.argoproj.io/hook": "PostSync"})),
        hook_of(job("d", **{"argocd.argoproj.io/hook": "PreSync"})),
    ]
    assert [[h.ref.name for h in wave] for wave in hooks.of_phase(found, "PreSync")] == [["a", "d"], ["c"]]
    assert hooks.of_phase(found, "SyncFail") == []


def test_when_a_hook_has_finished() -> None:
    def a_job(status: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m"}, "status": status}

    complete = a_job({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1})
    deadline = "Job was active longer than specified deadline"
    failed = a_job({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                    "message": deadline}]})  # fmt: skip
    running = a_job({"active": 1})
    assert hooks.outcome(complete)[0] == hooks.DONE
    assert hooks.outcome(failed) == (hooks.BROKEN, deadline)
    assert hooks.outcome(running)[0] == hooks.RUNNING
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"restartPolicy": "Always"}}
    assert (
        hooks.outcome({**pod, "status": {"phase": "Running"}})[0] == hooks.RUNNING
    )  # a pod until it succeeds
    assert hooks.outcome({**pod, "status": {"phase": "Succeeded"}})[0] == hooks.DONE
    assert hooks.outcome({**pod, "status": {"phase": "Failed"}})[0] == hooks.BROKEN
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert hooks.outcome(cm)[0] == hooks.DONE  # no health check: done once it exists
    assert hooks.outcome(None)[0] == hooks.BROKEN
