"""The OpenAPI v2 and v3 documents: what kubectl explain, apply and validation read from them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from extension.api import openapi, schema

V3 = openapi.openapi_v3_group_version()
V2 = openapi.openapi_v2()
DOCS = [pytest.param(V3, "#/components/schemas/", id="v3"), pytest.param(V2, "#/definitions/", id="v2")]
ACTIONS = {"get", "list", "watch", "post", "put", "patch", "delete", "deletecollection"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
GVK = {"group": schema.GROUP, "version": schema.VERSION, "kind": schema.KIND}


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def definitions(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"] if "components" in doc else doc["definitions"]
    return found


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of a schema, with its path; array items share their array's path."""
    yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from schema_nodes(sub, f"{path}.{key}" if path else key)
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}[*]")


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_every_operation_names_its_kubernetes_action_and_kind(doc: dict[str, Any], prefix: str) -> None:
    ops = list(operations(doc))
    assert len(ops) == 22  # 14 for Applications, 8 for AppProjects (no status, no operations)
    for path, method, op in ops:
        assert op["x-kubernetes-action"] in ACTIONS, (path, method)
        gvk = op["x-kubernetes-group-version-kind"]
        assert (gvk["group"], gvk["version"]) == (schema.GROUP, schema.VERSION), (path, method)
        assert gvk["kind"] in {
            schema.KIND,
            "AppProject",
            schema.SYNC_REQUEST_KIND,
            schema.ROLLBACK_REQUEST_KIND,
        }
        assert op["operationId"] and op["responses"]
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_every_ref_resolves_inside_the_document(doc: dict[str, Any], prefix: str) -> None:
    found = list(refs(doc))
    assert found
    for ref in found:
        assert ref.startswith(prefix), ref
        assert ref.removeprefix(prefix) in definitions(doc), ref


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_the_documents_serve_every_verb_kubectl_uses(doc: dict[str, Any], prefix: str) -> None:
    base = "/apis/gitops.driftguard.io/v1alpha1"
    one = f"{base}/namespaces/{{namespace}}/applications/{{name}}"
    project = f"{base}/namespaces/{{namespace}}/appprojects/{{name}}"
    actions = {(path, op["x-kubernetes-action"]) for path, _, op in operations(doc)}
    assert actions == {
        (f"{base}/namespaces/{{namespace}}/appprojects", "list"),
        (f"{base}/namespaces/{{namespace}}/appprojects", "post"),
        (f"{base}/namespaces/{{namespace}}/appprojects", "deletecollection"),
        (project, "get"),
        (project, "put"),
        (project, "patch"),
        (project, "delete"),
        (f"{base}/appprojects", "list"),
        (f"{base}/namespaces/{{namespace}}/applications", "list"),
        (f"{base}/namespaces/{{namespace}}/applications", "post"),
        (f"{base}/namespaces/{{namespace}}/applications", "deletecollection"),
        (one, "get"),
        (one, "put"),
        (one, "patch"),
        (one, "delete"),
        (f"{one}/status", "get"),
        (f"{one}/status", "put"),
        (f"{one}/status", "patch"),
        (f"{one}/sync", "post"),
        (f"{one}/rollback", "post"),
        (f"{one}/diff", "post"),
        (f"{base}/applications", "list"),
    }


def test_patches_accept_json_merge_and_apply_patches_but_not_strategic_merge() -> None:
    # kubectl apply sends a strategic merge patch whenever the PATCH operation lists one.
    expected = {"application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"}
    for path, method, op in operations(V3):
        if method == "patch":
            assert set(op["requestBody"]["content"]) == expected, path
    for path, method, op in operations(V2):
        if method == "patch":
            assert set(op["consumes"]) == expected, path


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_application_writes_offer_field_validation_so_kubectl_validates_on_the_server(
    doc: dict[str, Any], prefix: str
) -> None:
    # kubectl asks the server to validate only if the PATCH operation itself lists the parameter.
    writes = [
        (path, method, op)
        for path, method, op in operations(doc)
        if op["x-kubernetes-action"] in {"post", "put", "patch"}
        and op["x-kubernetes-group-version-kind"] == GVK
    ]
    assert len(writes) == 5
    for path, method, op in writes:
        names = {(p["name"], p["in"]) for p in op["parameters"]}
        assert ("fieldValidation", "query") in names, (path, method)


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_path_parameters_are_declared_on_every_operation(doc: dict[str, Any], prefix: str) -> None:
    for path, method, op in operations(doc):
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == {name for name in ("namespace", "name") if f"{{{name}}}" in path}, (path, method)
        assert all(p.get("required") for p in op["parameters"] if p["in"] == "path")


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_application_and_its_list_carry_their_group_version_kind(doc: dict[str, Any], prefix: str) -> None:
    defs = definitions(doc)
    app = defs["io.driftguard.gitops.v1alpha1.Application"]
    assert app["x-kubernetes-group-version-kind"] == [GVK]
    app_list = defs["io.driftguard.gitops.v1alpha1.ApplicationList"]
    assert app_list["x-kubernetes-group-version-kind"] == [{**GVK, "kind": "ApplicationList"}]
    assert app_list["properties"]["items"]["items"] == {
        "$ref": f"{prefix}io.driftguard.gitops.v1alpha1.Application"
    }
    assert f"{prefix}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in json.dumps(
        app["properties"]["metadata"]
    )
    assert f"{prefix}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" in json.dumps(
        app_list["properties"]["metadata"]
    )


def test_metadata_keeps_its_description_in_v3_by_wrapping_the_ref() -> None:
    metadata = V3["components"]["schemas"]["io.driftguard.gitops.v1alpha1.Application"]["properties"][
        "metadata"
    ]
    assert metadata["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert metadata["description"]


@pytest.mark.parametrize(("doc", "prefix"), DOCS)
def test_object_meta_documents_the_fields_kubectl_explain_shows(doc: dict[str, Any], prefix: str) -> None:
    meta = definitions(doc)["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    fields = {
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "managedFields",
    }
    assert fields <= set(meta["properties"])
    assert all(meta["properties"][name]["description"] for name in fields)
    for name in ("ListMeta", "Status", "ManagedFieldsEntry", "OwnerReference", "Time"):
        assert definitions(doc)[f"io.k8s.apimachinery.pkg.apis.meta.v1.{name}"]["type"] in {
            "object",
            "string",
        }


def test_every_source_field_has_a_description_for_kubectl_explain() -> None:
    app = V3["components"]["schemas"]["io.driftguard.gitops.v1alpha1.Application"]
    source = app["properties"]["spec"]["properties"]["source"]
    nodes = dict(schema_nodes(source, "spec.source"))
    assert {
        "spec.source.repoURL",
        "spec.source.helm.parameters[].forceString",
        "spec.source.directory.recurse",
    } <= set(nodes)
    for path, node in nodes.items():
        assert node.get("description", "").strip(), path


def test_the_application_schema_is_structural_and_described_everywhere() -> None:
    for path, node in schema_nodes(schema.APPLICATION_SCHEMA):
        assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        # A CRD's metadata may say nothing but its type; the documents describe it as ObjectMeta.
        assert node.get("description", "").strip() or path == "metadata", path
        assert "$ref" not in node, path
        for key in node.get("required", ()):
            assert key in node["properties"], path
        if "properties" in node:
            assert "additionalProperties" not in node, path


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("spec.driftGuard.mode", ["enforce", "warn", "off"]),
        ("status.sync.status", ["Synced", "OutOfSync", "Unknown"]),
        ("status.health.status", ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]),
    ],
)
def test_the_schema_lists_the_allowed_values_of_each_enum(path: str, values: list[str]) -> None:
    assert dict(schema_nodes(schema.APPLICATION_SCHEMA))[path]["enum"] == values


def test_the_documents_are_plain_json() -> None:
    for doc in (V3, V2, openapi.openapi_v3_root("ABC")):
        assert json.loads(json.dumps(doc)) == doc
    assert V3["openapi"].startswith("3.0")
    assert V2["swagger"] == "2.0"


def test_the_v3_root_points_kube_apiserver_at_our_group_version_with_its_hash() -> None:
    assert openapi.openapi_v3_root("F00D") == {
        "paths": {
            "apis/gitops.driftguard.io/v1alpha1": {
                "serverRelativeURL": "/openapi/v3/apis/gitops.driftguard.io/v1alpha1?hash=F00D"
            }
        }
    }


def test_the_content_hash_is_stable_and_changes_with_the_content() -> None:
    first = openapi.content_hash(openapi.openapi_v3_group_version())
    assert first == openapi.content_hash(openapi.openapi_v3_group_version())
    assert len(first) == 128
    assert first == first.upper()
    assert openapi.content_hash({"a": 1, "b": 2}) == openapi.content_hash({"b": 2, "a": 1})
    assert openapi.content_hash({"a": 1}) != openapi.content_hash({"a": 2})
    assert openapi.content_hash(V2) != first


def test_building_a_document_twice_shares_nothing_with_the_schema() -> None:
    doc = openapi.openapi_v3_group_version()
    doc["components"]["schemas"]["io.driftguard.gitops.v1alpha1.Application"]["properties"]["spec"]["x"] = 1
    assert "x" not in schema.APPLICATION_SCHEMA["properties"]["spec"]
    assert openapi.openapi_v3_group_version() == V3
