"""hack/ scripts meet bad input with a clear one-line message, and touch only what is theirs.

Each test points LOCAL_DIR (and, where it matters, DRIFTGUARD_CACHE) at a temporary directory,
so the developer's running control plane and cache are never disturbed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import LOCAL_DIR, REPO_ROOT, Cluster

CACHE = Path(os.environ.get("DRIFTGUARD_CACHE", Path.home() / ".cache" / "driftguard"))


def run(
    script: str, *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "hack" / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def test_local_down_removes_stale_pid_files_and_kills_nothing_it_did_not_start(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    # A live process that is not ours (its start time differs from the recorded one) ...
    (pids / "etcd.pid").write_text(f"{sleeper.pid} 1\n")
    # ... and a process that is gone after a crash.
    (pids / "kube-apiserver.pid").write_text("999999999 5\n")

    result = run("local-down.sh", env={"LOCAL_DIR": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    assert sleeper.poll() is None, "local-down killed a process it did not start"
    assert "etcd: stale pid file" in result.stderr
    assert "kube-apiserver: stale pid file" in result.stderr
    assert list(pids.iterdir()) == []


def test_a_corrupt_cache_entry_is_detected_and_never_used_without_go(tmp_path: Path) -> None:
    [entry] = (CACHE / "bin" / "kwok").glob("v*")
    cache = tmp_path / "cache"
    shutil.copytree(entry, cache / "bin" / "kwok" / entry.name)
    binary = cache / "bin" / "kwok" / entry.name / "kwok"
    binary.write_bytes(binary.read_bytes()[:4096])  # a half-written binary

    go_less_path = ":".join(p for p in os.environ["PATH"].split(":") if not (Path(p) / "go").exists())
    result = run(
        "build.sh", "kwok",
        env={"DRIFTGUARD_CACHE": str(cache), "LOCAL_DIR": str(tmp_path / "local"), "PATH": go_less_path},
    )  # fmt: skip

    assert result.returncode == 1
    assert "cache entry" in result.stderr and "is incomplete or corrupt; rebuilding" in result.stderr
    assert error_lines(result.stderr) == [
        "error: Go is not installed and no kwok v0.8.0 was found in the cache, KUBEBUILDER_ASSETS or PATH. "
        "Install Go >= 1.26, or point KUBEBUILDER_ASSETS at a directory with the pinned binaries."
    ]
    assert not (tmp_path / "local" / "bin" / "kwok").exists(), "a corrupt binary was linked"


@pytest.mark.cluster
def test_a_corrupt_cache_entry_is_rebuilt(tmp_path: Path, cluster: Cluster) -> None:
    [entry] = (CACHE / "bin" / "kwok").glob("v*")
    cache = tmp_path / "cache"
    shutil.copytree(entry, cache / "bin" / "kwok" / entry.name)
    (cache / "bin" / "kwok" / entry.name / "kwok.sha256").unlink()  # never finished

    result = run(
        "build.sh", "kwok", env={"DRIFTGUARD_CACHE": str(cache), "LOCAL_DIR": str(tmp_path / "local")}
    )

    assert result.returncode == 0, result.stderr
    assert "kwok v0.8.0: built in" in result.stderr
    linked = tmp_path / "local" / "bin" / "kwok"
    version = subprocess.run([str(linked), "--version"], capture_output=True, text=True, check=True)
    assert "v0.8.0" in version.stdout


@pytest.mark.cluster
def test_local_up_names_the_port_that_is_taken_and_by_whom(tmp_path: Path, cluster: Cluster) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = run("local-up.sh", env={"LOCAL_DIR": str(tmp_path), "ETCD_PORT": str(port)})

    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"error: etcd: port 127.0.0.1:{port} is already in use by pid {os.getpid()} "
        f"({Path(f'/proc/{os.getpid()}/comm').read_text().strip()}); stop it or set ETCD_PORT"
    ]
    assert not any((tmp_path / "pids").iterdir()), "local-up left a process behind"


@pytest.mark.cluster
def test_a_second_local_up_finds_the_running_cluster_and_starts_nothing(cluster: Cluster) -> None:
    pid_files = sorted((LOCAL_DIR / "pids").glob("*.pid"))
    before = {p.name: p.read_text() for p in pid_files}
    result = run("local-up.sh", env={"LOCAL_DIR": str(LOCAL_DIR)})
    assert result.returncode == 0, result.stderr
    port = os.environ.get("APISERVER_PORT", "6443")
    assert f"the control plane is already running at https://127.0.0.1:{port}" in result.stderr
    assert "starting" not in result.stderr
    assert {p.name: p.read_text() for p in sorted((LOCAL_DIR / "pids").glob("*.pid"))} == before
