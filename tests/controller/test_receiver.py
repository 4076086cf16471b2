"""Push webhooks from GitHub, GitLab and Gitea: signatures computed here, payloads trimmed from the
providers' documented examples."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from controller.receiver import Push, ReceiverError, same_repo, verify_and_parse

SECRET = "webhook-secret-4d2a"
AFTER = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"

GITHUB_PUSH: dict[str, Any] = {
    "ref": "refs/heads/main",
    "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": AFTER,
    "repository": {
        "full_name": "org/apps",
        "html_url": "https://github.com/org/apps",
        "clone_url": "https://github.com/org/apps.git",
        "ssh_url": "git@github.com:org/apps.git",
        "git_url": "git://github.com/org/apps.git",
    },
}
GITLAB_PUSH: dict[str, Any] = {
    "object_kind": "push",
    "ref": "refs/heads/main",
    "after": AFTER,
    "checkout_sha": AFTER,
    "project": {
        "web_url": "https://gitlab.example.com/group/apps",
        "git_ssh_url": "git@gitlab.example.com:group/apps.git",
        "git_http_url": "https://gitlab.example.com/group/apps.git",
    },
    "repository": {"homepage": "https://gitlab.example.com/group/apps"},
}
GITEA_PUSH: dict[str, Any] = {
    "ref": "refs/tags/v1.2.0",
    "after": AFTER,
    "repository": {
        "html_url": "https://gitea.example.com/org/apps",
        "clone_url": "https://gitea.example.com/org/apps.git",
        "ssh_url": "ssh://git@gitea.example.com:2222/org/apps.git",
    },
}


def hex_hmac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(body: bytes, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={hex_hmac(body, secret)}",
        "Content-Type": "application/json",
    }


def gitea(body: bytes, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    signature = hex_hmac(body, secret)
    # Gitea also sends GitHub's and Gogs' headers, for compatibility.
    return {
        "X-Gitea-Event": event,
        "X-Gitea-Signature": signature,
        "X-Gogs-Event": event,
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }


def gitlab(event: str = "Push Hook", token: str = SECRET) -> dict[str, str]:
    return {"X-Gitlab-Event": event, "X-Gitlab-Token": token, "Content-Type": "application/json"}


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def test_a_signed_github_push_names_every_url_of_the_repository() -> None:
    body = encode(GITHUB_PUSH)
    assert verify_and_parse(github(body), body, SECRET) == Push(
        repo_urls=frozenset(
            {
                "https://github.com/org/apps",
                "https://github.com/org/apps.git",
                "git@github.com:org/apps.git",
                "git://github.com/org/apps.git",
            }
        ),
        ref="refs/heads/main",
        revision=AFTER,
    )


def test_header_names_are_case_insensitive() -> None:
    body = encode(GITHUB_PUSH)
    headers = {key.lower(): value for key, value in github(body).items()}
    push = verify_and_parse(headers, body, SECRET)
    assert push is not None
    assert push.branch == "main"
    assert push.tag is None


def test_a_github_form_encoded_push_is_read_from_its_payload_field() -> None:
    body = urlencode({"payload": json.dumps(GITHUB_PUSH)}).encode()
    headers = {**github(body), "Content-Type": "application/x-www-form-urlencoded"}
    push = verify_and_parse(headers, body, SECRET)
    assert push is not None
    assert push.revision == AFTER


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "GitHub webhook without a valid X-Hub-Signature-256 header"),
        ("", "GitHub webhook without a valid X-Hub-Signature-256 header"),
        ("sha1=abcdef", "GitHub webhook without a valid X-Hub-Signature-256 header"),
        ("sha256=" + "0" * 64, "GitHub webhook with a wrong X-Hub-Signature-256 signature"),
        ("sha256=not-hex-é", "GitHub webhook with a wrong X-Hub-Signature-256 signature"),
    ],
)
def test_a_github_push_without_the_right_signature_is_refused(signature: str | None, message: str) -> None:
    body = encode(GITHUB_PUSH)
    headers = github(body)
    del headers["X-Hub-Signature-256"]
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse(headers, body, SECRET)
    assert (raised.value.status, str(raised.value)) == (401, message)


def test_a_signature_made_with_another_secret_or_over_another_body_is_refused() -> None:
    body = encode(GITHUB_PUSH)
    for headers, sent in ((github(body, secret="other"), body), (github(body), body + b" ")):
        with pytest.raises(ReceiverError) as raised:
            verify_and_parse(headers, sent, SECRET)
        assert raised.value.status == 401
        assert SECRET not in str(raised.value)


@pytest.mark.parametrize("event", ["ping", "pull_request", "issues"])
def test_other_signed_github_events_are_ignored(event: str) -> None:
    body = encode({"zen": "Keep it logically awesome.", "hook_id": 1})
    assert verify_and_parse(github(body, event=event), body, SECRET) is None


def test_other_events_are_still_refused_when_unsigned() -> None:
    body = encode({"zen": "hi"})
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse({"X-GitHub-Event": "ping"}, body, SECRET)
    assert raised.value.status == 401


@pytest.mark.parametrize("secret", ["", None])
def test_without_a_configured_secret_every_webhook_is_refused(secret: str | None) -> None:
    body = encode(GITHUB_PUSH)
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse(github(body, secret=""), body, secret or "")
    assert raised.value.status == 401
    assert "no secret configured" in str(raised.value)


def test_a_gitlab_push_with_the_token_names_project_urls_and_the_checkout_sha() -> None:
    body = encode(GITLAB_PUSH)
    assert verify_and_parse(gitlab(), body, SECRET) == Push(
        repo_urls=frozenset(
            {
                "https://gitlab.example.com/group/apps",
                "git@gitlab.example.com:group/apps.git",
                "https://gitlab.example.com/group/apps.git",
            }
        ),
        ref="refs/heads/main",
        revision=AFTER,
    )


def test_a_gitlab_tag_push_gives_the_tagged_commit() -> None:
    tag_object = "b" * 40
    body = encode({**GITLAB_PUSH, "object_kind": "tag_push", "ref": "refs/tags/v2", "after": tag_object})
    push = verify_and_parse(gitlab(event="Tag Push Hook"), body, SECRET)
    assert push is not None
    assert (push.tag, push.revision) == ("v2", AFTER)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Gitlab-Event": "Push Hook"}, "GitLab webhook without an X-Gitlab-Token header"),
        (gitlab(token="wrong"), "GitLab webhook with a wrong X-Gitlab-Token"),
        (gitlab(token=SECRET + " "), "GitLab webhook with a wrong X-Gitlab-Token"),
    ],
)
def test_a_gitlab_push_with_a_wrong_or_missing_token_is_refused(
    headers: dict[str, str], message: str
) -> None:
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse(headers, encode(GITLAB_PUSH), SECRET)
    assert (raised.value.status, str(raised.value)) == (401, message)


def test_a_gitlab_merge_request_event_is_ignored() -> None:
    assert verify_and_parse(gitlab(event="Merge Request Hook"), b"{}", SECRET) is None


def test_a_signed_gitea_push_is_checked_against_its_own_signature() -> None:
    body = encode(GITEA_PUSH)
    push = verify_and_parse(gitea(body), body, SECRET)
    assert push is not None
    assert push.tag == "v1.2.0"
    assert push.names("https://gitea.example.com/org/apps")

    headers = {**gitea(body), "X-Gitea-Signature": hex_hmac(body, "other")}
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse(headers, body, SECRET)
    assert (raised.value.status, str(raised.value)) == (
        401,
        "Gitea webhook with a wrong X-Gitea-Signature signature",
    )


def test_a_gitea_non_push_event_is_ignored() -> None:
    body = encode({"action": "opened"})
    assert verify_and_parse(gitea(body, event="pull_request"), body, SECRET) is None


def test_a_request_from_no_known_provider_is_a_bad_request() -> None:
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse({"Content-Type": "application/json"}, b"{}", SECRET)
    assert raised.value.status == 400
    assert "X-GitHub-Event" in str(raised.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed webhook payload"),
        (b"\xff\xfe", "malformed webhook payload"),
        (b"[1, 2]", "malformed webhook payload: not a JSON object"),
        (encode({"ref": "refs/heads/main"}), "malformed GitHub push payload: missing repository URLs, after"),
        (encode({**GITHUB_PUSH, "ref": None}), "malformed GitHub push payload: missing ref"),
    ],
)
def test_a_signed_but_malformed_push_is_a_bad_request(body: bytes, message: str) -> None:
    with pytest.raises(ReceiverError) as raised:
        verify_and_parse(github(body), body, SECRET)
    assert raised.value.status == 400
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/org/apps", "https://github.com/org/apps.git"),
        ("https://GitHub.com/Org/Apps/", "https://github.com/org/apps"),
        ("git@github.com:org/apps.git", "https://github.com/org/apps"),
        ("git@github.com:org/apps.git", "ssh://git@github.com/org/apps"),
        ("ssh://git@gitea.example.com:2222/org/apps.git", "https://gitea.example.com/org/apps"),
        ("https://user:token@github.com/org/apps.git", "git://github.com/org/apps"),
        ("https://gitlab.example.com/group/sub/apps.git", "git@gitlab.example.com:group/sub/apps"),
    ],
)
def test_the_same_repository_over_different_transports_is_the_same_repo(a: str, b: str) -> None:
    assert same_repo(a, b)
    assert same_repo(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/org/apps", "https://github.com/org/apps-two"),
        ("https://github.com/org/apps", "https://gitlab.com/org/apps"),
        ("git@github.com:org/apps.git", "git@github.com:other/apps.git"),
        ("https://github.com/org/apps", "https://github.com/org"),
        ("", ""),
        ("not a url", "not a url"),
        ("https://[broken/org/apps", "https://[broken/org/apps"),
    ],
)
def test_different_or_unparseable_repositories_are_not_the_same(a: str, b: str) -> None:
    assert not same_repo(a, b)
