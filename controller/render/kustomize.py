"""Kustomize: ``kubectl kustomize`` of the app directory, with spec.source.kustomize's options.

spec.source.kustomize options are applied by a generated overlay: a kustomization in a temporary
directory outside the checkout whose only resource is the app directory (as a relative path, which
kustomize's default load restrictor allows for a directory) and which carries namePrefix,
nameSuffix, namespace, images, labels (commonLabels, selectors included) and commonAnnotations. The
checkout is never edited, unlike Argo CD's ``kustomize edit set``. The one difference that shows: an
overlay's namePrefix and nameSuffix are added to any the app's own kustomization sets, where Argo CD
replaces them.

Before kustomize runs, the kustomization and every local base it pulls in are checked: nothing they
name may resolve outside the repository or be remote.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from controller.render.errors import Limits, RenderError
from controller.render.load import load_yaml
from controller.render.options import KUSTOMIZATION_FILES, string_list, string_map, string_option
from controller.render.repo import URL, Repo, read, refuse_escaping_symlinks
from controller.render.run import run_tool

# Fields of a kustomization that name other files or directories, which kustomize would load.
# Entries of the first group may be directories (other kustomizations); those are checked in turn.
_KUSTOMIZE_DIR_FIELDS = ("resources", "bases", "components", "generators", "transformers", "validators")
_KUSTOMIZE_FILE_FIELDS = ("crds", "configurations", "patchesStrategicMerge")
_KUSTOMIZE_PATH_LISTS = ("patches", "patchesJson6902", "replacements")
_KUSTOMIZE_GENERATORS = ("configMapGenerator", "secretGenerator")


def build(
    repo: Repo,
    app: Path,
    app_rel: str,
    options: Mapping[str, Any],
    bin_dir: Path,
    limits: Limits,
    tmp: Path,
) -> str:
    _check_kustomization(repo, app, limits, visited=set())
    overlay = _overlay(options)
    target = app
    replacements: dict[str, str] = {str(tmp): "<tmp>"}
    if overlay is not None:
        target = tmp / "overlay"
        target.mkdir()
        reference = os.path.relpath(app, target)
        overlay["resources"] = [reference]
        (target / "kustomization.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
        replacements |= {str(target): "<spec.source.kustomize overlay>", f"'{reference}'": f"'{app_rel}'"}
    return run_tool(
        [str(bin_dir / "kubectl"), "kustomize", str(target)],
        tool="kustomize",
        repo=repo,
        tmp=tmp,
        limits=limits,
        replacements=replacements,
    )


def _overlay(options: Mapping[str, Any]) -> dict[str, Any] | None:
    where = "spec.source.kustomize"
    overlay: dict[str, Any] = {}
    for field in ("namePrefix", "nameSuffix", "namespace"):
        value = string_option(options, field, where)
        if value:
            overlay[field] = value
    labels = string_map(options, "commonLabels", where)
    if labels:
        # `labels` with includeSelectors is commonLabels without kustomize's deprecation warning.
        overlay["labels"] = [{"pairs": labels, "includeSelectors": True}]
    annotations = string_map(options, "commonAnnotations", where)
    if annotations:
        overlay["commonAnnotations"] = annotations
    images = [
        _image(spec, f"{where}.images[{i}]") for i, spec in enumerate(string_list(options, "images", where))
    ]
    if images:
        overlay["images"] = images
    if not overlay:
        return None
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **overlay}


def _image(spec: str, where: str) -> dict[str, str]:
    """An image override as `kustomize edit set image` reads it: 'name=newName:tag', 'name=newName',
    'name:tag', 'name@digest' or 'name=newName@digest'."""
    name, has_name, target = spec.partition("=")
    if not has_name:
        name, target = "", spec
    image, digest, tag = target, "", ""
    if "@" in target:
        image, _, digest = target.partition("@")
    else:
        slash = target.rfind("/")
        colon = target.rfind(":")
        if colon > slash:
            image, tag = target[:colon], target[colon + 1 :]
    override: dict[str, str] = {"name": name or image}
    if name and image and image != name:
        override["newName"] = image
    if tag:
        override["newTag"] = tag
    if digest:
        override["digest"] = digest
    if not override["name"] or len(override) == 1 or (has_name and not target):
        raise RenderError(f"{where}: {spec!r} is not an image override such as 'nginx=nginx:1.27'")
    return override


def _check_kustomization(repo: Repo, directory: Path, limits: Limits, visited: set[Path]) -> None:
    """Refuse anything the kustomization in ``directory``, and the local bases it pulls in, would
    load from outside the repository or from the network."""
    if directory in visited:
        return
    visited.add(directory)
    path = next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)
    if path is None:
        return  # kustomize reports a directory without a kustomization in its own words
    rel = repo.rel(path)
    documents = load_yaml(read(repo, path, rel, limits), rel)
    kustomization = documents[0][2] if documents else None
    if not isinstance(kustomization, dict):
        return  # likewise
    for field, entry in _kustomization_references(kustomization):
        if "\n" in entry or not entry.strip():
            continue  # an inline patch or transformer configuration, not a path
        what = f"{rel}: {field} entry {entry!r}"
        if URL.match(entry) or entry.startswith("git@"):
            raise RenderError(f"{what} is remote; only files and directories in the repository are rendered")
        target = repo.confine(directory / entry, what)
        if field in _KUSTOMIZE_DIR_FIELDS:
            if not target.exists():
                raise RenderError(
                    f"{what} is not a file or directory in the repository at this revision "
                    "(remote bases are not fetched)"
                )
            if target.is_dir():
                refuse_escaping_symlinks(repo, target)
                _check_kustomization(repo, target, limits, visited)


def _kustomization_references(kustomization: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, path) for every path a kustomization names."""
    for field in (*_KUSTOMIZE_DIR_FIELDS, *_KUSTOMIZE_FILE_FIELDS):
        for entry in _list(kustomization.get(field)):
            if isinstance(entry, str):
                yield field, entry
    for field in _KUSTOMIZE_PATH_LISTS:
        for entry in _list(kustomization.get(field)):
            if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
                yield field, entry["path"]
    openapi = kustomization.get("openapi")
    if isinstance(openapi, Mapping) and isinstance(openapi.get("path"), str):
        yield "openapi", openapi["path"]
    for field in _KUSTOMIZE_GENERATORS:
        for generator in _list(kustomization.get(field)):
            if not isinstance(generator, Mapping):
                continue
            for entry in [
                *_list(generator.get("files")),
                *_list(generator.get("envs")),
                generator.get("env"),
            ]:
                if isinstance(entry, str):
                    # 'key=path' names the key the file's content is stored under.
                    yield field, entry.partition("=")[2] or entry


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
