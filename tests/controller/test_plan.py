"""Apply order, marks, prune plans and drift over plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from controller import diff, plan
from controller import status as st
from extension.api.tracking import MANAGED_LABEL, TRACKING_ANNOTATION, AppKey, ObjectRef, claimed_app

APP = AppKey("team-a", "shop")


def obj(kind: str, name: str, api: str = "v1", namespace: str = "", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = {k.replace("__", "/").replace("_", "-"): v for k, v in annotations.items()}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def names(steps: list[list[dict[str, Any]]]) -> list[list[str]]:
    return [[o["metadata"]["name"] for o in step] for step in steps]


def test_namespaces_and_crds_come_first_then_waves_then_webhooks_last() -> None:
    objects = [
        obj("ValidatingWebhookConfiguration", "hook", "admissionregistration.k8s.io/v1"),
        obj("Deployment", "web", "apps/v1"),
        obj("ConfigMap", "late", **{"gitops.driftguard.io__sync_wave": "1"}),
        obj("Service", "svc"),
        obj("CustomResourceDefinition", "crd", "apiextensions.k8s.io/v1"),
        obj("ConfigMap", "early", **{"argocd.argoproj.io__sync_wave": "-2"}),
        obj("Namespace", "ns"),
    ]
    assert names(plan.waves(objects)) == [["ns", "crd"], ["early"], ["svc", "web"], ["late"], ["hook"]]


def test_a_wave_that_is_not_a_number_is_an_error_naming_the_object() -> None:
    bad = obj("ConfigMap", "x", namespace="ns", **{"gitops.driftguard.io__sync_wave": "soon"})
    with pytest.raises(plan.PlanError, match=r"ConfigMap ns/x: annotation gitops\.driftguard\.io/sync-wave"):
        plan.waves([bad])


def test_prepare_fills_the_destination_namespace_and_marks_every_object() -> None:
    crd = {
        **obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1"),
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget"}},
    }
    rendered = [
        obj("ConfigMap", "cm"),
        obj("Namespace", "ns", namespace="oops"),
        obj("Widget", "w", "example.com/v1"),
        crd,
    ]
    known = {
        ("", "ConfigMap"): True,
        ("", "Namespace"): False,
        ("apiextensions.k8s.io", "CustomResourceDefinition"): False,
    }
    prepared = plan.prepare(rendered, APP, "shop", lambda g, k: known.get((g, k)))
    assert [o["metadata"].get("namespace") for o in prepared] == ["shop", None, None, None]
    for o in prepared:
        assert o["metadata"]["labels"][MANAGED_LABEL] == "true"
        assert claimed_app(o) == APP
    assert prepared[0]["metadata"]["annotations"][TRACKING_ANNOTATION] == "team-a/shop:/ConfigMap:shop/cm"
    assert "namespace" in rendered[1]["metadata"], "the input is not changed"


def test_a_copied_tracking_id_claims_nothing() -> None:
    original = plan.prepare([obj("ConfigMap", "a")], APP, "shop", lambda g, k: True)[0]
    copy = {**original, "metadata": {**original["metadata"], "name": "b"}}
    assert claimed_app(original) == APP and claimed_app(copy) is None


def refs(*names: str) -> list[ObjectRef]:
    return [ObjectRef("", "ConfigMap", "ns", n) for n in names]


def test_only_inventory_objects_that_left_git_are_pruned() -> None:
    result = plan.plan_prune(refs("a", "b", "c"), refs("a", "b", "new"), prune=True)
    assert result.delete == refs("c") and not result.refused


def test_prune_off_keeps_what_left_git_and_prune_false_protects_an_object() -> None:
    assert plan.plan_prune(refs("a", "b", "c"), refs("a"), prune=False).keep == refs("b", "c")
    kept = plan.plan_prune(refs("a", "b", "c", "d"), refs("a", "b"), prune=True, no_prune=refs("c"))
    assert kept.delete == refs("d") and kept.keep == refs("c")


def test_a_prune_of_most_of_the_inventory_needs_confirmation() -> None:
    refused = plan.plan_prune(
        refs("a", "b", "c", "d"), refs("a"), prune=True, max_share=0.5, app=AppKey("team-a", "shop")
    )
    assert refused.delete == [] and "3 of the 4" in refused.refused and "confirmPrune" in refused.refused
    assert "/namespaces/team-a/applications/shop/sync" in refused.refused
    confirmed = plan.plan_prune(refs("a", "b", "c", "d"), refs("a"), prune=True, confirmed=True)
    assert len(confirmed.delete) == 3


def test_prunes_go_in_reverse_apply_order() -> None:
    inventory = [
        ObjectRef("", "Namespace", "", "ns"),
        ObjectRef("apps", "Deployment", "ns", "web"),
        ObjectRef("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "", "hook"),
    ]
    assert [r.kind for r in plan.plan_prune(inventory, [], prune=True, confirmed=True).delete] == [
        "ValidatingWebhookConfiguration",
        "Deployment",
        "Namespace",
    ]


def test_sync_options_parse_from_the_spec_and_from_an_object_annotation() -> None:
    assert plan.parse_options(["CreateNamespace=true", "PruneLast=true"]) == {
        "CreateNamespace": "true",
        "PruneLast": "true",
    }
    annotated = obj("ConfigMap", "x", **{"argocd.argoproj.io__sync_options": "Prune=false,Validate=false"})
    assert plan.object_options(annotated) == {"Prune": "false", "Validate": "false"}


def live_deployment(
    image: str, replicas: int, managers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "resourceVersion": "7",
            "managedFields": managers or [],
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
        "status": {"replicas": replicas},
    }


def test_drift_names_the_fields_git_sets_that_differ() -> None:
    assert diff.drift(live_deployment("web:2", 3), live_deployment("web:1", 3)) == [
        "spec.template.spec.containers[0].image"
    ]
    assert diff.drift(live_deployment("web:1", 3), live_deployment("web:1", 3)) == []


def test_ignore_differences_by_json_pointer_and_by_manager() -> None:
    rules = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    assert diff.drift(live_deployment("web:1", 5), live_deployment("web:1", 2), rules) == []
    hpa = [{"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    by_manager = [{"kind": "Deployment", "managedFieldsManagers": ["hpa"]}]
    assert diff.drift(live_deployment("web:1", 5, hpa), live_deployment("web:1", 2), by_manager) == []
    other = [{"kind": "Service", "jsonPointers": ["/spec/replicas"]}]
    assert diff.drift(live_deployment("web:1", 5), live_deployment("web:1", 2), other) == ["spec.replicas"]


def test_owned_paths_follow_list_keys() -> None:
    fields = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}}
    assert list(diff.owned_paths(fields, live_deployment("x", 1))) == [
        ("spec", "template", "spec", "containers", 0, "image")
    ]


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    first = st.set_condition([], "Ready", "False", "FetchFailed", "down", "t1")
    second = st.set_condition(first, "Ready", "False", "FetchFailed", "still down", "t2")
    third = st.set_condition(second, "Ready", "True", "Reconciled", "ok", "t3")
    assert [c["lastTransitionTime"] for c in (first + second + third)] == ["t1", "t1", "t3"]


def test_history_keeps_the_last_entries_and_ids_keep_counting() -> None:
    history: list[dict[str, Any]] = []
    for n in range(4):
        history = st.add_history(history, f"sha{n}", {}, f"t{n}", {"automated": True}, limit=2)
    assert [(h["id"], h["revision"]) for h in history] == [(2, "sha2"), (3, "sha3")]


def test_skip_reconcile_on_a_deployed_application_counts_only_when_git_set_it() -> None:
    from controller.reconcile import skip_reconcile
    from extension.api.tracking import FIELD_MANAGER, TRACKING_ANNOTATION

    skip = {"gitops.driftguard.io/skip-reconcile": "true"}
    top = {"metadata": {"name": "a", "namespace": "n", "annotations": dict(skip)}}
    assert skip_reconcile(top)
    assert not skip_reconcile({"metadata": {"name": "a", "namespace": "n"}})
    tracked = {**skip, TRACKING_ANNOTATION: "n/parent:gitops.driftguard.io/Application:n/a"}
    kind = {"apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "Application"}
    by_hand = {**kind, "metadata": {"name": "a", "namespace": "n", "annotations": tracked, "managedFields": [
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:project": {}}}},
        {"manager": "kubectl-annotate", "operation": "Update",
         "fieldsV1": {"f:metadata": {"f:annotations": {"f:gitops.driftguard.io/skip-reconcile": {}}}}},
    ]}}  # fmt: skip
    assert not skip_reconcile(by_hand)
    from_git = {**kind, "metadata": {"name": "a", "namespace": "n", "annotations": tracked, "managedFields": [
        {"manager": FIELD_MANAGER, "operation": "Apply",
         "fieldsV1": {"f:metadata": {"f:annotations": {"f:gitops.driftguard.io/skip-reconcile": {}}}}},
    ]}}  # fmt: skip
    assert skip_reconcile(from_git)
