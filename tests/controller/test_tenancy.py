"""Tenancy: an Application never does more than a cluster admin granted its namespace, through its
project. Tenants are users bound to the built-in ``edit`` role in one namespace, driving kubectl
with ``--as``; projects are made by the admin in driftguard-system."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.controller.conftest import Tenant
from tests.support.apps import Apps, condition
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
GROUP_VERSION = "gitops.driftguard.io/v1alpha1"


def configmap(name: str, value: str = "1") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value!r}\n"


def cluster_admin_binding(user: str) -> str:
    return f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: escalate-{user}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]
"""


def app_condition(apps: Apps, name: str, reason: str) -> dict[str, Any]:
    app = apps.wait(name, f"the condition {reason}", lambda a: condition(a).get("reason") == reason)
    return condition(app)


def test_a_namespace_editor_cannot_make_themselves_cluster_admin_through_an_application(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    git_server.commit(
        repo, {"crb.yaml": cluster_admin_binding(tenant.user), "cm.yaml": configmap("settings")}
    )
    url = git_server.git_url(repo)
    # With the project default, as before projects bounded anything: refused at write time.
    refused = tenant.as_user("apply", "-f", "-", input=tenant.application("escalate", url), check=False)
    assert refused.returncode != 0
    assert "project default does not list it in sourceNamespaces" in refused.stderr, refused.stderr
    # With their own project, the Application exists, and its sync is refused before anything applies.
    tenant.as_user("apply", "-f", "-", input=tenant.application("escalate", url, tenant.project,
                                                                  syncPolicy={"automated": {}}))  # fmt: skip
    apps = Apps(api_client, tenant.namespace)
    denied = app_condition(apps, "escalate", "ProjectDenied")
    assert (
        f"ClusterRoleBinding.rbac.authorization.k8s.io escalate-{tenant.user}: project {tenant.project}'s "
        "clusterResourceWhitelist does not list it"
    ) in denied["message"]
    assert "Nothing was applied or pruned" in denied["message"]
    assert kubectl("get", "clusterrolebinding", f"escalate-{tenant.user}", check=False).returncode != 0
    assert kubectl("get", "configmap", "settings", "-n", tenant.namespace, check=False).returncode != 0
    can = kubectl("auth", "can-i", "*", "*", f"--as={tenant.user}", check=False)
    assert can.stdout.strip() == "no"


@pytest.mark.parametrize(
    ("rule", "spec", "said"),
    [
        ("destination", {"destination_namespace": "kube-system"}, " does not allow it in destinations"),
        ("repository", {}, " does not allow it in sourceRepos"),
        # Making a namespace is making a cluster-scoped object: the project must list Namespace.
        (
            "namespace",
            {"syncPolicy": {"syncOptions": ["CreateNamespace=true"]}},
            "'s clusterResourceWhitelist does not list it",
        ),
    ],
)
def test_a_write_outside_the_project_is_refused_with_the_project_and_the_rule(
    tenant: Tenant, git_server: GitServer, repo: str, rule: str, spec: dict[str, Any], said: str
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings")})
    url = git_server.git_url(repo)
    if rule == "repository":
        tenant.set_project(
            sourceNamespaces=[tenant.namespace], sourceRepos=["git://git.example/allowed/*"],
            destinations=[{"server": "*", "namespace": tenant.namespace}],
        )  # fmt: skip
    result = tenant.as_user("apply", "-f", "-", input=tenant.application("shop", url, tenant.project, **spec),
                            check=False)  # fmt: skip
    assert result.returncode != 0
    assert (
        "Error from server (Forbidden)" in result.stderr
        and f"project {tenant.project}{said}" in result.stderr
    )


def test_a_kind_on_the_projects_blacklist_stops_the_sync_before_anything_is_applied(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    tenant.set_project(
        sourceNamespaces=[tenant.namespace], sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": tenant.namespace}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}],
    )  # fmt: skip
    quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: all\nspec:\n  hard: {pods: '1000'}\n"
    git_server.commit(repo, {"quota.yaml": quota, "cm.yaml": configmap("settings")})
    manifest = tenant.application(
        "shop", git_server.git_url(repo), tenant.project, syncPolicy={"automated": {}}
    )
    tenant.as_user("apply", "-f", "-", input=manifest)
    denied = app_condition(Apps(api_client, tenant.namespace), "shop", "ProjectDenied")
    assert (
        f"ResourceQuota {tenant.namespace}/all: project {tenant.project}'s "
        "namespaceResourceBlacklist lists it" in denied["message"]
    )
    assert kubectl("get", "configmap", "settings", "-n", tenant.namespace, check=False).returncode != 0


def test_a_tenant_project_deploys_into_its_namespace_and_a_tightened_or_deleted_project_stops_the_next_sync(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    git_server.commit(repo, {"cm.yaml": configmap("settings", "from-git")})
    url = git_server.git_url(repo)
    tenant.as_user("apply", "-f", "-", input=tenant.application("shop", url, tenant.project,
                                                                  syncPolicy={"automated": {}}))  # fmt: skip
    apps = Apps(api_client, tenant.namespace)
    apps.wait_synced("shop")
    # Tightened: ConfigMaps are no longer allowed. The project's change wakes its Applications.
    tenant.set_project(
        sourceNamespaces=[tenant.namespace], sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": tenant.namespace}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ConfigMap"}],
    )  # fmt: skip
    denied = app_condition(apps, "shop", "ProjectDenied")
    assert "namespaceResourceBlacklist lists it" in denied["message"]
    # What is deployed stays, and the drift guard still guards it.
    assert kubectl("get", "configmap", "settings", "-n", tenant.namespace, check=False).returncode == 0
    edit = tenant.as_user("patch", "configmap", "settings", "-n", tenant.namespace, "--type=merge",
                          "-p", '{"data":{"value":"by-hand"}}', check=False)  # fmt: skip
    assert edit.returncode != 0 and "is set by Git" in edit.stderr
    # Deleted: the same, with the reason.
    kubectl("delete", "appprojects.gitops.driftguard.io", tenant.project, "-n", "driftguard-system")
    gone = apps.wait(
        "shop", "the project's absence", lambda a: "does not exist" in condition(a).get("message", "")
    )
    assert condition(gone)["reason"] == "ProjectDenied"
    assert kubectl("get", "configmap", "settings", "-n", tenant.namespace, check=False).returncode == 0


def test_with_a_destination_service_account_kubernetes_rbac_has_the_last_word(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    kubectl("create", "serviceaccount", "deployer", "-n", tenant.namespace)
    tenant.set_project(
        sourceNamespaces=[tenant.namespace], sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": tenant.namespace}],
        destinationServiceAccounts=[
            {"server": "*", "namespace": tenant.namespace, "defaultServiceAccount": "deployer"}
        ],
    )  # fmt: skip
    git_server.commit(repo, {"cm.yaml": configmap("settings")})
    tenant.as_user(
        "apply", "-f", "-", input=tenant.application("shop", git_server.git_url(repo), tenant.project)
    )
    apps = Apps(api_client, tenant.namespace)
    apps.operate("shop", "sync", {})
    # The ServiceAccount may not even read ConfigMaps yet: kube-apiserver's Forbidden, as is.
    app = apps.wait("shop", "the sync to fail", lambda a: "forbidden" in condition(a).get("message", ""))
    message = condition(app)["message"]
    assert "forbidden" in message and f"system:serviceaccount:{tenant.namespace}:deployer" in message, message
    assert kubectl("get", "configmap", "settings", "-n", tenant.namespace, check=False).returncode != 0
    # Given the Role, the next sync succeeds.
    kubectl("create", "rolebinding", "deployer", "--clusterrole=edit",
            f"--serviceaccount={tenant.namespace}:deployer", "-n", tenant.namespace)  # fmt: skip
    apps.operate("shop", "sync", {})
    apps.wait_synced("shop")
    managers = json.loads(
        kubectl(
            "get", "configmap", "settings", "-n", tenant.namespace, "-o", "json", "--show-managed-fields"
        ).stdout
    )["metadata"]["managedFields"]
    assert ("driftguard-controller", "Apply") in {(m["manager"], m["operation"]) for m in managers}


def test_deleting_an_application_never_deletes_what_its_project_no_longer_allows(
    tenant: Tenant, git_server: GitServer, repo: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    git_server.commit(
        repo,
        {
            "cm.yaml": configmap("settings"),
            "sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: robot\n",
        },
    )
    body = json.loads(
        tenant.application("shop", git_server.git_url(repo), tenant.project, syncPolicy={"automated": {}})
    )
    body["metadata"]["finalizers"] = ["resources-finalizer.gitops.driftguard.io"]
    tenant.as_user("apply", "-f", "-", input=json.dumps(body))
    apps = Apps(api_client, tenant.namespace)
    apps.wait_synced("shop")
    # The admin takes ServiceAccounts away from the team; then the team deletes its Application.
    tenant.set_project(
        sourceNamespaces=[tenant.namespace], sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": tenant.namespace}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ServiceAccount"}],
    )  # fmt: skip
    tenant.as_user(
        "delete", "applications.gitops.driftguard.io", "shop", "-n", tenant.namespace, "--wait=false"
    )
    wait_for(
        lambda: kubectl("get", "applications.gitops.driftguard.io", "shop", "-n", tenant.namespace,
                        check=False).returncode != 0,
        "the Application to be gone",
    )  # fmt: skip
    assert kubectl("get", "configmap", "settings", "-n", tenant.namespace, check=False).returncode != 0
    assert kubectl("get", "serviceaccount", "robot", "-n", tenant.namespace, check=False).returncode == 0, (
        "the project no longer allows ServiceAccounts: it is left in place, not deleted"
    )
