"""The Application index the guard decides from: what it reads of an Application, and the list +
watch loop that keeps it current (a fake source stands in for the storage)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

from extension.api import errors
from extension.api.tracking import AppKey, ObjectRef
from extension.guard.index import AllowRules, AppIndex, BreakGlass, GuardedApp, IndexSync
from tests.support.waiting import wait_for


def app(
    name: str, *refs: tuple[str, str, str, str], mode: str | None = None, rv: str = "1"
) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": {"repoURL": "https://git.example/r.git", "path": "apps"}}
    if mode:
        spec["driftGuard"] = {"mode": mode}
    return {
        "metadata": {"namespace": "team-a", "name": name, "resourceVersion": rv},
        "spec": spec,
        "status": {
            "sync": {"revision": "abc1234def"},
            "resources": [
                {"group": g, "kind": k, "namespace": ns, "name": n, "version": "v1"} for g, k, ns, n in refs
            ],
        },
    }


WEB = ("apps", "Deployment", "shop", "web")


def test_an_application_is_read_with_its_mode_rules_break_glass_source_revision_and_inventory() -> None:
    body = app("shop", WEB)
    body["spec"]["driftGuard"] = {
        "mode": "warn",
        "allow": {"users": ["alice"], "groups": ["oncall"], "serviceAccounts": ["ci:deployer"],
                  "kinds": ["ConfigMap"], "jsonPointers": ["/spec/replicas"]},
        "breakGlass": {"groups": ["sre"], "maxDuration": "30m"},
    }  # fmt: skip
    guarded = GuardedApp.of(body)
    assert guarded == GuardedApp(
        key=AppKey("team-a", "shop"),
        mode="warn",
        allow=AllowRules(("alice",), ("oncall",), ("ci:deployer",), ("ConfigMap",), ("/spec/replicas",)),
        break_glass=BreakGlass(("sre",), datetime.timedelta(minutes=30)),
        repo_url="https://git.example/r.git",
        path="apps",
        revision="abc1234def",
        inventory=frozenset({ObjectRef(*WEB)}),
    )


def test_defaults_are_enforce_and_one_hour_of_break_glass_and_odd_status_is_ignored() -> None:
    guarded = GuardedApp.of(
        {"metadata": {"namespace": "a", "name": "b"}, "status": {"resources": "x", "sync": 3}}
    )
    assert (guarded.mode, guarded.break_glass.max_duration) == ("enforce", datetime.timedelta(hours=1))
    assert guarded.inventory == frozenset()
    odd = GuardedApp.of({"spec": {"driftGuard": {"mode": "loud", "breakGlass": {"maxDuration": "soon"}}}})
    assert (odd.mode, odd.break_glass.max_duration) == ("enforce", datetime.timedelta(hours=1))


def test_the_index_finds_inventory_entries_by_group_namespace_and_name_across_updates() -> None:
    index = AppIndex()
    index.replace([GuardedApp.of(app("shop", WEB)), GuardedApp.of(app("other", WEB))])
    assert {key.name for _, key in index.listed("apps", "shop", "web")} == {"shop", "other"}
    index.apply({"type": "MODIFIED", "object": app("shop")})
    assert {key.name for _, key in index.listed("apps", "shop", "web")} == {"other"}
    index.apply({"type": "DELETED", "object": app("other", WEB)})
    assert index.listed("apps", "shop", "web") == frozenset()
    assert index.get(AppKey("team-a", "shop")) is not None
    assert index.get(AppKey("team-a", "other")) is None


class FakeSource:
    """Lists, then serves scripted watches; each watch takes the next script."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.lists, self.watches = lists, watches
        self.listed = 0
        self.watched_from: list[str | None] = []
        self.done = threading.Event()

    def list(
        self, namespace: str | None, resource_version: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        items = self.lists[min(self.listed, len(self.lists) - 1)]
        self.listed += 1
        return items, f"list-{self.listed}"

    def watch(
        self, namespace: str | None, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        self.watched_from.append(resource_version)
        if not self.watches:
            self.done.set()
            threading.Event().wait(0.05)
            return
        for event in self.watches.pop(0):
            if isinstance(event, Exception):
                raise event
            yield event


def run(source: FakeSource, index: AppIndex) -> IndexSync:
    sync = IndexSync(source, index, sleep=lambda s: None)
    sync.start()
    wait_for(source.done.is_set, "the fake source's scripts to be consumed", timeout=10)
    sync.stop()
    return sync


def test_the_sync_lists_then_follows_the_watch_from_the_listed_version_and_each_event() -> None:
    index = AppIndex()
    source = FakeSource(
        [[app("shop", WEB)]],
        [[
            {"type": "ADDED", "object": app("new", ("", "ConfigMap", "shop", "c"), rv="5")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
        ], []],
    )  # fmt: skip
    assert not index.synced
    run(source, index)
    assert index.synced
    assert source.watched_from[:2] == ["list-1", "6"], "re-watched from the bookmark's version"
    assert index.listed("", "shop", "c") and index.listed("apps", "shop", "web")


def test_a_410_gone_in_the_stream_or_from_the_call_lists_again() -> None:
    index = AppIndex()
    gone_event = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    source = FakeSource(
        [[app("shop", WEB)], [app("shop")], [app("shop", WEB)]],
        [[gone_event], [errors.gone("too old resource version")], []],
    )
    run(source, index)
    assert source.listed == 3
    assert index.listed("apps", "shop", "web")


def test_a_failing_watch_keeps_the_last_good_index_and_retries() -> None:
    index = AppIndex()
    source = FakeSource([[app("shop", WEB)]], [[ConnectionError("apiserver went away")], []])
    run(source, index)
    assert source.listed == 2
    assert index.synced and index.listed("apps", "shop", "web")
