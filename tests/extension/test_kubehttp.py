"""The watch-stream helpers shared by the controller, the storage and the namespace watch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extension.kubehttp import close, events


class Stream:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.calls: list[str] = []

    def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.calls.append("close")

    def release_conn(self) -> None:
        self.calls.append("release_conn")


def decoded(chunks: list[bytes]) -> list[Any]:
    return list(events(Stream(chunks)))  # type: ignore[arg-type]


def test_events_are_split_on_newlines_whatever_the_chunks() -> None:
    chunks = [b'{"type":"ADDED","object":{"a":1}}\n{"type":"MOD', b'IFIED"}\n', b"\n", b'{"b":', b"2}\n"]
    assert decoded(chunks) == [
        {"type": "ADDED", "object": {"a": 1}},
        {"type": "MODIFIED"},
        {"b": 2},
    ]


def test_an_unfinished_last_line_is_not_an_event() -> None:
    assert decoded([b'{"a":1}\n{"b":']) == [{"a": 1}]


def test_a_large_event_in_many_small_chunks() -> None:
    line = b'{"data":"' + b"x" * 200_000 + b'"}\n'
    chunks = [line[i : i + 1024] for i in range(0, len(line), 1024)]
    assert decoded(chunks) == [{"data": "x" * 200_000}]


def test_close_closes_the_connection_before_handing_it_back() -> None:
    """A watch still streaming must not go back to the pool open: the next request would read it."""
    response = Stream([])
    close(response)  # type: ignore[arg-type]
    assert response.calls == ["close", "release_conn"]
