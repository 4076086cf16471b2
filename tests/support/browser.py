"""A real browser for the dashboard's tests: Debian's Chromium driven by Playwright, reaching the
dashboard through a real ``kubectl proxy``."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.waiting import wait_for

# As the machine's notes say Chromium must start here: no sandbox as root, and none of its
# background connections (refused by the closed network, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip


def chromium() -> str:
    """The system Chromium (hack/test.sh installs Debian's package)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError(
            "chromium is not installed: hack/test.sh installs Debian's package (apt-get install chromium)"
        )
    return found


@contextmanager
def kubectl_proxy(kubectl: Path, kubeconfig: Path, *flags: str) -> Iterator[str]:
    """``kubectl proxy`` on a free loopback port (with ``flags``, e.g. ``--as=viewer``): its base URL."""
    process = subprocess.Popen(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "proxy", "--address=127.0.0.1", "--port=0", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            rest = process.stdout.read() if process.poll() is not None else ""
            raise RuntimeError(f"kubectl proxy did not start: {line}{rest}")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        wait_for(lambda: process.poll() is not None, "kubectl proxy to stop", timeout=10)
        if process.stdout is not None:
            process.stdout.close()
