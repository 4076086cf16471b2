"""managedFields and server-side apply against kube-apiserver's own answers: each case of
testdata/server-side-apply.yaml runs through our verbs (over an in-memory store), and every answer
and the object it leaves must equal what kube-apiserver recorded for a CRD with the same schema
(hack/record-apply-cases.py). Then the pure parts, case by case."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from extension.api import errors, fieldsets, managed_fields
from extension.api.kinds import APPLICATIONS
from extension.applications import Applications
from extension.resources import WriteOptions
from tests.extension.test_app import FakeStore

TESTDATA = Path(__file__).parent / "testdata"
CASES = yaml.safe_load((TESTDATA / "server-side-apply.yaml").read_text())
EXPECTED = json.loads((TESTDATA / "server-side-apply.expected.json").read_text())
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
SCHEMA = APPLICATIONS.typed_schema


def run_step(apps: Applications, step: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": APPLICATIONS.api_version, "kind": "Application", **step["config"]}
    body.setdefault("metadata", {})["name"] = "shop"
    manager = step.get("apply") or step.get("patch") or step["create"]
    opts = WriteOptions(field_manager=manager, field_validation="Strict")
    try:
        if "create" in step:
            result = apps.create("team-a", body, opts)
        elif "patch" in step:
            result = apps.patch("team-a", "shop", "application/merge-patch+json", step["config"], opts)
        else:
            result = apps.apply(
                "team-a", "shop", body, opts, force=bool(step.get("force")), may_create=lambda: None,
                status=step.get("subresource") == "status",
            )  # fmt: skip
    except errors.APIError as exc:
        return {"code": exc.code, "message": exc.message}
    return {"code": result.code}


def final(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "metadata": {k: meta[k] for k in ("labels", "annotations", "finalizers", "generation") if k in meta},
        "spec": obj.get("spec"),
        "status": obj.get("status"),
        "managedFields": sorted(
            [e["manager"], e["operation"], e.get("subresource", ""), "time" in e, e["fieldsV1"]]
            for e in meta["managedFields"]
        ),
    }


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_case_answers_and_ends_as_kube_apiserver_did(case: dict[str, Any]) -> None:
    store = FakeStore()
    apps = Applications(store, clock=lambda: NOW)
    answers = [run_step(apps, step) for step in case["steps"]]
    expected = EXPECTED[case["name"]]
    for index, step in enumerate(case["steps"]):
        if "instead" in step:
            # Where kube-apiserver's answer is a defect (500 for bad input), ours is a 4xx with the
            # same explanation: the case says which code, and the message must end as kube's does.
            kube = expected["steps"][index]
            assert answers[index]["code"] == step["instead"], answers[index]
            assert answers[index]["message"].endswith(kube["message"].split("): ", 1)[-1]), answers[index]
            answers[index] = kube
    assert answers == expected["steps"]
    assert final(store.get("team-a", "shop")) == expected["final"]


# --- the pure parts -----------------------------------------------------------------------------
def test_fields_v1_round_trips_members_with_children() -> None:
    paths = {("f:spec",), ("f:spec", "f:project"), ("f:status", "f:conditions", 'k:{"type":"Ready"}'),
             ("f:status", "f:conditions", 'k:{"type":"Ready"}', "f:status")}  # fmt: skip
    encoded = fieldsets.encode(paths)
    assert encoded == {
        "f:spec": {".": {}, "f:project": {}},
        "f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}}}},
    }
    assert fieldsets.decode(encoded) == paths
    # Keys are compared by their meaning, not their spelling.
    assert fieldsets.decode({'k:{ "type" : "Ready" }': {}}) == {('k:{"type":"Ready"}',)}
    with pytest.raises(ValueError, match="unknown prefix"):
        fieldsets.decode({"x:y": {}})


def test_a_set_merges_item_by_item_and_an_atomic_list_is_replaced() -> None:
    live = {"spec": {"syncPolicy": {"syncOptions": ["A", "B"]}, "source": {"helm": {"valueFiles": ["x"]}}}}
    config = {"spec": {"syncPolicy": {"syncOptions": ["C", "A"]}, "source": {"helm": {"valueFiles": ["y"]}}}}
    merged = fieldsets.merge(live, config, SCHEMA)
    assert merged["spec"]["syncPolicy"]["syncOptions"] == ["C", "A", "B"]
    assert merged["spec"]["source"]["helm"]["valueFiles"] == ["y"]


def test_a_keyed_item_without_its_key_is_refused() -> None:
    with pytest.raises(fieldsets.FieldSetError, match="keyed by type has no type"):
        fieldsets.to_set({"status": {"conditions": [{"status": "True"}]}}, SCHEMA)


def test_a_conflict_names_each_field_and_its_owner_as_kube_apiserver() -> None:
    owner = managed_fields.Manager(
        "kubectl-edit", "Update", "", "gitops.driftguard.io/v1alpha1", None, frozenset()
    )
    applier = managed_fields.Manager(
        "team-a", "Apply", "", "gitops.driftguard.io/v1alpha1", None, frozenset()
    )
    one = managed_fields.ApplyConflict([(owner, ("f:spec", "f:project"))])
    assert one.message() == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using gitops.driftguard.io/v1alpha1: '
        ".spec.project"
    )
    two = managed_fields.ApplyConflict(
        [(owner, ("f:spec", "f:project")), (applier, ("f:status", "f:conditions", 'k:{"type":"Ready"}'))]
    )
    assert two.message().splitlines() == [
        'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using gitops.driftguard.io/v1alpha1:',
        "- .spec.project",
        'conflicts with "team-a":',
        '- .status.conditions[type="Ready"]',
    ]


def test_managed_fields_sent_by_a_client_must_be_well_formed() -> None:
    with pytest.raises(ValueError, match="operation"):
        managed_fields.decode([{"manager": "x", "operation": "Replace", "fieldsV1": {}}])
    with pytest.raises(ValueError, match="twice"):
        managed_fields.decode([{"manager": "x", "operation": "Apply", "fieldsV1": {}}] * 2)


def test_manager_names_default_to_the_user_agent() -> None:
    assert managed_fields.manager_from("kubectl-edit", "kubectl/v1.36.3 (linux/amd64)") == "kubectl-edit"
    assert managed_fields.manager_from(None, "kubectl/v1.36.3 (linux/amd64) kubernetes/abc") == "kubectl"
    assert managed_fields.manager_from(None, "") == "unknown"


def test_an_applied_configuration_is_one_object_without_aliases_and_dates_stay_strings() -> None:
    from extension.api import patches

    assert patches.decode_apply(b"spec: {source: {targetRevision: 2026-01-02}}") == {
        "spec": {"source": {"targetRevision": "2026-01-02"}}
    }
    bomb = b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b]\n'
    cases = [
        (bomb, "aliases"),
        (b"a: " + b"[" * 100_000, "nested too deeply"),
        (b"a: 1\n---\nb: 2\n", "one YAML or JSON object"),
        (b"- 1", "one YAML or JSON object"),
    ]
    for body, words in cases:
        with pytest.raises(errors.APIError) as refused:
            patches.decode_apply(body)
        assert refused.value.code == 400 and words in refused.value.message
