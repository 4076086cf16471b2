"""Parsing what a render read or a tool wrote (YAML, JSON), and checking it: each document a
Kubernetes object (or a List of them), within the size limit, no object defined twice."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from controller.render.errors import Limits, RenderError, TooLargeError, size_text
from extension.api.tracking import HELM_HOOK, HOOK_ANNOTATIONS

_MAX_PROBLEMS = 5  # validation problems listed in one message; the rest are counted


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's parser when PyYAML has it: several times faster) that leaves timestamps
    as strings, as Kubernetes' own YAML decoding does; a datetime would not survive the trip to
    JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# (1-based document number, 1-based line where its content starts, the parsed document)
Document = tuple[int, int, Any]


def load_yaml(text: str, origin: str) -> list[Document]:
    loader = _Loader(text)
    documents: list[Document] = []
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


def load_json(text: str, origin: str) -> list[Document]:
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


class Manifests:
    """Checked objects in order, their total size, and where each came from for duplicate reports."""

    def __init__(self, limits: Limits, default_namespace: str) -> None:
        self._limits = limits
        self._default_namespace = default_namespace
        self._objects: list[dict[str, Any]] = []
        self._seen: dict[tuple[str, str, str, str], _Where] = {}
        self._problems: list[str] = []
        self._total = 0

    def add_documents(
        self, origin: str, documents: list[Document], *, details: Mapping[int, str] | None = None
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
            f"the rendered manifests are over the limit of {size_text(self._limits.max_total_bytes)} "
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
        name = meta.get("name") or f"{meta['generateName']}*"  # a hook named by the API server
        key = (group, kind, namespace, name)
        first = self._seen.get(key)
        if first is not None:
            ref = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
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
    if (name is None or name == "") and _generated_hook(meta):
        return ""  # a sync hook the API server names (generateName), created anew each time it runs
    if name is None or name == "":
        return "missing metadata.name"
    if not isinstance(name, str):
        return "metadata.name must be a string"
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return "metadata.namespace must be a string"
    return ""


def _generated_hook(meta: Mapping[str, Any]) -> bool:
    annotations = meta.get("annotations")
    return (
        isinstance(meta.get("generateName"), str) and bool(meta["generateName"])
        and isinstance(annotations, dict) and any(k in annotations for k in (*HOOK_ANNOTATIONS, HELM_HOOK))
    )  # fmt: skip


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
