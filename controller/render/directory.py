"""A plain directory of YAML and JSON files (spec.source.directory: recurse, include, exclude)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controller.render.errors import RenderError
from controller.render.options import string_option
from controller.render.repo import Repo

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(repo: Repo, app: Path, options: Mapping[str, Any]) -> list[Path]:
    """The manifest files under ``app``, in path order. Like Argo CD's directory walk, symlinked
    directories are not descended into; symlinked files are read (they were checked to stay inside)."""
    where = "spec.source.directory"
    recurse = options.get("recurse", False)
    if not isinstance(recurse, bool):
        raise RenderError(f"{where}.recurse must be a boolean")
    include = _glob(string_option(options, "include", where), f"{where}.include")
    exclude = _glob(string_option(options, "exclude", where), f"{where}.exclude")
    found: list[Path] = []

    def walk(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            raise RenderError(f"{repo.rel(directory)} cannot be listed: {exc.strerror}") from exc
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if recurse and entry.name != ".git":
                    walk(Path(entry.path), rel + "/")
                continue
            if not entry.name.endswith(MANIFEST_SUFFIXES) or not entry.is_file():
                continue
            if include is not None and not include.fullmatch(rel):
                continue
            if exclude is not None and exclude.fullmatch(rel):
                continue
            found.append(Path(entry.path))

    walk(app, "")
    return found


def _glob(pattern: str, where: str) -> re.Pattern[str] | None:
    """Argo CD's globs (gobwas/glob without separators): ``*`` matches any text, slashes included,
    ``?`` one character, ``[a-z]`` and ``[!a-z]`` a class, ``{a,b}`` either alternative (nestable),
    and a backslash escapes the next character."""
    if not pattern:
        return None
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise RenderError(f"{where}: invalid glob {pattern!r}: '[' is never closed")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(
                ("[^" if negate else "[") + "".join(c if c == "-" else re.escape(c) for c in body) + "]"
            )
            i = end
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "," and depth:
            out.append("|")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        raise RenderError(f"{where}: invalid glob {pattern!r}: '{{' is never closed")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise RenderError(f"{where}: invalid glob {pattern!r}: {exc.msg}") from exc
