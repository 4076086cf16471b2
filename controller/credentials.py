"""Which Git credentials a repository URL gets, chosen from labelled Kubernetes Secrets.

A Secret takes part when it carries ``gitops.driftguard.io/secret-type: repository`` (or
``repo-creds``, the name Argo CD uses for credential templates) and is granted to the
Application (``project``, as in Argo CD). Its keys are Argo CD's:
``url``, ``username``, ``password``, ``sshPrivateKey``, ``insecure`` /
``insecureIgnoreHostKey``, ``type`` and ``project``, plus ``knownHosts`` (Argo CD keeps known hosts in a
ConfigMap; driftguard also accepts them here). A Secret's ``url`` is a prefix on path-segment
boundaries: ``https://h/org`` covers ``https://h/org/repo.git`` but not ``https://h/organisation``,
and the longest prefix wins.

This module is pure: it never talks to the Kubernetes API, never runs git, never logs, and never
puts a credential into an error message or repr.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from extension.api.projects import INSTALL_NAMESPACE, comparable_url

REPO_CREDS_LABEL = "gitops.driftguard.io/secret-type"
REPO_CREDS_VALUES = frozenset({"repository", "repo-creds"})
_TRUE = frozenset({"true", "yes", "1"})


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to one repository. Empty fields mean "not used"."""

    username: str = ""
    password: str = field(default="", repr=False)
    ssh_private_key: str = field(default="", repr=False)
    known_hosts: str = ""
    insecure_ignore_host_key: bool = False
    # Which Secret they came from (namespace/name): what a repository's mirror is fetched with,
    # so that no two credentials share one (RepoCache keys mirrors by URL and this).
    source: str = field(default="", compare=False)

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in logs or messages."""
        return tuple(s for s in (self.password, self.ssh_private_key) if s)


def _covers(prefix: str, url: str) -> bool:
    if not prefix:
        return False
    return url == prefix or url.startswith(prefix if prefix.endswith((":", "/")) else prefix + "/")


def _decoded(secret: Mapping[str, Any]) -> dict[str, str] | None:
    """The Secret's data as text (``stringData`` wins, as the API server merges it), or None when
    any value is not valid base64 / UTF-8."""
    values: dict[str, str] = {}
    data = secret.get("data") or {}
    try:
        for key, raw in data.items():
            values[str(key)] = base64.b64decode(str(raw), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    for key, text in (secret.get("stringData") or {}).items():
        values[str(key)] = str(text)
    return values


def _source(secret: Mapping[str, Any]) -> str:
    meta = secret.get("metadata") or {}
    # The uid too: a Secret deleted and made again is another credential, with a mirror of its own.
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}/{meta.get('uid', '')}"


def _labelled(secret: Mapping[str, Any]) -> bool:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    return labels.get(REPO_CREDS_LABEL) in REPO_CREDS_VALUES


def granted(data: Mapping[str, str], project: str, app_namespace: str) -> bool:
    """Whether a credential Secret's data may serve an Application of ``project`` in
    ``app_namespace``: one that names a project serves that project's Applications only, as in
    Argo CD; one that names none serves only Applications in the install namespace, which only
    cluster admins write."""
    scoped = data.get("project", "").strip()
    return scoped == project if scoped else app_namespace == INSTALL_NAMESPACE


def credentials_for(
    url: str, secrets: Iterable[dict[str, Any]], *, project: str, app_namespace: str
) -> Credentials | None:
    """The credentials of the labelled Secret granted to the Application (``granted``) whose
    ``url`` is the longest prefix of ``url``.

    Secrets of another ``type`` than ``git`` (Argo CD's ``helm``), without a ``url``, or with
    undecodable data are skipped. On a tie the first Secret wins, so callers wanting a stable
    answer pass Secrets in a stable order (for example sorted by namespace/name). A Secret not
    granted to the Application is as good as absent: nothing says it exists.
    """
    target = comparable_url(url)
    best: tuple[int, Credentials] | None = None
    for secret in secrets:
        if not _labelled(secret):
            continue
        data = _decoded(secret)
        if data is None or data.get("type", "git").strip().lower() not in ("", "git"):
            continue
        if not granted(data, project, app_namespace):
            continue
        prefix = comparable_url(data.get("url", ""))
        if not _covers(prefix, target) or (best is not None and len(prefix) <= best[0]):
            continue
        insecure = data.get("insecureIgnoreHostKey", data.get("insecure", ""))
        best = (
            len(prefix),
            Credentials(
                username=data.get("username", ""),
                password=data.get("password", ""),
                ssh_private_key=data.get("sshPrivateKey", ""),
                known_hosts=data.get("knownHosts", ""),
                insecure_ignore_host_key=insecure.strip().lower() in _TRUE,
                source=_source(secret),
            ),
        )
    return None if best is None else best[1]
