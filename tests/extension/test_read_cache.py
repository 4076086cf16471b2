"""Reads from the worker's watch-fed index (``Applications.reads``): answered from it while its
watch is healthy and once it holds this worker's own writes; from the storage otherwise. A deleted
Application never shows up again through this worker while the watch has not told the index."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from extension import resources
from extension.api import errors
from extension.guard.index import AppIndex, GuardedApp
from extension.resources import Applications, WriteOptions
from extension.settings import Settings
from tests.extension.test_app import APP, FakeStore


class CountingStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        return super().get(namespace, name)

    def list(self, namespace: str | None, resource_version: str | None = None) -> Any:
        self.reads += 1
        return super().list(namespace, resource_version)


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "READ_WAIT_SECONDS", 0.05)


def watched(index: AppIndex, store: CountingStore) -> None:
    """What the index's watch would have delivered by now: everything in the store."""
    items, rv = FakeStore.list(store, None)
    index.replace([GuardedApp.of(a) for a in items], items, rv)


def setup() -> tuple[CountingStore, AppIndex, Applications]:
    store, index = CountingStore(), AppIndex()
    apps = Applications(store, reads=index)
    return store, index, apps


def named(name: str) -> dict[str, Any]:
    body = copy.deepcopy(APP)
    body["metadata"]["name"] = name
    return body


def test_reads_come_from_the_index_once_it_holds_this_workers_writes() -> None:
    store, index, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    store.reads = 0
    assert apps.get("team-a", "shop")["metadata"]["name"] == "shop"
    items, rv = apps.list("team-a", lambda a: True)
    assert [a["metadata"]["name"] for a in items] == ["shop"]
    assert rv == str(store.rv), "the list's resourceVersion is the index's, to watch from"
    assert store.reads == 0


def test_a_write_the_index_has_not_seen_yet_is_read_from_the_storage() -> None:
    store, index, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    apps.patch("team-a", "shop", "application/merge-patch+json", {"metadata": {"labels": {"a": "1"}}},
               WriteOptions())  # fmt: skip
    store.reads = 0
    assert apps.get("team-a", "shop")["metadata"]["labels"] == {"a": "1"}, "read your writes"
    items, _ = apps.list(None, lambda a: True)
    assert items[0]["metadata"]["labels"] == {"a": "1"}
    assert store.reads == 2


def test_a_read_waits_for_the_watch_to_bring_this_workers_write() -> None:
    store, index, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    apps.patch("team-a", "shop", "application/merge-patch+json", {"metadata": {"labels": {"a": "1"}}},
               WriteOptions())  # fmt: skip
    store.reads = 0
    # The watch delivers the write a moment later, while the read waits.
    timer = threading.Timer(0.01, watched, (index, store))
    resources.READ_WAIT_SECONDS = 5.0
    timer.start()
    assert apps.get("team-a", "shop")["metadata"]["labels"] == {"a": "1"}
    timer.join()
    assert store.reads == 0, "answered from the index once the watch caught up"


def test_an_index_whose_watch_broke_is_not_read() -> None:
    store, index, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    store.apps[("team-a", "shop")]["metadata"]["labels"] = {"changed": "elsewhere"}
    index.failed("cannot list or watch Applications: connection refused")
    store.reads = 0
    assert apps.get("team-a", "shop")["metadata"]["labels"] == {"changed": "elsewhere"}
    assert store.reads == 1


def test_an_index_not_listed_yet_is_not_read() -> None:
    store, _, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    store.reads = 0
    assert apps.get("team-a", "shop")["metadata"]["name"] == "shop"
    assert store.reads == 1


def test_a_deletion_hides_the_application_until_the_index_sees_it_go() -> None:
    store, index, apps = setup()
    for name in ("shop", "cart"):
        apps.create("team-a", named(name), WriteOptions())
    watched(index, store)
    apps.delete("team-a", "shop", WriteOptions())
    assert index.latest("team-a", "shop") is not None, "the watch has not told the index yet"
    with pytest.raises(errors.APIError) as raised:
        apps.get("team-a", "shop")
    assert raised.value.code == 404
    assert [a["metadata"]["name"] for a in apps.list("team-a", lambda a: True)[0]] == ["cart"]


def test_a_namesake_created_elsewhere_after_a_deletion_is_not_hidden() -> None:
    store, index, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    apps.delete("team-a", "shop", WriteOptions())
    # Another replica creates it again; this worker's index hears of it.
    Applications(store).create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    assert apps.get("team-a", "shop")["metadata"]["name"] == "shop"


def test_a_list_from_a_resource_version_the_index_has_not_reached_reads_the_storage() -> None:
    store, index, apps = setup()
    apps.create("team-a", named("shop"), WriteOptions())
    watched(index, store)
    store.reads = 0
    apps.list("team-a", lambda a: True, resource_version=str(store.rv))
    apps.list("team-a", lambda a: True, resource_version="0")
    assert store.reads == 0
    apps.list("team-a", lambda a: True, resource_version=str(store.rv + 10))
    assert store.reads == 1


def test_the_index_wakes_a_waiting_read_as_the_watch_advances() -> None:
    index = AppIndex()
    index.replace([], [], "5")
    assert index.caught_up(5, 0) and not index.caught_up(6, 0.01)
    threading.Timer(0.01, index.seen, ("7",)).start()
    assert index.caught_up(7, 5.0)
    index.failed("watch broke")
    assert not index.caught_up(0, 0)


def test_consistent_reads_can_be_asked_for() -> None:
    assert Settings.from_env({}).consistent_reads is False
    assert Settings.from_env({"DRIFTGUARD_CONSISTENT_READS": "true"}).consistent_reads is True
    with pytest.raises(ValueError, match="DRIFTGUARD_CONSISTENT_READS must be true or false"):
        Settings.from_env({"DRIFTGUARD_CONSISTENT_READS": "yes please"})
