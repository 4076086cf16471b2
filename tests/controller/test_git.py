"""The repository cache against real Git servers on 127.0.0.1: git daemon (git://) and git
http-backend behind HTTP basic auth (http://), from tests/support/gitserver.py.

There is no sshd here, so ssh is covered by the command and files the cache builds for it, and by
one fetch that fails before authenticating.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from controller.git import (
    Credentials,
    GitError,
    RepoCache,
    redact,
    split_userinfo,
    ssh_command,
    transport_environment,
)
from tests.support.gitserver import GitServer

FILES = {
    "guestbook/deployment.yaml": "kind: Deployment\nmetadata:\n  name: guestbook\n",
    "guestbook/service.yaml": "kind: Service\nmetadata:\n  name: guestbook\n",
    "README.md": "# apps\n",
}
# Not a usable key: ssh never gets as far as reading it here.
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("gitserver")) as running:
        yield running


@pytest.fixture
def repo(server: GitServer, request: pytest.FixtureRequest) -> str:
    """A fresh repository named after the test, with one commit of FILES on main."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    server.create_repo(name)
    server.commit(name, FILES, message="initial")
    return name


@pytest.fixture
def cache(tmp_path: Path) -> RepoCache:
    return RepoCache(tmp_path / "cache", timeout_seconds=30)


@pytest.fixture(params=["git", "http"])
def remote(request: pytest.FixtureRequest, server: GitServer, repo: str) -> tuple[str, Credentials | None]:
    """The test's repository over git:// (anonymous) or http:// (basic auth)."""
    if request.param == "git":
        return server.git_url(repo), None
    return server.http_url(repo), Credentials(username=server.username, password=server.password)


def tree_contents(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


# -- resolving revisions ---------------------------------------------------------------------------


def test_every_kind_of_revision_resolves_to_the_full_commit_sha(
    server: GitServer, repo: str, cache: RepoCache, remote: tuple[str, Credentials | None]
) -> None:
    url, creds = remote
    main = server.rev_parse(repo, "refs/heads/main")
    server.tag(repo, "v1.0.0")
    server.tag(repo, "v1.1.0", message="an annotated tag")
    release = server.commit(repo, {"release.txt": "1\n"}, branch="release-1")

    assert server.rev_parse(repo, "refs/tags/v1.1.0") != main, "the annotated tag is an object of its own"
    expected = {
        "": main,
        "HEAD": main,
        "main": main,
        "release-1": release,
        "v1.0.0": main,
        "v1.1.0": main,
        "refs/heads/release-1": release,
        "refs/tags/v1.1.0": main,
        release: release,
        release[:7]: release,
        release[:12].upper(): release,
    }
    resolved = {revision: cache.resolve(url, revision, creds) for revision in expected}
    assert resolved == expected


def test_a_branch_wins_over_a_tag_of_the_same_name(server: GitServer, repo: str, cache: RepoCache) -> None:
    tagged = server.rev_parse(repo, "refs/heads/main")
    server.tag(repo, "stable")
    branch = server.commit(repo, {"x": "1\n"}, branch="stable")

    assert cache.resolve(server.git_url(repo), "stable") == branch != tagged


def test_a_second_resolve_sees_new_commits_moved_tags_and_deleted_branches(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url = server.git_url(repo)
    first = cache.resolve(url, "main")
    server.tag(repo, "latest")
    server.commit(repo, {"feature.txt": "wip\n"}, branch="feature")
    assert cache.resolve(url, "latest") == first
    assert cache.resolve(url, "feature")

    second = server.commit(repo, {"README.md": "# apps, v2\n"})
    server.tag(repo, "latest")
    server.delete_ref(repo, "refs/heads/feature")

    assert cache.resolve(url, "main") == second != first
    assert cache.resolve(url, "latest") == second
    with pytest.raises(GitError, match="revision 'feature' not found"):
        cache.resolve(url, "feature")


def test_head_follows_the_remote_default_branch(server: GitServer, repo: str, cache: RepoCache) -> None:
    url = server.git_url(repo)
    main = cache.resolve(url, "HEAD")
    trunk = server.commit(repo, {"trunk.txt": "t\n"}, branch="trunk")
    server.set_head(repo, "trunk")

    assert cache.resolve(url, "") == trunk != main


def test_a_commit_on_no_branch_or_tag_is_fetched_by_sha(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url = server.git_url(repo)
    cache.resolve(url, "main")
    pull = server.commit(repo, {"pr.txt": "change\n"}, branch="pr-branch")
    server.set_ref(repo, "refs/pull/1/head", pull)
    server.delete_ref(repo, "refs/heads/pr-branch")

    assert cache.resolve(url, pull) == pull
    with cache.checkout(url, pull) as tree:
        assert (tree / "pr.txt").read_text() == "change\n"


def test_an_unknown_revision_is_named_in_the_error(server: GitServer, repo: str, cache: RepoCache) -> None:
    url = server.git_url(repo)
    with pytest.raises(GitError) as raised:
        cache.resolve(url, "no-such-branch")
    assert str(raised.value) == f"revision 'no-such-branch' not found in {url}"
    assert raised.value.reason == "FetchFailed"


def test_an_unknown_full_sha_says_the_server_would_not_serve_it(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url, missing = server.git_url(repo), "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError) as raised:
        cache.resolve(url, missing)
    message = str(raised.value)
    assert message.startswith(f"revision '{missing}' not found in {url}: no branch or tag points to it")
    assert "not our ref" in message


def test_a_repository_without_commits_has_no_head(server: GitServer, cache: RepoCache) -> None:
    server.create_repo("empty")
    with pytest.raises(GitError, match=r"revision 'HEAD' not found in git://.*/empty\.git"):
        cache.resolve(server.git_url("empty"), "HEAD")


def test_a_missing_repository_fails_with_the_server_message(server: GitServer, cache: RepoCache) -> None:
    url = server.git_url("does-not-exist")
    with pytest.raises(GitError, match=rf"^fetching {re.escape(url)} failed: .*does-not-exist"):
        cache.resolve(url, "main")


def test_an_unreachable_server_fails_saying_the_connection_was_refused(cache: RepoCache) -> None:
    url = GitServer.closed_port_url("apps")
    with pytest.raises(GitError) as raised:
        cache.resolve(url, "main")
    message = str(raised.value)
    assert message.startswith(f"fetching {url} failed: ")
    assert "Connection refused" in message


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_a_server_that_never_answers_times_out(scheme: str, tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "cache", timeout_seconds=1)
    started = time.monotonic()
    with GitServer.unresponsive(scheme) as url, pytest.raises(GitError) as raised:
        cache.resolve(url, "main")
    assert str(raised.value) == f"timed out after 1s fetching {url}"
    assert time.monotonic() - started < 20, "git was killed at the deadline, not left hanging"


def test_fetches_are_logged_with_the_url_and_duration(
    server: GitServer, repo: str, cache: RepoCache, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.git_url(repo)
    with caplog.at_level(logging.INFO, logger="controller.git"):
        cache.resolve(url, "main")
    messages = [record.getMessage() for record in caplog.records]
    assert f"fetching {url}" in messages
    assert any(re.fullmatch(rf"fetched {re.escape(url)} in \d+\.\ds", message) for message in messages)


# -- checkouts -------------------------------------------------------------------------------------


def test_a_checkout_holds_exactly_the_commit_read_only(
    server: GitServer, repo: str, cache: RepoCache, remote: tuple[str, Credentials | None]
) -> None:
    url, creds = remote
    sha = server.commit(repo, {"bin/render.sh": "#!/bin/sh\necho hi\n"}, executable=["bin/render.sh"])
    later = server.delete(repo, ["guestbook/service.yaml"])

    with cache.checkout(url, cache.resolve(url, sha, creds)) as tree:
        assert tree.parent == cache.root / "trees"
        assert tree.name.startswith(f"{sha}-")
        assert tree_contents(tree) == {**FILES, "bin/render.sh": "#!/bin/sh\necho hi\n"}
        assert os.stat(tree / "bin/render.sh").st_mode & stat.S_IXUSR
        assert not os.stat(tree / "README.md").st_mode & stat.S_IXUSR
        for path in [tree, *tree.rglob("*")]:
            assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path

    with cache.checkout(url, cache.resolve(url, "main", creds)) as tree:
        assert cache.resolve(url, "main", creds) == later
        assert "guestbook/service.yaml" not in tree_contents(tree)


def test_borrowers_of_one_commit_share_a_tree_and_idle_trees_beyond_the_limit_are_deleted(
    server: GitServer, repo: str, tmp_path: Path
) -> None:
    cache = RepoCache(tmp_path / "cache", idle_trees=1)
    url = server.git_url(repo)
    old = cache.resolve(url, "main")
    new = server.commit(repo, {"README.md": "# changed\n"})
    assert cache.resolve(url, "main") == new

    with cache.checkout(url, old) as a, cache.checkout(url, old) as b, cache.checkout(url, new) as c:
        assert a == b != c
        assert (a / "README.md").read_text() == "# apps\n"
        assert (c / "README.md").read_text() == "# changed\n"
    # Both idle now: the least recently used (old) went, new stays for the next borrower.
    assert not a.exists()
    assert c.exists()
    with cache.checkout(url, new) as again:
        assert again == c
    with cache.checkout(url, old) as back:
        assert back != a and (back / "README.md").read_text() == "# apps\n"
    assert not c.exists() and back.exists()
    assert list((cache.root / "trees").iterdir()) == [back]


def test_idle_trees_older_than_the_idle_time_are_deleted(
    server: GitServer, repo: str, tmp_path: Path
) -> None:
    cache = RepoCache(tmp_path / "cache", idle_seconds=0.0)
    url = server.git_url(repo)
    old = cache.resolve(url, "main")
    new = server.commit(repo, {"README.md": "# changed\n"})
    assert cache.resolve(url, "main") == new
    with cache.checkout(url, old) as first:
        pass
    assert first.exists(), "the tree just returned stays until the next borrower leaves"
    with cache.checkout(url, new) as second:
        pass
    assert not first.exists() and second.exists()


def test_a_failing_borrower_leaves_the_tree_intact_for_the_next(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url = server.git_url(repo)
    sha = cache.resolve(url, "main")
    with pytest.raises(RuntimeError, match="render failed"), cache.checkout(url, sha) as tree:
        raise RuntimeError("render failed")
    with cache.checkout(url, sha) as again:
        assert again == tree
        assert tree_contents(again) == FILES


def test_trees_left_by_an_earlier_process_are_deleted_on_start(
    server: GitServer, repo: str, tmp_path: Path
) -> None:
    url = server.git_url(repo)
    first = RepoCache(tmp_path / "cache")
    with first.checkout(url, first.resolve(url, "main")) as tree:
        pass
    assert tree.exists()
    RepoCache(tmp_path / "cache")
    assert not tree.exists()


def test_checking_out_a_commit_the_cache_never_fetched_fails_and_leaves_nothing(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url = server.git_url(repo)
    cache.resolve(url, "main")
    unknown = "f" * 40
    with (
        pytest.raises(GitError, match=f"commit {unknown} of .* is not in the cache"),
        cache.checkout(url, unknown),
    ):
        pass
    with pytest.raises(GitError, match="not a full commit SHA"), cache.checkout(url, "main"):
        pass
    assert list((cache.root / "trees").iterdir()) == []


def test_eight_threads_resolving_and_checking_out_one_repository_each_get_their_own_commit(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url = server.git_url(repo)
    commits = {
        f"branch-{n}": server.commit(repo, {"n.txt": f"{n}\n"}, branch=f"branch-{n}") for n in range(8)
    }
    barrier = threading.Barrier(8, timeout=30)

    def work(branch: str) -> tuple[str, str, str]:
        barrier.wait()  # all threads hit a cold cache at once
        sha = cache.resolve(url, branch)
        with cache.checkout(url, sha) as tree:
            return branch, sha, (tree / "n.txt").read_text()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, commits))

    assert results == [
        (branch, sha, f"{branch.removeprefix('branch-')}\n") for branch, sha in commits.items()
    ]
    assert len(list((cache.root / "trees").iterdir())) == 8, "one tree per commit, none leaked"


# -- a damaged mirror --------------------------------------------------------------------------------


def _half_created(mirror: Path) -> None:
    shutil.rmtree(mirror)
    mirror.mkdir()
    (mirror / "description").write_text("crashed while creating\n")


def _garbage_config(mirror: Path) -> None:
    (mirror / "config").write_text("[core\n\tthis is not git config\n")


def _objects_corrupted(mirror: Path) -> None:
    # Lost objects git fetches again by itself; objects that exist but are garbage it cannot see.
    for path in (mirror / "objects").rglob("*"):
        if path.is_file() and path.parent.name != "info":
            path.chmod(0o644)
            path.write_bytes(b"\0garbage\0" * 8)


def _other_remote(mirror: Path) -> None:
    with (mirror / "config").open("a") as config:
        config.write('[remote "origin"]\n\turl = git://elsewhere.invalid/other.git\n')


@pytest.mark.parametrize(
    "damage",
    [_half_created, _garbage_config, _objects_corrupted, _other_remote],
    ids=["half-created", "garbage-config", "objects-corrupted", "other-remote"],
)
def test_a_damaged_mirror_is_recreated(
    damage: Callable[[Path], None],
    server: GitServer,
    repo: str,
    cache: RepoCache,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = server.git_url(repo)
    old = server.tag(repo, "v1")
    assert cache.resolve(url, "v1") == old
    damage(cache.mirror_path(url))
    new = server.commit(repo, {"after-crash.txt": "1\n"})

    with caplog.at_level(logging.WARNING, logger="controller.git"):
        assert cache.resolve(url, "v1") == old
    assert any("recreating it" in record.getMessage() for record in caplog.records)
    assert cache.resolve(url, "main") == new
    with cache.checkout(url, old) as before, cache.checkout(url, new) as after:
        assert tree_contents(before) == FILES
        assert tree_contents(after) == {**FILES, "after-crash.txt": "1\n"}


# -- credentials -------------------------------------------------------------------------------------


def test_http_credentials_reach_the_server_but_never_the_disk(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    url = server.http_url(repo)
    sha = cache.resolve(url, "main", Credentials(username=server.username, password=server.password))

    assert sha == server.rev_parse(repo, "refs/heads/main")
    seen = [request for request in server.http_requests if request.path.startswith(f"/{repo}.git/")]
    assert {request.user for request in seen if request.status == 200} == {server.username}
    for path in cache.root.rglob("*"):
        if path.is_file():
            assert server.password.encode() not in path.read_bytes(), path


def test_a_token_without_a_user_name_is_sent_with_a_placeholder_user(tmp_path: Path) -> None:
    tmp_path.joinpath("askpass").touch()
    env = transport_environment(Credentials(password="ghp_token"), tmp_path / "askpass", None, None)
    assert (env["DRIFTGUARD_GIT_USERNAME"], env["DRIFTGUARD_GIT_PASSWORD"]) == ("git", "ghp_token")


def test_a_wrong_password_fails_without_revealing_it(
    server: GitServer, repo: str, cache: RepoCache, caplog: pytest.LogCaptureFixture
) -> None:
    url, wrong = server.http_url(repo), "not-the-password-8c1f"
    with caplog.at_level(logging.DEBUG), pytest.raises(GitError) as raised:
        cache.resolve(url, "main", Credentials(username=server.username, password=wrong))
    message = str(raised.value)
    assert message.startswith(f"fetching {url} failed: the server rejected the credentials")
    assert wrong not in message
    assert wrong not in caplog.text


def test_credentials_in_the_url_are_redacted_from_errors_and_logs(
    server: GitServer, repo: str, cache: RepoCache, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.http_url(repo).replace("http://", "http://someone:url-secret-77@")
    with caplog.at_level(logging.DEBUG), pytest.raises(GitError) as raised:
        cache.resolve(url, "main")
    redacted = server.http_url(repo).replace("http://", "http://***@")
    assert str(raised.value).startswith(f"fetching {redacted} failed: the server rejected the credentials")
    assert "url-secret-77" not in str(raised.value)
    assert "url-secret-77" not in caplog.text
    assert "url-secret-77" not in (cache.mirror_path(url) / "config").read_text()


@pytest.mark.parametrize(
    ("url", "given", "expected_url", "expected"),
    [
        ("https://bob:p%40ss@h/r.git", None, "https://h/r.git", Credentials(username="bob", password="p@ss")),
        ("https://ghp_tok@h/r.git", None, "https://h/r.git", Credentials(password="ghp_tok")),
        ("https://bob:x@h/r", Credentials(password="given"), "https://h/r", Credentials(password="given")),
        ("ssh://git@h/r.git", None, "ssh://git@h/r.git", None),
        ("https://h/r.git", None, "https://h/r.git", None),
    ],
)
def test_credentials_in_an_https_url_are_moved_out_of_it(
    url: str, given: Credentials | None, expected_url: str, expected: Credentials | None
) -> None:
    assert split_userinfo(url, given) == (expected_url, expected)


def test_a_server_asking_for_credentials_when_none_are_configured_fails_at_once(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    with pytest.raises(GitError, match="the server asks for credentials and none are configured"):
        cache.resolve(server.http_url(repo), "main")


def test_the_ssh_command_checks_host_keys_strictly_unless_told_not_to(tmp_path: Path) -> None:
    key, hosts = tmp_path / "key", tmp_path / "known hosts"
    assert ssh_command(key, hosts, insecure=False) == (
        f"ssh -o BatchMode=yes -i {key} -o IdentitiesOnly=yes -o 'UserKnownHostsFile={hosts}' "
        "-o StrictHostKeyChecking=yes"
    )
    assert ssh_command(key, None, insecure=True) == (
        f"ssh -o BatchMode=yes -i {key} -o IdentitiesOnly=yes "
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    )
    assert ssh_command(None, None, insecure=False) == "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes"


def test_ssh_keys_and_known_hosts_live_in_private_files_only_while_git_runs(cache: RepoCache) -> None:
    # No sshd here: this checks what the cache hands to ssh, not an ssh login.
    creds = Credentials(
        ssh_private_key=KEY,
        known_hosts="github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9",
    )
    with cache._transport(creds) as env:
        command = env["GIT_SSH_COMMAND"]
        key = Path(re.search(r"-i (\S+)", command)[1])  # type: ignore[index]
        hosts = Path(re.search(r"UserKnownHostsFile=(\S+)", command)[1])  # type: ignore[index]
        assert key.read_text() == creds.ssh_private_key + "\n"
        assert hosts.read_text() == creds.known_hosts + "\n"
        assert stat.S_IMODE(key.stat().st_mode) == stat.S_IMODE(hosts.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert "StrictHostKeyChecking=yes" in command
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert creds.ssh_private_key not in repr(env)
    assert not key.exists()
    assert not key.parent.exists()


def test_an_ssh_fetch_that_fails_does_not_reveal_the_key(cache: RepoCache) -> None:
    # No sshd here: the connection is refused before any key is offered.
    url = GitServer.closed_port_url("apps").replace("git://", "ssh://git@")
    with pytest.raises(GitError) as raised:
        cache.resolve(url, "main", Credentials(ssh_private_key=KEY, insecure_ignore_host_key=True))
    assert str(raised.value).startswith(f"fetching {url} failed:")
    assert "Connection refused" in str(raised.value)
    assert KEY_BODY not in str(raised.value)
    assert list((cache.root / "tmp").iterdir()) == []


# -- redaction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("fatal: https://bob:hunter2@h/r.git", [], "fatal: https://***@h/r.git"),
        ("https://ghp_abc@github.com/o/r", [], "https://***@github.com/o/r"),
        ("https://u:p@ss@h/r and https://h/x@y", [], "https://***@h/r and https://h/x@y"),
        ("ssh://git@github.com/o/r", [], "ssh://git@github.com/o/r"),
        ("ssh://git:pw@github.com/o/r", [], "ssh://***@github.com/o/r"),
        ("git@github.com:o/r.git", [], "git@github.com:o/r.git"),
        ("token tok123 in text", ["tok123", ""], "token *** in text"),
        (
            "line AAAAthis-is-a-long-key-line quoted",
            ["-----BEGIN-----\nAAAAthis-is-a-long-key-line\n-----END-----"],
            "line *** quoted",
        ),
    ],
)
def test_redact_removes_secrets_and_url_userinfo(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


def test_a_repository_fetched_with_a_credential_has_a_mirror_of_its_own(
    server: GitServer, repo: str, cache: RepoCache
) -> None:
    # Project A's credential fetched the private repository; an Application that has no credential
    # for it must not be served that mirror: it fetches its own, and the server refuses it.
    url = server.http_url(repo)
    creds = Credentials(username=server.username, password=server.password, source="driftguard-system/team-a")
    sha = cache.resolve(url, "main", creds)
    assert cache.mirror_path(url, "driftguard-system/team-a").is_dir()
    assert cache.mirror_path(url) != cache.mirror_path(url, "driftguard-system/team-a")
    with pytest.raises(GitError, match="credentials"):
        cache.resolve(url, "main", None)
    with pytest.raises(GitError, match="is not in the cache"), cache.checkout(url, sha):
        pass
    with cache.checkout(url, sha, "driftguard-system/team-a") as tree:
        assert (tree / "README.md").exists() or any(tree.iterdir())


def test_git_never_reads_a_local_repository_unless_the_operator_allows_it(
    server: GitServer, repo: str, tmp_path: Path
) -> None:
    local = f"file://{server.path(repo)}"
    with pytest.raises(GitError, match="transport 'file' not allowed"):
        RepoCache(tmp_path / "refusing").resolve(local, "main")
    assert RepoCache(tmp_path / "allowing", allow_local=True).resolve(local, "main")
