"""Reads from the worker's watch-fed index (``Applications.reads``), with kube-apiserver's
resourceVersion semantics: without one, the newest, so the storage (a LIST asks the storage only
which versions are newest, and the index answers once it holds exactly those); "0", any version, so
the index while its watch is healthy; another, not older than it, so the index once it has reached
it."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from extension import resources
from extension.applications import Applications
from extension.guard.index import AppIndex, GuardedApp
from extension.resources import WriteOptions
from tests.extension.test_app import APP, FakeStore
from tests.extension.test_write_cache import CountingStore

MERGE = "application/merge-patch+json"


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
    apps.create("team-a", copy.deepcopy(APP), WriteOptions())
    watched(index, store)
    store.reads = 0
    return store, index, apps


def labelled(apps: Applications) -> dict[str, Any]:
    """A write the index has not seen yet."""
    return apps.patch("team-a", "shop", MERGE, {"metadata": {"labels": {"a": "1"}}}, WriteOptions()).body


def test_a_read_without_a_resource_version_is_the_newest_from_the_storage() -> None:
    store, _, apps = setup()
    labelled(apps)
    store.reads = 0
    assert apps.get("team-a", "shop")["metadata"]["labels"] == {"a": "1"}
    items, rv = apps.list("team-a", lambda a: True)
    assert items[0]["metadata"]["labels"] == {"a": "1"} and rv == str(store.rv)
    assert store.version_reads == 1, "the LIST asked which versions are newest"
    assert store.reads == 2, "the index did not hold them, so the storage answered both"


def test_a_list_without_a_resource_version_is_served_by_an_index_holding_the_newest() -> None:
    store, index, apps = setup()
    web = apps.create("team-a", {**copy.deepcopy(APP), "metadata": {"name": "web"}}, WriteOptions()).body
    written = labelled(apps)
    watched(index, store)
    store.reads = 0
    items, rv = apps.list("team-a", lambda a: True)
    assert [a["metadata"] for a in items] == [written["metadata"], web["metadata"]]
    assert rv == str(store.rv), "the storage's list version, to watch from"
    assert apps.list("team-z", lambda a: True)[0] == []
    assert (store.reads, store.version_reads) == (0, 2)


class Waits:
    """Counts the index's waits for its watch; ``blocked`` is set as a read starts waiting. The
    read still holds the index's lock then, so whatever the watch delivers after ``blocked``
    reaches the index only once the read is truly waiting (the wait releases the lock)."""

    def __init__(self, index: AppIndex) -> None:
        self.count = 0
        self.blocked = threading.Event()
        real = index._advanced.wait

        def wait(timeout: float | None = None) -> bool:
            self.count += 1
            self.blocked.set()
            return real(timeout)

        index._advanced.wait = wait  # type: ignore[method-assign]


def modified(app: dict[str, Any]) -> dict[str, Any]:
    return {"type": "MODIFIED", "object": copy.deepcopy(app)}


def test_an_index_holding_the_listed_versions_answers_below_the_list_s_version() -> None:
    """The usual case: writes to other resources moved etcd's revision past the index's last
    event, yet it holds exactly the versions the storage listed."""
    store, index, apps = setup()
    written = labelled(apps)
    watched(index, store)
    store.rv += 5  # writes elsewhere in the cluster
    store.reads = 0
    waits = Waits(index)
    items, rv = apps.list("team-a", lambda a: True)
    assert [a["metadata"] for a in items] == [written["metadata"]]
    assert rv == str(store.rv) and index.rv < int(rv), "the list's version, above the index's"
    assert (store.reads, waits.count) == (0, 0)


def test_a_list_waits_for_the_watch_to_bring_the_newest_versions() -> None:
    store, index, apps = setup()
    written = labelled(apps)
    store.reads = 0
    resources.READ_WAIT_SECONDS = 5.0
    waits = Waits(index)
    deliver = threading.Thread(target=lambda: waits.blocked.wait(5) and index.apply(modified(written)))
    deliver.start()
    items, rv = apps.list("team-a", lambda a: True)
    deliver.join()
    assert items[0]["metadata"]["labels"] == {"a": "1"} and rv == written["metadata"]["resourceVersion"]
    assert waits.count >= 1, "it waited for the watch"
    assert store.reads == 0, "answered from the index once the watch brought the write"


def test_a_list_waits_for_the_watch_to_bring_a_deletion() -> None:
    store, index, apps = setup()
    gone = apps.get("team-a", "shop")
    apps.delete("team-a", "shop", WriteOptions())  # no finalizers: gone at once
    store.reads = 0
    resources.READ_WAIT_SECONDS = 5.0
    waits = Waits(index)
    deleted = {
        "type": "DELETED",
        "object": {**gone, "metadata": {**gone["metadata"], "resourceVersion": str(store.rv)}},  # etcd's
    }
    deliver = threading.Thread(target=lambda: waits.blocked.wait(5) and index.apply(deleted))
    deliver.start()
    assert apps.list("team-a", lambda a: True)[0] == []
    deliver.join()
    assert waits.count >= 1 and store.reads == 0


def test_an_index_ahead_of_the_storage_s_list_answers_at_once() -> None:
    """A write lands after the storage listed the versions, and the watch brings it first: the
    index holds every change up to the list's version and later, so it answers, as of its own."""
    store, index, apps = setup()
    real_versions = store.versions
    after: dict[str, Any] = {}

    def versions_then_a_write(namespace: str | None) -> tuple[frozenset[str], str]:
        found = real_versions(namespace)
        after["written"] = labelled(apps)
        index.apply(modified(after["written"]))
        after["reads"] = store.reads
        return found

    store.versions = versions_then_a_write  # type: ignore[method-assign]
    waits = Waits(index)
    items, rv = apps.list("team-a", lambda a: True)
    assert items[0]["metadata"]["labels"] == {"a": "1"}, "the newer write, not the listed version"
    assert rv == after["written"]["metadata"]["resourceVersion"]
    assert waits.count == 0 and store.reads == after["reads"], "no wait, no storage list"


def test_an_index_that_is_not_serving_leaves_the_list_to_the_storage() -> None:
    store, index, apps = setup()
    index.failed("watch broke")
    store.reads = store.version_reads = 0
    apps.list("team-a", lambda a: True)
    assert (store.reads, store.version_reads) == (1, 0), "no question about versions first"
    fresh = AppIndex()
    assert fresh.newest(None, frozenset(), "1", 60.0) is None, "not listed yet: not waited for"
    fresh.replace([], [], "5")
    assert fresh.newest(None, frozenset(), "7", 60.0) == ("7", [])
    fresh.failed("watch broke")
    assert fresh.newest(None, frozenset(), "7", 60.0) is None, "its watch broke: not waited for"


def test_an_object_the_storage_no_longer_has_sends_the_list_to_the_storage() -> None:
    store, _, apps = setup()
    apps.delete("team-a", "shop", WriteOptions())  # no finalizers: gone at once, the index not told
    store.reads = 0
    assert apps.list("team-a", lambda a: True)[0] == []
    assert store.reads == 1


def test_resource_version_0_is_answered_by_the_index() -> None:
    store, _, apps = setup()
    labelled(apps)
    store.reads = 0
    assert "labels" not in apps.get("team-a", "shop", "0")["metadata"], "any version: the index's"
    items, rv = apps.list("team-a", lambda a: True, "0")
    assert [a["metadata"]["name"] for a in items] == ["shop"]
    assert rv == "1", "the version the index is at, to watch from"
    assert store.reads == 0


def test_a_resource_version_the_index_has_reached_is_answered_by_it() -> None:
    store, index, apps = setup()
    written = labelled(apps)
    watched(index, store)
    store.reads = 0
    rv = written["metadata"]["resourceVersion"]
    assert apps.get("team-a", "shop", rv)["metadata"]["labels"] == {"a": "1"}
    assert apps.list(None, lambda a: True, rv)[0][0]["metadata"]["labels"] == {"a": "1"}
    assert store.reads == 0


def test_a_resource_version_the_index_has_not_reached_is_read_from_the_storage() -> None:
    store, _, apps = setup()
    rv = labelled(apps)["metadata"]["resourceVersion"]
    store.reads = 0
    assert apps.get("team-a", "shop", rv)["metadata"]["labels"] == {"a": "1"}, "not older than asked"
    assert apps.list(None, lambda a: True, rv)[0][0]["metadata"]["labels"] == {"a": "1"}
    assert store.reads == 2


def test_a_read_waits_for_the_watch_to_reach_its_resource_version() -> None:
    store, index, apps = setup()
    rv = labelled(apps)["metadata"]["resourceVersion"]
    store.reads = 0
    resources.READ_WAIT_SECONDS = 5.0
    waiting = threading.Event()
    real_caught_up = index.caught_up

    def caught_up(version: int, timeout: float) -> bool:
        waiting.set()
        return real_caught_up(version, timeout)

    index.caught_up = caught_up  # type: ignore[method-assign]
    # The watch delivers the write only once the read is waiting for it.
    deliver = threading.Thread(target=lambda: waiting.wait(5) and watched(index, store))
    deliver.start()
    assert apps.get("team-a", "shop", rv)["metadata"]["labels"] == {"a": "1"}
    deliver.join()
    assert store.reads == 0, "answered from the index once the watch caught up"


def test_an_index_whose_watch_broke_or_that_has_not_listed_is_not_read() -> None:
    store, index, apps = setup()
    index.failed("cannot list or watch Applications: connection refused")
    apps.get("team-a", "shop", "0")
    assert store.reads == 1
    fresh = Applications(store, reads=AppIndex())
    fresh.list(None, lambda a: True, "0")
    assert store.reads == 2


def test_a_resource_version_that_is_no_number_goes_to_the_storage() -> None:
    store, _, apps = setup()
    apps.list(None, lambda a: True, "abc")
    assert store.reads == 1


def test_the_index_wakes_a_waiting_read_as_the_watch_advances() -> None:
    index = AppIndex()
    index.replace([], [], "5")
    assert index.caught_up(5, 0) and not index.caught_up(6, 0.01)
    threading.Timer(0.01, index.seen, ("7",)).start()
    assert index.caught_up(7, 5.0)
    index.failed("watch broke")
    assert not index.caught_up(0, 0)


def test_a_relist_sets_the_index_to_the_list_s_version_even_below_its_own() -> None:
    index = AppIndex()
    index.replace([], [], "10")
    index.replace([], [], "7")  # etcd restored from a backup: revisions went back
    assert index.rv == 7 and not index.caught_up(8, 0)


def test_an_event_moves_the_index_and_its_version_together() -> None:
    index = AppIndex()
    index.replace([], [], "5")
    app = {**copy.deepcopy(APP), "metadata": {"name": "shop", "namespace": "team-a", "resourceVersion": "9"}}
    index.apply({"type": "ADDED", "object": app})
    assert index.snapshot("team-a") == ("9", [app])
    gone = {**app, "metadata": {**app["metadata"], "resourceVersion": "10"}}
    index.apply({"type": "DELETED", "object": gone})
    assert index.snapshot(None) == ("10", [])


def test_a_resource_version_of_other_digits_goes_to_the_storage() -> None:
    store, _, apps = setup()
    apps.list(None, lambda a: True, "\u00b2")  # "²" is a digit to str.isdigit, not to int()
    assert store.reads == 1
