"""Helm: ``helm template`` of the chart at the app directory, with spec.source.helm's value files,
values, parameters and release name (the Application's name unless releaseName sets one, as in
Argo CD). Nothing is fetched: remote value files are refused, and chart dependencies must be
vendored in charts/."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controller.render.errors import Limits, RenderError, TooLargeError, size_text
from controller.render.load import Document
from controller.render.options import string_list, string_option
from controller.render.repo import URL, Repo
from controller.render.run import run_tool

HELM_RELEASE_NAME_MAX = 53


def template(
    repo: Repo,
    app: Path,
    app_rel: str,
    options: Mapping[str, Any],
    bin_dir: Path,
    limits: Limits,
    tmp: Path,
    default_namespace: str,
    app_name: str,
) -> str:
    where = "spec.source.helm"
    release = string_option(options, "releaseName", where) or app_name
    if release.startswith("-"):
        raise RenderError(f"{where}.releaseName {release!r} must not start with '-'")
    if len(release) > HELM_RELEASE_NAME_MAX:
        raise RenderError(
            f"the Application's name {release!r} is longer than the {HELM_RELEASE_NAME_MAX} characters "
            f"Helm allows a release name: set {where}.releaseName"
        )
    args = [str(bin_dir / "helm"), "template", "--include-crds"]
    if default_namespace:
        args.append(f"--namespace={default_namespace}")
    for index, entry in enumerate(string_list(options, "valueFiles", where)):
        value_file = _value_file(repo, app, app_rel, entry, f"{where}.valueFiles[{index}]", limits)
        args.append(f"--values={value_file}")
    replacements = {str(tmp): "<tmp>"}
    values = string_option(options, "values", where)
    if values:
        values_file = tmp / "values.yaml"
        values_file.write_text(values)
        args.append(f"--values={values_file}")
        replacements[str(values_file)] = f"{where}.values"
    parameters = options.get("parameters")
    if parameters is not None and not isinstance(parameters, list):
        raise RenderError(f"{where}.parameters must be a list")
    for index, parameter in enumerate(parameters or []):
        args.append(_set_flag(parameter, f"{where}.parameters[{index}]"))
    # '--' so that nothing from the spec can be read as a flag.
    args += ["--", release, str(app)]
    home = tmp / "helm"
    env = {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return run_tool(args, tool="helm", repo=repo, tmp=tmp, limits=limits, replacements=replacements, env=env)


def _value_file(repo: Repo, app: Path, app_rel: str, entry: str, where: str, limits: Limits) -> Path:
    scheme = URL.match(entry)
    if scheme:
        # The URL itself is left out of the message: it may carry credentials.
        raise RenderError(
            f"{where} is a {scheme.group(0)[:-3]} URL; only value files in the repository are supported"
        )
    if not entry:
        raise RenderError(f"{where} is empty")
    # As in Argo CD, an absolute value file path is relative to the repository root.
    path = repo.root / entry.lstrip("/") if entry.startswith("/") else app / entry
    real = repo.confine(path, f"helm value file {entry}")
    if not real.is_file():
        raise RenderError(
            f"helm value file {entry} (relative to path {app_rel}) does not exist in the repository "
            "at this revision"
        )
    size = real.stat().st_size
    if size > limits.max_file_bytes:
        raise TooLargeError(
            f"helm value file {entry} is {size_text(size)}, "
            f"over the limit of {size_text(limits.max_file_bytes)} per file"
        )
    return real


def _set_flag(parameter: Any, where: str) -> str:
    if not isinstance(parameter, Mapping):
        raise RenderError(f"{where} must be an object with name and value")
    name = parameter.get("name")
    if not isinstance(name, str) or not name:
        raise RenderError(f"{where}.name must be a non-empty string")
    value = parameter.get("value")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RenderError(f"{where}.value must be a string")
    force = parameter.get("forceString", False)
    if not isinstance(force, bool):
        raise RenderError(f"{where}.forceString must be a boolean")
    # Helm splits --set on commas; as Argo CD does, keep them in the value unless it is a {a,b} list.
    if not (value.startswith("{") and value.endswith("}")):
        value = re.sub(r"(?<!\\),", r"\\,", value)
    return f"--set{'-string' if force else ''}={name}={value}"


def sources(output: str, documents: list[Document]) -> dict[int, str]:
    """Document number to the template it came from, from helm's '# Source: ' comments: the
    nearest one above the document's first line, after the document before."""
    lines = output.splitlines()
    sources: dict[int, str] = {}
    after = 0
    for index, start, _ in documents:
        for line in reversed(lines[after : start - 1]):
            if line.startswith("# Source: "):
                sources[index] = line.removeprefix("# Source: ").strip()
                break
        after = start
    return sources
