"""How the storage's watch events become the Applications' (no cluster needed): a stored ConfigMap
edited by hand so that it no longer holds the Application its name and label say is no
Application to any reader, and never hides one that is."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from extension.api import jsoncodec
from extension.storage import NAMESPACE_LABEL, STORAGE_LABEL, STORAGE_VALUE, Store, storage_name
from tests.extension.test_app import APP


def app(namespace: str, name: str) -> dict[str, Any]:
    body = copy.deepcopy(APP)
    body["metadata"] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    return body


def configmap(name: str, label: str, held: dict[str, Any], rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "driftguard-system", "resourceVersion": rv,
                     "labels": {STORAGE_LABEL: STORAGE_VALUE, NAMESPACE_LABEL: label}},
        "data": {"application.json": json.dumps(held)},
    }  # fmt: skip


class Recorded:
    """What kube-apiserver answers to a metadata-only list: the given ConfigMaps."""

    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = items

    def send(self, method: str, path: str, **kw: Any) -> Any:
        listed = {"kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": "50"},
                  "items": [{"metadata": i["metadata"]} for i in self.items]}  # fmt: skip
        return type("Response", (), {"status": 200, "data": jsoncodec.dumps(listed)})()


def translated(store: Store, kind: str, cm: dict[str, Any]) -> dict[str, Any]:
    return store._translate_event({"type": kind, "object": cm})


def test_an_untouched_record_passes_as_it_is() -> None:
    store = Store(None, "driftguard-system")  # type: ignore[arg-type]
    for kind in ("ADDED", "MODIFIED", "DELETED"):
        event = translated(store, kind, configmap("team-a.shop", "team-a", app("team-a", "shop"), "7"))
        assert event["type"] == kind and event["object"]["metadata"]["name"] == "shop"
    long_name = "x" * 250  # stored under a digest
    digest = storage_name("team-a", long_name)
    event = translated(store, "MODIFIED", configmap(digest, "team-a", app("team-a", long_name), "8"))
    assert event["type"] == "MODIFIED"


def test_a_copy_under_another_name_is_nothing_to_a_watcher() -> None:
    store = Store(None, "driftguard-system")  # type: ignore[arg-type]
    event = translated(store, "ADDED", configmap("team-a.copy", "team-a", app("team-a", "shop"), "9"))
    assert event["type"] == "BOOKMARK" and event["object"]["metadata"]["resourceVersion"] == "9"


def test_a_record_edited_away_is_its_application_s_deletion() -> None:
    store = Store(None, "driftguard-system")  # type: ignore[arg-type]
    relabelled = translated(
        store, "MODIFIED", configmap("team-a.shop", "team-b", app("team-a", "shop"), "10")
    )
    renamed = translated(store, "MODIFIED", configmap("team-a.shop", "team-a", app("team-a", "other"), "11"))
    for event in (relabelled, renamed):
        meta = event["object"]["metadata"]
        assert (event["type"], meta["namespace"], meta["name"]) == ("DELETED", "team-a", "shop")


def test_a_digest_record_edited_away_asks_for_a_new_list() -> None:
    store = Store(None, "driftguard-system")  # type: ignore[arg-type]
    digest = storage_name("team-a", "x" * 250)
    event = translated(store, "MODIFIED", configmap(digest, "team-a", app("team-a", "other"), "12"))
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


def test_a_list_s_versions_leave_out_what_no_read_counts(caplog: pytest.LogCaptureFixture) -> None:
    good = configmap("team-a.shop", "team-a", app("team-a", "shop"), "20")
    copied = configmap("team-a.copy", "team-a", app("team-a", "shop"), "21")
    store = Store(Recorded(good, copied), "driftguard-system")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="extension.storage"):
        translated(store, "ADDED", copied)  # as the index's watch sees it arrive
        translated(store, "ADDED", copied)
    assert store.versions("team-a")[0] == {"20"}
    assert len([r for r in caplog.records if "team-a.copy" in r.getMessage()]) == 1, "logged once"
    translated(store, "DELETED", copied)
    assert store.versions("team-a")[0] == {"20", "21"}, "forgotten once deleted"
