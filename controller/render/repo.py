"""The checkout a render reads, and the checks that keep every read inside it.

A render must never read, or let kustomize or helm read, anything outside the checkout: an absolute
path or ``..`` in spec.source.path, a symlink under the app directory (or under any local kustomize
base) that leaves the repository, a kustomize reference or a Helm value file that resolves outside
it are all refused before any tool runs (Argo CD's CVE-2022-24348, CVE-2022-24904 and
CVE-2022-31036).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from controller.render.errors import Limits, PathEscapeError, RenderError, TooLargeError, size_text

# A remote reference (https://, ssh://, ...): never fetched.
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Repo:
    root: Path  # the checkout's realpath; every path read must resolve under it
    given: str  # the checkout as the caller named it, to scrub from tool messages as well

    def contains(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return real == self.root or real.is_relative_to(self.root)

    def confine(self, path: Path, what: str) -> Path:
        """``path`` resolved, or PathEscapeError naming ``what`` when it resolves outside the checkout."""
        real = Path(os.path.realpath(path))
        if not (real == self.root or real.is_relative_to(self.root)):
            raise PathEscapeError(f"{what} resolves outside the repository (through a symlink or '..')")
        return real

    def rel(self, path: Path) -> str:
        """A path under the root (as built, symlinks unresolved) relative to the repository."""
        normal = Path(os.path.normpath(path))
        if normal == self.root:
            return "."
        if normal.is_relative_to(self.root):
            return normal.relative_to(self.root).as_posix()
        return "(outside the repository)"

    def scrub(self, text: str, replacements: Mapping[str, str]) -> str:
        """Tool output with host paths turned into repository paths (or the given placeholders)."""
        pairs = dict(replacements)
        for root in (str(self.root), self.given.rstrip("/") or "/"):
            pairs[root + "/"] = ""
            pairs[root] = "."
        for old in sorted(pairs, key=len, reverse=True):
            if old:
                text = text.replace(old, pairs[old])
        return text


def app_path(source: Mapping[str, Any]) -> str:
    raw = source.get("path")
    if raw is None or raw == "":
        raw = "."
    if not isinstance(raw, str):
        raise RenderError("spec.source.path must be a string")
    if "\0" in raw:
        raise RenderError("spec.source.path must not contain NUL characters")
    pure = PurePosixPath(raw)
    if pure.is_absolute():
        raise PathEscapeError(f"path {raw} must be relative to the repository root, not absolute")
    if ".." in pure.parts:
        raise PathEscapeError(f"path {raw} must not contain '..'")
    return pure.as_posix()


def refuse_escaping_symlinks(repo: Repo, top: Path) -> None:
    """Refuse any symlink under ``top`` that resolves outside the repository, whether or not this
    render would read it: kustomize and helm follow symlinks on their own. Symlinked directories
    are checked but not descended into, so a loop cannot trap the walk."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(name for name in dirnames if name != ".git")
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath, name)
            if path.is_symlink() and not repo.contains(path):
                raise PathEscapeError(
                    f"{repo.rel(path)} is a symlink to a location outside the repository; refusing to render"
                )


def read(repo: Repo, path: Path, rel: str, limits: Limits) -> str:
    real = repo.confine(path, rel)
    try:
        with real.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > limits.max_file_bytes else handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise RenderError(f"{rel} cannot be read: {exc.strerror or exc.__class__.__name__}") from exc
    if size > limits.max_file_bytes or len(data) > limits.max_file_bytes:
        raise TooLargeError(
            f"{rel} is {size_text(max(size, len(data)))}, "
            f"over the limit of {size_text(limits.max_file_bytes)} per file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{rel} is not UTF-8 text (invalid byte at offset {exc.start})") from exc
