"""Server-side apply of Applications, with kube-apiserver as the oracle: every step runs with the
real kubectl against our API and against a CRD with the very same schema, and the two must end in
the same objects and the same managedFields owners (nothing here hard-codes what they are)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.support import oracle
from tests.support.cluster import TEST_PROJECT, Cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

OURS = "gitops.driftguard.io"
ORACLE = oracle.ORACLE_GROUP


@pytest.fixture(scope="module")
def oracle_crd(driftguard: Cluster) -> Iterator[str]:
    """A CRD serving our Application schema in another group: kube-apiserver's own apply."""
    driftguard.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(oracle.oracle_crd()))

    # Polled rather than `kubectl wait`, which fails at once while the CRD has no conditions yet.
    def established() -> bool:
        crd = json.loads(driftguard.kubectl("get", f"crd/applications.{ORACLE}", "-o", "json").stdout)
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, f"the CRD applications.{ORACLE} to be Established")
    yield ORACLE
    driftguard.kubectl("delete", f"crd/applications.{ORACLE}", "--wait=false")


class Both:
    """Runs each kubectl step against our API and the oracle CRD, and compares the outcomes."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace

    def _config(self, group: str, config: dict[str, Any]) -> str:
        body = json.loads(json.dumps(config))
        body["apiVersion"] = f"{group}/v1alpha1"
        body.setdefault("kind", "Application")
        body.setdefault("metadata", {}).update(namespace=self.namespace)
        return json.dumps(body)

    def run(
        self, *args: str, config: dict[str, Any] | None = None, ok: bool = True
    ) -> tuple[CompletedProcess[str], CompletedProcess[str]]:
        """``args`` with ``{resource}`` standing for the resource's full name; ``config`` on stdin.
        Both must succeed, or (``ok`` False) both fail."""
        results = []
        for group in (OURS, ORACLE):
            argv = [a.replace("{resource}", f"applications.{group}") for a in args]
            results.append(
                self.cluster.kubectl(
                    *argv,
                    "-n",
                    self.namespace,
                    input=self._config(group, config) if config is not None else None,
                    check=False,
                )
            )
        ours, oracle = results
        # The same outcome: both succeed or both fail, with the same message but for the group.
        assert ours.returncode == oracle.returncode, (args, ours.stderr, oracle.stderr)
        assert ours.stderr.replace(OURS, "G") == oracle.stderr.replace(ORACLE, "G"), args
        assert (ours.returncode == 0) == ok, (args, ours.stderr)
        return ours, oracle

    def get(self, group: str, name: str = "shop") -> dict[str, Any]:
        out = self.cluster.kubectl(
            "get", f"applications.{group}", name, "-n", self.namespace, "-o", "json", "--show-managed-fields"
        ).stdout
        return dict(json.loads(out))

    def owners(self, obj: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return sorted(
            (
                e["manager"],
                e["operation"],
                e.get("subresource", ""),
                json.dumps(e.get("fieldsV1"), sort_keys=True),
            )
            for e in obj["metadata"].get("managedFields") or []
        )

    @staticmethod
    def content(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {
            "labels": meta.get("labels"), "annotations": meta.get("annotations"),
            "finalizers": meta.get("finalizers"), "generation": meta.get("generation"),
            "spec": obj.get("spec"), "status": obj.get("status"),
        }  # fmt: skip

    def same(self, name: str = "shop") -> dict[str, Any]:
        ours, oracle = self.get(OURS, name), self.get(ORACLE, name)
        # Client-side apply's annotation names the group; all else must be equal.
        mine, theirs = json.dumps(self.content(ours)), json.dumps(self.content(oracle))
        assert mine.replace(f"{OURS}/v1alpha1", "G") == theirs.replace(f"{ORACLE}/v1alpha1", "G")
        assert self.owners(ours) == self.owners(oracle), json.dumps(
            {
                "ours": ours["metadata"].get("managedFields"),
                "oracle": oracle["metadata"].get("managedFields"),
            },
            indent=1,
        )
        return ours


def config(**spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", {"team": "a"})
    base = {
        "kind": "Application",
        # The controller leaves these alone: the status is the test's alone to write.
        "metadata": {
            "name": "shop",
            "labels": labels,
            "annotations": {"gitops.driftguard.io/skip-reconcile": "true"},
        },
        "spec": {
            "project": TEST_PROJECT,
            "source": {"repoURL": "git://127.0.0.1:9/shop.git", "path": "apps/frontend"},
            "destination": {"namespace": "shop"},
            **spec,
        },
    }
    return base


def apply(manager: str, *extra: str) -> tuple[str, ...]:
    return ("apply", "--server-side", f"--field-manager={manager}", *extra, "-f", "-")


@pytest.fixture
def both(driftguard: Cluster, oracle_crd: str, namespace: str) -> Both:
    return Both(driftguard, namespace)


def test_apply_creates_updates_conflicts_forces_and_removes_fields_as_kube_apiserver(both: Both) -> None:
    # Create, then a second manager adds to the set syncOptions and to the labels.
    both.run(
        *apply("team-a"), config=config(syncPolicy={"syncOptions": ["CreateNamespace=true", "Prune=false"]})
    )
    created = both.same()
    assert [e["operation"] for e in created["metadata"]["managedFields"]] == ["Apply"]
    second = config(labels={"owner": "b"}, syncPolicy={"syncOptions": ["PruneLast=true"]})
    del second["spec"]["source"], second["spec"]["destination"], second["spec"]["project"]
    both.run(*apply("team-b"), config=second)
    shared = both.same()
    assert shared["spec"]["syncPolicy"]["syncOptions"] == [
        "CreateNamespace=true",
        "Prune=false",
        "PruneLast=true",
    ]

    # team-a drops a syncOption and its label: they go, as no one else owns them.
    both.run(*apply("team-a"), config=config(labels={}, syncPolicy={"syncOptions": ["CreateNamespace=true"]}))
    dropped = both.same()
    assert dropped["spec"]["syncPolicy"]["syncOptions"] == ["CreateNamespace=true", "PruneLast=true"]
    assert "team" not in (dropped["metadata"].get("labels") or {})

    # team-b changes a field team-a owns: 409 naming both; then forced, it takes the field.
    takeover = config(labels={"owner": "b"}, syncPolicy={"syncOptions": ["PruneLast=true"]})
    takeover["spec"] = {
        "source": {"path": "apps/b", "targetRevision": "v2"},
        "syncPolicy": {"syncOptions": ["PruneLast=true"]},
    }
    ours, _ = both.run(*apply("team-b"), config=takeover, ok=False)
    assert (
        ours.returncode != 0
        and 'conflict with "team-a"' in ours.stderr
        and ".spec.source.path" in ours.stderr
    )
    both.same()
    both.run(*apply("team-b", "--force-conflicts"), config=takeover)
    assert both.same()["spec"]["source"]["path"] == "apps/b"

    # An applier that gives up a field another manager took leaves it in place.
    both.run(*apply("team-a"), config=config(labels={}, source={"repoURL": "git://127.0.0.1:9/shop.git"}))
    assert both.same()["spec"]["source"] == {
        "repoURL": "git://127.0.0.1:9/shop.git",
        "path": "apps/b",
        "targetRevision": "v2",
    }


def test_updates_and_patches_record_update_entries_beside_appliers(both: Both) -> None:
    both.run(*apply("team-a"), config=config(syncPolicy={"syncOptions": ["CreateNamespace=true"]}))
    both.run("patch", "{resource}", "shop", "--type=merge", "-p", '{"spec":{"source":{"path":"apps/other"}}}')
    both.run("label", "{resource}", "shop", "tier=web")
    both.run("annotate", "{resource}", "shop", "note=by hand", "--field-manager=hand")
    patched = both.same()
    assert {e["operation"] for e in patched["metadata"]["managedFields"]} == {"Apply", "Update"}
    # Applying the original path again conflicts with the patch's manager; forced, it wins back.
    ours, _ = both.run(
        *apply("team-a"), config=config(syncPolicy={"syncOptions": ["CreateNamespace=true"]}), ok=False
    )
    assert 'conflict with "kubectl-patch"' in ours.stderr
    both.run(
        *apply("team-a", "--force-conflicts"),
        config=config(syncPolicy={"syncOptions": ["CreateNamespace=true"]}),
    )
    assert both.same()["spec"]["source"]["path"] == "apps/frontend"


def test_status_applies_own_conditions_by_type(both: Both) -> None:
    both.run(*apply("team-a"), config=config())
    for manager, condition in (("checker-1", "Ready"), ("checker-2", "Healthy")):
        conditions = [{"type": condition, "status": "True", "reason": "Checked"}]
        status = {"kind": "Application", "metadata": {"name": "shop"}, "status": {"conditions": conditions}}
        both.run(*apply(manager, "--subresource=status"), config=status)
    both_conditions = both.same()
    assert [c["type"] for c in both_conditions["status"]["conditions"]] == ["Ready", "Healthy"]
    # checker-1 gives its condition up: it goes, checker-2's stays.
    gone = {"kind": "Application", "metadata": {"name": "shop"}, "status": {"conditions": []}}
    both.run(*apply("checker-1", "--subresource=status"), config=gone)
    assert [c["type"] for c in both.same()["status"]["conditions"]] == ["Healthy"]


def test_dry_run_and_diff_change_nothing(both: Both) -> None:
    both.run(*apply("team-a"), config=config())
    before = both.get(OURS)
    both.run(*apply("team-a", "--dry-run=server"), config=config(revisionHistoryLimit=3))
    after = both.same()
    assert (
        after["spec"] == before["spec"]
        and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    )
    ours, _ = both.run("diff", "--server-side", "--field-manager=team-a", "-f", "-",
                            config=config(revisionHistoryLimit=3), ok=False)  # fmt: skip
    assert ours.returncode == 1, ours.stderr  # kubectl diff exits 1 when it found differences
    assert re.search(r"^-\s+revisionHistoryLimit: 10$", ours.stdout, re.M), ours.stdout
    assert re.search(r"^\+\s+revisionHistoryLimit: 3$", ours.stdout, re.M), ours.stdout
    assert both.get(OURS)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_client_side_apply_then_server_side_apply_migrates_ownership(both: Both) -> None:
    both.run("apply", "-f", "-", config=config())
    both.same()
    # The same configuration, now server-side: kubectl moves client-side apply's fields to its
    # applier (a patch of managedFields), so that changes after it do not conflict.
    both.run(*apply("kubectl"), config=config())
    migrated = both.same()
    managers = {e["manager"] for e in migrated["metadata"]["managedFields"]}
    assert "kubectl" in managers and "kubectl-client-side-apply" not in managers, managers
    both.run(
        *apply("kubectl"), config=config(source={"repoURL": "git://127.0.0.1:9/shop.git", "path": "apps/v2"})
    )
    assert both.same()["spec"]["source"]["path"] == "apps/v2"


def test_bad_applied_configurations_get_clear_4xx(both: Both, driftguard: Cluster) -> None:
    both.run(*apply("team-a"), config=config())
    path = f"/apis/{OURS}/v1alpha1/namespaces/{both.namespace}/applications/shop?fieldManager=x"
    ours = {**config(), "apiVersion": f"{OURS}/v1alpha1"}
    cases = {
        "not YAML": (b"{spec: [", 400, "error decoding YAML"),
        "another kind": (json.dumps({**ours, "kind": "AppProject"}).encode(), 400, "Kind=AppProject"),
        "another apiVersion": (json.dumps({**ours, "apiVersion": "v1"}).encode(), 400, "the body is v1"),
        "another name": (
            json.dumps({**ours, "metadata": {"name": "other"}}).encode(),
            400,
            "does not match the name on the URL",
        ),
        "3 MiB": (b"spec: {x: " + b"a" * (3 * 1024 * 1024) + b"}", 413, "larger than the limit"),
    }
    for label, (body, code, words) in cases.items():
        status = _raw_patch(driftguard, path, body)
        assert (status.get("code"), words in status.get("message", "")) == (code, True), (label, status)
    no_manager = _raw_patch(
        driftguard, path.split("?")[0], json.dumps({**config(), "apiVersion": f"{OURS}/v1alpha1"}).encode()
    )
    assert no_manager.get("code") == 422 and "fieldManager: Required value" in no_manager["message"]


def _raw_patch(cluster: Cluster, path: str, body: bytes) -> dict[str, Any]:
    """A PATCH with application/apply-patch+yaml through kube-apiserver: its Status."""
    code, answer = oracle.request(cluster.pki_dir, "PATCH", path, body, "application/apply-patch+yaml")
    return {"code": code, **answer} if "code" not in answer else dict(answer)


def test_an_apply_that_creates_needs_create_and_one_that_updates_needs_patch(both: Both) -> None:
    k, ns = both.cluster.kubectl, both.namespace
    body = both._config(OURS, config())
    nobody = k(*apply("intruder"), "-n", ns, "--as=nobody", input=body, check=False)
    assert nobody.returncode != 0 and "forbidden" in nobody.stderr, nobody.stderr
    # Allowed to patch, not to create: an apply of a missing Application is refused, as in kube.
    k(
        "create",
        "role",
        "patcher",
        "-n",
        ns,
        "--verb=get,patch",
        "--resource=applications.gitops.driftguard.io",
    )
    k("create", "rolebinding", "patcher", "-n", ns, "--role=patcher", "--user=patcher")
    refused = k(*apply("patcher"), "-n", ns, "--as=patcher", input=body, check=False)
    assert refused.returncode != 0 and "cannot create resource" in refused.stderr, refused.stderr
    assert k("get", "applications.gitops.driftguard.io", "-n", ns, "-o", "name").stdout == ""
    k(*apply("team-a"), "-n", ns, input=body)
    changed = both._config(OURS, config(labels={"team": "b"}))
    k(*apply("patcher", "--force-conflicts"), "-n", ns, "--as=patcher", input=changed)
    assert both.get(OURS)["metadata"]["labels"] == {"team": "b"}


def test_projects_take_server_side_apply_from_admins_only(driftguard: Cluster, namespace: str) -> None:
    k = driftguard.kubectl
    name = f"ssa-{namespace[-5:]}"
    body = {
        "apiVersion": f"{OURS}/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": "driftguard-system"},
        "spec": {"sourceRepos": ["git://127.0.0.1:9/*"], "sourceNamespaces": [namespace],
                 "destinations": [{"server": "*", "namespace": namespace}]},
    }  # fmt: skip
    try:
        tenant = f"--as=system:serviceaccount:{namespace}:default"
        refused = k(*apply("tenant"), tenant, input=json.dumps(body), check=False)
        assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr
        k(*apply("platform"), input=json.dumps(body))
        body["spec"]["sourceRepos"] = ["git://127.0.0.1:9/team/*"]
        k(*apply("platform"), input=json.dumps(body))
        shown = k(
            "get",
            f"appprojects.{OURS}",
            name,
            "-n",
            "driftguard-system",
            "-o",
            "json",
            "--show-managed-fields",
        )
        stored = json.loads(shown.stdout)
        assert stored["spec"]["sourceRepos"] == ["git://127.0.0.1:9/team/*"]
        assert [(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]] == [
            ("platform", "Apply")
        ]
        # A second applier of the same list (atomic, as in Argo CD's CRD) conflicts.
        other = k(
            *apply("someone-else"), input=json.dumps({**body, "spec": {"sourceRepos": ["*"]}}), check=False
        )
        assert other.returncode != 0 and 'conflict with "platform"' in other.stderr, other.stderr
    finally:
        k("delete", f"appprojects.{OURS}", name, "-n", "driftguard-system", "--ignore-not-found")
