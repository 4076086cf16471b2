"""The storage against the real control plane: the metadata-only list that tells a LIST whether
the index is as new, and the namespace label that every read selects by."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from extension.kubehttp import KubeHTTP
from extension.storage import NAMESPACE_LABEL, Store, storage_name
from tests.extension.test_app import APP

pytestmark = pytest.mark.cluster


def stored(name: str, namespace: str) -> dict[str, object]:
    app = copy.deepcopy(APP)
    app["metadata"] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    return app


def test_versions_name_what_a_full_list_holds(api_client: client.ApiClient, namespace: str) -> None:
    store = Store(KubeHTTP(api_client), namespace)  # the test's namespace holds the ConfigMaps
    shop = store.create(stored("shop", "team-a"))
    web = store.create(stored("web", "team-a"))
    other = store.create(stored("web", "team-b"))
    versions, list_rv = store.versions("team-a")
    assert versions == {shop["metadata"]["resourceVersion"], web["metadata"]["resourceVersion"]}
    assert int(list_rv) >= int(other["metadata"]["resourceVersion"]), "the list's version is current"
    assert store.versions(None)[0] == versions | {other["metadata"]["resourceVersion"]}
    assert store.versions("team-c")[0] == frozenset()
    items, _ = store.list("team-a")
    assert {a["metadata"]["resourceVersion"] for a in items} == versions


def test_the_namespace_label_names_the_application_s_namespace(
    api_client: client.ApiClient, namespace: str
) -> None:
    store = Store(KubeHTTP(api_client), namespace)
    store.create(stored("shop", "team-a"))
    # Edited by hand to disagree with the Application inside it: every read goes by the label.
    patch = {"metadata": {"labels": {NAMESPACE_LABEL: "team-b"}}}
    client.CoreV1Api(api_client).patch_namespaced_config_map(storage_name("team-a", "shop"), namespace, patch)
    (moved,), _ = store.list("team-b")
    assert moved["metadata"]["namespace"] == "team-b"
    assert store.list("team-a")[0] == []
    assert store.versions("team-b")[0] == {moved["metadata"]["resourceVersion"]}
