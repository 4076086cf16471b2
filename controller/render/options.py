"""spec.source as a render reads it: which source type it names, and its typed options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controller.render.errors import RenderError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
_SOURCE_TYPES = ("directory", "kustomize", "helm")


def _is_zero(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(_is_zero(v) for v in value.values())
    return not value


def type_options(source: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = source.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RenderError(f"spec.source.{name} must be an object")
    return value


def source_type(source: Mapping[str, Any], app: Path) -> str:
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


def string_option(options: Mapping[str, Any], field: str, where: str) -> str:
    value = options.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RenderError(f"{where}.{field} must be a string")
    return value


def string_list(options: Mapping[str, Any], field: str, where: str) -> list[str]:
    value = options.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RenderError(f"{where}.{field} must be a list of strings")
    return list(value)


def string_map(options: Mapping[str, Any], field: str, where: str) -> dict[str, str]:
    value = options.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise RenderError(f"{where}.{field} must be a map of strings to strings")
    return dict(value)
