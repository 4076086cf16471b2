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

SECRETS_LABEL = "gitops.driftguard.io/secret-type=repository"
MAX_RENDERS_KEPT = 4096


class Sources:
    def __init__(
        self, kube: Kube, repos: RepoCache, metrics: Metrics, *, namespace: str, bin_dir: Path,
        limits: Limits, poll_seconds: float,
    ) -> None:  # fmt: skip
        self.kube, self.repos, self.metrics = kube, repos, metrics
        self.namespace, self.bin_dir, self.limits = namespace, bin_dir, limits
        self.poll_seconds = poll_seconds
        # (url, revision) -> (sha, monotonic time fetched): watch-driven reconciles reuse a fresh
        # fetch; the poll and the webhook receiver make them stale.
        self._resolved: dict[tuple[str, str], tuple[str, float]] = {}
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

    def _fresh(self, url: str, revision: str, since: float = 0.0) -> str | None:
        with self._lock:
            cached = self._resolved.get((url, revision))
            stale_since = max(self._stale_since.get(url, 0.0), since)
        if cached and cached[1] > stale_since and time.monotonic() - cached[1] < self.poll_seconds:
            return cached[0]
        return None

    def resolve(self, url: str, revision: str, *, refresh: bool = False) -> str:
        """The full SHA ``revision`` names in ``url``, fetched unless a fresh answer is known;
        ``refresh`` (a sync request) takes only an answer fetched after it was asked."""
        asked = time.monotonic() if refresh else 0.0
        sha = self._fresh(url, revision, asked)
        if sha is not None:
            return sha
        # One fetch per repository at a time: the Applications a push woke all wait for the first
        # fetch and reuse its answer instead of fetching once each.
        with self._lock:
            url_lock = self._fetching.setdefault(url, threading.Lock())
        with url_lock:
            sha = self._fresh(url, revision, asked)
            if sha is not None:
                return sha
            secrets = self.kube.request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}/secrets",
                query={"labelSelector": SECRETS_LABEL},
            )
            creds = credentials_for(url, secrets.get("items") or [])
            started = time.monotonic()
            try:
                sha = self.repos.resolve(url, revision, creds)
            except GitError as exc:
                raise st.Step(st.FETCH_FAILED, str(exc)) from exc
            finally:
                self.metrics.git_fetch.observe(time.monotonic() - started)
            with self._lock:
                self._resolved[(url, revision)] = (sha, started)
            return sha

    def render(
        self, url: str, sha: str, source: dict[str, Any], destination_ns: str, app_name: str
    ) -> list[dict[str, Any]]:
        """The manifests ``source`` describes at commit ``sha`` (a copy the caller may change)."""
        key = json.dumps([url, sha, source, destination_ns, app_name], sort_keys=True)
        with self._lock:
            cached = self._rendered.get(key)
        if cached is not None:
            copied: list[dict[str, Any]] = jsoncodec.clone(cached)
            return copied
        try:
            with self.repos.checkout(url, sha) as tree:
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
