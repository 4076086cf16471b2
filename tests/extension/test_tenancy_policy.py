"""Application writes judged by their project, over a fake store of projects: each refusal names
the project and the rule; file:// sources are refused unless allowed; projects are kept briefly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from extension.api import errors
from extension.api.kinds import APPPROJECTS
from extension.resources import Resources, WriteOptions
from extension.tenancy import PROJECT_SECONDS, application_policy
from tests.extension.test_app import FakeStore


def app(
    namespace: str = "team-a", project: str = "team-a", repo: str = "https://git.example/team-a/shop"
) -> Any:
    return {
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"project": project, "source": {"repoURL": repo}, "destination": {"namespace": namespace}},
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> FakeStore:
    store = FakeStore()
    store.apps[("driftguard-system", "team-a")] = {
        "metadata": {"name": "team-a", "namespace": "driftguard-system", "resourceVersion": "1"},
        "spec": {"sourceNamespaces": ["team-a"], "sourceRepos": ["https://git.example/team-a/*"],
                 "destinations": [{"server": "*", "namespace": "team-a"}]},
    }  # fmt: skip
    return store


def refused(policy: Any, obj: Any) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        policy(obj, None)
    return caught.value


def test_an_application_its_project_allows_passes(store: FakeStore) -> None:
    application_policy(Resources(store, APPPROJECTS))(app(), None)


@pytest.mark.parametrize(
    ("obj", "said"),
    [
        (app(project="nope"), "spec.project: project nope does not exist in driftguard-system"),
        (app(namespace="team-b"), "namespace team-b: project team-a does not list it in sourceNamespaces"),
        (app(repo="https://git.example/team-b/x"), "does not allow it in sourceRepos"),
    ],
)
def test_a_write_the_project_refuses_is_403_naming_the_project_and_the_rule(
    store: FakeStore, obj: Any, said: str
) -> None:
    error = refused(application_policy(Resources(store, APPPROJECTS)), obj)
    assert (error.code, error.reason) == (403, "Forbidden")
    assert said in error.message and error.message.startswith(
        'applications.gitops.driftguard.io "shop" is forbidden'
    )


def test_a_file_url_is_refused_unless_the_operator_allows_local_repositories(store: FakeStore) -> None:
    store.apps[("driftguard-system", "team-a")]["spec"]["sourceRepos"] = ["*"]
    local = app(repo="file:///tmp/driftguard-git/0123456789abcdef")
    error = refused(application_policy(Resources(store, APPPROJECTS)), local)
    assert error.code == 422 and "DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES=true" in error.message
    application_policy(Resources(store, APPPROJECTS), allow_local=True)(local, None)


def test_a_project_is_read_again_once_it_has_been_kept_a_moment(store: FakeStore) -> None:
    clock = Clock()
    policy = application_policy(Resources(store, APPPROJECTS), clock=clock)
    policy(app(), None)
    tightened = copy.deepcopy(store.apps[("driftguard-system", "team-a")])
    tightened["spec"]["sourceRepos"] = ["https://git.example/elsewhere/*"]
    store.apps[("driftguard-system", "team-a")] = tightened
    policy(app(), None)  # the project as it was a moment ago
    clock.now += PROJECT_SECONDS
    assert "sourceRepos" in refused(policy, app()).message


class ActiveStore(FakeStore):
    def namespace_phase(self, namespace: str) -> str | None:
        return "Active"


def test_a_project_field_unknown_here_is_refused_whatever_field_validation_says() -> None:
    # A newer Argo CD field dropped here could only widen what the project allows.
    projects = Resources(ActiveStore(), APPPROJECTS)
    body = {
        "apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "team-a"},
        "spec": {"clusterResourceWhitelist": [{"group": "", "kind": "Namespace", "name": "team-a-*"}]},
    }  # fmt: skip
    with pytest.raises(errors.APIError) as caught:
        projects.create("driftguard-system", body, WriteOptions(field_validation="Ignore"))
    assert (
        caught.value.code == 400
        and 'unknown field "spec.clusterResourceWhitelist[0].name"' in caught.value.message
    )


def test_projects_live_in_driftguard_system_only() -> None:
    body = {"apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "p"}}
    with pytest.raises(errors.APIError) as caught:
        Resources(ActiveStore(), APPPROJECTS).create("team-a", body, WriteOptions())
    assert (
        caught.value.code == 403
        and "AppProjects live in the namespace driftguard-system" in caught.value.message
    )
