"""What ``kubectl driftguard`` prints, from plain dicts."""

from __future__ import annotations

import argparse

import pytest

from extension.cli import render
from extension.cli.main import _resources, duration


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
