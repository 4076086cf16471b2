"""Delegated authentication and authorization of the aggregated API, against the real cluster."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest
from kubernetes import client, dynamic

from tests.support.cluster import LOCAL_DIR, TEST_PROJECT, Cluster

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., CompletedProcess[str]]
APP = json.dumps(
    {
        "apiVersion": "gitops.driftguard.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop"},
        "spec": {
            "source": {"repoURL": "git://127.0.0.1:9/shop.git"},
            "destination": {"namespace": "shop"},
            "project": TEST_PROJECT,
        },
    }
)


@pytest.fixture
def k(driftguard: Cluster) -> Kubectl:
    return driftguard.kubectl


def direct_get(path: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    """A TLS request straight to the extension, without the front proxy's client certificate."""
    context = ssl.create_default_context(cafile=str(LOCAL_DIR / "extension" / "tls" / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", 8443, context=context, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_forged_identity_headers_without_the_proxy_certificate_get_401(k: Kubectl, namespace: str) -> None:
    k("apply", "-n", namespace, "-f", "-", input=APP)
    code, body = direct_get(
        f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications",
        {"X-Remote-User": "kubernetes-admin", "X-Remote-Group": "system:masters"},
    )
    assert code == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    assert "shop" not in json.dumps(body)
    for path in ("/ui/", "/ui/applications", "/ui/watch"):  # the dashboard: the same authentication
        code, body = direct_get(
            f"/apis/gitops.driftguard.io/v1alpha1{path}",
            {"X-Remote-User": "kubernetes-admin", "X-Remote-Group": "system:masters"},
        )
        assert (code, body["reason"]) == (401, "Unauthorized"), path
        assert "shop" not in json.dumps(body)


def test_a_namespaced_viewer_can_get_but_not_sync_or_edit(k: Kubectl, namespace: str) -> None:
    k("apply", "-n", namespace, "-f", "-", input=APP)
    k("create", "rolebinding", "jane-views", "-n", namespace, "--clusterrole=view", "--user=jane")
    as_jane = ("--as", "jane")

    # The built-in view role includes ours through aggregation.
    assert k("get", "dgapp", "shop", "-n", namespace, *as_jane, "-o", "name").stdout.strip() == (
        "application.gitops.driftguard.io/shop"
    )
    assert k("auth", "can-i", "create", "applications", "--subresource=sync", "-n", namespace, *as_jane,
             check=False).stdout.strip() == "no"  # fmt: skip
    sync = k(
        "create", "--raw",
        f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications/shop/sync",
        "-f", "-", *as_jane, input="{}", check=False,
    )  # fmt: skip
    assert sync.returncode != 0
    assert (
        'applications.gitops.driftguard.io "shop" is forbidden: User "jane" cannot create resource '
        f'"applications/sync" in API group "gitops.driftguard.io" in the namespace "{namespace}"'
    ) in sync.stderr
    edit = k("patch", "dgapp", "shop", "-n", namespace, "--type", "merge", "-p", '{"spec":{"project":"x"}}',
             *as_jane, check=False)  # fmt: skip
    assert edit.returncode != 0
    assert 'User "jane" cannot patch resource "applications"' in edit.stderr


def test_an_editor_may_sync_but_only_admin_may_roll_back(k: Kubectl, namespace: str) -> None:
    k("apply", "-n", namespace, "-f", "-", input=APP)
    k("create", "rolebinding", "sam-edits", "-n", namespace, "--clusterrole=edit", "--user=sam")
    base = f"/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications/shop"
    assert k("create", "--raw", f"{base}/sync", "-f", "-", "--as", "sam", input="{}").returncode == 0
    rollback = k(
        "create", "--raw", f"{base}/rollback", "-f", "-", "--as", "sam", input='{"id": 1}', check=False
    )
    assert rollback.returncode != 0 and 'cannot create resource "applications/rollback"' in rollback.stderr


def test_a_role_with_resource_names_grants_exactly_those_applications(k: Kubectl, namespace: str) -> None:
    """Each object is asked about by name (and the answer cached): a Role limited by
    resourceNames grants exactly those objects, the first time and from the cache."""
    k("apply", "-n", namespace, "-f", "-", input=APP)
    k("apply", "-n", namespace, "-f", "-", input=APP.replace('"name": "shop"', '"name": "other"'))
    k("create", "role", "only-shop", "-n", namespace, "--verb=get",
      "--resource=applications.gitops.driftguard.io", "--resource-name=shop")  # fmt: skip
    k("create", "rolebinding", "kim-shop", "-n", namespace, "--role=only-shop", "--user=kim")
    for _ in range(2):  # the second round answers from the cache
        assert k("get", "dgapp", "shop", "-n", namespace, "--as", "kim", "-o", "name").returncode == 0
        other = k("get", "dgapp", "other", "-n", namespace, "--as", "kim", check=False)
        assert other.returncode != 0
        assert 'User "kim" cannot get resource "applications"' in other.stderr
        assert k("get", "dgapp", "-n", namespace, "--as", "kim", check=False).returncode != 0


def test_a_user_with_no_access_gets_403_on_list(k: Kubectl, namespace: str) -> None:
    result = k("get", "dgapp", "-n", namespace, "--as", "nobody", check=False)
    assert result.returncode != 0
    assert (
        'applications.gitops.driftguard.io is forbidden: User "nobody" cannot list resource "applications" '
        f'in API group "gitops.driftguard.io" in the namespace "{namespace}"'
    ) in result.stderr


def test_the_python_dynamic_client_discovers_and_uses_applications(
    api_client: client.ApiClient, namespace: str, driftguard: Cluster
) -> None:
    dyn = dynamic.DynamicClient(api_client)
    apps = dyn.resources.get(api_version="gitops.driftguard.io/v1alpha1", kind="Application")
    created = apps.create(body=json.loads(APP), namespace=namespace)
    assert created.spec.project == TEST_PROJECT
    listed = apps.get(namespace=namespace)
    assert [item.metadata.name for item in listed.items] == ["shop"]
    apps.delete(name="shop", namespace=namespace)
    assert apps.get(namespace=namespace).items == []
