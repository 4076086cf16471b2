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
from extension.api.kinds import APPPROJECTS
from extension.app import Deps, create_app
from extension.applications import Applications
from extension.auth import Authorizer, RequestHeaderConfig
from extension.guard.index import AppIndex, IndexSync
from extension.guard.kube import KubeParentReader, SealKey, ensure_seal_secret
from extension.guard.verdicts import GuardSettings
from extension.guard.webhook import Guard
from extension.kubehttp import KubeHTTP
from extension.namespaces import NamespacePhases
from extension.resources import Resources
from extension.settings import Settings
from extension.storage import Store
from extension.tenancy import application_policy, ensure_default_project

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


def refresh_tls(settings: Settings, api: client.ApiClient | None = None) -> list[str]:
    """Settle the serving certificate (re-issued in the last third of its life, or as another
    replica left it in the Secret), inject the caBundle, and write the files gunicorn's TLS reads:
    the serving pair and the requestheader CA (kube-apiserver may rotate it). gunicorn builds its
    SSL context per connection, so rewritten files take effect on the next connection. Returns the
    files that changed."""
    api = api or api_client(settings)
    secret = serving.ensure_serving_secret(api, settings.namespace, settings.tls_secret, settings.service)
    try:
        serving.inject_api_service_ca(api, settings.api_service, secret.ca_bundle)
    except client.exceptions.ApiException as exc:
        log.warning("could not write the caBundle of APIService %s: %s", settings.api_service, exc.reason)
    for kind in serving.WEBHOOK_KINDS:
        try:
            serving.inject_webhook_ca(api, kind, settings.webhook_configuration, secret.ca_bundle)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:  # not installed (yet): re-applying the manifests brings it
                log.info("no %s %s to write the caBundle into", kind, settings.webhook_configuration)
            else:
                log.warning(
                    "could not write the caBundle of %s %s: %s",
                    kind,
                    settings.webhook_configuration,
                    exc.reason,
                )
    directory = Path(settings.cert_dir)
    wanted = {
        "ca.crt": (secret.ca_bundle, 0o644),
        "tls.crt": (secret.cert_pem, 0o644),
        # What gunicorn serves: certificate and key in one file, replaced in one rename, so no
        # connection ever pairs a new key with an old certificate.
        "tls.pem": (secret.cert_pem + secret.key_pem, 0o600),
        "requestheader-ca.crt": (read_requestheader(api).client_ca_pem.encode(), 0o644),
    }
    changed = []
    for name, (data, mode) in wanted.items():
        path = directory / name
        if not path.exists() or path.read_bytes() != data:
            files.write_atomic(path, data, mode)
            changed.append(name)
    return changed


def prepare(settings: Settings) -> dict[str, str]:
    """Certificates, TLS files and the guard's seal key before gunicorn binds; returns its
    certfile, keyfile, ca_certs."""
    refresh_tls(settings)
    api = api_client(settings)
    ensure_seal_secret(api, settings.namespace)
    ensure_default_project(
        Resources(
            Store(
                KubeHTTP(api, user_agent="driftguard-extension/v1alpha1"),
                settings.namespace,
                kind=APPPROJECTS,
            ),
            APPPROJECTS,
        )
    )
    directory = Path(settings.cert_dir)
    return {
        "certfile": str(directory / "tls.pem"),
        "keyfile": str(directory / "tls.pem"),
        "ca_certs": str(directory / "requestheader-ca.crt"),
    }


def refresh_forever(settings: Settings) -> None:
    """Runs in gunicorn's master: keeps the TLS files current while the server runs."""
    api = api_client(settings)
    while True:
        time.sleep(settings.refresh_seconds)
        try:
            changed = refresh_tls(settings, api)
        except Exception:  # a passing apiserver outage must not stop the loop
            log.exception("could not refresh the TLS files; serving the current ones")
            continue
        if changed:
            log.info("TLS files changed (%s); new connections use them", ", ".join(changed))


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
    http = KubeHTTP(api, user_agent="driftguard-extension/v1alpha1")
    namespaces = NamespacePhases(http)
    namespaces.start()
    store = Store(http, settings.namespace, namespaces)
    projects = Resources(Store(http, settings.namespace, namespaces, kind=APPPROJECTS), APPPROJECTS)
    requestheader = RequestHeaderWatch(api)
    # Each worker keeps its own index of Applications, from one list and a watch of the storage.
    index = AppIndex()
    IndexSync(store, index).start()
    guard = Guard(
        index,
        GuardSettings(controller_username=settings.controller_username),
        KubeParentReader(api),
        seal_key=SealKey(api, settings.namespace),
    )

    # AppProjects that an Application deploys are guarded like its other objects.
    projects.admission = guard.admit

    def readiness() -> list[str]:
        missing = []
        if requestheader.current is None:
            missing.append(requestheader.error)
        return missing

    return create_app(
        Deps(
            applications=Applications(
                store,
                policy=application_policy(projects, allow_local=settings.allow_local_repositories),
                recent=index.latest,
                reads=index,
                admission=guard.admit,
            ),
            projects=projects,
            authorizer=Authorizer(http),
            requestheader=lambda: requestheader.current,
            readiness=readiness,
            guard=guard,
            max_watches=max(1, settings.threads - 8),
        )
    )
