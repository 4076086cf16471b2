"""``kubectl driftguard diff --local``'s comparison, from plain dicts; and its command line."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import pytest

from controller import plan
from extension.api.tracking import FIELD_MANAGER, AppKey, ObjectRef
from extension.cli import compare, local, render
from extension.cli.client import CLIError
from extension.cli.main import main

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
KEY = AppKey("team", "shop")

# A slice of kube-apiserver's OpenAPI v3 for apps/v1, written as it is: $ref inside allOf, keyed
# lists, a key with a default.
APPS = {"components": {"schemas": {
    "io.k8s.api.apps.v1.Deployment": {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}],
        "properties": {
            "metadata": {"allOf": [{"$ref": "#/components/schemas/meta.ObjectMeta"}], "default": {}},
            "spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]},
        },
    },
    "meta.ObjectMeta": {"type": "object", "properties": {"name": {"type": "string"}}},
    "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "properties": {
        "replicas": {"type": "integer"},
        "template": {"type": "object", "properties": {
            "spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]},
        }},
    }},
    "io.k8s.api.core.v1.PodSpec": {"type": "object", "properties": {"containers": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}], "default": {}},
    }}},
    "io.k8s.api.core.v1.Container": {"type": "object", "description": "one container", "properties": {
        "name": {"type": "string"}, "image": {"type": "string"}, "imagePullPolicy": {"type": "string"},
        "ports": {
            "type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
            "items": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.ContainerPort"}]},
        },
    }},
    "io.k8s.api.core.v1.ContainerPort": {"type": "object", "properties": {
        "containerPort": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"},
    }},
    # A type that contains itself, as JSONSchemaProps does.
    "x.Node": {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "x", "kind": "Node", "version": "v1"}],
        "properties": {"child": {"allOf": [{"$ref": "#/components/schemas/x.Node"}]}},
    },
}}}  # fmt: skip


def app(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": "shop"},
        "spec": {"destination": {"namespace": "team"}},
        "status": status,
    }


def prepared(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    return plan.prepare(list(objects), KEY, "team", lambda group, kind: True)


def config_map(name: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": data}


def applied_by_controller(
    obj: dict[str, Any], fields: dict[str, Any], **others: dict[str, Any]
) -> dict[str, Any]:
    """``obj`` as live, with the controller's apply owning ``fields`` and other managers theirs."""
    live = {**obj, "metadata": {**obj["metadata"], "uid": "u1", "resourceVersion": "7"}}
    live["metadata"]["managedFields"] = [
        {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsV1": fields},
        *(
            {"manager": m, "operation": "Update", "apiVersion": "v1", "fieldsV1": f}
            for m, f in others.items()
        ),
    ]
    return live


def changed_lines(entry: dict[str, Any]) -> list[str]:
    return [
        line
        for line in entry.get("diff", "").splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]


def no_schema(obj: dict[str, Any]) -> None:
    return None


def test_kind_schemas_are_resolved_from_openapi_v3_and_cut_where_a_type_contains_itself() -> None:
    schema = compare.kind_schema(APPS, "apps", "v1", "Deployment")
    assert schema is not None
    containers = schema["properties"]["spec"]["properties"]["template"]["properties"]["spec"]["properties"][
        "containers"
    ]
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    port = containers["items"]["properties"]["ports"]["items"]["properties"]["protocol"]
    assert port == {"type": "string", "default": "TCP"}
    assert "description" not in containers["items"]
    assert compare.kind_schema(APPS, "x", "v1", "Node") == {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "x", "kind": "Node", "version": "v1"}],
        "properties": {"child": {}},
    }
    assert compare.kind_schema(APPS, "apps", "v1", "StatefulSet") is None
    assert compare.kind_schema(None, "", "v1", "ConfigMap") is None


def deployment(image: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": image, "ports": [{"containerPort": 80}], **container},
        ]}}},
    }  # fmt: skip


def test_an_apply_merges_keyed_lists_so_that_server_defaults_are_no_difference() -> None:
    (desired,) = prepared(deployment("web:2"))
    live_obj = prepared(deployment("web:1", imagePullPolicy="IfNotPresent"))[0]
    live_obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    fields = {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
        'k:{"name":"web"}': {".": {}, "f:name": {}, "f:image": {}, "f:ports": {
            'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
        }},
    }}}}}  # fmt: skip
    live = compare.Live({ObjectRef.of(desired): applied_by_controller(live_obj, fields)})
    schema = compare.kind_schema(APPS, "apps", "v1", "Deployment")
    (entry,) = compare.entries(app(), [desired], live, lambda obj: schema, NOW)
    # Only the image: the defaulted pull policy and port protocol are kept, as the server keeps them.
    assert entry["status"] == "configured", entry
    assert entry["message"] == "fields: spec.template.spec.containers[0].image"
    assert changed_lines(entry) == ["-      - image: web:1", "+      - image: web:2"]
    assert entry["diff"].startswith("--- live/Deployment.apps team/web\n+++ desired/Deployment.apps team/web")
    # The same without a schema: lists are replaced, so the defaults show as removed.
    (untyped,) = compare.entries(app(), [desired], live, no_schema, NOW)
    assert "imagePullPolicy" in untyped["message"]


def test_what_the_controller_set_before_and_git_no_longer_sets_goes_and_other_managers_fields_stay() -> None:
    (desired,) = prepared(config_map("greeting", {"A": "1"}))
    before = prepared(config_map("greeting", {"A": "1", "B": "2", "C": "3"}))[0]
    live_obj = applied_by_controller(
        before, {"f:data": {"f:A": {}, "f:B": {}}}, **{"kubectl-edit": {"f:data": {"f:C": {}}}}
    )
    live = compare.Live({ObjectRef.of(desired): live_obj})
    (entry,) = compare.entries(app(), [desired], live, no_schema, NOW)
    assert (entry["status"], entry["message"]) == ("configured", "fields: data.B")
    assert changed_lines(entry) == ["-  B: '2'"]


def test_entries_as_the_server_diff_records_them() -> None:
    same, new, changed, glass, foreign, unreadable = prepared(
        config_map("same", {"A": "1"}),
        config_map("new", {"A": "1"}),
        config_map("changed", {"A": "2"}),
        config_map("glass", {"A": "2"}),
        config_map("foreign", {"A": "1"}),
        config_map("unreadable", {"A": "1"}),
    )
    refs = {
        name: ObjectRef("", "ConfigMap", "team", name)
        for name in ("same", "changed", "glass", "gone", "kept")
    }
    others = plan.prepare(
        [config_map("foreign", {"A": "1"})], AppKey("team", "other"), "team", lambda g, k: True
    )
    gone, kept = prepared(config_map("gone", {"A": "1"}), config_map("kept", {"A": "1"}))
    kept["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] = "Prune=false"
    live = compare.Live(
        {
            refs["same"]: same, refs["changed"]: prepared(config_map("changed", {"A": "1"}))[0],
            refs["glass"]: prepared(config_map("glass", {"A": "1"}))[0], ObjectRef.of(foreign): others[0],
            refs["gone"]: gone, refs["kept"]: kept,
        },
        {ObjectRef.of(unreadable): 'Error from server (Forbidden): configmaps "unreadable" is forbidden'},
    )  # fmt: skip
    inventory = [
        {"group": "", "kind": "ConfigMap", "namespace": "team", "name": n, "version": "v1"}
        for n in ("same", "changed", "glass", "gone", "kept", "unreadable")
    ]
    status = app(
        resources=inventory,
        drift={"breakGlass": [
            {"kind": "ConfigMap", "namespace": "team", "name": "glass", "expiresAt": "2030-01-01T01:00:00Z"},
            {"kind": "ConfigMap", "namespace": "team", "name": "changed",
             "expiresAt": "2029-12-31T00:00:00Z"},
        ]},
    )  # fmt: skip
    found = compare.entries(status, [same, new, changed, glass, foreign, unreadable], live, no_schema, NOW)
    assert [(e["name"], e["status"], e["message"]) for e in found] == [
        ("changed", "configured", "fields: data.A"),  # its break-glass has expired
        ("glass", "skipped", "break-glass is active"),
        ("new", "created", ""),
        ("same", "unchanged", ""),
        ("foreign", "failed", "ConfigMap team/foreign is managed by Application team/other; refusing to "
         "take it over"),
        ("gone", "pruned", ""),
        ("kept", "skipped", "left in place: pruning is off or Prune=false"),
    ]  # fmt: skip
    by_name = {e["name"]: e for e in found}
    assert changed_lines(by_name["changed"]) == ["-  A: '1'", "+  A: '2'"]
    assert (
        "+  A: '1'" in changed_lines(by_name["new"])
        and changed_lines(by_name["gone"])[0] == "-apiVersion: v1"
    )
    assert compare.exit_code(found, live.errors) == 2
    assert compare.exit_code([e for e in found if e["status"] != "failed"], {}) == 1
    assert compare.exit_code([by_name["same"]], {}) == 0
    # Printed as the server's diff is: unchanged objects left out.
    text, changed_any = render.diffs({"syncResult": {"resources": found}}, colour=False)
    assert changed_any and "===== ConfigMap team/new (created)" in text and "team/same" not in text


def test_ignore_differences_and_a_refused_prune_are_the_controllers() -> None:
    (desired,) = prepared(config_map("a", {"A": "2", "B": "1"}))
    live_obj = prepared(config_map("a", {"A": "1", "B": "1"}))[0]
    application = app(
        resources=[{"kind": "ConfigMap", "namespace": "team", "name": n} for n in ("a", "b", "c")]
    )
    application["spec"]["ignoreDifferences"] = [{"kind": "ConfigMap", "jsonPointers": ["/data/A"]}]
    gone = prepared(config_map("b", {}), config_map("c", {}))
    live = compare.Live({ObjectRef.of(desired): live_obj, **{ObjectRef.of(o): o for o in gone}})
    found = compare.entries(application, [desired], live, no_schema, NOW)
    assert [(e["name"], e["status"]) for e in found] == [
        ("a", "unchanged"),
        ("b", "skipped"),
        ("c", "skipped"),
    ]
    assert "confirm it with a sync request" in found[1]["message"]  # 2 of 3: more than half


def test_local_takes_neither_revision_nor_refresh(capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--revision", "main"], ["--refresh"]):
        with pytest.raises(SystemExit) as exited:
            main(["diff", "shop", "--local", ".", *extra])
        assert exited.value.code == 2
        assert "--local compares a working tree" in capsys.readouterr().err


def test_the_repository_is_the_git_top_level_of_the_directory_else_the_directory(tmp_path: Path) -> None:
    app_dir = tmp_path / "repo" / "apps" / "shop"
    app_dir.mkdir(parents=True)
    assert local.repository(str(app_dir)) == (app_dir.resolve(), ".")
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    assert local.repository(str(app_dir)) == ((tmp_path / "repo").resolve(), "apps/shop")
    assert local.repository(str(tmp_path / "repo")) == ((tmp_path / "repo").resolve(), ".")
    with pytest.raises(CLIError, match="not a directory"):
        local.repository(str(tmp_path / "missing"))
