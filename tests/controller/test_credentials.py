"""Choosing repository credentials from labelled Secrets, the way Argo CD spells them."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from controller.credentials import REPO_CREDS_LABEL, Credentials, credentials_for
from extension.api.projects import normalise_url


def secret(name: str, *, label: str | None = "repository", **data: str) -> dict[str, Any]:
    """A Secret as the API returns it: data base64-encoded, keys as Argo CD names them."""
    labels = {REPO_CREDS_LABEL: label} if label is not None else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "driftguard", "labels": labels},
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def admin_credentials(url: str, secrets: list[dict[str, Any]]) -> Credentials | None:
    """For an Application in driftguard-system, which Secrets without a project serve."""
    return credentials_for(url, secrets, project="default", app_namespace="driftguard-system")


def test_a_secret_for_the_exact_url_gives_its_credentials() -> None:
    found = admin_credentials(
        "https://git.example.com/org/apps.git",
        [secret("apps", url="https://git.example.com/org/apps.git", username="bot", password="s3cret")],
    )
    assert found == Credentials(username="bot", password="s3cret")


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/org/apps.git",
        "https://git.example.com/org/apps",
        "https://git.example.com/org/apps/",
        "https://GIT.example.com/org/apps.git",
        "HTTPS://git.example.com/org/team/apps.git",
    ],
)
def test_a_prefix_covers_every_repository_below_it(url: str) -> None:
    secrets = [secret("org", url="https://git.example.com/org/", password="t")]
    assert admin_credentials(url, secrets) == Credentials(password="t")


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/organisation/apps.git",
        "https://git.example.com/or",
        "http://git.example.com/org/a",
    ],
)
def test_a_prefix_only_matches_whole_path_segments_and_the_same_scheme(url: str) -> None:
    assert admin_credentials(url, [secret("org", url="https://git.example.com/org", password="t")]) is None


def test_the_longest_prefix_wins_whatever_the_order() -> None:
    secrets = [
        secret("host", url="https://git.example.com", password="host"),
        secret("repo", url="https://git.example.com/org/apps.git", password="repo"),
        secret("org", url="https://git.example.com/org", password="org"),
    ]
    for ordered in (secrets, secrets[::-1]):
        assert admin_credentials("https://git.example.com/org/apps", ordered) == Credentials(password="repo")
        assert admin_credentials("https://git.example.com/org/other", ordered) == Credentials(password="org")
        assert admin_credentials("https://git.example.com/x/y", ordered) == Credentials(password="host")


@pytest.mark.parametrize("label", [None, "helm-chart", ""])
def test_secrets_without_the_repository_label_are_ignored(label: str | None) -> None:
    assert (
        admin_credentials("https://h/org/a", [secret("x", label=label, url="https://h/org", password="p")])
        is None
    )


def test_argo_cd_repo_creds_templates_count_too() -> None:
    found = admin_credentials(
        "https://h/org/a", [secret("x", label="repo-creds", url="https://h/org", password="p")]
    )
    assert found == Credentials(password="p")


def test_ssh_credentials_with_known_hosts_and_the_insecure_flag() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
    secrets = [
        secret(
            "strict", url="git@github.com:org", sshPrivateKey=key, knownHosts="github.com ssh-ed25519 AAAA"
        ),
        secret("loose", url="ssh://git@gitlab.example.com/group", sshPrivateKey=key, insecure="true"),
        secret("loose2", url="ssh://git@gitea.example.com/", sshPrivateKey=key, insecureIgnoreHostKey="True"),
    ]
    assert admin_credentials("git@github.com:org/apps.git", secrets) == Credentials(
        ssh_private_key=key, known_hosts="github.com ssh-ed25519 AAAA"
    )
    assert admin_credentials("ssh://git@gitlab.example.com/group/apps.git", secrets) == Credentials(
        ssh_private_key=key, insecure_ignore_host_key=True
    )
    assert admin_credentials("ssh://git@GITEA.example.com/x/y", secrets) == Credentials(
        ssh_private_key=key, insecure_ignore_host_key=True
    )
    assert admin_credentials("git@github.com:other/apps.git", secrets) is None


def test_helm_repositories_secrets_without_a_url_and_undecodable_data_are_skipped() -> None:
    broken = secret("broken", url="https://h/org", password="p")
    broken["data"]["password"] = "%%% not base64 %%%"
    secrets = [
        secret("helm", url="https://h/org", password="helm", type="helm"),
        secret("nourl", password="nourl"),
        broken,
        secret("git", url="https://h", password="git", type="git"),
    ]
    assert admin_credentials("https://h/org/a", secrets) == Credentials(password="git")


def test_string_data_is_read_as_plain_text_and_wins_over_data() -> None:
    s = secret("mixed", url="https://h/org", password="from-data")
    s["stringData"] = {"password": "from-string-data", "username": "u"}
    assert admin_credentials("https://h/org/a", [s]) == Credentials(username="u", password="from-string-data")


def test_credentials_never_show_secrets_in_their_repr() -> None:
    text = repr(Credentials(username="bot", password="pw-123", ssh_private_key="KEY-456"))
    assert "bot" in text
    assert "pw-123" not in text
    assert "KEY-456" not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://H.example.com/Org/Repo.git/", "https://h.example.com/Org/Repo"),
        ("git@GitHub.com:org/repo.git", "git@github.com:org/repo"),
        ("ssh://git@Host:2222/org/repo.git", "ssh://git@host:2222/org/repo"),
        (" https://h/org/ ", "https://h/org"),
    ],
)
def test_urls_are_normalised_before_matching(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_a_secret_scoped_to_a_project_serves_that_projects_applications_only() -> None:
    url = "https://git.example.com/team-a/private.git"
    secrets = [secret("team-a", url=url, username="a", password="a-token", project="team-a")]
    found = credentials_for(url, secrets, project="team-a", app_namespace="team-a")
    assert found is not None and found.password == "a-token" and found.source.startswith("driftguard/team-a/")
    assert credentials_for(url, secrets, project="team-b", app_namespace="team-b") is None
    assert credentials_for(url, secrets, project="default", app_namespace="driftguard-system") is None


def test_a_secret_without_a_project_serves_only_applications_in_driftguard_system() -> None:
    url = "https://git.example.com/platform/infra.git"
    secrets = [secret("platform", url=url, username="admin", password="admin-token")]
    assert credentials_for(url, secrets, project="default", app_namespace="driftguard-system") is not None
    assert credentials_for(url, secrets, project="default", app_namespace="team-a") is None
    assert credentials_for(url, secrets, project="team-a", app_namespace="team-a") is None


def test_the_longest_prefix_among_the_granted_secrets_wins() -> None:
    url = "https://git.example.com/org/apps.git"
    secrets = [
        secret("exact-other", url=url, username="b", password="b", project="team-b"),
        secret("org", url="https://git.example.com/org", username="a", password="a", project="team-a"),
    ]
    found = credentials_for(url, secrets, project="team-a", app_namespace="team-a")
    assert found is not None and found.username == "a", "another project's more exact Secret is not there"
