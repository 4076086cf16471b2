"""The extension's namespace watch against the real control plane: it learns a namespace and its
deletion within moments, and the storage reads a namespace the watch does not know."""

from __future__ import annotations

import pytest
from kubernetes import client

from extension.kubehttp import KubeHTTP
from extension.namespaces import NamespacePhases
from extension.storage import Store
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def test_the_watch_knows_a_namespace_and_its_deletion(api_client: client.ApiClient, namespace: str) -> None:
    phases = NamespacePhases(KubeHTTP(api_client))
    phases.start()
    try:
        wait_for(lambda: phases.known(namespace) == "Active", f"the watch to know {namespace} as Active")
        core = client.CoreV1Api(api_client)
        fresh = f"{namespace}-late"[:63]
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=fresh)))
        wait_for(lambda: phases.known(fresh) == "Active", f"the watch to learn of {fresh}, created after it")
        core.delete_namespace(fresh)
        wait_for(lambda: phases.known(fresh) in ("Terminating", None), f"the watch to see {fresh} go")
    finally:
        phases.stop()


def test_a_namespace_the_watch_does_not_know_is_read(api_client: client.ApiClient, namespace: str) -> None:
    idle = NamespacePhases(KubeHTTP(api_client))  # never started: knows nothing
    store = Store(KubeHTTP(api_client), "driftguard-system", idle)
    assert store.namespace_phase(namespace) == "Active"
    assert store.namespace_phase("no-such-namespace-here") is None
