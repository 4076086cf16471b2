"""Wiring: the real kube client, store, authorizer and requestheader config behind the app.

``prepare`` runs once in gunicorn's master before it binds: it settles the serving certificate,
injects the caBundle and writes the files gunicorn's TLS needs. ``build_app`` runs in each worker.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from certs import files, serving
from extension.app import Deps, create_app
from extension.auth import Authorizer, RequestHeaderConfig
from extension.resources import Applications
from extension.settings import Settings
from extension.storage import Store

log = logging.getLogger(__name__)

AUTH_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")
REFRESH_SECONDS = 60


def api_client(settings: Settings) -> client.ApiClient:
    if settings.kubeconfig:
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=settings.kubeconfig
        )
        return api
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def read_requestheader(api: client.ApiClient) -> RequestHeaderConfig:
    cm = client.CoreV1Api(api).read_namespaced_config_map(AUTH_CONFIGMAP[1], AUTH_CONFIGMAP[0])
    return RequestHeaderConfig.from_configmap_data(cm.data or {})


def prepare(settings: Settings) -> dict[str, str]:
    """Certificates and TLS files; returns gunicorn's certfile, keyfile and ca_certs paths."""
    api = api_client(settings)
    secret = serving.ensure_serving_secret(api, settings.namespace, settings.tls_secret, settings.service)
    try:
        serving.inject_api_service_ca(api, settings.api_service, secret.ca_pem)
    except client.exceptions.ApiException as exc:
        log.warning("could not write the caBundle of APIService %s: %s", settings.api_service, exc.reason)
    directory = Path(settings.cert_dir)
    files.write_atomic(directory / "ca.crt", secret.ca_pem)
    files.write_atomic(directory / "tls.crt", secret.cert_pem)
    files.write_atomic(directory / "tls.key", secret.key_pem, 0o600)
    files.write_atomic(directory / "requestheader-ca.crt", read_requestheader(api).client_ca_pem.encode())
    return {
        "certfile": str(directory / "tls.crt"),
        "keyfile": str(directory / "tls.key"),
        "ca_certs": str(directory / "requestheader-ca.crt"),
    }


class RequestHeaderWatch:
    """The requestheader config, re-read every minute (kube-apiserver may rotate its CA)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.current: RequestHeaderConfig | None = None
        self.error = "not read yet"
        self.refresh()
        threading.Thread(target=self._loop, name="requestheader", daemon=True).start()

    def refresh(self) -> None:
        try:
            self.current = read_requestheader(self.api)
            self.error = ""
        except Exception as exc:  # keep serving with the last good config
            self.error = f"cannot read {'/'.join(AUTH_CONFIGMAP)}: {exc}"
            log.warning(self.error)

    def _loop(self) -> None:
        while True:
            time.sleep(REFRESH_SECONDS)
            self.refresh()


def build_app(settings: Settings | None = None) -> Any:
    settings = settings or Settings.from_env()
    api = api_client(settings)
    store = Store(api, settings.namespace)
    requestheader = RequestHeaderWatch(api)

    def readiness() -> list[str]:
        missing = []
        if requestheader.current is None:
            missing.append(requestheader.error)
        return missing

    return create_app(
        Deps(
            applications=Applications(store),
            authorizer=Authorizer(api),
            requestheader=lambda: requestheader.current,
            readiness=readiness,
            max_watches=max(1, settings.threads - 8),
        )
    )
