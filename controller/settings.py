"""The controller's settings: a dataclass with documented defaults, read from the environment."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from extension.settings import flag


@dataclass(frozen=True)
class Settings:
    namespace: str = "driftguard-system"  # DRIFTGUARD_NAMESPACE: install namespace (Lease, Secrets)
    kubeconfig: str = ""  # KUBECONFIG: empty means in-cluster
    bind: str = "127.0.0.1:8081"  # DRIFTGUARD_CONTROLLER_BIND: /metrics, /healthz, /readyz, /api/webhook
    workers: int = 4  # DRIFTGUARD_CONTROLLER_WORKERS: Applications reconciled at once
    poll_seconds: float = 60.0  # DRIFTGUARD_POLL_SECONDS: Git polling interval (jittered ±10%)
    cache_dir: str = "/tmp/driftguard-git"  # noqa: S108 (an emptyDir in the pod); DRIFTGUARD_GIT_CACHE: bare mirrors and checkouts
    bin_dir: str = "/usr/local/bin"  # DRIFTGUARD_BIN_DIR: where kubectl (kustomize) and helm are
    webhook_secret: str = ""  # DRIFTGUARD_WEBHOOK_SECRET: shared secret of the Git webhook receiver
    max_prune_share: float = 0.5  # DRIFTGUARD_MAX_PRUNE_SHARE: larger prunes need confirmation
    leader_election: bool = True  # DRIFTGUARD_LEADER_ELECTION
    identity: str = ""  # POD_NAME: this replica's name in the Lease (default: hostname_pid)
    # DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES: file:// sources, read from the controller's own
    # filesystem (its Git cache included). For local experiments only: unsafe on a shared cluster.
    allow_local_repositories: bool = False
    # DRIFTGUARD_REUSE_PORT: replicas that share one host network (host-network pods on one node)
    # share the HTTP port (SO_REUSEPORT); probes may then be answered by either.
    reuse_port: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        return cls(
            namespace=e.get("DRIFTGUARD_NAMESPACE", cls.namespace),
            kubeconfig=e.get("KUBECONFIG", ""),
            bind=e.get("DRIFTGUARD_CONTROLLER_BIND", cls.bind),
            workers=int(e.get("DRIFTGUARD_CONTROLLER_WORKERS", cls.workers)),
            poll_seconds=float(e.get("DRIFTGUARD_POLL_SECONDS", cls.poll_seconds)),
            cache_dir=e.get("DRIFTGUARD_GIT_CACHE", cls.cache_dir),
            bin_dir=e.get("DRIFTGUARD_BIN_DIR", cls.bin_dir),
            webhook_secret=e.get("DRIFTGUARD_WEBHOOK_SECRET", ""),
            max_prune_share=float(e.get("DRIFTGUARD_MAX_PRUNE_SHARE", cls.max_prune_share)),
            leader_election=flag(e, "DRIFTGUARD_LEADER_ELECTION", default=True),
            identity=e.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}",
            allow_local_repositories=flag(e, "DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES"),
            reuse_port=flag(e, "DRIFTGUARD_REUSE_PORT"),
        )

    def validate(self) -> list[str]:
        problems = []
        if self.workers < 1:
            problems.append(f"DRIFTGUARD_CONTROLLER_WORKERS must be at least 1, not {self.workers}")
        if self.poll_seconds < 1:
            problems.append(f"DRIFTGUARD_POLL_SECONDS must be at least 1, not {self.poll_seconds}")
        if not 0 < self.max_prune_share <= 1:
            problems.append(f"DRIFTGUARD_MAX_PRUNE_SHARE must be in (0, 1], not {self.max_prune_share}")
        host, _, port = self.bind.rpartition(":")
        if not host or not port.isdigit():
            problems.append(f"DRIFTGUARD_CONTROLLER_BIND must be host:port, not {self.bind!r}")
        if not Path(self.bin_dir, "kubectl").exists():
            problems.append(f"no kubectl in DRIFTGUARD_BIN_DIR={self.bin_dir} (Kustomize needs it)")
        return problems
