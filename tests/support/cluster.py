"""The local control plane as the tests see it: paths, a kubectl runner, client objects."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = REPO_ROOT / ".local"
# The AppProject the test session makes for the Applications of its namespaces (t-*): it allows
# every repository, destination and kind, as the project default did before projects bounded
# anything. Tests of the bounds themselves make their own projects.
TEST_PROJECT = "tests"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    bin_dir: Path
    pki_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against the cluster. ``check`` fails with kubectl's stderr."""
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
            )
        return result


def running_pid(name: str) -> int | None:
    """The pid in .local/pids/<name>.pid if that very process is alive (pid and start time match),
    as hack/lib/cluster.sh records it."""
    try:
        pid_text, started = (LOCAL_DIR / "pids" / f"{name}.pid").read_text().split()
        stat = Path(f"/proc/{pid_text}/stat").read_text()
    except (OSError, ValueError):
        return None
    return int(pid_text) if stat.rsplit(") ", 1)[1].split()[19] == started else None
