"""Patch types the API accepts: JSON merge patch (RFC 7386) and JSON patch (RFC 6902), here, and
server-side apply (``managed_fields``). Pure.

Strategic merge patch is refused with 415, as kube-apiserver does for custom resources: it needs
patch strategies per field that only built-in types have.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import yaml
from yaml.events import AliasEvent

from extension.api import errors

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch(content_type: str, original: dict[str, Any], patch: Any) -> dict[str, Any]:
    media = content_type.split(";")[0].strip()
    if media == MERGE:
        if not isinstance(patch, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        return dict(merge_patch(original, patch))
    if media == JSON:
        if not isinstance(patch, list):
            raise errors.bad_request("a JSON patch must be a JSON array of operations")
        try:
            result = jsonpatch.JsonPatch(patch).apply(original)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise errors.APIError(422, "Invalid", f"the JSON patch could not be applied: {exc}") from exc
        if not isinstance(result, dict):
            raise errors.bad_request("the JSON patch replaced the whole object with a non-object")
        return result
    raise errors.unsupported_media_type(media)


class _ApplyLoader(yaml.SafeLoader):
    """YAML for applied configurations: no aliases (an alias bomb expands a few hundred bytes into
    gigabytes), and timestamps stay strings, as kube reads them (``targetRevision: 2026-01-02``)."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class attribute)
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in an applied configuration", mark
            )
        return super().compose_node(parent, index)


def decode_apply(raw: bytes) -> dict[str, Any]:
    """An applied configuration: one JSON or YAML object."""
    try:
        docs = [json.loads(raw)]
    except ValueError:
        try:
            docs = [d for d in yaml.load_all(raw, Loader=_ApplyLoader) if d is not None]
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
        except RecursionError:
            raise errors.bad_request("error decoding YAML: nested too deeply") from None
    except RecursionError:
        raise errors.bad_request("error decoding JSON: nested too deeply") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise errors.bad_request("the applied configuration must be one YAML or JSON object")
    return docs[0]
