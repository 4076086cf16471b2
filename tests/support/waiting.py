"""Waiting for conditions with a deadline, never sleeping and hoping.

``wait_for`` polls a probe until it returns a truthy value and says what it awaited and how long
it took; on timeout it fails with what was awaited and the last value (or error) seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("driftguard.tests")


def wait_for(
    probe: Callable[[], T],
    what: str,
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``probe`` until it returns a truthy value; return that value."""
    start = time.monotonic()
    deadline = start + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except ignore as exc:
            value, last = None, exc  # type: ignore[assignment]
        else:
            last = value
        if value:
            log.info("awaited %s: %.1fs", what, time.monotonic() - start)
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
