"""Writes start from the worker's watched copy of an Application (``Applications.recent``): a copy
that is current saves the storage read; one that is behind never makes a write wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from extension.api import errors
from extension.applications import Applications
from extension.resources import WriteOptions
from tests.extension.test_app import APP, FakeStore

MERGE = "application/merge-patch+json"


class CountingStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.version_reads = 0

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        return super().get(namespace, name)

    def list(self, namespace: str | None, resource_version: str | None = None) -> Any:
        self.reads += 1
        return super().list(namespace, resource_version)

    def versions(self, namespace: str | None) -> tuple[frozenset[str], str]:
        self.version_reads += 1  # the metadata only: counted apart from full reads
        return FakeStore.versions(self, namespace)

    def update(self, app: dict[str, Any]) -> dict[str, Any]:
        reads = self.reads  # the fake's own precondition check is no read of the API's
        try:
            return super().update(app)
        finally:
            self.reads = reads


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


def with_copy(store: CountingStore, copy_of: dict[str, Any] | None) -> Applications:
    return Applications(store, recent=lambda ns, name: copy.deepcopy(copy_of))


def created(store: CountingStore) -> dict[str, Any]:
    body = Applications(store).create("team-a", copy.deepcopy(APP), WriteOptions()).body
    store.reads = 0
    return body


def test_a_current_copy_saves_the_storage_read(store: CountingStore) -> None:
    app = created(store)
    body = {**copy.deepcopy(app), "status": {"sync": {"status": "Synced"}}}
    written = with_copy(store, app).update("team-a", "shop", body, WriteOptions(), status=True).body
    assert written["status"]["sync"]["status"] == "Synced"
    assert store.reads == 0


def test_a_copy_behind_the_client_is_not_taken_for_a_stale_client(store: CountingStore) -> None:
    old = created(store)
    newer = Applications(store).patch("team-a", "shop", MERGE, {"metadata": {"labels": {"a": "1"}}},
                                      WriteOptions()).body  # fmt: skip
    store.reads = 0
    body = {**copy.deepcopy(newer), "status": {"sync": {"status": "Synced"}}}
    written = with_copy(store, old).update("team-a", "shop", body, WriteOptions(), status=True).body
    assert written["status"]["sync"]["status"] == "Synced"
    assert store.reads == 1, "the copy was behind: the storage was read"


def test_a_stale_client_still_gets_409_whatever_the_copy(store: CountingStore) -> None:
    old = created(store)
    newer = Applications(store).patch("team-a", "shop", MERGE, {"metadata": {"labels": {"a": "1"}}},
                                      WriteOptions()).body  # fmt: skip
    for copy_of in (old, newer):
        with pytest.raises(errors.APIError) as raised:
            with_copy(store, copy_of).update("team-a", "shop", copy.deepcopy(old), WriteOptions())
        assert raised.value.code == 409


def test_a_patch_from_a_copy_that_is_behind_is_retried_on_the_newest(store: CountingStore) -> None:
    old = created(store)
    Applications(store).patch("team-a", "shop", MERGE, {"metadata": {"labels": {"a": "1"}}}, WriteOptions())
    store.reads = 0
    written = (
        with_copy(store, old)
        .patch("team-a", "shop", MERGE, {"metadata": {"labels": {"b": "2"}}}, WriteOptions())
        .body
    )
    assert written["metadata"]["labels"] == {"a": "1", "b": "2"}, "the other write's label survived"
    assert store.reads == 1


def test_a_write_that_stores_nothing_is_checked_against_the_storage(store: CountingStore) -> None:
    """A no-op update and a dry run never reach the storage's own resourceVersion check, so they
    must not trust the copy: a stale client still gets 409, and the answer is the stored object."""
    old = created(store)
    newer = Applications(store).patch("team-a", "shop", MERGE, {"metadata": {"labels": {"a": "1"}}},
                                      WriteOptions()).body  # fmt: skip
    with pytest.raises(errors.APIError) as raised:
        with_copy(store, old).update("team-a", "shop", copy.deepcopy(old), WriteOptions())
    assert raised.value.code == 409
    dry = (
        with_copy(store, old)
        .patch("team-a", "shop", MERGE, {"metadata": {"labels": {"b": "2"}}}, WriteOptions(dry_run=True))
        .body
    )
    assert dry["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert dry["metadata"]["resourceVersion"] == newer["metadata"]["resourceVersion"]


def test_a_patch_that_fails_against_a_copy_that_is_behind_is_judged_on_the_stored_object(
    store: CountingStore,
) -> None:
    """Read your writes: a JSON patch testing a label just set passes even when the copy is older."""
    old = created(store)
    Applications(store).patch("team-a", "shop", MERGE, {"metadata": {"labels": {"a": "1"}}}, WriteOptions())
    patch = [{"op": "test", "path": "/metadata/labels/a", "value": "1"},
             {"op": "add", "path": "/metadata/labels/b", "value": "2"}]  # fmt: skip
    written = with_copy(store, old).patch("team-a", "shop", "application/json-patch+json", patch,
                                          WriteOptions()).body  # fmt: skip
    assert written["metadata"]["labels"] == {"a": "1", "b": "2"}
