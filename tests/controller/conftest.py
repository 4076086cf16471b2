"""Fixtures the controller's cluster tests share: the Applications of the test's namespace and a
fresh repository on the loopback Git server."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from tests.support.apps import Apps
from tests.support.cluster import Cluster
from tests.support.gitserver import GitServer


@pytest.fixture
def apps(driftguard: Cluster, api_client: client.ApiClient, namespace: str) -> Apps:
    return Apps(api_client, namespace)


@pytest.fixture
def repo(git_server: GitServer) -> str:
    name = f"r{uuid.uuid4().hex[:8]}"
    git_server.create_repo(name)
    return name
