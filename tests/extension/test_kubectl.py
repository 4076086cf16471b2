"""Applications through the aggregation layer, driven by the real kubectl, as users handle them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.support.cluster import REPO_ROOT, TEST_PROJECT, Cluster, running_pid
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., CompletedProcess[str]]


def manifest(name: str, namespace: str, path: str = "apps/frontend", **spec: Any) -> str:
    body = {
        "apiVersion": "gitops.driftguard.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "a"}},
        "spec": {
            "source": {"repoURL": "git://127.0.0.1:9/shop.git", "path": path},
            "destination": {"namespace": "shop"},
            "project": TEST_PROJECT,
            **spec,
        },
    }
    return json.dumps(body)


def get(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    out = kubectl("get", "applications.gitops.driftguard.io", name, "-n", namespace, "-o", "json").stdout
    return dict(json.loads(out))


def notes_since(k: Kubectl, namespace: str, resource_version: str) -> list[tuple[str, str | None]]:
    """A raw watch from ``resource_version``: each event's type and ``note`` annotation."""
    raw = k(
        "get", "--raw",
        f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications"
        f"?watch=true&resourceVersion={resource_version}&timeoutSeconds=5",
    ).stdout  # fmt: skip
    events = [json.loads(line) for line in raw.splitlines() if line.strip()]
    notes = [(e["type"], e["object"]["metadata"].get("annotations", {}).get("note")) for e in events]
    # The controller's status writes repeat the last note (or carry none yet): only changes count.
    changes = [note for n, note in enumerate(notes) if n == 0 or note != notes[n - 1]]
    return [change for change in changes if change[1] is not None]


@pytest.fixture
def k(driftguard: Cluster) -> Kubectl:
    return driftguard.kubectl


def test_api_resources_lists_applications_and_projects_with_short_names_and_category(k: Kubectl) -> None:
    out = k("api-resources", "--api-group=gitops.driftguard.io", "-o", "wide").stdout
    rows = sorted(line.split() for line in out.splitlines()[1:])
    assert [row[:5] for row in rows] == [
        ["applications", "dgapp,dgapps", "gitops.driftguard.io/v1alpha1", "true", "Application"],
        ["appprojects", "dgproj,dgprojs", "gitops.driftguard.io/v1alpha1", "true", "AppProject"],
    ]
    assert all("driftguard" in row for row in rows)
    # The category works as it does for built-ins: `kubectl get driftguard`.
    assert k("get", "driftguard", "-A").returncode == 0


def test_explain_describes_the_source_fields(k: Kubectl) -> None:
    out = k("explain", "applications.gitops.driftguard.io.spec.source").stdout
    assert "KIND:       Application" in out
    for field in ("repoURL", "path", "targetRevision", "helm", "kustomize", "directory"):
        assert field in out


def test_apply_creates_then_updates_with_defaults_and_generation(k: Kubectl, namespace: str) -> None:
    assert "created" in k("apply", "-f", "-", input=manifest("shop", namespace)).stdout
    app = get(k, namespace, "shop")
    assert app["spec"]["project"] == TEST_PROJECT  # the default, "default", is for driftguard-system
    assert app["spec"]["revisionHistoryLimit"] == 10
    assert app["spec"]["driftGuard"]["mode"] == "enforce"
    assert app["metadata"]["generation"] == 1
    assert app["metadata"]["uid"] and app["metadata"]["creationTimestamp"]

    assert "configured" in k("apply", "-f", "-", input=manifest("shop", namespace, path="apps/web")).stdout
    updated = get(k, namespace, "shop")
    assert updated["spec"]["source"]["path"] == "apps/web"
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] == app["metadata"]["uid"]

    # A label change is not a spec change: generation stays.
    k("label", "applications.gitops.driftguard.io", "shop", "-n", namespace, "tier=web")
    assert get(k, namespace, "shop")["metadata"]["generation"] == 2


def test_get_prints_native_columns_wide_and_selects(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    k("apply", "-f", "-", input=manifest("blog", namespace, path="apps/blog"))
    k("label", "dgapp", "blog", "-n", namespace, "tier=edge")

    out = k("get", "applications.gitops.driftguard.io", "-n", namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "SYNC", "STATUS", "HEALTH", "REVISION", "AGE"]
    assert [line.split()[:4] for line in out[1:]] == [
        ["blog", "Unknown", "Unknown", "<none>"],
        ["shop", "Unknown", "Unknown", "<none>"],
    ]
    wide = k("get", "dgapps", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-5:] == ["REPO", "PATH", "TARGET", "PROJECT", "GUARD"]
    assert wide[2].split()[-5:] == [
        "git://127.0.0.1:9/shop.git",
        "apps/frontend",
        "HEAD",
        TEST_PROJECT,
        "enforce",
    ]

    every = [
        line.split()[:2] for line in k("get", "applications.gitops.driftguard.io", "-A").stdout.splitlines()
    ]
    assert every[0] == ["NAMESPACE", "NAME"]
    assert [namespace, "blog"] in every and [namespace, "shop"] in every
    labelled = k("get", "dgapp", "-n", namespace, "-l", "tier=edge", "-o", "name").stdout.split()
    assert labelled == ["application.gitops.driftguard.io/blog"]
    by_name = k(
        "get", "dgapp", "-n", namespace, "--field-selector", "metadata.name=shop", "-o", "name"
    ).stdout
    assert by_name.split() == ["application.gitops.driftguard.io/shop"]
    bad = k("get", "dgapp", "-n", namespace, "--field-selector", "spec.project=x", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.project" in bad.stderr
    as_yaml = k("get", "dgapp", "shop", "-n", namespace, "-o", "yaml").stdout
    assert "kind: Application" in as_yaml and "repoURL: git://127.0.0.1:9/shop.git" in as_yaml


def test_watch_streams_changes_and_resumes_from_a_resource_version(
    k: Kubectl, namespace: str, driftguard: Cluster
) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    start_rv = get(k, namespace, "shop")["metadata"]["resourceVersion"]
    cmd = [str(driftguard.bin_dir / "kubectl"), "--kubeconfig", str(driftguard.kubeconfig), "get", "dgapp",
           "-n", namespace, "-w", "--output-watch-events", "--request-timeout=60s"]  # fmt: skip
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as watcher:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        assert first.split()[:2] == ["EVENT", "NAME"], first
        assert watcher.stdout.readline().split()[:2] == ["ADDED", "shop"]
        k("annotate", "dgapp", "shop", "-n", namespace, "note=changed")
        assert watcher.stdout.readline().split()[:2] == ["MODIFIED", "shop"]
        watcher.kill()

    # Resume: a raw watch from the earlier resourceVersion replays the change made since.
    assert notes_since(k, namespace, start_rv) == [("MODIFIED", "changed")]


def test_patches_merge_and_json_work_and_strategic_merge_is_415(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    k(
        "patch",
        "dgapp",
        "shop",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"driftGuard":{"mode":"warn"}}}',
    )
    k("patch", "dgapp", "shop", "-n", namespace, "--type", "json",
      "-p", '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]')  # fmt: skip
    app = get(k, namespace, "shop")
    assert (app["spec"]["driftGuard"]["mode"], app["spec"]["revisionHistoryLimit"]) == ("warn", 3)

    smp = k("patch", "dgapp", "shop", "-n", namespace, "-p", '{"spec":{"project":"x"}}', check=False)
    assert smp.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in smp.stderr


def test_a_stale_update_gets_409_conflict(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    stale = get(k, namespace, "shop")
    k("annotate", "dgapp", "shop", "-n", namespace, "moved=on")
    stale["spec"]["project"] = "other"
    result = k("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert result.returncode != 0
    assert 'Operation cannot be fulfilled on applications.gitops.driftguard.io "shop"' in result.stderr
    assert get(k, namespace, "shop")["spec"]["project"] == TEST_PROJECT


def test_an_invalid_spec_lists_every_field_error(k: Kubectl, namespace: str) -> None:
    bad = textwrap.dedent(
        f"""
        apiVersion: gitops.driftguard.io/v1alpha1
        kind: Application
        metadata: {{name: bad, namespace: {namespace}}}
        spec:
          source: {{path: ../etc}}
          destination: {{namespace: Bad_NS}}
          driftGuard: {{mode: block}}
          syncPolicy: {{syncOptions: [Foo=bar]}}
        """
    )
    result = k("create", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    for expected in (
        'The Application "bad" is invalid',
        "spec.source.repoURL: Required value",
        'spec.source.path: Invalid value: "../etc"',
        'spec.destination.namespace: Invalid value: "Bad_NS"',
        'spec.driftGuard.mode: Unsupported value: "block"',
        'spec.syncPolicy.syncOptions[0]: Unsupported value: "Foo"',
    ):
        assert expected in result.stderr
    assert k("get", "dgapp", "bad", "-n", namespace, check=False).returncode != 0


def test_unknown_fields_follow_field_validation(k: Kubectl, namespace: str) -> None:
    body = json.loads(manifest("shop", namespace))
    body["spec"]["source"]["repoUrl"] = "typo"
    strict = k("create", "-f", "-", input=json.dumps(body), check=False)
    assert strict.returncode != 0 and 'unknown field "spec.source.repoUrl"' in strict.stderr
    warn = k("create", "--validate=warn", "-f", "-", input=json.dumps(body))
    assert 'unknown field "spec.source.repoUrl"' in warn.stderr
    assert "repoUrl" not in get(k, namespace, "shop")["spec"]["source"], "unknown fields are pruned"


def test_delete_waits_for_finalizers(k: Kubectl, namespace: str) -> None:
    body = json.loads(manifest("shop", namespace))
    body["metadata"]["finalizers"] = ["gitops.driftguard.io/resources"]
    k("apply", "-f", "-", input=json.dumps(body))
    k("delete", "dgapp", "shop", "-n", namespace, "--wait=false")
    app = get(k, namespace, "shop")
    assert app["metadata"]["deletionTimestamp"]
    k(
        "patch",
        "dgapp",
        "shop",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    gone = k("get", "dgapp", "shop", "-n", namespace, check=False)
    assert gone.returncode != 0
    assert 'applications.gitops.driftguard.io "shop" not found' in gone.stderr


def test_delete_all_in_a_namespace(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    k("apply", "-f", "-", input=manifest("blog", namespace))
    out = k("delete", "applications.gitops.driftguard.io", "--all", "-n", namespace).stdout
    assert (
        sorted(out.split("\n")[:-1])
        == [
            'application.gitops.driftguard.io "blog" deleted',
            'application.gitops.driftguard.io "shop" deleted',
        ]
        or "deleted" in out
    )
    assert k("get", "dgapp", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_status_is_written_only_through_its_subresource(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    # The controller reports its failed fetch (the repository is unreachable) first, then retries
    # after 5 s at the earliest: the status written below is not overwritten meanwhile.
    reason = "jsonpath={.status.conditions[?(@.type=='Ready')].reason}=FetchFailed"
    k("wait", f"--for={reason}", "dgapp/shop", "-n", namespace, "--timeout=60s")
    status = {
        "status": {
            "sync": {"status": "Synced", "revision": "3f2a9c1" + "0" * 33},
            "health": {"status": "Healthy"},
        }
    }
    k(
        "patch",
        "dgapp",
        "shop",
        "-n",
        namespace,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        json.dumps(status),
    )
    k("wait", "--for=jsonpath={.status.sync.status}=Synced", "dgapp/shop", "-n", namespace, "--timeout=30s")
    row = k("get", "dgapp", "shop", "-n", namespace, "--no-headers").stdout.split()
    assert row[:4] == ["shop", "Synced", "Healthy", "3f2a9c1"]

    # The main resource ignores status; the status subresource ignores spec.
    k(
        "patch",
        "dgapp",
        "shop",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"status":{"sync":{"status":"OutOfSync"}}}',
    )
    k("patch", "dgapp", "shop", "-n", namespace, "--subresource", "status", "--type", "merge",
      "-p", '{"spec":{"project":"sneaky"}}')  # fmt: skip
    app = get(k, namespace, "shop")
    assert app["status"]["sync"]["status"] == "Synced"
    assert app["spec"]["project"] == TEST_PROJECT
    described = k("describe", "dgapp", "shop", "-n", namespace).stdout
    assert "Name:         shop" in described and "Synced" in described


def test_sync_and_rollback_record_an_operation(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    base = f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications/shop"
    answered = json.loads(k("create", "--raw", f"{base}/sync", "-f", "-", input='{"prune": true}').stdout)
    assert answered["operation"]["sync"] == {"prune": True}
    assert answered["operation"]["initiatedBy"] == {"username": "kubernetes-admin"}

    bad = k("create", "--raw", f"{base}/rollback", "-f", "-", input='{"id": 7}', check=False)
    assert bad.returncode != 0 and "has no history id 7" in bad.stderr
    # Editing the main resource cannot forge or erase an operation: only the subresources set it
    # (and the controller clears it through status once it has taken it up).
    forged = '{"operation": {"sync": {"revision": "forged"}, "initiatedBy": {"username": "mallory"}}}'
    k("patch", "dgapp", "shop", "-n", namespace, "--type", "merge", "-p", forged)
    k("patch", "dgapp", "shop", "-n", namespace, "--type", "merge", "-p", '{"operation": null}')
    app = get(k, namespace, "shop")
    taken = ((app.get("status") or {}).get("operationState") or {}).get("operation")
    assert (app.get("operation") or taken or {}).get("sync") == {"prune": True}
    assert "forged" not in json.dumps(app) and "mallory" not in json.dumps(app)


def test_managed_fields_say_who_changed_what(k: Kubectl, namespace: str) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    k("label", "dgapp", "shop", "-n", namespace, "tier=web")
    # kubectl hides managedFields unless asked.
    shown = k("get", "dgapp", "shop", "-n", namespace, "-o", "json", "--show-managed-fields").stdout
    entries = {e["manager"]: e for e in json.loads(shown)["metadata"]["managedFields"]}
    # The controller writes status as it reconciles: that entry, if there already, is status-only.
    controller = entries.pop("driftguard-controller", None)
    assert controller is None or controller.get("subresource") == "status"
    assert set(entries) == {"kubectl-client-side-apply", "kubectl-label"}
    assert "f:tier" in entries["kubectl-label"]["fieldsV1"]["f:metadata"]["f:labels"]
    assert "f:repoURL" in entries["kubectl-client-side-apply"]["fieldsV1"]["f:spec"]["f:source"]


def test_kubectl_edit_changes_the_spec(k: Kubectl, namespace: str, driftguard: Cluster) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    # kubectl runs KUBE_EDITOR on the file it wrote: a sed script plays the user.
    env = {**os.environ, "KUBE_EDITOR": "sed -i -e 's#path: apps/frontend#path: apps/edited#'"}
    edit = subprocess.run(
        [str(driftguard.bin_dir / "kubectl"), "--kubeconfig", str(driftguard.kubeconfig),
         "edit", "dgapp", "shop", "-n", namespace],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert edit.returncode == 0, edit.stderr
    assert "application.gitops.driftguard.io/shop edited" in edit.stdout
    app = get(k, namespace, "shop")
    assert app["spec"]["source"]["path"] == "apps/edited"
    assert app["metadata"]["generation"] == 2


def test_a_watch_resumes_across_an_extension_restart_without_losing_events(
    k: Kubectl, namespace: str
) -> None:
    k("apply", "-f", "-", input=manifest("shop", namespace))
    before = get(k, namespace, "shop")["metadata"]["resourceVersion"]
    k("annotate", "dgapp", "shop", "-n", namespace, "note=before-restart")

    # Restart the extension: nothing is kept in the process, so a client resuming from the
    # resourceVersion it last saw gets what happened since.
    pid = running_pid("driftguard-extension")
    assert pid, "the extension is not running"
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: running_pid("driftguard-extension") is None, "the extension to stop", timeout=30)
    restart = subprocess.run([str(REPO_ROOT / "hack" / "install-local.sh")], capture_output=True, text=True,
                             timeout=180, check=False)  # fmt: skip
    assert restart.returncode == 0, restart.stderr

    assert notes_since(k, namespace, before) == [("MODIFIED", "before-restart")]
