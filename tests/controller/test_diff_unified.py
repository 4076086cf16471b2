"""The diff a dry run reports for each object, from plain dicts: creations, changes, deletions,
ignored fields, and Secrets whose values never show."""

from __future__ import annotations

from typing import Any

from controller.diff import unified

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def configmap(value: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop", "resourceVersion": "7", "uid": "u", **meta},
        "data": {"value": value, "other": "same"},
    }  # fmt: skip


def test_a_change_shows_the_live_and_the_desired_line_and_no_server_noise() -> None:
    text = unified(configmap("1"), configmap("2", resourceVersion="8"), (), "ConfigMap shop/settings")
    assert text.startswith("--- live/ConfigMap shop/settings\n+++ desired/ConfigMap shop/settings\n")
    assert "-  value: '1'\n" in text and "+  value: '2'\n" in text
    assert "resourceVersion" not in text and "uid" not in text


def test_a_creation_and_a_deletion_show_the_whole_object_on_one_side() -> None:
    created, deleted = unified(None, configmap("1")), unified(configmap("1"), None)
    assert "+  name: settings\n" in created and not any(
        line.startswith("-  ") for line in created.splitlines()
    )
    assert "-  name: settings\n" in deleted and not any(
        line.startswith("+  ") for line in deleted.splitlines()
    )


def test_ignored_differences_do_not_show() -> None:
    rules = [{"kind": "ConfigMap", "jsonPointers": ["/data/value"]}]
    assert unified(configmap("1"), configmap("2"), rules) == ""


def test_a_secrets_values_are_masked_and_a_changed_value_still_shows_as_changed() -> None:
    def secret(password: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {LAST_APPLIED: password}},
            "data": {"user": "YWRtaW4=", "password": password},
        }  # fmt: skip

    text = unified(secret("c2VjcmV0MQ=="), secret("c2VjcmV0Mg=="))
    assert "c2VjcmV0" not in text and "YWRtaW4=" not in text
    assert "-  password: ++++++++\n" in text and "+  password: +++++++++\n" in text
    changed = [line for line in text.splitlines() if line.startswith(("-  ", "+  "))]
    assert changed == ["-  password: ++++++++", "+  password: +++++++++"], "an unchanged value is no change"
    assert "last-applied" not in text
    assert "c2VjcmV0" not in unified(None, secret("c2VjcmV0MQ==")), "nor in a creation"
