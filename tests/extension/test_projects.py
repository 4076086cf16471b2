"""A project's rules, from tables, with Argo CD's semantics: globs, ``!`` negation, servers and
namespaces, the four resource lists, sourceNamespaces and destinationServiceAccounts."""

from __future__ import annotations

from typing import Any

import pytest

from extension.api import projects
from extension.api.projects import ProjectError

IN_CLUSTER = "https://kubernetes.default.svc"
ANY = {"server": "*", "namespace": "*"}
RBAC = "rbac.authorization.k8s.io"


def project(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "team-a", "namespace": "driftguard-system"}, "spec": spec}


@pytest.mark.parametrize(
    ("patterns", "url", "allowed"),
    [
        (["*"], "https://git.example/anything/at/all.git", True),
        (["https://git.example/team-a/*"], "https://git.example/team-a/shop.git", True),
        (["https://git.example/team-a/*"], "https://GIT.example/team-a/shop/", True),  # normalised
        (["https://git.example/team-a/*"], "https://git.example/team-a/sub/shop", False),  # one segment
        (["https://git.example/team-a/**"], "https://git.example/team-a/sub/shop", True),
        (["https://git.example/team-a/*"], "https://git.example/team-b/shop", False),
        (["https://git.example/*/shop"], "https://git.example/x/shop.git", True),
        (["*", "!https://git.example/secret/*"], "https://git.example/secret/keys", False),
        (["*", "!https://git.example/secret/*"], "https://git.example/public/docs", True),
        (
            ["!https://git.example/secret/*"],
            "https://git.example/public/docs",
            True,
        ),  # a deny allows the rest
        ([], "https://git.example/x", False),
        (["git@git.example:team-a/*"], "git@git.example:team-a/shop.git", True),
        (["https://git.example/team-?"], "https://git.example/team-a", True),
        (["https://git.example/{shop,cart}"], "https://git.example/cart", True),
        (["https://git.example/{shop,cart}"], "https://git.example/pay", False),
        # A deny pattern holds whatever the case or encoding of the URL (GitHub ignores case).
        (
            ["https://git.example/org/*", "!https://git.example/org/secrets"],
            "https://git.example/org/Secrets",
            False,
        ),
        (
            ["https://git.example/org/*", "!https://git.example/org/secrets"],
            "https://git.example/org/%73ecrets",
            False,
        ),
        (
            ["https://git.example/org/*", "!https://git.example/org/Secrets"],
            "https://git.example/org/secrets",
            False,
        ),
    ],
)
def test_source_repos_match_like_argo_cd(patterns: list[str], url: str, allowed: bool) -> None:
    assert projects.repo_allowed(project(sourceRepos=patterns), url) is allowed


@pytest.mark.parametrize(
    ("destinations", "server", "namespace", "allowed"),
    [
        ([{"server": "*", "namespace": "*"}], IN_CLUSTER, "anything", True),
        ([{"server": IN_CLUSTER, "namespace": "team-a"}], IN_CLUSTER, "team-a", True),
        ([{"server": IN_CLUSTER, "namespace": "team-a"}], IN_CLUSTER, "team-b", False),
        ([{"server": "*", "namespace": "team-a-*"}], IN_CLUSTER, "team-a-dev", True),
        ([{"server": "*", "namespace": "team-a-*"}], IN_CLUSTER, "team-b-dev", False),
        ([{"server": "https://other:6443", "namespace": "*"}], IN_CLUSTER, "team-a", False),
        ([{"name": "in-cluster", "namespace": "team-a"}], IN_CLUSTER, "team-a", True),
        ([{"server": "*", "namespace": "!kube-system"}, ANY], IN_CLUSTER, "kube-system", False),
        ([{"server": "*", "namespace": "!kube-system"}, ANY], IN_CLUSTER, "team-a", True),
        ([{"server": "*", "namespace": "!kube-*"}], IN_CLUSTER, "kube-public", False),
        ([{"server": "*", "namespace": "!kube-*"}], IN_CLUSTER, "web", True),
        ([{"server": "!https://prod:6443", "namespace": "*"}], IN_CLUSTER, "web", True),
        ([], IN_CLUSTER, "team-a", False),
    ],
)  # fmt: skip
def test_destinations_match_like_argo_cd(
    destinations: list[dict[str, str]], server: str, namespace: str, allowed: bool
) -> None:
    p = project(destinations=destinations)
    assert projects.destination_allowed(p, server, "in-cluster", namespace) is allowed


def test_an_empty_server_means_the_cluster_driftguard_runs_in() -> None:
    assert projects.destination({"namespace": "a"}) == (IN_CLUSTER, "in-cluster", "a")
    assert projects.destination({"name": "in-cluster", "namespace": "a"}) == (IN_CLUSTER, "in-cluster", "a")
    assert projects.destination({"server": IN_CLUSTER + "/", "namespace": "a"}) == (
        IN_CLUSTER,
        "in-cluster",
        "a",
    )


@pytest.mark.parametrize(
    ("spec", "group", "kind", "namespaced", "refused"),
    [
        ({}, "apps", "Deployment", True, None),
        ({}, RBAC, "ClusterRoleBinding", False, "clusterResourceWhitelist does not list"),
        ({"clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}, "", "Namespace", False, None),
        ({"clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}]}, "", "Namespace", False, None),
        ({"clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}]},
         "rbac.authorization.k8s.io", "ClusterRole", False, "clusterResourceWhitelist does not list"),
        ({"clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
          "clusterResourceBlacklist": [{"group": "rbac.authorization.k8s.io", "kind": "*"}]},
         "rbac.authorization.k8s.io", "ClusterRoleBinding", False, "clusterResourceBlacklist lists it"),
        ({"namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}]}, "", "ResourceQuota", True,
         "namespaceResourceBlacklist lists it"),
        ({"namespaceResourceBlacklist": [{"kind": "ResourceQuota"}]}, "", "ConfigMap", True, None),
        ({"namespaceResourceWhitelist": [{"group": "apps", "kind": "*"}]}, "apps", "StatefulSet", True, None),
        ({"namespaceResourceWhitelist": [{"group": "apps", "kind": "*"}]}, "", "Secret", True,
         "namespaceResourceWhitelist does not list it"),
        ({"namespaceResourceWhitelist": [{"group": "*", "kind": "Role*"}]}, "rbac.authorization.k8s.io",
         "RoleBinding", True, None),
    ],
)  # fmt: skip
def test_kinds_follow_the_white_and_black_lists(
    spec: dict[str, Any], group: str, kind: str, namespaced: bool, refused: str | None
) -> None:
    rule = projects.kind_allowed(project(**spec), group, kind, namespaced)
    assert (rule is None) if refused is None else (rule is not None and refused in rule), rule


@pytest.mark.parametrize(
    ("patterns", "namespace", "allowed"),
    [
        (["team-a"], "team-a", True),
        (["team-a"], "team-b", False),
        (["team-*"], "team-b", True),
        ([], "team-a", False),
        ([], "driftguard-system", True),  # the install namespace: only admins write there
    ],
)
def test_source_namespaces_say_whose_applications_may_use_a_project(
    patterns: list[str], namespace: str, allowed: bool
) -> None:
    assert projects.namespace_may_use(project(sourceNamespaces=patterns), namespace) is allowed


def test_the_first_matching_destination_service_account_is_impersonated() -> None:
    p = project(
        destinationServiceAccounts=[
            {"server": IN_CLUSTER, "namespace": "team-a", "defaultServiceAccount": "deployer"},
            {"server": "*", "namespace": "team-*", "defaultServiceAccount": "ops:robot"},
        ]
    )
    assert projects.service_account(p, IN_CLUSTER, "team-a") == "system:serviceaccount:team-a:deployer"
    assert projects.service_account(p, IN_CLUSTER, "team-b") == "system:serviceaccount:ops:robot"
    with pytest.raises(ProjectError, match="no destinationServiceAccounts entry matches"):
        projects.service_account(p, IN_CLUSTER, "web")
    assert projects.service_account(project(), IN_CLUSTER, "web") is None
    # No destination namespace: the Application's own, as in Argo CD.
    anywhere = project(
        destinationServiceAccounts=[{"server": "*", "namespace": "*", "defaultServiceAccount": "d"}]
    )
    assert projects.service_account(anywhere, IN_CLUSTER, "", "team-a") == "system:serviceaccount:team-a:d"


def test_an_application_whose_destination_has_no_service_account_or_wants_a_namespace_made_is_refused() -> (
    None
):
    p = project(
        sourceNamespaces=["team-a"],
        sourceRepos=["*"],
        destinations=[{"server": "*", "namespace": "team-*"}],
        destinationServiceAccounts=[
            {"server": "*", "namespace": "team-a-prod", "defaultServiceAccount": "d"}
        ],
    )
    spec = {
        "source": {"repoURL": "https://git.example/x"},
        "destination": {"namespace": "team-a-tmp"},
        "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
    }
    refused = [str(r) for r in projects.application_refusals(p, "team-a", "team-a", spec)]
    assert refused == [
        f"destination {IN_CLUSTER} namespace team-a-tmp: project team-a: no destinationServiceAccounts entry "
        "matches server https://kubernetes.default.svc and namespace team-a-tmp",
        "syncOptions CreateNamespace=true: project team-a's clusterResourceWhitelist does not list it "
        "(cluster-scoped kinds must be listed)",
    ]


def test_an_application_refused_names_the_project_and_each_rule() -> None:
    p = project(
        sourceNamespaces=["team-a"],
        sourceRepos=["https://git.example/team-a/*"],
        destinations=[{"server": "*", "namespace": "team-a"}],
    )
    spec = {
        "source": {"repoURL": "https://git.example/team-b/x"},
        "destination": {"namespace": "kube-system"},
    }
    refused = [str(r) for r in projects.application_refusals(p, "team-a", "team-b", spec)]
    assert refused == [
        "namespace team-b: project team-a does not list it in sourceNamespaces",
        "repository https://git.example/team-b/x: project team-a does not allow it in sourceRepos",
        f"destination {IN_CLUSTER} namespace kube-system: project team-a does not allow it in destinations",
    ]
    ok = {"source": {"repoURL": "https://git.example/team-a/shop"}, "destination": {"namespace": "team-a"}}
    assert projects.application_refusals(p, "team-a", "team-a", ok) == []


def test_rendered_objects_are_refused_by_kind_and_by_namespace() -> None:
    p = project(destinations=[{"server": "*", "namespace": "team-a"}])
    objects = [
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "", "escalate", False),
        ("", "ConfigMap", "kube-system", "sneaky", True),
        ("", "ConfigMap", "team-a", "fine", True),
    ]
    refused = [str(r) for r in projects.object_refusals(p, "team-a", IN_CLUSTER, "in-cluster", objects)]
    assert refused == [
        f"ClusterRoleBinding.{RBAC} escalate: project team-a's clusterResourceWhitelist "
        "does not list it (cluster-scoped kinds must be listed)",
        "ConfigMap kube-system/sneaky: project team-a's destinations do not allow namespace kube-system",
    ]
