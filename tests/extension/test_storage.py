"""The storage against the real control plane: the metadata-only list that tells a LIST whether
the index is as new, and a ConfigMap edited by hand to disagree with the Application it holds."""

from __future__ import annotations

import copy
import json

import pytest
from kubernetes import client

from extension.api import errors
from extension.kubehttp import KubeHTTP
from extension.storage import METADATA_LIST, NAMESPACE_LABEL, Store, storage_name
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


def test_the_versions_are_read_as_metadata_only(api_client: client.ApiClient, namespace: str) -> None:
    http = KubeHTTP(api_client)
    Store(http, namespace).create(stored("shop", "team-a"))
    response = http.send("GET", f"/api/v1/namespaces/{namespace}/configmaps", accept=METADATA_LIST)
    found = json.loads(response.data)
    assert found["kind"] == "PartialObjectMetadataList"
    assert "data" not in found["items"][0]


def test_a_configmap_edited_to_name_another_namespace_is_no_application(
    api_client: client.ApiClient, namespace: str
) -> None:
    store = Store(KubeHTTP(api_client), namespace)
    created = store.create(stored("shop", "team-a"))
    # Its namespace label edited by hand to disagree with its name and the Application inside.
    patch = {"metadata": {"labels": {NAMESPACE_LABEL: "team-b"}}}
    client.CoreV1Api(api_client).patch_namespaced_config_map(storage_name("team-a", "shop"), namespace, patch)
    assert store.list(None)[0] == [], "in a list of all namespaces (the index's relist)"
    for where in ("team-a", "team-b"):
        assert store.list(where)[0] == [], f"listed in {where}"
        with pytest.raises(errors.APIError) as missing:
            store.get(where, "shop")
        assert missing.value.code == 404
    # Whoever watched it (the index, a kubectl -w) lets it go.
    events = store.watch(None, created["metadata"]["resourceVersion"], 10)
    event = next(e for e in events if e["type"] != "BOOKMARK")
    events.close()  # type: ignore[attr-defined]
    assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "shop")


def test_a_copied_configmap_is_no_application_and_hides_none(
    api_client: client.ApiClient, namespace: str
) -> None:
    store = Store(KubeHTTP(api_client), namespace)
    created = store.create(stored("shop", "team-a"))
    core = client.CoreV1Api(api_client)
    original = core.read_namespaced_config_map(storage_name("team-a", "shop"), namespace)
    copy_of = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="team-a.copy", labels=original.metadata.labels), data=original.data
    )
    copied = core.create_namespaced_config_map(namespace, copy_of)
    (listed,), _ = store.list("team-a")
    assert listed["metadata"]["uid"] == created["metadata"]["uid"], "the original alone"
    assert store.versions("team-a")[0] == {created["metadata"]["resourceVersion"]}, "as a LIST compares"
    # The copy's arrival changes nothing for a watcher: the original is not taken away.
    events = store.watch(None, created["metadata"]["resourceVersion"], 10)
    event = next(events)
    events.close()  # type: ignore[attr-defined]
    assert (event["type"], event["object"]["metadata"]["resourceVersion"]) == (
        "BOOKMARK",
        copied.metadata.resource_version,
    ), "the copy's arrival, as a bookmark"
