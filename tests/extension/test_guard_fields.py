"""Which fields Git owns and which a request changes, over managedFields captured from the real
control plane (tests/extension/fixtures/guard, made by its capture.py)."""

from __future__ import annotations

from typing import Any

import pytest

from extension.guard import fields
from tests.extension.fixtures.guard import request, review

CONTAINERS = ("f:spec", "f:template", "f:spec", "f:containers")
WEB = 'k:{"name":"web"}'


def drift_of(name: str) -> list[tuple[str, str, str]]:
    req = request(name)
    return [(d.path, d.pointer, d.how) for d in fields.drifted(req["oldObject"], req["object"])]


def test_the_controllers_apply_entry_yields_leaves_list_items_by_key_and_set_items() -> None:
    owned = fields.owned(request("set-image")["oldObject"])
    assert (*CONTAINERS, WEB, "f:image") in owned
    assert (*CONTAINERS, WEB, ".") in owned, "the item itself exists because Git says so"
    assert (*CONTAINERS, WEB, "f:args") in owned, "an atomic list is one owned leaf"
    assert (*CONTAINERS, WEB, "f:ports", 'k:{"containerPort":8080,"protocol":"TCP"}', "f:protocol") in owned
    assert ("f:metadata", "f:finalizers", 'v:"example.com/keep"') in owned
    assert ("f:metadata", "f:annotations", "f:gitops.driftguard.io/tracking-id") in owned
    assert ("f:metadata", "f:labels", "f:gitops.driftguard.io/managed") in owned
    assert not any(path[0] == "f:status" for path in owned), "kube-controller-manager's status is not Git's"


def test_only_apply_entries_of_the_given_manager_on_the_main_resource_count() -> None:
    old = request("set-image")["oldObject"]
    assert fields.owned(old, manager="kube-controller-manager") == frozenset(), "Update and status entries"
    entries = old["metadata"]["managedFields"]
    for entry in entries:
        if entry["manager"] == "driftguard-controller":
            entry["operation"] = "Update"
    assert fields.owned(old) == frozenset()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "set-image",
            [("spec.template.spec.containers[0].image", "/spec/template/spec/containers/0/image", "changed")],
        ),
        (
            "patch-strategic-image",
            [("spec.template.spec.containers[0].image", "/spec/template/spec/containers/0/image", "changed")],
        ),
        (
            "patch-env-value",
            [
                (
                    "spec.template.spec.containers[0].env[0].value",
                    "/spec/template/spec/containers/0/env/0/value",
                    "changed",
                )
            ],
        ),
        (
            "patch-args",
            [("spec.template.spec.containers[0].args", "/spec/template/spec/containers/0/args", "changed")],
        ),
        (
            "remove-sidecar",
            [("spec.template.spec.containers[1]", "/spec/template/spec/containers/1", "removed")],
        ),
        ("remove-finalizer", [("metadata.finalizers[0]", "/metadata/finalizers/0", "removed")]),
        (
            "label-managed-removed",
            [
                (
                    'metadata.labels["gitops.driftguard.io/managed"]',
                    "/metadata/labels/gitops.driftguard.io~1managed",
                    "removed",
                )
            ],
        ),
        (
            "apply-force-conflicts-new-image",
            [("spec.template.spec.containers[0].image", "/spec/template/spec/containers/0/image", "changed")],
        ),
        ("replace-configmap", [("data.color", "/data/color", "changed")]),
    ],
)
def test_a_request_that_changes_or_removes_git_owned_fields_reports_each_with_path_and_pointer(
    name: str, expected: list[tuple[str, str, str]]
) -> None:
    assert drift_of(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "patch-add-resources",  # a field inside a Git-owned container that Git does not set
        "rollout-restart",  # kubectl's restartedAt annotation on the pod template
        "annotate-unowned",
        "apply-force-conflicts-same-value",  # the same value: ownership is shared, not taken
    ],
)
def test_a_request_that_touches_no_git_owned_field_is_no_drift(name: str) -> None:
    assert drift_of(name) == []


def test_a_reset_of_managed_fields_takes_over_every_field_git_owned() -> None:
    drift = drift_of("reset-managed-fields")
    assert {how for _, _, how in drift} == {"taken over"}
    paths = [path for path, _, _ in drift]
    assert "spec.template.spec.containers[0].image" in paths
    assert "spec.replicas" in paths
    assert 'metadata.annotations["gitops.driftguard.io/tracking-id"]' in paths
    assert len(paths) > 10


def test_a_field_taken_over_with_force_conflicts_counts_even_when_the_value_is_kept() -> None:
    req = request("apply-force-conflicts-new-image")
    new: dict[str, Any] = req["object"]
    # Same value as before, yet the controller no longer owns the image: another manager took it.
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.25"
    drift = fields.drifted(req["oldObject"], new)
    assert [(d.path, d.how) for d in drift] == [("spec.template.spec.containers[0].image", "taken over")]


def test_drift_is_listed_in_document_order_with_numeric_indexes() -> None:
    tokens: list[tuple[str | int, ...]] = [("spec", "x", 10), ("spec", "x", 2), ("metadata", "a")]
    ordered = sorted((fields.Drift(t, "changed") for t in tokens), key=lambda d: fields._order(d.tokens))
    assert [d.path for d in ordered] == ["metadata.a", "spec.x[2]", "spec.x[10]"]


def test_owns_says_whether_git_sets_spec_replicas() -> None:
    with_replicas, without = review("parent-api"), review("parent-web")
    assert fields.owns(with_replicas, "/spec/replicas")
    assert not fields.owns(without, "/spec/replicas")
    assert fields.owns(without, "/spec/template"), "a parent of owned fields"


@pytest.mark.parametrize(
    ("tokens", "path", "pointer"),
    [
        (("spec", "replicas"), "spec.replicas", "/spec/replicas"),
        (("data", "app.conf"), 'data["app.conf"]', "/data/app.conf"),
        (
            ("metadata", "annotations", "a/b~c"),
            'metadata.annotations["a/b~c"]',
            "/metadata/annotations/a~1b~0c",
        ),
        (("items", 3, "name"), "items[3].name", "/items/3/name"),
    ],
)
def test_paths_read_as_kube_writes_them_and_pointers_follow_rfc_6901(
    tokens: tuple[str | int, ...], path: str, pointer: str
) -> None:
    assert fields.human(tokens) == path
    assert fields.pointer(tokens) == pointer
    assert fields.pointer_tokens(pointer) == [str(t) for t in tokens]


@pytest.mark.parametrize(
    ("pointer", "allowed", "expected"),
    [
        ("/spec/replicas", ["/spec/replicas"], True),
        ("/spec/template/spec/containers/0/image", ["/spec/template"], True),
        ("/spec/template/spec/containers/0/image", ["/spec/template/"], True),
        ("/spec/replicasets", ["/spec/replicas"], False),
        ("/spec/replicas", [], False),
    ],
)
def test_an_allowed_pointer_covers_its_field_and_everything_under_it(
    pointer: str, allowed: list[str], expected: bool
) -> None:
    assert fields.covered(pointer, allowed) is expected


@pytest.mark.parametrize(
    "fields_v1",
    [
        None,
        [],
        "f:spec",
        {"f:spec": None},
        {"f:spec": {"k:{not json": {}}},
        {"x:weird": {}},
        {"f:a": {"i:zz": {}}},
    ],
)
def test_odd_managed_fields_never_raise(fields_v1: Any) -> None:
    obj: dict[str, Any] = {
        "metadata": {"managedFields": [{"manager": "driftguard-controller", "operation": "Apply",
                                        "fieldsV1": fields_v1}]},
        "spec": [1, 2],
    }  # fmt: skip
    fields.drifted(obj, {"metadata": {}, "spec": {"a": 1}})
    fields.drifted(obj, {"metadata": {"managedFields": "nonsense"}})
    fields.owns(obj, "/spec/replicas")


def test_a_list_item_by_index_key_or_value_is_found_and_a_missing_one_is_not() -> None:
    obj = {"a": [{"name": "x", "port": 1}, {"name": "y", "port": 2}], "s": ["p", "q"]}
    assert fields.locate(obj, ("f:a", 'k:{"name":"y","port":2}', "f:port")) == fields.Located(
        2, ("a", 1, "port")
    )
    assert fields.locate(obj, ("f:a", 'k:{"name":"z"}', ".")) is None
    assert fields.locate(obj, ("f:s", 'v:"q"')) == fields.Located("q", ("s", 1))
    assert fields.locate(obj, ("f:a", "i:0", "f:name")) == fields.Located("x", ("a", 0, "name"))
    assert fields.locate(obj, ("f:a", "i:7")) is None
