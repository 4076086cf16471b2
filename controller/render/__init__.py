"""Rendering: an Application's source directory in a Git checkout, turned into Kubernetes manifests.

This is the part of Argo CD's repo-server that driftguard needs. The source type is picked as Argo CD
picks it: a non-empty ``directory``, ``kustomize`` or ``helm`` block in spec.source wins; otherwise a
kustomization file at the path means Kustomize (``kubectl kustomize``), a Chart.yaml means Helm
(``helm template``), and anything else is a plain directory of YAML and JSON files. The result is a
list of plain dicts, each checked to be a Kubernetes object, in a deterministic order, with no
object defined twice.

It must never read, or let kustomize or helm read, anything outside the checkout (see repo.py). It
never fetches anything (remote kustomize bases and remote value files are refused; chart
dependencies must be vendored in charts/), never runs a shell, never writes into the checkout, never
defaults namespaces and never talks to a cluster. Its error messages are written for a status
condition: they name repository-relative paths, never the host's, and never quote file contents.

One module per source type (directory.py, kustomize.py, helm.py) beside the shared parts:
errors.py (RenderError and its kinds, Limits), options.py (which source type, and its options),
repo.py (the checkout, and the checks that keep every read inside it), load.py (parsing YAML and
JSON and checking the objects) and run.py (running kustomize and helm within the limits).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from controller.render import directory, helm, kustomize
from controller.render.directory import MANIFEST_SUFFIXES
from controller.render.errors import DEFAULT_LIMITS, Limits, PathEscapeError, RenderError, TooLargeError
from controller.render.helm import HELM_RELEASE_NAME_MAX
from controller.render.load import Manifests, load_json, load_yaml
from controller.render.options import CHART_FILE, KUSTOMIZATION_FILES, source_type, type_options
from controller.render.repo import Repo, app_path, read, refuse_escaping_symlinks
from controller.render.run import STDERR_SHOWN

__all__ = [
    "CHART_FILE",
    "DEFAULT_LIMITS",
    "HELM_RELEASE_NAME_MAX",
    "KUSTOMIZATION_FILES",
    "MANIFEST_SUFFIXES",
    "STDERR_SHOWN",
    "Limits",
    "PathEscapeError",
    "RenderError",
    "TooLargeError",
    "render",
]


def render(
    checkout: Path,
    source: dict[str, Any],
    *,
    bin_dir: Path,
    limits: Limits = DEFAULT_LIMITS,
    default_namespace: str = "",
    app_name: str,
) -> list[dict[str, Any]]:
    """The manifests that spec.source describes in ``checkout``, the root of a repository checkout.

    ``bin_dir`` holds the pinned ``kubectl`` and ``helm``. ``default_namespace`` is the destination
    namespace: Helm's --namespace, and the namespace that objects without one are compared in when
    looking for duplicates; the objects themselves are returned as written. ``app_name`` is the
    Application's name: Helm's release name unless ``helm.releaseName`` sets one, as in Argo CD.
    An empty result is [].
    Raises RenderError (or its PathEscapeError and TooLargeError subtypes) for anything else.
    """
    problems = limits.validate()
    if problems:
        raise ValueError("invalid limits: " + "; ".join(problems))
    if not checkout.is_dir():
        raise RenderError("the repository checkout is missing")
    repo = Repo(Path(os.path.realpath(checkout)), os.path.abspath(checkout))
    app_rel = app_path(source)
    app = repo.confine(repo.root / app_rel, f"path {app_rel}")
    if not app.exists():
        raise RenderError(f"path {app_rel} does not exist in the repository at this revision")
    if not app.is_dir():
        raise RenderError(f"path {app_rel} is not a directory")
    refuse_escaping_symlinks(repo, app)

    manifests = Manifests(limits, default_namespace)
    kind = source_type(source, app)
    if kind == "directory":
        for path in directory.manifest_files(repo, app, type_options(source, "directory")):
            rel = repo.rel(path)
            text = read(repo, path, rel, limits)
            documents = load_json(text, rel) if path.suffix == ".json" else load_yaml(text, rel)
            manifests.add_documents(rel, documents)
        return manifests.result()

    with tempfile.TemporaryDirectory(prefix="driftguard-render-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(os.path.realpath(tmp_name))
        if kind == "kustomize":
            origin = f"kustomize build of {app_rel}"
            output = kustomize.build(
                repo, app, app_rel, type_options(source, "kustomize"), bin_dir, limits, tmp
            )
            documents = load_yaml(output, origin)
            manifests.add_documents(origin, documents)
        else:
            origin = f"helm template of {app_rel}"
            options = type_options(source, "helm")
            output = helm.template(
                repo, app, app_rel, options, bin_dir, limits, tmp, default_namespace, app_name
            )
            documents = load_yaml(output, origin)
            manifests.add_documents(origin, documents, details=helm.sources(output, documents))
    return manifests.result()
