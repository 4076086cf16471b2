"""Where an Application's objects come from: Git revisions resolved to commits, and commits rendered
into manifests, both cached and shared between Applications.

A revision is fetched at most once per poll interval per repository (a push or the poll makes it
stale), one fetch per repository at a time; a render is kept per commit, source and destination.
Failures become :class:`~controller.status.Step` with the reason of the step that failed.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from controller import status as st
from controller.credentials import credentials_for
from controller.git import GitError, RepoCache
from controller.kube import Kube
from controller.metrics import Metrics
from controller.render import Limits, RenderError, render
from extension.api import jsoncodec
from extension.api.projects import INSTALL_NAMESPACE, is_local_url, local_refused

SECRETS_LABEL = "gitops.driftguard.io/secret-type=repository"
MAX_RENDERS_KEPT = 4096


class Sources:
    def __init__(
        self, kube: Kube, repos: RepoCache, metrics: Metrics, *, namespace: str, bin_dir: Path,
        limits: Limits, poll_seconds: float, allow_local: bool = False,
    ) -> None:  # fmt: skip
        self.kube, self.repos, self.metrics = kube, repos, metrics
        self.namespace, self.bin_dir, self.limits = namespace, bin_dir, limits
        self.poll_seconds, self.allow_local = poll_seconds, allow_local
        # (url, credential scope, revision) -> (sha, access, monotonic time fetched): watch-driven
        # reconciles reuse a fresh fetch; the poll and the webhook receiver make them stale.
        self._resolved: dict[tuple[str, str, str], tuple[str, str, float]] = {}
        self._stale_since: dict[str, float] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._rendered: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def expire(self, repo_url: str | None = None) -> None:
        """Mark resolved revisions (of one repo, or all) stale: the next reconcile fetches."""
        now = time.monotonic()
        with self._lock:
            for url in {key[0] for key in self._resolved} | ({repo_url} if repo_url else set()):
                if repo_url is None or url == repo_url:
                    self._stale_since[url] = now

    def _fresh(self, key: tuple[str, str, str], since: float = 0.0) -> tuple[str, str] | None:
        with self._lock:
            cached = self._resolved.get(key)
            stale_since = max(self._stale_since.get(key[0], 0.0), since)
        if cached and cached[2] > stale_since and time.monotonic() - cached[2] < self.poll_seconds:
            return cached[0], cached[1]
        return None

    def resolve(
        self, url: str, revision: str, *, project: str, app_namespace: str, refresh: bool = False
    ) -> tuple[str, str]:
        """The full SHA ``revision`` names in ``url`` and the access it was fetched with (the
        credential Secret's namespace/name, or "" for none), fetched unless a fresh answer is
        known; ``refresh`` (a sync request) takes only an answer fetched after it was asked. The
        credentials are those granted to the Application's project (``credentials_for``): an
        answer is shared only by Applications that are granted the same ones."""
        if is_local_url(url) and not self.allow_local:
            raise st.Step(st.FETCH_FAILED, local_refused(url), temporary=False)
        key = (url, f"{project}\n{app_namespace == INSTALL_NAMESPACE}", revision)
        asked = time.monotonic() if refresh else 0.0
        found = self._fresh(key, asked)
        if found is not None:
            return found
        # One fetch per repository at a time: the Applications a push woke all wait for the first
        # fetch and reuse its answer instead of fetching once each.
        with self._lock:
            url_lock = self._fetching.setdefault(url, threading.Lock())
        with url_lock:
            found = self._fresh(key, asked)
            if found is not None:
                return found
            secrets = self.kube.request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}/secrets",
                query={"labelSelector": SECRETS_LABEL},
            )
            items = sorted(
                secrets.get("items") or [], key=lambda s: str((s.get("metadata") or {}).get("name"))
            )
            creds = credentials_for(url, items, project=project, app_namespace=app_namespace)
            access = creds.source if creds is not None else ""
            started = time.monotonic()
            try:
                sha = self.repos.resolve(url, revision, creds)
            except GitError as exc:
                raise st.Step(st.FETCH_FAILED, str(exc)) from exc
            finally:
                self.metrics.git_fetch.observe(time.monotonic() - started)
            with self._lock:
                self._resolved[key] = (sha, access, started)
            return sha, access

    def render(
        self, url: str, access: str, sha: str, source: dict[str, Any], destination_ns: str, app_name: str
    ) -> list[dict[str, Any]]:
        """The manifests ``source`` describes at commit ``sha`` of ``url`` as fetched with
        ``access`` (a copy the caller may change)."""
        key = json.dumps([url, access, sha, source, destination_ns, app_name], sort_keys=True)
        with self._lock:
            cached = self._rendered.get(key)
        if cached is not None:
            copied: list[dict[str, Any]] = jsoncodec.clone(cached)
            return copied
        try:
            with self.repos.checkout(url, sha, access) as tree:
                objects = render(
                    tree, source, bin_dir=self.bin_dir, limits=self.limits,
                    default_namespace=destination_ns, app_name=app_name,
                )  # fmt: skip
        except GitError as exc:
            raise st.Step(st.FETCH_FAILED, str(exc)) from exc
        except RenderError as exc:
            raise st.Step(st.RENDER_FAILED, str(exc), temporary=False) from exc
        with self._lock:
            if len(self._rendered) > MAX_RENDERS_KEPT:
                self._rendered.clear()
            self._rendered[key] = jsoncodec.clone(objects)
        return objects
