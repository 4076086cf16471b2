"""The code checks that hack/verify-all.sh runs are part of the test suite too."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.cluster import REPO_ROOT


@pytest.mark.parametrize("check", ["verify-python.sh", "verify-shell.sh"])
def test_the_code_passes_its_verify_check(check: str) -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "hack" / check)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"hack/{check} failed:\n{result.stdout}{result.stderr}"
