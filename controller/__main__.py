"""``python -m controller``: the driftguard controller."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from controller.git import RepoCache
from controller.kube import Kube, load_client
from controller.leader import LeaderElector
from controller.manager import Manager, serve
from controller.metrics import Metrics
from controller.reconcile import Options, Reconciler
from controller.settings import Settings

log = logging.getLogger("controller")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a setting that does not parse: the message names it
        print(f"driftguard-controller: {exc}", file=sys.stderr)
        return 2
    problems = settings.validate()
    if problems:
        for problem in problems:
            print(f"driftguard-controller: {problem}", file=sys.stderr)
        return 2
    kube = Kube(load_client(settings.kubeconfig))
    options = Options(
        namespace=settings.namespace, bin_dir=Path(settings.bin_dir), poll_seconds=settings.poll_seconds,
        max_prune_share=settings.max_prune_share, allow_local_repositories=settings.allow_local_repositories,
    )  # fmt: skip
    repos = RepoCache(Path(settings.cache_dir), allow_local=settings.allow_local_repositories)
    reconciler = Reconciler(kube, repos, options, Metrics())
    manager = Manager(
        kube, reconciler, workers=settings.workers, poll_seconds=settings.poll_seconds,
        webhook_secret=settings.webhook_secret,
    )  # fmt: skip
    elector = LeaderElector(kube, settings.namespace, settings.identity)
    leading = threading.Event()

    def ready() -> list[str]:
        # A standby is ready (a rollout must finish while the old leader holds the Lease).
        if leading.is_set() and not manager.apps_synced.is_set():
            return ["Applications not listed yet"]
        return []

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        manager.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = serve(manager, settings.bind, ready, reuse_port=settings.reuse_port)
    log.info("serving /metrics, /healthz, /readyz and /api/webhook on http://%s", settings.bind)
    if settings.leader_election and not elector.acquire(manager.stop):
        return 0
    leading.set()
    manager.start()
    while not manager.stop.wait(1.0):
        if elector.lost.is_set():
            server.shutdown()
            return 1
    if settings.leader_election:
        elector.release()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
