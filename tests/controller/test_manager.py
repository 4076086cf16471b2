"""The work queue, and leader election on a real Lease."""

from __future__ import annotations

import threading
import time

import pytest

from controller.kube import Kube, load_client
from controller.leader import LEASE_NAME, LeaderElector
from controller.manager import Queue, _wants_reconcile
from extension.api.tracking import AppKey
from tests.support.cluster import Cluster
from tests.support.waiting import wait_for

A, B = AppKey("ns", "a"), AppKey("ns", "b")


def test_a_key_is_handed_out_once_and_an_event_during_its_reconcile_queues_it_again() -> None:
    queue, stop = Queue(), threading.Event()
    queue.add(A)
    queue.add(A)
    assert queue.get(stop) == A and len(queue) == 0
    queue.add(A)  # arrives while A is being reconciled
    queue.add(B)
    assert queue.get(stop) == B
    queue.done(B)
    queue.done(A)
    assert queue.get(stop) == A


def test_an_earlier_due_time_wins_and_later_keys_wait() -> None:
    queue, stop = Queue(), threading.Event()
    queue.add(A, after=60)
    queue.add(B, after=0.05)
    queue.add(A, after=0.1)
    started = time.monotonic()
    assert [queue.get(stop), queue.get(stop)] == [B, A]
    assert time.monotonic() - started < 5


def test_status_writes_do_not_wake_the_controller_but_spec_and_operations_do() -> None:
    app = {"metadata": {"name": "a", "resourceVersion": "1", "generation": 1}, "spec": {"x": 1}}
    assert not _wants_reconcile(
        app, {**app, "metadata": {**app["metadata"], "resourceVersion": "2"}, "status": {}}
    )
    assert _wants_reconcile(app, {**app, "spec": {"x": 2}})
    assert _wants_reconcile(app, {**app, "operation": {"sync": {}}})


@pytest.mark.cluster
def test_only_one_replica_leads_and_a_released_lease_passes_at_once(cluster: Cluster, namespace: str) -> None:
    kube = Kube(load_client(str(cluster.kubeconfig)))
    first = LeaderElector(kube, namespace, "first", duration=15, renew=1.0)
    second = LeaderElector(kube, namespace, "second", duration=15, renew=1.0)
    stop_first, stop_second = threading.Event(), threading.Event()
    assert first.acquire(stop_first)
    second_leads = threading.Event()
    waiting = threading.Thread(target=lambda: second.acquire(stop_second) and second_leads.set(), daemon=True)
    waiting.start()
    try:
        # The first renews every second; the second keeps waiting while it does.
        assert not second_leads.wait(4), "two replicas led at once"
        lease = kube.request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE_NAME}"
        )
        assert lease["spec"]["holderIdentity"] == "first"
        stop_first.set()
        first.release()
        wait_for(second_leads.is_set, "the second replica to lead once the first released", timeout=10)
    finally:
        stop_first.set()
        stop_second.set()
        waiting.join(timeout=10)
