"""The extension's JSON: fast, and never an error for what the standard library accepted."""

from __future__ import annotations

import math
from typing import Any

import pytest

from extension.api import jsoncodec


def nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.mark.parametrize("depth", [10, 300, 900])
def test_objects_nested_beyond_orjsons_limits_round_trip(depth: int) -> None:
    assert jsoncodec.loads(jsoncodec.dumps(nested(depth))) == nested(depth)


def test_nan_stored_by_the_standard_library_still_reads() -> None:
    assert math.isnan(jsoncodec.loads(b'{"a": NaN}')["a"])


def test_keys_sort_on_request_and_text_that_is_no_json_raises_value_error() -> None:
    assert jsoncodec.dumps({"b": 1, "a": 2}, sort_keys=True) == b'{"a":2,"b":1}'
    with pytest.raises(ValueError):
        jsoncodec.loads(b"{not json")
