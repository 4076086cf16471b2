"""The extension's settings, from the environment, with documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    namespace: str = "driftguard-system"  # DRIFTGUARD_NAMESPACE: install namespace (storage, cert Secret)
    bind: str = "0.0.0.0:8443"  # DRIFTGUARD_BIND: host:port to serve HTTPS on
    service: str = "driftguard-extension"  # DRIFTGUARD_SERVICE: the Service in front (cert SANs)
    tls_secret: str = "driftguard-extension-tls"  # noqa: S105 (a Secret's name)
    # DRIFTGUARD_TLS_SECRET: CA and serving cert
    api_service: str = "v1alpha1.gitops.driftguard.io"  # the APIService whose caBundle we write
    # The Validating and Mutating WebhookConfigurations of the drift guard, whose caBundle we write.
    webhook_configuration: str = "driftguard-guard"
    # DRIFTGUARD_CONTROLLER_USERNAME: the controller's identity, which the guard always lets
    # through. Keep the webhooks' matchConditions (manifests/base/guard-webhooks.yaml) in step.
    controller_username: str = "system:serviceaccount:driftguard-system:driftguard-controller"
    cert_dir: str = "/tmp/driftguard-extension"  # noqa: S108 (an emptyDir in the pod)
    # DRIFTGUARD_CERT_DIR: where gunicorn reads the certs
    workers: int = 1  # DRIFTGUARD_WORKERS: one process shares one index and one review cache
    threads: int = 64  # DRIFTGUARD_THREADS: each open watch holds one
    refresh_seconds: int = 300  # DRIFTGUARD_REFRESH_SECONDS: how often TLS files are re-checked
    kubeconfig: str = field(default="")  # KUBECONFIG; empty: in-cluster config
    # DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES: accept file:// sources, which the controller reads from
    # its own filesystem (its Git cache included). For local experiments only: unsafe when shared.
    allow_local_repositories: bool = False
    # DRIFTGUARD_REUSE_PORT: replicas that share one host network (host-network pods on one node)
    # share the port (SO_REUSEPORT), the kernel spreading connections over them.
    reuse_port: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        settings = cls(
            namespace=env.get("DRIFTGUARD_NAMESPACE", cls.namespace),
            bind=env.get("DRIFTGUARD_BIND", cls.bind),
            service=env.get("DRIFTGUARD_SERVICE", cls.service),
            tls_secret=env.get("DRIFTGUARD_TLS_SECRET", cls.tls_secret),
            cert_dir=env.get("DRIFTGUARD_CERT_DIR", cls.cert_dir),
            workers=int(env.get("DRIFTGUARD_WORKERS", cls.workers)),
            threads=int(env.get("DRIFTGUARD_THREADS", cls.threads)),
            refresh_seconds=int(env.get("DRIFTGUARD_REFRESH_SECONDS", cls.refresh_seconds)),
            controller_username=env.get("DRIFTGUARD_CONTROLLER_USERNAME", cls.controller_username),
            kubeconfig=env.get("KUBECONFIG", ""),
            allow_local_repositories=flag(env, "DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES"),
            reuse_port=flag(env, "DRIFTGUARD_REUSE_PORT"),
        )
        problems = settings.validate()
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))
        return settings

    def validate(self) -> list[str]:
        problems = []
        if ":" not in self.bind:
            problems.append(f"DRIFTGUARD_BIND {self.bind!r} must be host:port")
        if self.workers < 1:
            problems.append("DRIFTGUARD_WORKERS must be at least 1")
        if self.refresh_seconds < 1:
            problems.append("DRIFTGUARD_REFRESH_SECONDS must be at least 1")
        if not self.controller_username:
            problems.append("DRIFTGUARD_CONTROLLER_USERNAME must not be empty")
        if self.threads < 4:
            problems.append("DRIFTGUARD_THREADS must be at least 4 (each open watch holds a thread)")
        return problems


def flag(env: dict[str, str], name: str, default: bool = False) -> bool:
    """A switch: true or false (any case), unset or empty for the default; anything else is an
    error that names the variable, never silently the default."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise ValueError(f"{name} must be true or false, not {env[name]!r}")
    return value == "true"
