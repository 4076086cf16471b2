"""Applications in cluster tests: create them through the aggregated API, read them, wait on them,
and poke the controller's Git webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.request
from collections.abc import Callable
from typing import Any

from kubernetes import client

from tests.support.cluster import TEST_PROJECT
from tests.support.waiting import wait_for

GROUP, VERSION, PLURAL = "gitops.driftguard.io", "v1alpha1", "applications"
CONTROLLER_URL = f"http://127.0.0.1:{os.environ.get('CONTROLLER_PORT', '8081')}"
WEBHOOK_SECRET = os.environ.get("DRIFTGUARD_WEBHOOK_SECRET", "local-webhook-secret")


class Apps:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create(self, name: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Application",
            "metadata": {"name": name, "namespace": self.namespace, **spec.pop("metadata", {})},
            "spec": {
                "source": source,
                "destination": {"namespace": self.namespace},
                "project": TEST_PROJECT,
                **spec,
            },
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        app: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return app

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch
        )
        return patched

    def delete(self, name: str) -> None:
        """Delete the Application and wait until it is gone (its finalizer, if any, done)."""
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

        def gone() -> bool:
            try:
                self.get(name)
            except client.ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False

        wait_for(gone, f"Application {self.namespace}/{name} to be deleted")

    def operate(self, name: str, sub: str, body: dict[str, Any]) -> dict[str, Any]:
        api = self.custom.api_client
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}/{name}/{sub}"
        serialized = api.param_serialize(
            "POST",
            path,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*serialized).response
        assert response.status in (200, 201), response.data
        result: dict[str, Any] = json.loads(response.data)
        return result

    def wait(
        self, name: str, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            app = self.get(name)
            return app if check(app) else None

        try:
            return wait_for(probe, f"Application {self.namespace}/{name}: {what}", timeout=timeout)
        except AssertionError as exc:
            status = json.dumps(self.get(name).get("status"), indent=1)[-3000:]
            raise AssertionError(f"{exc}\nlast status: {status}") from None

    def wait_synced(self, name: str, revision: str = "", timeout: float = 90) -> dict[str, Any]:
        def synced(app: dict[str, Any]) -> bool:
            status = app.get("status") or {}
            sync = status.get("sync") or {}
            return (
                sync.get("status") == "Synced"
                and (not revision or sync.get("revision") == revision)
                and (status.get("health") or {}).get("status") == "Healthy"
            )

        return self.wait(name, f"Synced/Healthy{' at ' + revision[:7] if revision else ''}", synced, timeout)


def condition(app: dict[str, Any], type_: str = "Ready") -> dict[str, Any]:
    return next((c for c in (app.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def push_webhook(
    repo_url: str, ref: str = "refs/heads/main", secret: str = WEBHOOK_SECRET
) -> tuple[int, str]:
    """A GitHub push event for ``repo_url``, signed, to the controller's receiver."""
    body = json.dumps(
        {"ref": ref, "after": "0" * 40, "repository": {"clone_url": repo_url, "html_url": repo_url}}
    )
    signature = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310 (http on loopback)
        f"{CONTROLLER_URL}/api/webhook",
        data=body.encode(),
        method="POST",
        headers={
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": signature,
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        exc.close()
        return exc.code, text
