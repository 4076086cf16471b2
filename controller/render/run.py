"""Running kustomize or helm: an empty environment, a temporary home, a timeout and an output limit."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from controller.render.errors import Limits, RenderError, TooLargeError, size_text
from controller.render.repo import Repo

STDERR_SHOWN = 2000  # characters of a failing tool's stderr that reach the message
_STDERR_KEPT = 64 * 1024  # bytes of stderr held while the tool runs


def run_tool(
    args: list[str],
    *,
    tool: str,
    repo: Repo,
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
                    raise TooLargeError(
                        f"{tool} output is over the limit of {size_text(limits.max_total_bytes)}"
                    )
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
