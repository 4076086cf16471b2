"""Health assessment of live objects, from YAML fixtures in testdata/health/<kind>-<state>.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.health import HealthStatus, Status, assess, worst

TESTDATA = Path(__file__).parent / "testdata" / "health"

# fixture -> (expected status, or None for "no health check"; expected message; the rule, as a sentence)
CASES: dict[str, tuple[Status | None, str, str]] = {
    # apps/Deployment
    "deployment-healthy": (
        Status.Healthy, "",
        "a deployment with every replica updated and available is healthy",
    ),
    "deployment-progressing-updating": (
        Status.Progressing, "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...",
        "a deployment still creating new replicas is progressing",
    ),
    "deployment-progressing-old-replicas": (
        Status.Progressing, "Waiting for rollout to finish: 1 old replicas are pending termination...",
        "a deployment with old replicas still running is progressing",
    ),
    "deployment-progressing-unavailable": (
        Status.Progressing, "Waiting for rollout to finish: 1 of 3 updated replicas are available...",
        "a deployment whose updated replicas are not yet available is progressing",
    ),
    "deployment-progressing-generation": (
        Status.Progressing,
        "Waiting for rollout to finish: observed deployment generation less than desired generation",
        "a deployment whose spec change the controller has not seen yet is progressing",
    ),
    "deployment-default-replicas": (
        Status.Progressing, "Waiting for rollout to finish: 0 out of 1 new replicas have been updated...",
        "a deployment without spec.replicas wants one replica",
    ),
    "deployment-suspended": (
        Status.Suspended, "Deployment is paused",
        "a paused deployment is suspended",
    ),
    "deployment-degraded": (
        Status.Degraded, 'Deployment "web" exceeded its progress deadline',
        "a deployment past its progress deadline is degraded",
    ),
    "deployment-deleting": (
        Status.Progressing, "Pending deletion (waiting for finalizers: foregroundDeletion)",
        "an object being deleted is progressing and names the finalizers it waits for",
    ),
    "deployment-malformed": (
        Status.Unknown, "Cannot assess the health of Deployment: replicas is 'three', not an integer",
        "a malformed object is unknown instead of crashing the reconcile",
    ),
    # apps/StatefulSet
    "statefulset-healthy": (
        Status.Healthy, "Roll out complete: 3 new pods have been updated",
        "a statefulset with every pod ready and updated is healthy",
    ),
    "statefulset-progressing": (
        Status.Progressing, "Waiting for 2 pods to be ready...",
        "a statefulset with pods not ready is progressing",
    ),
    "statefulset-progressing-generation": (
        Status.Progressing, "Waiting for statefulset spec update to be observed...",
        "a statefulset whose spec change the controller has not seen yet is progressing",
    ),
    "statefulset-progressing-partitioned": (
        Status.Progressing,
        "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
        "a statefulset short of its partition is progressing",
    ),
    "statefulset-progressing-revision": (
        Status.Progressing,
        "Waiting for statefulset rolling update to complete 1 pods at revision db-58c7f9d6b4...",
        "a statefulset with pods at an old revision is progressing",
    ),
    "statefulset-ondelete": (
        Status.Healthy, "StatefulSet has 3 ready pods (1 updated)",
        "an on-delete statefulset with old pods left is healthy",
    ),
    # apps/DaemonSet
    "daemonset-healthy": (
        Status.Healthy, "",
        "a daemonset updated and available on every node is healthy",
    ),
    "daemonset-progressing": (
        Status.Progressing,
        'Waiting for daemon set "node-exporter" rollout to finish: 1 out of 3 new pods have been updated...',
        "a daemonset still updating its pods is progressing",
    ),
    "daemonset-progressing-unavailable": (
        Status.Progressing,
        'Waiting for daemon set "node-exporter" rollout to finish: 2 of 3 updated pods are available...',
        "a daemonset with an updated pod not yet available is progressing",
    ),
    "daemonset-ondelete": (
        Status.Healthy, "1 out of 3 new pods have been updated",
        "an on-delete daemonset with old pods left is healthy",
    ),
    # apps/ReplicaSet
    "replicaset-healthy": (
        Status.Healthy, "",
        "a replicaset with every replica available is healthy",
    ),
    "replicaset-progressing": (
        Status.Progressing, "Waiting for rollout to finish: 1 out of 3 new replicas are available...",
        "a replicaset with replicas not yet available is progressing",
    ),
    "replicaset-degraded": (
        Status.Degraded,
        'pods "web-7d4b9c6f5d-x2k9p" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, '
        "used: requests.cpu=1, limited: requests.cpu=1",
        "a replicaset that cannot create pods is degraded with the reason",
    ),
    # v1/Pod
    "pod-healthy": (
        Status.Healthy, "",
        "a running pod that is ready is healthy",
    ),
    "pod-progressing-unschedulable": (
        Status.Progressing,
        "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.",
        "an unschedulable pod is progressing and says why it is not scheduled",
    ),
    "pod-progressing-creating": (
        Status.Progressing, "Waiting for containers: web (ContainerCreating)",
        "a pod whose containers are being created is progressing",
    ),
    "pod-degraded-crashloop": (
        Status.Degraded,
        "api: CrashLoopBackOff: back-off 5m0s restarting failed container=api "
        "pod=api-5b8c7d9f6-lp2wz_shop(1c0e7b52-4a8f-4f7c-9d4e-2a6b9f3c1d80)",
        "a crash-looping pod is degraded",
    ),
    "pod-degraded-imagepullbackoff": (
        Status.Degraded, 'web: ImagePullBackOff: Back-off pulling image "nginx:1.99-doesnotexist"',
        "a pod backing off an image pull is degraded",
    ),
    "pod-degraded-errimagepull": (
        Status.Degraded,
        'web: ErrImagePull: failed to pull and unpack image "registry.internal.example:5000/web:2.0": '
        "failed to resolve reference: dial tcp: lookup registry.internal.example: no such host",
        "a pod that failed to pull its image is degraded",
    ),
    "pod-degraded-init-crashloop": (
        Status.Degraded,
        "migrate: CrashLoopBackOff: back-off 1m20s restarting failed container=migrate "
        "pod=api-5b8c7d9f6-d7fgs_shop(5e2a9c1b-7d3f-4b6e-8a0c-1f4d7e9b2c63)",
        "a pod with a crash-looping init container is degraded",
    ),
    "pod-progressing-not-ready": (
        Status.Progressing, "Waiting for containers to be ready: web",
        "a running pod that is not ready yet is progressing and names the containers",
    ),
    "pod-degraded-restarted-not-ready": (
        Status.Degraded, 'container "api" is not ready; it last terminated with OOMKilled',
        "a running pod not ready after a container died is degraded",
    ),
    "pod-healthy-succeeded": (
        Status.Healthy, "",
        "a succeeded pod is healthy",
    ),
    "pod-degraded-evicted": (
        Status.Degraded,
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91240Ki. "
        "Container web was using 1843216Ki, request is 0, has larger consumption of memory. ",
        "a failed pod is degraded with the pod's own message",
    ),
    "pod-degraded-oomkilled": (
        Status.Degraded, 'container "report" was OOMKilled',
        "a failed pod whose container ran out of memory says so",
    ),
    "pod-degraded-exit-code": (
        Status.Degraded, 'container "migrate" failed with exit code 2',
        "a failed pod names the container and its exit code",
    ),
    "pod-progressing-restart-never": (
        Status.Progressing, "Waiting for the pod to finish (restartPolicy Never)",
        "a running pod that is meant to finish is progressing even when ready",
    ),
    "pod-progressing-hook-image-pull": (
        Status.Progressing, "Waiting for containers: check (ImagePullBackOff)",
        "a run-once pod backing off an image pull is still progressing, as hooks may retry",
    ),
    "pod-unknown": (
        Status.Unknown, "Node worker-2 which was running pod web-7d4b9c6f5d-8xq2l is unresponsive",
        "a pod on a lost node is unknown",
    ),
    # v1/Service
    "service-healthy-clusterip": (
        Status.Healthy, "",
        "a cluster IP service is healthy",
    ),
    "service-healthy-loadbalancer": (
        Status.Healthy, "",
        "a load balancer service with an address is healthy",
    ),
    "service-progressing-loadbalancer": (
        Status.Progressing, "Waiting for the load balancer to be assigned an address",
        "a load balancer service without an address is progressing",
    ),
    # v1/PersistentVolumeClaim
    "persistentvolumeclaim-healthy": (
        Status.Healthy, "",
        "a bound claim is healthy",
    ),
    "persistentvolumeclaim-progressing": (
        Status.Progressing, "Waiting for the claim to be bound to a volume",
        "a pending claim is progressing",
    ),
    "persistentvolumeclaim-degraded": (
        Status.Degraded, "The claim lost its volume: the bound PersistentVolume is gone",
        "a lost claim is degraded",
    ),
    # networking.k8s.io/Ingress
    "ingress-healthy": (
        Status.Healthy, "",
        "an ingress with a published address is healthy",
    ),
    "ingress-progressing": (
        Status.Progressing, "Waiting for an ingress controller to publish an address",
        "an ingress without an address is progressing, even with no ingress controller at all",
    ),
    # batch/Job
    "job-healthy": (
        Status.Healthy, "Reached expected number of succeeded pods",
        "a complete job is healthy",
    ),
    "job-progressing": (
        Status.Progressing, "Waiting for the job to complete: 1 active, 0 succeeded, 1 failed",
        "a running job is progressing and counts its pods",
    ),
    "job-degraded": (
        Status.Degraded, "Job has reached the specified backoff limit",
        "a failed job is degraded with the reason",
    ),
    "job-suspended": (
        Status.Suspended, "Job suspended",
        "a suspended job is suspended",
    ),
    "job-progressing-resumed": (
        Status.Progressing, "Waiting for the job to complete: 1 active, 0 succeeded, 0 failed",
        "a resumed job runs again and is progressing",
    ),
    # batch/CronJob
    "cronjob-healthy-never-run": (
        Status.Healthy, "CronJob has not run yet",
        "a cronjob that has not run yet is healthy",
    ),
    "cronjob-healthy": (
        Status.Healthy, "The job scheduled at 2024-05-03T03:00:00Z completed at 2024-05-03T03:01:09Z",
        "a cronjob whose last job succeeded is healthy",
    ),
    "cronjob-progressing": (
        Status.Progressing, "Waiting for 1 job to complete",
        "a cronjob with an active job is progressing",
    ),
    "cronjob-degraded": (
        Status.Degraded, "The job scheduled at 2024-05-04T03:00:00Z has not completed successfully",
        "a cronjob whose last job did not succeed is degraded",
    ),
    "cronjob-suspended": (
        Status.Suspended, "CronJob is suspended",
        "a suspended cronjob is suspended whatever its last run did",
    ),
    # autoscaling/HorizontalPodAutoscaler
    "horizontalpodautoscaler-healthy": (
        Status.Healthy, "recommended size matches current size",
        "an autoscaler able to scale on valid metrics is healthy",
    ),
    "horizontalpodautoscaler-healthy-scaling-disabled": (
        Status.Healthy, "the HPA controller was able to get the target's current scale",
        "an autoscaler whose target is scaled to zero on purpose is healthy",
    ),
    "horizontalpodautoscaler-degraded": (
        Status.Degraded,
        "the HPA was unable to compute the replica count: failed to get memory utilization: unable to get "
        "metrics for resource memory: unable to fetch metrics from resource metrics API: the server could "
        "not find the requested resource (get pods.metrics.k8s.io)",
        "an autoscaler that cannot read its metrics is degraded even when able to scale",
    ),
    "horizontalpodautoscaler-degraded-pods-metric": (
        Status.Degraded,
        "the HPA was unable to compute the replica count: unable to get metric queue_messages_per_pod: "
        "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) "
        "registered",
        "an autoscaler that cannot read a custom metric is degraded",
    ),
    "horizontalpodautoscaler-progressing": (
        Status.Progressing, "Waiting to autoscale",
        "an autoscaler with no conditions yet is progressing",
    ),
    "horizontalpodautoscaler-v1-healthy": (
        Status.Healthy, "recommended size matches current size",
        "an autoscaling/v1 autoscaler is read from its conditions annotation",
    ),
    # apiregistration.k8s.io/APIService
    "apiservice-healthy": (
        Status.Healthy, "Passed: all checks passed",
        "an available API service is healthy",
    ),
    "apiservice-degraded": (
        Status.Degraded,
        "FailedDiscoveryCheck: failing or missing response from https://10.96.37.112:443/apis/"
        'gitops.driftguard.io/v1alpha1: Get "https://10.96.37.112:443/apis/gitops.driftguard.io/v1alpha1": '
        "dial tcp 10.96.37.112:443: connect: connection refused",
        "an unavailable API service is degraded with the aggregator's reason",
    ),
    "apiservice-progressing": (
        Status.Progressing, "Waiting for the aggregator to check the API service",
        "an API service not checked yet is progressing",
    ),
    # apiextensions.k8s.io/CustomResourceDefinition
    "customresourcedefinition-healthy": (
        Status.Healthy, "",
        "an established CRD is healthy",
    ),
    "customresourcedefinition-degraded": (
        Status.Degraded, 'CRD names have not been accepted: "widgets" is already in use',
        "a CRD whose names clash is degraded",
    ),
    "customresourcedefinition-progressing": (
        Status.Progressing, "CRD is not established yet: the initial names have been accepted",
        "a CRD not established yet is progressing",
    ),
    "customresourcedefinition-deleting": (
        Status.Progressing,
        "Pending deletion (waiting for finalizers: customresourcecleanup.apiextensions.k8s.io)",
        "a terminating CRD is progressing while its instances are removed",
    ),
    # kinds without a health check
    "configmap-unchecked": (
        None, "",
        "a kind without a health check has no health",
    ),
}  # fmt: skip


def load(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((TESTDATA / f"{name}.yaml").read_text())
    return obj


@pytest.mark.parametrize(
    ("fixture", "status", "message"),
    [pytest.param(fixture, status, message, id=rule) for fixture, (status, message, rule) in CASES.items()],
)
def test_health_of_a_live_object(fixture: str, status: Status | None, message: str) -> None:
    health = assess(load(fixture))
    if status is None:
        assert health is None
    else:
        assert health == HealthStatus(status, message)


def test_every_fixture_has_an_expectation_and_every_expectation_a_fixture() -> None:
    assert sorted(path.stem for path in TESTDATA.glob("*.yaml")) == sorted(CASES)


def test_every_status_but_missing_comes_from_a_fixture() -> None:
    assert {status for status, _, _ in CASES.values()} == (set(Status) - {Status.Missing}) | {None}


def test_an_object_that_does_not_exist_is_missing() -> None:
    assert assess(None) == HealthStatus(Status.Missing, "the object does not exist")


def test_a_kind_is_matched_by_group_whatever_the_version() -> None:
    deployment = load("deployment-suspended")
    deployment["apiVersion"] = "apps/v1beta2"
    assert assess(deployment) == HealthStatus(Status.Suspended, "Deployment is paused")


def test_a_kind_of_another_group_has_no_health() -> None:
    lookalike = load("deployment-suspended")
    lookalike["apiVersion"] = "example.com/v1"
    assert assess(lookalike) is None


def test_a_custom_resource_being_deleted_is_progressing() -> None:
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "deletionTimestamp": "2024-05-04T08:00:00Z"},
    }
    assert assess(widget) == HealthStatus(Status.Progressing, "Pending deletion")


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (Status.Healthy, Status.Suspended),
        (Status.Suspended, Status.Progressing),
        (Status.Progressing, Status.Missing),
        (Status.Missing, Status.Degraded),
        (Status.Degraded, Status.Unknown),
    ],
)
def test_worst_follows_argo_cd_order(better: Status, worse: Status) -> None:
    low, high = HealthStatus(better, "better"), HealthStatus(worse, "worse")
    assert worst([low, high]) is high
    assert worst([high, low]) is high


def test_worst_of_nothing_is_healthy_without_a_message() -> None:
    assert worst([]) == HealthStatus(Status.Healthy, "")


def test_worst_ignores_resources_without_a_health_check() -> None:
    progressing = HealthStatus(Status.Progressing, "Waiting for 1 job to complete")
    assert worst([None, progressing, None]) is progressing
    assert worst([None, None]) == HealthStatus(Status.Healthy, "")


def test_worst_of_healthy_resources_carries_no_resource_message() -> None:
    assert worst([HealthStatus(Status.Healthy, "CRD is healthy")]) == HealthStatus(Status.Healthy, "")


def test_worst_keeps_the_first_of_equally_bad_resources() -> None:
    first, second = HealthStatus(Status.Degraded, "first"), HealthStatus(Status.Degraded, "second")
    assert worst([first, second]) is first


def test_an_application_is_as_healthy_as_its_worst_resource() -> None:
    names = (
        "deployment-healthy",
        "configmap-unchecked",
        "persistentvolumeclaim-progressing",
        "pod-degraded-crashloop",
    )
    health = worst(assess(load(name)) for name in names)
    assert health.status is Status.Degraded
    assert health.message.startswith("api: CrashLoopBackOff")
