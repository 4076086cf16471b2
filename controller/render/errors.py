"""What a render may fail with, and the bounds it runs within.

Every message is written for a status condition: it names repository-relative paths, never the
host's, and never quotes file contents.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def size_text(n: int) -> str:
    """A size as a limit's message shows it: '1 MiB', '4 KiB', '100 bytes'."""
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"
