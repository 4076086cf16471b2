"""The building blocks of validation, as kube-apiserver words them: field errors, the walk over a
structural schema (types, enums, bounds, required fields, defaults, unknown fields), names, durations,
times and ObjectMeta. Pure: every function takes any JSON value and never raises; a string where an
object belongs is a FieldError, not a crash. A null is treated as absent, as kube-apiserver prunes
nulls from a CRD's non-nullable fields.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from extension.api.schema import Schema

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
FORBIDDEN = "FieldValueForbidden"

# What kube-apiserver prints for each reason (k8s.io/apimachinery/pkg/util/validation/field).
_REASON_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    TOO_LONG: "Too long",
    FORBIDDEN: "Forbidden",
}
# Reasons whose text never shows the bad value, as in kube.
_VALUELESS = {REQUIRED, TOO_LONG, FORBIDDEN}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: a metav1.StatusCause once serialized."""

    path: str
    type: str
    message: str
    value: object = None

    def body(self) -> str:
        """The text after the path, e.g. ``Unsupported value: "block": supported values: ...``."""
        text = _REASON_TEXT.get(self.type, self.type)
        if self.type not in _VALUELESS:
            text += f": {_go_value(self.value)}"
        return f"{text}: {self.message}" if self.message else text

    def detail(self) -> str:
        """The line kube-apiserver prints, e.g. ``spec.source.repoURL: Required value``."""
        return f"{self.path}: {self.body()}"

    def cause(self) -> dict[str, str]:
        """As a metav1.StatusCause for a 422 Invalid Status's ``details.causes``."""
        return {"reason": self.type, "message": self.body(), "field": self.path}


def _go_value(value: object) -> str:
    # Go prints numbers and booleans bare, strings quoted, and other values as data.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, default=repr)


def required(path: str, message: str = "") -> FieldError:
    return FieldError(path, REQUIRED, message)


def invalid(path: str, value: object, message: str) -> FieldError:
    return FieldError(path, INVALID, message, value)


def not_supported(path: str, value: object, supported: Iterable[str]) -> FieldError:
    return FieldError(
        path, NOT_SUPPORTED, "supported values: " + ", ".join(f'"{s}"' for s in supported), value
    )


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- the schema walk: types, enums, bounds, required fields, defaults, unknown fields ----------
_JSON_TYPES: dict[str, type] = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    for name, python_type in _JSON_TYPES.items():
        if isinstance(value, python_type):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


def _has_type(node: Schema, value: object) -> bool:
    wanted: str | None = node.get("type")
    if wanted not in _JSON_TYPES:
        return True
    # bool is an int in Python, never in JSON.
    return type_name(value) == wanted


def schema_errors(node: Schema, value: object, path: str) -> Iterator[FieldError]:
    if not _has_type(node, value):
        # Like kube, show the JSON type rather than the value, which may be a large object.
        yield invalid(path, type_name(value), f"must be of type {node['type']}")
        return
    if "enum" in node and value not in node["enum"]:
        yield not_supported(path, value, node["enum"])
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            yield invalid(path, value, f"must be greater than or equal to {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            yield invalid(path, value, f"must be less than or equal to {node['maximum']}")
    if node.get("format") == "date-time" and isinstance(value, str) and not _is_time(value):
        yield invalid(path, value, "must be an RFC 3339 time, e.g. 2024-01-31T12:00:00Z")
    if isinstance(value, list):
        for index, item in enumerate(value):
            if item is not None:
                yield from schema_errors(node.get("items", {}), item, f"{path}[{index}]")
        yield from _duplicates(node, value, path)
    if isinstance(value, dict):
        for key in node.get("required", ()):
            if value.get(key) is None:
                yield required(join(path, key))
        properties, values = node.get("properties", {}), node.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, values if isinstance(values, dict) else None)
            if sub is not None and item is not None:
                child = join(path, key) if key in properties else f"{path}[{key}]"
                yield from schema_errors(sub, item, child)


def _duplicates(node: Schema, value: list[Any], path: str) -> Iterator[FieldError]:
    """Items of a list of type set or map are unique (by value, or by their keys), as for a CRD."""
    list_type = node.get("x-kubernetes-list-type")
    keys = node.get("x-kubernetes-list-map-keys") or []
    seen: list[Any] = []
    for index, item in enumerate(value):
        if list_type == "set":
            identity: Any = item
        elif list_type == "map" and isinstance(item, dict):
            identity = {k: item.get(k) for k in keys}
        else:
            continue
        if identity in seen:
            yield FieldError(f"{path}[{index}]", DUPLICATE, "", identity)
        seen.append(identity)


def unknown(node: Schema, value: object, path: str) -> Iterator[str]:
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            yield from unknown(node["items"], item, f"{path}[{index}]")
    if not isinstance(value, dict) or node.get("type") != "object":
        return
    properties, values = node.get("properties"), node.get("additionalProperties")
    if properties is None and values is None:
        return  # an open object, like metadata
    for key, item in value.items():
        if properties and key in properties:
            yield from unknown(properties[key], item, join(path, key))
        elif isinstance(values, dict):
            yield from unknown(values, item, f"{path}[{key}]")
        else:
            yield join(path, str(key))


def default(node: Schema, value: object) -> None:
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            default(node["items"], item)
    if not isinstance(value, dict):
        return
    # As for a CRD, a default applies when the parent object exists; a default of {} lets the
    # defaults below it apply too (driftGuard.mode, retry.backoff.*).
    for key, sub in node.get("properties", {}).items():
        if "default" in sub and value.get(key) is None:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            default(sub, value[key])


# --- names, paths, URLs, durations, times ------------------------------------------------------
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_LABEL}')"
)
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    f"is '{_SUBDOMAIN}')"
)

_GO_DURATION_RE = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+|0")
_GO_DURATION_PART_RE = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_JSON_POINTER_RE = re.compile(r"(/([^/~]|~[01])*)+")


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _name_problems(value: str, pattern: re.Pattern[str], message: str, max_length: int) -> list[str]:
    problems = []
    if len(value) > max_length:
        problems.append(f"must be no more than {max_length} characters")
    if not pattern.fullmatch(value):
        problems.append(message)
    return problems


def subdomain_problems(value: str, max_length: int = 253) -> list[str]:
    """Why ``value`` is not a DNS-1123 subdomain, in kube's words; empty when it is one."""
    return _name_problems(value, _SUBDOMAIN_RE, _SUBDOMAIN_MESSAGE, max_length)


def label_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 label (a namespace name), in kube's words."""
    return _name_problems(value, _LABEL_RE, _LABEL_MESSAGE, 63)


def parse_duration(value: str) -> float | None:
    """Seconds in a Go duration such as ``5s``, ``3m`` or ``1h30m``; None when it is not one."""
    if not _GO_DURATION_RE.fullmatch(value):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _GO_DURATION_PART_RE.findall(value))


def _is_time(value: str) -> bool:
    if not _TIME_RE.fullmatch(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


# --- the rules a schema cannot say ----------------------------------------------------------
def get(obj: object, key: str, kind: type) -> Any:
    """``obj[key]`` when obj is an object and the value has the given type, else None (the
    schema walk has already reported a wrong type)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def strings(obj: object, key: str, path: str) -> Iterator[tuple[str, str]]:
    for index, item in enumerate(get(obj, key, list) or ()):
        if isinstance(item, str):
            yield f"{path}.{key}[{index}]", item


def metadata_errors(meta: object, for_create: bool) -> Iterator[FieldError]:
    name, generate = get(meta, "name", str), get(meta, "generateName", str)
    if meta is not None and not isinstance(meta, dict):
        return  # reported by the schema walk
    if generate and for_create:
        # kube checks the prefix with a trailing '-' masked, since the suffix follows it.
        masked = generate[:-1] + "a" if len(generate) > 1 and generate.endswith("-") else generate
        for problem in subdomain_problems(masked):
            yield invalid("metadata.generateName", generate, problem)
    if not name:
        if not (generate and for_create):
            value = meta.get("name") if isinstance(meta, dict) else None
            if value is None or value == "":
                yield required("metadata.name", "name or generateName is required")
            else:
                yield invalid("metadata.name", type_name(value), "must be of type string")
    else:
        for problem in subdomain_problems(name):
            yield invalid("metadata.name", name, problem)
    namespace = get(meta, "namespace", str)
    for problem in label_problems(namespace) if namespace else ():
        yield invalid("metadata.namespace", namespace, problem)
    # ObjectMeta's shapes, which selectors, finalizer handling and kubectl rely on.
    for key in ("labels", "annotations"):
        value = meta.get(key) if isinstance(meta, dict) else None
        if value is None:
            continue
        if not isinstance(value, dict):
            yield invalid(f"metadata.{key}", type_name(value), "must be of type object")
            continue
        for k, v in value.items():
            if not isinstance(v, str):
                yield invalid(f"metadata.{key}.{k}", type_name(v), "must be of type string")
            elif key == "labels" and v:
                for problem in _name_problems(v, _LABEL_VALUE, "a valid label value", 63):
                    yield invalid(f"metadata.labels.{k}", v, problem)
    finalizers = meta.get("finalizers") if isinstance(meta, dict) else None
    if finalizers is not None:
        if not isinstance(finalizers, list):
            yield invalid("metadata.finalizers", type_name(finalizers), "must be of type array")
        else:
            for index, item in enumerate(finalizers):
                if not isinstance(item, str) or not item:
                    yield invalid(f"metadata.finalizers[{index}]", item, "must be a non-empty string")


def duration_errors(obj: object, key: str, path: str, *, positive: bool = False) -> Iterator[FieldError]:
    value = get(obj, key, str)
    if value is None:
        return
    seconds = parse_duration(value)
    if seconds is None:
        yield invalid(f"{path}.{key}", value, "must be a duration such as '30s', '5m' or '1h30m'")
    elif positive and seconds <= 0:
        yield invalid(f"{path}.{key}", value, "must be longer than 0s")


def pointer_errors(obj: object, key: str, path: str) -> Iterator[FieldError]:
    for item_path, pointer in strings(obj, key, path):
        if not _JSON_POINTER_RE.fullmatch(pointer):
            yield invalid(
                item_path, pointer, "must be a JSON pointer (RFC 6901) starting with '/', e.g. /spec/replicas"
            )


def non_empty_errors(obj: object, key: str, path: str) -> Iterator[FieldError]:
    for item_path, value in strings(obj, key, path):
        if not value:
            yield invalid(item_path, value, "must not be empty")


def parse_time(text: str) -> datetime.datetime | None:
    """An RFC 3339 time with its offset (``2030-01-01T12:00:00Z``, any case, surrounding spaces
    ignored); None for anything else, a time without an offset included."""
    try:
        parsed = datetime.datetime.fromisoformat(str(text).strip().upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
