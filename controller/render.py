"""Rendering: an Application's source directory in a Git checkout, turned into Kubernetes manifests.

This is the part of Argo CD's repo-server that driftguard needs. The source type is picked as Argo CD
picks it: a non-empty ``directory``, ``kustomize`` or ``helm`` block in spec.source wins; otherwise a
kustomization file at the path means Kustomize (``kubectl kustomize``), a Chart.yaml means Helm
(``helm template``), and anything else is a plain directory of YAML and JSON files. The result is a
list of plain dicts, each checked to be a Kubernetes object, in a deterministic order, with no
object defined twice.

spec.source.kustomize options are applied by a generated overlay: a kustomization in a temporary
directory outside the checkout whose only resource is the app directory (as a relative path, which
kustomize's default load restrictor allows for a directory) and which carries namePrefix,
nameSuffix, namespace, images, labels (commonLabels, selectors included) and commonAnnotations. The
checkout is never edited, unlike Argo CD's ``kustomize edit set``. The one difference that shows: an
overlay's namePrefix and nameSuffix are added to any the app's own kustomization sets, where Argo CD
replaces them.

It must never read, or let kustomize or helm read, anything outside the checkout: an absolute path
or ``..`` in spec.source.path, a symlink under the app directory (or under any local kustomize base)
that leaves the repository, a kustomize reference or a Helm value file that resolves outside it are
all refused before any tool runs (Argo CD's CVE-2022-24348, CVE-2022-24904 and CVE-2022-31036). It
never fetches anything (remote kustomize bases and remote value files are refused; chart
dependencies must be vendored in charts/), never runs a shell, never writes into the checkout, never
defaults namespaces and never talks to a cluster. Its error messages are written for a status
condition: they name repository-relative paths, never the host's, and never quote file contents.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDERR_SHOWN = 2000  # characters of a failing tool's stderr that reach the message
_STDERR_KEPT = 64 * 1024  # bytes of stderr held while the tool runs
_MAX_PROBLEMS = 5  # validation problems listed in one message; the rest are counted
_SOURCE_TYPES = ("directory", "kustomize", "helm")

# Fields of a kustomization that name other files or directories, which kustomize would load.
# Entries of the first group may be directories (other kustomizations); those are checked in turn.
_KUSTOMIZE_DIR_FIELDS = ("resources", "bases", "components", "generators", "transformers", "validators")
_KUSTOMIZE_FILE_FIELDS = ("crds", "configurations", "patchesStrategicMerge")
_KUSTOMIZE_PATH_LISTS = ("patches", "patchesJson6902", "replacements")
_KUSTOMIZE_GENERATORS = ("configMapGenerator", "secretGenerator")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RenderError(Exception):
    """Why a source could not be rendered, in words fit for a status condition: repository-relative
    paths only, never file contents or secrets."""

    reason: str = "RenderFailed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PathEscapeError(RenderError):
    """A path in the source leaves the repository: absolute, '..', or a symlink pointing outside."""

    reason = "PathEscape"


class TooLargeError(RenderError):
    """A file, or the rendered output, is over its limit."""

    reason = "TooLarge"


@dataclass(frozen=True)
class Limits:
    """Bounds on one render."""

    max_file_bytes: int = 1 << 20  # any single file read: a manifest, a kustomization, a value file
    max_total_bytes: int = 16 << 20  # the rendered output: a tool's stdout, and the manifests as JSON
    timeout_seconds: float = 60.0  # each kustomize or helm run

    def validate(self) -> list[str]:
        """Every problem with these limits, empty when they are usable."""
        return [
            f"{name} must be positive"
            for name in ("max_file_bytes", "max_total_bytes", "timeout_seconds")
            if not getattr(self, name) > 0
        ]


DEFAULT_LIMITS = Limits()


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
    repo = _Repo(Path(os.path.realpath(checkout)), os.path.abspath(checkout))
    app_rel = _app_path(source)
    app = repo.confine(repo.root / app_rel, f"path {app_rel}")
    if not app.exists():
        raise RenderError(f"path {app_rel} does not exist in the repository at this revision")
    if not app.is_dir():
        raise RenderError(f"path {app_rel} is not a directory")
    _refuse_escaping_symlinks(repo, app)

    manifests = _Manifests(limits, default_namespace)
    source_type = _source_type(source, app)
    if source_type == "directory":
        for path in _directory_files(repo, app, _options(source, "directory")):
            rel = repo.rel(path)
            text = _read(repo, path, rel, limits)
            documents = _load_json(text, rel) if path.suffix == ".json" else _load_yaml(text, rel)
            manifests.add_documents(rel, documents)
        return manifests.result()

    with tempfile.TemporaryDirectory(prefix="driftguard-render-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(os.path.realpath(tmp_name))
        if source_type == "kustomize":
            origin = f"kustomize build of {app_rel}"
            output = _kustomize(repo, app, app_rel, _options(source, "kustomize"), bin_dir, limits, tmp)
            documents = _load_yaml(output, origin)
            manifests.add_documents(origin, documents)
        else:
            origin = f"helm template of {app_rel}"
            helm = _options(source, "helm")
            output = _helm(repo, app, app_rel, helm, bin_dir, limits, tmp, default_namespace, app_name)
            documents = _load_yaml(output, origin)
            manifests.add_documents(origin, documents, details=_helm_sources(output, documents))
    return manifests.result()


# --- paths ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Repo:
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


def _app_path(source: Mapping[str, Any]) -> str:
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


def _refuse_escaping_symlinks(repo: _Repo, top: Path) -> None:
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


def _read(repo: _Repo, path: Path, rel: str, limits: Limits) -> str:
    real = repo.confine(path, rel)
    try:
        with real.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > limits.max_file_bytes else handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise RenderError(f"{rel} cannot be read: {exc.strerror or exc.__class__.__name__}") from exc
    if size > limits.max_file_bytes or len(data) > limits.max_file_bytes:
        raise TooLargeError(
            f"{rel} is {_size(max(size, len(data)))}, "
            f"over the limit of {_size(limits.max_file_bytes)} per file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{rel} is not UTF-8 text (invalid byte at offset {exc.start})") from exc


def _size(n: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


# --- source types -----------------------------------------------------------------------------


def _is_zero(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(_is_zero(v) for v in value.values())
    return not value


def _options(source: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = source.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RenderError(f"spec.source.{name} must be an object")
    return value


def _source_type(source: Mapping[str, Any], app: Path) -> str:
    explicit = [name for name in _SOURCE_TYPES if not _is_zero(source.get(name))]
    if len(explicit) > 1:
        raise RenderError(
            f"spec.source sets {' and '.join(explicit)}; set at most one of directory, kustomize, helm"
        )
    if explicit:
        return explicit[0]
    if any((app / name).is_file() for name in KUSTOMIZATION_FILES):
        return "kustomize"
    if (app / CHART_FILE).is_file():
        return "helm"
    return "directory"


def _string_option(options: Mapping[str, Any], field: str, where: str) -> str:
    value = options.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RenderError(f"{where}.{field} must be a string")
    return value


def _string_list(options: Mapping[str, Any], field: str, where: str) -> list[str]:
    value = options.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RenderError(f"{where}.{field} must be a list of strings")
    return list(value)


def _string_map(options: Mapping[str, Any], field: str, where: str) -> dict[str, str]:
    value = options.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise RenderError(f"{where}.{field} must be a map of strings to strings")
    return dict(value)


# --- plain directories ------------------------------------------------------------------------


def _directory_files(repo: _Repo, app: Path, options: Mapping[str, Any]) -> list[Path]:
    """The manifest files under ``app``, in path order. Like Argo CD's directory walk, symlinked
    directories are not descended into; symlinked files are read (they were checked to stay inside)."""
    where = "spec.source.directory"
    recurse = options.get("recurse", False)
    if not isinstance(recurse, bool):
        raise RenderError(f"{where}.recurse must be a boolean")
    include = _glob(_string_option(options, "include", where), f"{where}.include")
    exclude = _glob(_string_option(options, "exclude", where), f"{where}.exclude")
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


# --- parsing and checking ---------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's parser when PyYAML has it: several times faster) that leaves timestamps
    as strings, as Kubernetes' own YAML decoding does; a datetime would not survive the trip to
    JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# (1-based document number, 1-based line where its content starts, the parsed document)
_Document = tuple[int, int, Any]


def _load_yaml(text: str, origin: str) -> list[_Document]:
    loader = _Loader(text)
    documents: list[_Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            documents.append((len(documents) + 1, node.start_mark.line + 1, loader.construct_document(node)))
    except yaml.MarkedYAMLError as exc:
        # Not chained: the YAML error's own text quotes the offending line, which may hold a secret.
        raise RenderError(_yaml_message(origin, exc)) from None
    except yaml.YAMLError:
        raise RenderError(f"{origin}: invalid YAML") from None
    except RecursionError:
        raise RenderError(f"{origin}: YAML nested too deeply") from None
    finally:
        loader.dispose()
    return documents


def _yaml_message(origin: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{origin}: line {mark.line + 1}, column {mark.column + 1}" if mark else origin
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    return f"{where}: invalid YAML: {exc.problem or exc.context or 'syntax error'}{context}"


def _load_json(text: str, origin: str) -> list[_Document]:
    try:
        return [(1, 1, json.loads(text))]
    except json.JSONDecodeError as exc:
        raise RenderError(
            f"{origin}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise RenderError(f"{origin}: JSON nested too deeply") from None


@dataclass(frozen=True)
class _Where:
    origin: str
    document: int
    item: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.origin}: document {self.document}"
        if self.detail:
            text += f" ({self.detail})"
        return text if self.item is None else f"{text}: item {self.item}"

    def brief(self) -> str:
        parts = [f"document {self.document}"] + ([f"item {self.item}"] if self.item is not None else [])
        detail = f", {self.detail}" if self.detail else ""
        return f"{self.origin} ({', '.join(parts)}{detail})"


class _Manifests:
    """Checked objects in order, their total size, and where each came from for duplicate reports."""

    def __init__(self, limits: Limits, default_namespace: str) -> None:
        self._limits = limits
        self._default_namespace = default_namespace
        self._objects: list[dict[str, Any]] = []
        self._seen: dict[tuple[str, str, str, str], _Where] = {}
        self._problems: list[str] = []
        self._total = 0

    def add_documents(
        self, origin: str, documents: list[_Document], *, details: Mapping[int, str] | None = None
    ) -> None:
        for index, _, document in documents:
            if document is not None:
                self._add(_Where(origin, index, detail=(details or {}).get(index, "")), document)

    def result(self) -> list[dict[str, Any]]:
        if self._problems:
            shown = "; ".join(self._problems[:_MAX_PROBLEMS])
            more = len(self._problems) - _MAX_PROBLEMS
            raise RenderError(shown + (f" (and {more} more)" if more > 0 else ""))
        return self._objects

    def _add(self, where: _Where, document: Any) -> None:
        remaining = self._limits.max_total_bytes - self._total
        # Bound the walk before serializing: YAML aliases can make a small file expand without end.
        if _json_size_exceeds(document, remaining):
            raise self._too_large(where)
        try:
            encoded = json.dumps(document, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            self._problems.append(f"{where}: cannot be represented as JSON: {exc}")
            return
        except RecursionError:
            self._problems.append(f"{where}: nested too deeply")
            return
        self._total += len(encoded.encode())
        if self._total > self._limits.max_total_bytes:
            raise self._too_large(where)
        # A copy through JSON: aliases no longer share objects, keys are strings, as the API sees it.
        obj = json.loads(encoded)
        if isinstance(obj, dict) and _is_list(obj):
            for number, item in enumerate(obj["items"], 1):
                self._add_object(replace(where, item=number), item)
        else:
            self._add_object(where, obj)

    def _too_large(self, where: _Where) -> TooLargeError:
        return TooLargeError(
            f"the rendered manifests are over the limit of {_size(self._limits.max_total_bytes)} "
            f"(reached at {where.brief()})"
        )

    def _add_object(self, where: _Where, obj: Any) -> None:
        problem = _object_problem(obj)
        if problem:
            self._problems.append(f"{where}: {problem}")
            return
        api_version, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
        group = api_version.rpartition("/")[0]
        namespace = meta.get("namespace") or self._default_namespace
        key = (group, kind, namespace, meta["name"])
        first = self._seen.get(key)
        if first is not None:
            ref = f"{kind}/{namespace}/{meta['name']}" if namespace else f"{kind}/{meta['name']}"
            self._problems.append(f"{ref} is defined twice: in {first.brief()} and in {where.brief()}")
            return
        self._seen[key] = where
        self._objects.append(obj)


def _is_list(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list)


def _object_problem(obj: Any) -> str:
    if not isinstance(obj, dict):
        return f"not a Kubernetes object (a {_type_name(obj)}, not a mapping)"
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if value is None or value == "":
            return f"missing {field}"
        if not isinstance(value, str):
            return f"{field} must be a string"
    meta = obj.get("metadata")
    if meta is None:
        return "missing metadata.name"
    if not isinstance(meta, dict):
        return "metadata must be a mapping"
    name = meta.get("name")
    if name is None or name == "":
        return "missing metadata.name"
    if not isinstance(name, str):
        return "metadata.name must be a string"
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return "metadata.namespace must be a string"
    return ""


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _json_size_exceeds(value: Any, budget: int) -> bool:
    """Whether ``value`` as JSON would take more than about ``budget`` bytes, found in at most
    about ``budget`` steps however many times aliases repeat its parts."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            size += 2 + len(item)
            for key, child in item.items():
                size += len(str(key)) + 3
                stack.append(child)
        elif isinstance(item, list):
            size += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, str):
            size += len(item) + 2
        else:
            size += 4
        if size > budget:
            return True
    return False


# --- kustomize --------------------------------------------------------------------------------


def _kustomize(
    repo: _Repo,
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
    return _run(
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
        value = _string_option(options, field, where)
        if value:
            overlay[field] = value
    labels = _string_map(options, "commonLabels", where)
    if labels:
        # `labels` with includeSelectors is commonLabels without kustomize's deprecation warning.
        overlay["labels"] = [{"pairs": labels, "includeSelectors": True}]
    annotations = _string_map(options, "commonAnnotations", where)
    if annotations:
        overlay["commonAnnotations"] = annotations
    images = [
        _image(spec, f"{where}.images[{i}]") for i, spec in enumerate(_string_list(options, "images", where))
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


def _check_kustomization(repo: _Repo, directory: Path, limits: Limits, visited: set[Path]) -> None:
    """Refuse anything the kustomization in ``directory``, and the local bases it pulls in, would
    load from outside the repository or from the network."""
    if directory in visited:
        return
    visited.add(directory)
    path = next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)
    if path is None:
        return  # kustomize reports a directory without a kustomization in its own words
    rel = repo.rel(path)
    documents = _load_yaml(_read(repo, path, rel, limits), rel)
    kustomization = documents[0][2] if documents else None
    if not isinstance(kustomization, dict):
        return  # likewise
    for field, entry in _kustomization_references(kustomization):
        if "\n" in entry or not entry.strip():
            continue  # an inline patch or transformer configuration, not a path
        what = f"{rel}: {field} entry {entry!r}"
        if _URL.match(entry) or entry.startswith("git@"):
            raise RenderError(f"{what} is remote; only files and directories in the repository are rendered")
        target = repo.confine(directory / entry, what)
        if field in _KUSTOMIZE_DIR_FIELDS:
            if not target.exists():
                raise RenderError(
                    f"{what} is not a file or directory in the repository at this revision "
                    "(remote bases are not fetched)"
                )
            if target.is_dir():
                _refuse_escaping_symlinks(repo, target)
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


# --- helm -------------------------------------------------------------------------------------
HELM_RELEASE_NAME_MAX = 53


def _helm(
    repo: _Repo,
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
    release = _string_option(options, "releaseName", where) or app_name
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
    for index, entry in enumerate(_string_list(options, "valueFiles", where)):
        value_file = _value_file(repo, app, app_rel, entry, f"{where}.valueFiles[{index}]", limits)
        args.append(f"--values={value_file}")
    replacements = {str(tmp): "<tmp>"}
    values = _string_option(options, "values", where)
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
    return _run(args, tool="helm", repo=repo, tmp=tmp, limits=limits, replacements=replacements, env=env)


def _value_file(repo: _Repo, app: Path, app_rel: str, entry: str, where: str, limits: Limits) -> Path:
    scheme = _URL.match(entry)
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
            f"helm value file {entry} is {_size(size)}, "
            f"over the limit of {_size(limits.max_file_bytes)} per file"
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


def _helm_sources(output: str, documents: list[_Document]) -> dict[int, str]:
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


# --- running tools ----------------------------------------------------------------------------


def _run(
    args: list[str],
    *,
    tool: str,
    repo: _Repo,
    tmp: Path,
    limits: Limits,
    replacements: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> str:
    """The tool's stdout, or RenderError with its stderr (host paths scrubbed) when it fails, runs
    past the timeout or writes more than the output limit. The environment is built from nothing:
    no credentials, kubeconfig or PATH of the controller's reach the tool, and nothing it caches
    outlives the render."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    full_env = {
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "KUBECONFIG": str(home / "no-kubeconfig"),
        **(env or {}),
    }
    try:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=tmp,
            start_new_session=True,
        )
    except OSError as exc:
        raise RenderError(f"{tool} could not be started: {exc.strerror or exc.__class__.__name__}") from exc
    try:
        stdout, stderr = _collect(process, tool, limits)
    finally:
        if process.poll() is None:
            _kill(process)
        process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    if process.returncode != 0:
        detail = repo.scrub(stderr.decode(errors="replace"), replacements).strip()
        if len(detail) > STDERR_SHOWN:
            detail = "…" + detail[-STDERR_SHOWN:]
        status = f"exit {process.returncode}" if process.returncode > 0 else f"signal {-process.returncode}"
        raise RenderError(f"{tool} failed ({status}): {detail or 'no error output'}")
    return stdout.decode(errors="replace")


def _collect(process: subprocess.Popen[bytes], tool: str, limits: Limits) -> tuple[bytes, bytes]:
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = bytearray(), bytearray()
    deadline = time.monotonic() + limits.timeout_seconds
    timed_out = RenderError(f"{tool} did not finish within {limits.timeout_seconds:g} seconds")
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, stdout)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timed_out
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is stdout and len(stdout) > limits.max_total_bytes:
                    raise TooLargeError(f"{tool} output is over the limit of {_size(limits.max_total_bytes)}")
                if buffer is stderr and len(stderr) > _STDERR_KEPT:
                    del stderr[:-_STDERR_KEPT]
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 0.01))
    except subprocess.TimeoutExpired:
        raise timed_out from None
    return bytes(stdout), bytes(stderr)


def _kill(process: subprocess.Popen[bytes]) -> None:
    # The tool runs in its own session, so its whole process group goes, children included.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
