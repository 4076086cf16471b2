"""Health of live Kubernetes objects: Healthy, Progressing, Degraded, Suspended, Missing or Unknown.

Pure: each check reads a live object as the plain dict the API server returns and answers with a
HealthStatus whose message is written for humans. The rules follow argoproj/gitops-engine pkg/health
(and Argo CD's built-in Lua check for CronJob), so an Application reads the same here as in Argo CD;
where a check departs from Argo, its comment says why.

This module must never import kubernetes, git or flask, nor do any I/O: the controller fetches the
objects, this module only decides.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


class Status(enum.StrEnum):
    Healthy = "Healthy"
    Progressing = "Progressing"
    Degraded = "Degraded"
    Suspended = "Suspended"
    Missing = "Missing"
    Unknown = "Unknown"


@dataclass(frozen=True)
class HealthStatus:
    status: Status
    message: str = ""


# Best to worst, as gitops-engine's healthOrder. Unknown is worst: a check that could not read the
# object must not let the Application look healthier than it may be.
ORDER: tuple[Status, ...] = (
    Status.Healthy,
    Status.Suspended,
    Status.Progressing,
    Status.Missing,
    Status.Degraded,
    Status.Unknown,
)
_RANK = {status: rank for rank, status in enumerate(ORDER)}

Object = dict[str, Any]
Check = Callable[[Object], HealthStatus]


def worst(statuses: Iterable[HealthStatus | None]) -> HealthStatus:
    """An Application's health: the worst of its resources' (None entries have no health check).

    Like Argo CD, the result starts as Healthy with no message and is replaced only by a strictly worse
    status, so all-healthy (or empty) gives ``HealthStatus(Healthy, "")`` and on a tie the first wins.
    """
    result = HealthStatus(Status.Healthy)
    for health in statuses:
        if health is not None and _RANK[health.status] > _RANK[result.status]:
            result = health
    return result


def assess(obj: Object | None) -> HealthStatus | None:
    """The health of one live object; None when its kind has no health check (it then does not count).

    ``None`` means the object does not exist in the cluster (Missing). An object being deleted is
    Progressing whatever its kind, as in gitops-engine. A check that trips over a malformed object
    answers Unknown rather than raising, so one odd object cannot stop a reconcile.
    """
    if obj is None:
        return HealthStatus(Status.Missing, "the object does not exist")
    metadata = obj.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        finalizers = metadata.get("finalizers") or []
        waiting = f" (waiting for finalizers: {', '.join(map(str, finalizers))})" if finalizers else ""
        return HealthStatus(Status.Progressing, f"Pending deletion{waiting}")
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    check = _CHECKS.get((group, str(obj.get("kind") or "")))
    if check is None:
        return None
    try:
        return check(obj)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return HealthStatus(Status.Unknown, f"Cannot assess the health of {obj.get('kind')}: {exc}")


# --- reading plain dicts ---------------------------------------------------------------------------


def _spec(obj: Object) -> Object:
    spec: Object = obj.get("spec") or {}
    return spec


def _status(obj: Object) -> Object:
    status: Object = obj.get("status") or {}
    return status


def _name(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _int(mapping: Object, key: str, default: int = 0) -> int:
    value = mapping.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} is {value!r}, not an integer")
    return value


def _condition(status: Object, kind: str, value: str | None = None) -> Object | None:
    """The status condition of that type; with value, only when its status is that value."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind and value in (None, condition.get("status")):
            found: Object = condition
            return found
    return None


def _generation_observed(obj: Object) -> bool:
    generation = _int(obj.get("metadata") or {}, "generation")
    return generation <= _int(_status(obj), "observedGeneration")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- apps ----------------------------------------------------------------------------------------


def _deployment(obj: Object) -> HealthStatus:
    spec, status = _spec(obj), _status(obj)
    if spec.get("paused"):
        return HealthStatus(Status.Suspended, "Deployment is paused")
    # The same steps and wording as `kubectl rollout status`.
    if not _generation_observed(obj):
        return HealthStatus(
            Status.Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        )
    progressing = _condition(status, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return HealthStatus(Status.Degraded, f'Deployment "{_name(obj)}" exceeded its progress deadline')
    # The API server defaults spec.replicas to 1; a dict built by hand may leave it out.
    replicas = _int(spec, "replicas", 1)
    current, updated = _int(status, "replicas"), _int(status, "updatedReplicas")
    available = _int(status, "availableReplicas")
    if updated < replicas:
        return HealthStatus(
            Status.Progressing,
            f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated...",
        )
    if current > updated:
        return HealthStatus(
            Status.Progressing,
            f"Waiting for rollout to finish: {current - updated} old replicas are pending termination...",
        )
    if available < updated:
        return HealthStatus(
            Status.Progressing,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    return HealthStatus(Status.Healthy)


def _statefulset(obj: Object) -> HealthStatus:
    spec, status = _spec(obj), _status(obj)
    if _int(status, "observedGeneration") == 0 or not _generation_observed(obj):
        return HealthStatus(Status.Progressing, "Waiting for statefulset spec update to be observed...")
    replicas = _int(spec, "replicas", 1)
    ready, updated = _int(status, "readyReplicas"), _int(status, "updatedReplicas")
    if ready < replicas:
        return HealthStatus(
            Status.Progressing, f"Waiting for {_plural(replicas - ready, 'pod')} to be ready..."
        )
    strategy = spec.get("updateStrategy") or {}
    strategy_type = strategy.get("type") or "RollingUpdate"
    if strategy_type == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        partition = _int(strategy["rollingUpdate"], "partition")
        # kubectl says "partitioned" even when the partition is the default 0; we only say it when
        # there is one, since that is what a reader will take it to mean.
        what = "partitioned roll out" if partition else "roll out"
        if updated < replicas - partition:
            return HealthStatus(
                Status.Progressing,
                f"Waiting for {what} to finish: {updated} out of {replicas - partition} new pods "
                "have been updated...",
            )
        return HealthStatus(
            Status.Healthy, f"{what.capitalize()} complete: {updated} new pods have been updated"
        )
    if strategy_type == "OnDelete":
        return HealthStatus(Status.Healthy, f"StatefulSet has {ready} ready pods ({updated} updated)")
    current_revision, update_revision = status.get("currentRevision"), status.get("updateRevision")
    if update_revision != current_revision:
        return HealthStatus(
            Status.Progressing,
            f"Waiting for statefulset rolling update to complete {updated} pods "
            f"at revision {update_revision}...",
        )
    return HealthStatus(
        Status.Healthy,
        f"StatefulSet rolling update complete {_int(status, 'currentReplicas')} pods "
        f"at revision {current_revision}",
    )


def _daemonset(obj: Object) -> HealthStatus:
    spec, status = _spec(obj), _status(obj)
    if not _generation_observed(obj):
        return HealthStatus(
            Status.Progressing,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        )
    desired, updated = _int(status, "desiredNumberScheduled"), _int(status, "updatedNumberScheduled")
    available = _int(status, "numberAvailable")
    # With OnDelete, old pods stay until someone deletes them: being behind is the intended state.
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return HealthStatus(Status.Healthy, f"{updated} out of {desired} new pods have been updated")
    if updated < desired:
        return HealthStatus(
            Status.Progressing,
            f'Waiting for daemon set "{_name(obj)}" rollout to finish: '
            f"{updated} out of {desired} new pods have been updated...",
        )
    if available < desired:
        return HealthStatus(
            Status.Progressing,
            f'Waiting for daemon set "{_name(obj)}" rollout to finish: '
            f"{available} of {desired} updated pods are available...",
        )
    return HealthStatus(Status.Healthy)


def _replicaset(obj: Object) -> HealthStatus:
    spec, status = _spec(obj), _status(obj)
    if not _generation_observed(obj):
        return HealthStatus(
            Status.Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        )
    if (failure := _condition(status, "ReplicaFailure", "True")) is not None:
        return HealthStatus(Status.Degraded, str(failure.get("message") or failure.get("reason") or ""))
    replicas, available = _int(spec, "replicas", 1), _int(status, "availableReplicas")
    if available < replicas:
        return HealthStatus(
            Status.Progressing,
            f"Waiting for rollout to finish: {available} out of {replicas} new replicas are available...",
        )
    return HealthStatus(Status.Healthy)


# --- core ----------------------------------------------------------------------------------------


def _is_stuck(reason: str) -> bool:
    # CrashLoopBackOff, ImagePullBackOff, ErrImagePull, CreateContainerConfigError, RunContainerError...
    # but not ContainerCreating or PodInitializing, which are on their way.
    return reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")


def _container_failure(container: Object) -> str:
    terminated = (container.get("state") or {}).get("terminated") or {}
    if terminated.get("message"):
        return str(terminated["message"])
    if terminated.get("reason") == "OOMKilled":
        return f'container "{container.get("name")}" was OOMKilled'
    if _int(terminated, "exitCode"):
        return f'container "{container.get("name")}" failed with exit code {terminated["exitCode"]}'
    return ""


def _pod(obj: Object) -> HealthStatus:
    spec, status = _spec(obj), _status(obj)
    restart_policy = spec.get("restartPolicy") or "Always"
    init_containers = list(status.get("initContainerStatuses") or [])
    containers = list(status.get("containerStatuses") or [])
    pod_message = str(status.get("message") or "")

    # Only for long-running pods: a run-to-completion pod (a sync hook, typically) that cannot pull its
    # image may still be retried, and calling it Degraded would fail the hook too early (gitops-engine).
    # Unlike gitops-engine we look at init containers too: a crash-looping init container holds the
    # pod in Pending for ever.
    if restart_policy == "Always":
        stuck = []
        for container in init_containers + containers:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if _is_stuck(reason):
                detail = f": {waiting['message']}" if waiting.get("message") else ""
                stuck.append(f"{container.get('name')}: {reason}{detail}")
        if stuck:
            return HealthStatus(Status.Degraded, "; ".join(stuck))

    phase = status.get("phase")
    if phase == "Pending":
        scheduled = _condition(status, "PodScheduled", "False")
        if not pod_message and scheduled is not None:
            pod_message = f"{scheduled.get('reason')}: {scheduled.get('message')}"
        if not pod_message:
            waiting = [
                f"{c.get('name')} ({c['state']['waiting'].get('reason')})"
                for c in init_containers + containers
                if (c.get("state") or {}).get("waiting")
            ]
            pod_message = f"Waiting for containers: {', '.join(waiting)}" if waiting else "Pod is pending"
        return HealthStatus(Status.Progressing, pod_message)
    if phase == "Succeeded":
        return HealthStatus(Status.Healthy, pod_message)
    if phase == "Failed":
        if pod_message:
            return HealthStatus(Status.Degraded, pod_message)
        for container in init_containers + containers:
            if failure := _container_failure(container):
                return HealthStatus(Status.Degraded, failure)
        return HealthStatus(Status.Degraded, "Pod failed")
    if phase == "Running":
        if restart_policy != "Always":
            # A pod that is meant to finish is on its way until it does.
            return HealthStatus(
                Status.Progressing,
                pod_message or f"Waiting for the pod to finish (restartPolicy {restart_policy})",
            )
        if _condition(status, "Ready", "True") is not None:
            return HealthStatus(Status.Healthy, pod_message)
        # Not ready after a container has already died once: it is not coming up by itself.
        for container in containers:
            terminated = (container.get("lastState") or {}).get("terminated")
            if terminated and not container.get("ready"):
                how = terminated.get("reason") or f"exit code {terminated.get('exitCode')}"
                return HealthStatus(
                    Status.Degraded,
                    pod_message
                    or f'container "{container.get("name")}" is not ready; it last terminated with {how}',
                )
        not_ready = [str(c.get("name")) for c in containers if not c.get("ready")]
        waiting_for = f": {', '.join(not_ready)}" if not_ready else ""
        return HealthStatus(
            Status.Progressing, pod_message or f"Waiting for containers to be ready{waiting_for}"
        )
    return HealthStatus(Status.Unknown, pod_message or f"Pod phase is {phase or 'not reported'}")


def _service(obj: Object) -> HealthStatus:
    addresses = (_status(obj).get("loadBalancer") or {}).get("ingress")
    if _spec(obj).get("type") == "LoadBalancer" and not addresses:
        return HealthStatus(Status.Progressing, "Waiting for the load balancer to be assigned an address")
    return HealthStatus(Status.Healthy)


def _pvc(obj: Object) -> HealthStatus:
    phase = _status(obj).get("phase")
    if phase == "Bound":
        return HealthStatus(Status.Healthy)
    if phase == "Pending":
        return HealthStatus(Status.Progressing, "Waiting for the claim to be bound to a volume")
    if phase == "Lost":
        return HealthStatus(Status.Degraded, "The claim lost its volume: the bound PersistentVolume is gone")
    return HealthStatus(Status.Unknown, f"Claim phase is {phase or 'not reported'}")


# --- networking.k8s.io ---------------------------------------------------------------------------


def _ingress(obj: Object) -> HealthStatus:
    # As in Argo CD: an Ingress is Progressing until a controller publishes its address, so on a cluster
    # with no ingress controller every Ingress stays Progressing.
    if (_status(obj).get("loadBalancer") or {}).get("ingress"):
        return HealthStatus(Status.Healthy)
    return HealthStatus(Status.Progressing, "Waiting for an ingress controller to publish an address")


# --- batch ---------------------------------------------------------------------------------------


def _job(obj: Object) -> HealthStatus:
    status = _status(obj)
    if (failed := _condition(status, "Failed", "True")) is not None:
        return HealthStatus(
            Status.Degraded, str(failed.get("message") or failed.get("reason") or "Job failed")
        )
    if (complete := _condition(status, "Complete", "True")) is not None:
        return HealthStatus(Status.Healthy, str(complete.get("message") or ""))
    # gitops-engine counts any Suspended condition as finished; a False one means the job was resumed
    # and runs again, so only a True one is Suspended here.
    if (suspended := _condition(status, "Suspended", "True")) is not None:
        return HealthStatus(Status.Suspended, str(suspended.get("message") or "Job is suspended"))
    return HealthStatus(
        Status.Progressing,
        f"Waiting for the job to complete: {_int(status, 'active')} active, "
        f"{_int(status, 'succeeded')} succeeded, {_int(status, 'failed')} failed",
    )


def _time(value: Any) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(value))


def _cronjob(obj: Object) -> HealthStatus:
    # Argo CD's resource_customizations/batch/CronJob/health.lua: gitops-engine itself has no CronJob check.
    if _spec(obj).get("suspend"):
        return HealthStatus(Status.Suspended, "CronJob is suspended")
    status = obj.get("status")
    if status is None:
        return HealthStatus(Status.Progressing, "Waiting for CronJob")
    active = status.get("active") or []
    if active:
        return HealthStatus(Status.Progressing, f"Waiting for {_plural(len(active), 'job')} to complete")
    scheduled, succeeded = status.get("lastScheduleTime"), status.get("lastSuccessfulTime")
    if not scheduled:
        return HealthStatus(Status.Healthy, "CronJob has not run yet")
    # A missed schedule cannot be seen in the status, so a CronJob that never fires stays Healthy.
    if not succeeded or _time(succeeded) < _time(scheduled):
        return HealthStatus(
            Status.Degraded, f"The job scheduled at {scheduled} has not completed successfully"
        )
    return HealthStatus(Status.Healthy, f"The job scheduled at {scheduled} completed at {succeeded}")


# --- autoscaling ---------------------------------------------------------------------------------


def _hpa(obj: Object) -> HealthStatus:
    conditions = _status(obj).get("conditions")
    if conditions is None:
        # autoscaling/v1 has no status.conditions; the controller keeps them in an annotation.
        annotation = ((obj.get("metadata") or {}).get("annotations") or {}).get(
            "autoscaling.alpha.kubernetes.io/conditions"
        )
        conditions = json.loads(annotation) if annotation else []
    # gitops-engine lists four failure reasons (FailedGetScale, FailedUpdateScale, FailedGetResourceMetric,
    # InvalidSelector); those are exactly when AbleToScale or ScalingActive turn False, save that
    # ScalingActive=False/ScalingDisabled is a target scaled to zero on purpose. Testing the status
    # instead of the reasons also catches the failures gitops-engine misses, like FailedGetPodsMetric.
    for condition in conditions:
        kind, state, reason = condition.get("type"), condition.get("status"), condition.get("reason")
        if state == "False" and (
            kind == "AbleToScale" or (kind == "ScalingActive" and reason != "ScalingDisabled")
        ):
            return HealthStatus(Status.Degraded, str(condition.get("message") or reason or ""))
    for condition in conditions:
        if condition.get("type") in ("AbleToScale", "ScalingLimited") and condition.get("status") == "True":
            return HealthStatus(Status.Healthy, str(condition.get("message") or ""))
    return HealthStatus(Status.Progressing, "Waiting to autoscale")


# --- apiregistration.k8s.io, apiextensions.k8s.io ------------------------------------------------


def _apiservice(obj: Object) -> HealthStatus:
    available = _condition(_status(obj), "Available")
    if available is None:
        return HealthStatus(Status.Progressing, "Waiting for the aggregator to check the API service")
    reason, message = available.get("reason") or "", available.get("message") or ""
    text = f"{reason}: {message}" if reason and message else str(reason or message)
    if available.get("status") == "True":
        return HealthStatus(Status.Healthy, text)
    # gitops-engine says Progressing here. An unavailable APIService breaks every request to its group
    # (and kubectl discovery for all groups), so it is Degraded with the aggregator's reason.
    if available.get("status") == "False":
        return HealthStatus(Status.Degraded, text)
    return HealthStatus(Status.Progressing, text or "Waiting for the aggregator to check the API service")


def _crd(obj: Object) -> HealthStatus:
    # A Terminating CRD always has a deletionTimestamp, so assess() has already called it Progressing.
    status = _status(obj)
    if not status.get("conditions"):
        return HealthStatus(Status.Progressing, "Waiting for the API server to accept the CRD")
    if (names := _condition(status, "NamesAccepted", "False")) is not None:
        return HealthStatus(Status.Degraded, f"CRD names have not been accepted: {names.get('message')}")
    if (structural := _condition(status, "NonStructuralSchema", "True")) is not None:
        return HealthStatus(Status.Degraded, f"Schema violations found: {structural.get('message')}")
    established = _condition(status, "Established")
    if established is not None and established.get("status") == "True":
        return HealthStatus(Status.Healthy)
    # gitops-engine says Degraded; a CRD is Established a moment after its names are accepted, so a
    # CRD that is merely not established yet is on its way.
    detail = f": {established.get('message')}" if established and established.get("message") else ""
    return HealthStatus(Status.Progressing, f"CRD is not established yet{detail}")


# (group, kind) -> check. Any version of the group is read the same way.
_CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
