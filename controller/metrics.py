"""The controller's Prometheus metrics, on its own registry so tests and replicas never share."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.syncs = Counter("driftguard_syncs", "Syncs by result.", ["result"], registry=r)
        self.reconcile = Histogram(
            "driftguard_reconcile_duration_seconds", "Time of one reconcile, sync included.",
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.compares = Counter(
            "driftguard_compares", "Comparisons of an Application's objects with Git: full, or skipped "
            "because nothing changed since the last one found them in sync.", ["mode"], registry=r,
        )  # fmt: skip
        self.drift = Counter("driftguard_drift_detections", "Drifted resources detected.", registry=r)
        self.restore = Histogram(
            "driftguard_drift_restore_seconds", "From a watch event showing drift to the restoring apply.",
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.git_fetch = Histogram(
            "driftguard_git_fetch_duration_seconds", "Time to fetch and resolve a revision.",
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
