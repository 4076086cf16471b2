"""What ``kubectl driftguard`` prints, from plain dicts."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from extension.cli import render
from extension.cli.args import duration, parser
from extension.cli.main import _resources


def test_tables_align_as_kubectl_and_server_tables_honour_wide_and_all_namespaces() -> None:
    assert render.table(["Name", "Sync"], [["a", "Synced"], ["longer", None]]).splitlines() == [
        "NAME     SYNC",
        "a        Synced",
        "longer   <none>",
    ]
    doc = {
        "columnDefinitions": [{"name": "Name"}, {"name": "Repo", "priority": 1}],
        "rows": [{"cells": ["shop", "git://x"], "object": {"metadata": {"namespace": "team-a"}}}],
    }
    assert render.server_table(doc, wide=False, all_namespaces=False) == "NAME\nshop"
    assert render.server_table(doc, wide=True, all_namespaces=True).splitlines() == [
        "NAMESPACE   NAME   REPO",
        "team-a      shop   git://x",
    ]


def test_diffs_list_only_changed_objects_and_colour_only_on_a_terminal() -> None:
    state = {"syncResult": {"resources": [
        {"kind": "ConfigMap", "namespace": "n", "name": "a", "status": "unchanged"},
        {"group": "apps", "kind": "Deployment", "namespace": "n", "name": "web", "status": "configured",
         "diff": "--- live\n+++ desired\n-  replicas: 1\n+  replicas: 2"},
    ]}}  # fmt: skip
    plain, changed = render.diffs(state, colour=False)
    assert changed and plain.splitlines()[0] == "===== Deployment.apps n/web (configured)"
    assert "ConfigMap" not in plain and "\033[" not in plain
    coloured, _ = render.diffs(state, colour=True)
    assert f"{render.RED}-  replicas: 1{render.RESET}" in coloured
    assert render.diffs(
        {"syncResult": {"resources": [state["syncResult"]["resources"][0]]}}, colour=False
    ) == ("", False)


def test_durations_and_resources_are_read_as_argo_cd_users_write_them() -> None:
    assert (duration("90s"), duration("30m"), duration("1h30m")) == (90.0, 1800.0, 5400.0)
    for bad in ("", "30", "1d", "m"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
    assert _resources(["ConfigMap/a", "apps/Deployment/web"]) == [
        {"group": "", "kind": "ConfigMap", "name": "a"},
        {"group": "apps", "kind": "Deployment", "name": "web"},
    ]


def test_drift_shows_who_changed_which_fields_and_when() -> None:
    app = {"status": {"drift": {"resources": [
        {"group": "apps", "kind": "Deployment", "namespace": "n", "name": "web", "fields": ["/spec/replicas"],
         "by": "alice", "at": "2026-12-04T10:00:00Z"},
    ]}}}  # fmt: skip
    lines = render.drift(app).splitlines()
    assert lines[0].split() == ["KIND", "NAMESPACE", "NAME", "FIELDS", "BY", "AT"]
    assert lines[1].split() == [
        "Deployment.apps",
        "n",
        "web",
        "/spec/replicas",
        "alice",
        "2026-12-04T10:00:00Z",
    ]
    assert render.drift({"status": {}}) == "No drift recorded."


def test_kubectl_flags_count_before_and_after_the_verb() -> None:
    before = parser().parse_args(["-n", "prod", "--as", "bob", "delete", "shop"])
    after = parser().parse_args(["delete", "shop", "-n", "prod", "--as", "bob"])
    for args in (before, after):
        assert (args.namespace, args.as_user, args.name) == ("prod", "bob", "shop")
    assert parser().parse_args(["list"]).namespace is None


def test_an_operation_is_followed_by_its_whole_record() -> None:
    from extension.cli.main import stage

    ours = {"sync": {"dryRun": True}, "initiatedBy": {"username": "a"}, "requestedAt": "2026-12-04T10:00:00Z"}
    other = {**ours, "sync": {}}  # the same second, another request
    assert stage({"operation": ours}, ours) == "pending"
    running = {"status": {"operationState": {"operation": ours, "phase": "Running"}}}
    assert stage(running, ours) == "running"
    assert stage({"status": {"operationState": {"operation": ours, "phase": "Succeeded"}}}, ours) == "done"
    assert (
        stage({"status": {"operationState": {"operation": other, "phase": "Succeeded"}}}, ours)
        == "superseded"
    )
    assert stage({"operation": other}, ours) == "superseded"


def test_diff_exits_2_when_it_cannot_compare(tmp_path: Path) -> None:
    from extension.cli.main import main

    missing = tmp_path / "no-such-kubeconfig"
    assert main(["diff", "shop", "--kubeconfig", str(missing)]) == 2
    assert main(["get", "shop", "--kubeconfig", str(missing)]) == 1


def test_a_result_line_reads_as_kubectl_apply_prints_one() -> None:
    entry = {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web", "status": "created"}
    assert render.result_line(entry) == "deployment.apps/web -n shop created"
    failed = {"kind": "Namespace", "name": "shop", "status": "failed", "message": "Forbidden: no"}
    assert render.result_line(failed) == "namespace/shop failed: Forbidden: no"
    hook = {"group": "batch", "kind": "Job", "namespace": "shop", "name": "migrate", "status": "succeeded",
            "hookPhase": "PreSync"}  # fmt: skip
    assert render.result_line(hook) == "job.batch/migrate -n shop succeeded (PreSync hook)"
    assert "succeeded (PreSync hook)" in render.results({"syncResult": {"resources": [hook]}})


def test_the_progress_bar_fills_with_the_objects_done() -> None:
    assert render.bar(0, 4, width=8) == "[--------] 0/4"
    assert render.bar(2, 4, width=8) == "[####----] 2/4"
    assert render.bar(5, 4, width=8) == "[########] 5/4"  # never past full
    assert render.bar(1, 0, width=8) == "[--------] 1/0"
