"""Git push webhooks from GitHub, GitLab and Gitea (and Gogs): check that the sender knows the shared
secret, then say which repository and ref moved.

``verify_and_parse(headers, body, secret)`` returns a ``Push`` for a push (branch or tag), ``None``
for any other authenticated event (ping, issues ...), and raises ``ReceiverError`` with the HTTP
status to answer: 401 when the signature or token is wrong or missing, or when no secret is
configured at all; 400 when the request is not a webhook we know or the payload is malformed.
``same_repo`` tells whether two clone URLs (https, ssh, scp-like) name the same repository.

This module is pure: no I/O, no logging, no Flask. It never trusts a payload before its signature
checks out, never compares secrets in a way that leaks timing, and never echoes the secret or the
received signature in an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Payload fields holding clone or web URLs of the pushed repository.
_GITHUB_URL_FIELDS = ("html_url", "clone_url", "ssh_url", "git_url", "url")
_GITLAB_PROJECT_URL_FIELDS = ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
_GITLAB_REPOSITORY_URL_FIELDS = ("git_http_url", "git_ssh_url", "homepage", "url")
_GITLAB_PUSH_EVENTS = frozenset({"Push Hook", "Tag Push Hook"})


@dataclass(frozen=True)
class Push:
    """A ref moved. ``revision`` is the ref's new SHA (for GitLab tag pushes the tagged commit;
    elsewhere an annotated tag's own SHA), all zeros when the ref was deleted."""

    repo_urls: frozenset[str]
    ref: str
    revision: str

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else None

    def names(self, url: str) -> bool:
        """Whether this push is to the repository at ``url``."""
        return any(same_repo(url, candidate) for candidate in self.repo_urls)


class ReceiverError(Exception):
    """The webhook is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Provider:
    name: str
    event: str


def _provider(headers: Mapping[str, str]) -> _Provider:
    # Gitea and Gogs also send X-GitHub-Event for compatibility, so they are recognised first.
    for name, header in (
        ("Gitea", "x-gitea-event"),
        ("Gogs", "x-gogs-event"),
        ("GitLab", "x-gitlab-event"),
        ("GitHub", "x-github-event"),
    ):
        if header in headers:
            return _Provider(name, headers[header].strip())
    raise ReceiverError(
        400,
        "not a GitHub, GitLab or Gitea webhook: no X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event header",
    )


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _verify(provider: _Provider, headers: Mapping[str, str], body: bytes, secret: str) -> None:
    if provider.name == "GitLab":
        token = headers.get("x-gitlab-token", "")
        if not token:
            raise ReceiverError(401, "GitLab webhook without an X-Gitlab-Token header")
        if not hmac.compare_digest(token.encode("utf-8"), secret.encode("utf-8")):
            raise ReceiverError(401, "GitLab webhook with a wrong X-Gitlab-Token")
        return
    if provider.name == "GitHub":
        header, given = "X-Hub-Signature-256", headers.get("x-hub-signature-256", "")
        prefix, _, given = given.strip().partition("=")
        if prefix != "sha256":
            given = ""
    else:
        header = f"X-{provider.name}-Signature"
        given = headers.get(f"x-{provider.name.lower()}-signature", "").strip()
    if not given:
        raise ReceiverError(401, f"{provider.name} webhook without a valid {header} header")
    if not hmac.compare_digest(
        given.lower().encode("ascii", "replace"), _hex_hmac(secret, body).encode("ascii")
    ):
        raise ReceiverError(401, f"{provider.name} webhook with a wrong {header} signature")


def _is_push(provider: _Provider) -> bool:
    if provider.name == "GitLab":
        return provider.event in _GITLAB_PUSH_EVENTS
    return provider.event.lower() == "push"


def _payload(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        if (
            headers.get("content-type", "").split(";")[0].strip().lower()
            == "application/x-www-form-urlencoded"
        ):
            text = parse_qs(text, strict_parsing=True)["payload"][0]
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise ReceiverError(400, f"malformed webhook payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise ReceiverError(400, "malformed webhook payload: not a JSON object")
    return payload


def _urls(section: Any, fields: tuple[str, ...]) -> set[str]:
    if not isinstance(section, dict):
        return set()
    return {value.strip() for key in fields if isinstance(value := section.get(key), str) and value.strip()}


def _push(provider: _Provider, payload: dict[str, Any]) -> Push:
    if provider.name == "GitLab":
        urls = _urls(payload.get("project"), _GITLAB_PROJECT_URL_FIELDS)
        urls |= _urls(payload.get("repository"), _GITLAB_REPOSITORY_URL_FIELDS)
        revision = payload.get("checkout_sha") or payload.get("after")
    else:
        urls = _urls(payload.get("repository"), _GITHUB_URL_FIELDS)
        revision = payload.get("after")
    ref = payload.get("ref")
    missing = [
        field
        for field, ok in (
            ("repository URLs", bool(urls)),
            ("ref", isinstance(ref, str) and bool(ref)),
            ("after", isinstance(revision, str) and bool(revision)),
        )
        if not ok
    ]
    if missing:
        raise ReceiverError(400, f"malformed {provider.name} push payload: missing {', '.join(missing)}")
    assert isinstance(ref, str) and isinstance(revision, str)
    return Push(repo_urls=frozenset(urls), ref=ref, revision=revision)


def verify_and_parse(headers: Mapping[str, str], body: bytes, secret: str) -> Push | None:
    """The push this webhook reports, None for other events; ``ReceiverError`` when refused."""
    if not secret:
        raise ReceiverError(401, "the webhook receiver has no secret configured, so it refuses every webhook")
    lowered = {key.lower(): value for key, value in headers.items()}
    provider = _provider(lowered)
    _verify(provider, lowered, body, secret)
    if not _is_push(provider):
        return None
    return _push(provider, _payload(lowered, body))


def _repo_key(url: str) -> tuple[str, str] | None:
    """(host, path) of a clone URL, lower-cased, without port, user, ``.git`` or slashes."""
    url = url.strip()
    if not url:
        return None
    if "://" in url:
        try:
            parts = urlsplit(url)
            host, path = parts.hostname or "", parts.path
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            return None
    else:  # scp-like: [user@]host:path
        authority, colon, path = url.partition(":")
        if not colon or "/" in authority:
            return None
        host = authority.rpartition("@")[2]
    path = path.strip("/")
    while path.endswith(".git") or path.endswith("/"):
        path = path.removesuffix(".git").rstrip("/")
    if not host or not path:
        return None
    return host.lower(), path.lower()


def same_repo(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name the same repository, whatever the transport:
    ``https://github.com/org/repo``, ``git@github.com:org/repo.git`` and
    ``ssh://git@github.com/org/repo`` all do. Hosts and paths compare case-insensitively, as
    GitHub and GitLab treat them."""
    key_a, key_b = _repo_key(a), _repo_key(b)
    return key_a is not None and key_a == key_b
