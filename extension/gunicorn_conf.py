"""gunicorn settings for the extension: ``gunicorn -c python:extension.gunicorn_conf extension.wsgi:app``.

Loading this module settles the serving certificate (see ``extension.server.prepare``) in the
master, before it binds, so every worker serves the same certificate from the first request.
"""

import logging
import ssl
import threading
from typing import Any

from gunicorn.glogging import Logger

from extension.app import WEBHOOK_PATHS
from extension.auth import carry_identity
from extension.server import prepare, refresh_forever
from extension.settings import Settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

_settings = Settings.from_env()
_tls = prepare(_settings)

bind = [_settings.bind]
reuse_port = _settings.reuse_port
workers = _settings.workers
# gthread: each open watch holds a thread, so size threads for the watches you expect.
worker_class = "gthread"
threads = _settings.threads
keepalive = 75  # kube-apiserver reuses connections: no TLS handshake per request
timeout = 60
graceful_timeout = 10  # open watches are cut then; clients re-watch from their resourceVersion
certfile = _tls["certfile"]
keyfile = _tls["keyfile"]
ca_certs = _tls["ca_certs"]
# Optional: the front proxy presents a certificate, webhook calls and probes do not.
cert_reqs = ssl.CERT_OPTIONAL
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus'


class AccessLog(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's access log, without the drift guard's answered webhook calls: kube-apiserver makes
    one for every write to a managed object, and a line each cost about 0.1 ms of the worker's time
    (measured). The guard logs what it denies or warns about itself, and kube-apiserver's audit
    log records every request. A webhook call refused with 4xx/5xx is still logged."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if environ.get("PATH_INFO") not in WEBHOOK_PATHS or getattr(resp, "status_code", 500) >= 400:
            super().access(resp, req, environ, request_time)


logger_class = AccessLog


def pre_request(worker: Any, req: Any) -> None:
    # Before gunicorn joins repeated headers: keep each X-Remote-Group value apart (auth.py).
    req.headers = carry_identity(req.headers)


def when_ready(server: Any) -> None:
    # In the master, which outlives workers: certificate rotation and requestheader-CA changes
    # reach the files without a restart.
    threading.Thread(target=refresh_forever, args=(_settings,), name="tls-refresh", daemon=True).start()
